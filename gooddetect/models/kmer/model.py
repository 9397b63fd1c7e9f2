"""The "kmer" model kind: an interpolated high-order Markov chain over A, C, G, T with bounded-memory counts.

p(x_t | x_{t-K..t-1}) mixes orders 0..K by interpolated absolute discounting (the Pitman–Yor / Kneser–Ney family
without continuation counts), from order 0 up:

    p_k(x | c) = (max(n_k(c, x) - d, 0) + (alpha + d * u_k(c)) * p_{k-1}(x | c')) / (n_k(c) + alpha)

where c' is c without its oldest base, n_k(c) = sum_x n_k(c, x), u_k(c) = number of bases seen after c and
p_{-1} = 1/4. An unseen context leaves p_{k-1} unchanged and ends the chain (a longer context containing it is unseen
too). Counts cover both strands by default: reads come from either.

Orders 0..direct_order come from exact counts of the (direct_order + 1)-mers (4^(k+1) uint32 cells; a lower order is
the next one summed over its oldest base), precomputed at load into one float32 table of interpolated probabilities.
The higher ("hashed") orders live in fixed-size hashed tables, so memory does not grow with the training data:
2^hash_bits buckets of 8 uint16 slots. A slot holds one (k+1)-mer a·m·x (a: oldest context base, m:
the k-1 bases between, x: next base) filed under the smaller of m and its reverse complement, so one slot serves a
word and its reverse complement, and the four continuations of a context share one bucket (one memory read per
position). Slot bits: 8-bit fingerprint (never 0, so an empty slot matches nothing) | first base | last base | 4-bit
count saturating at 15. The bucket is the top hash_bits bits of the key's hash and the fingerprint its low 8 bits,
so a table halves by merging bucket pairs: training counts into 2^max_hash_bits buckets (a full bucket keeps the
entries of the highest keys, whatever order they come in, so that counts made in parts merge exactly) and then
halves the table while it stays at most TARGET_FILL full. A foreign slot passes the fingerprint-and-base check with
probability 1/1024.

An unknown base (code 4) in the context limits the usable context to the bases after it, exactly as at the start of
a sequence; unknown targets and position 0 are not scored.

The model file stores the top direct order's counts of canonical words only (both strands give equal counts to a
word and its reverse complement) as uint8 or uint16, whichever makes the smaller file, plus an overflow list, and
each hashed table's filled slots with a per-bucket count: a fraction of the tables' size in memory. The scoring and
counting loops are in C (gooddetect._core.kmer).
"""

from __future__ import annotations

import functools
import zlib
from dataclasses import dataclass, replace
from typing import ClassVar, Iterable

import numpy as np

from ...alphabet import N_BASES
from ...errors import ModelFileError, UsageError
from ...mutate import mutate
from ...runtime import in_row_blocks, in_thread_shares, row_blocks, run_tasks
from .. import ArraySpec
from ..configs import MAX_HASH_BITS, KmerConfig
from ..._core import kmer as kernels
from ..._core.kmer import BUCKET_SLOTS  # slots of a bucket: 16 bytes, read at once

TARGET_FILL = 0.65  # a trained table is halved while it stays at most this full
COUNT_DTYPES = (np.dtype(np.uint8), np.dtype(np.uint16))  # direct counts are stored in the one giving the smaller file
SCORE_ROWS = 1 << 10  # windows per scoring task: a 4096-window batch keeps two threads busy


class KmerModel:
    """Interpolated Markov chain implementing the model contract (gooddetect.models.GenerativeModel)."""

    kind: ClassVar[str] = "kmer"
    uses_torch: ClassVar[bool] = False
    stored_deflated: ClassVar[bool] = False  # the foreground's tables load in a fraction of the time to inflate them
    chunks_in_flight: ClassVar[int] = 2  # its loops are C, release the GIL and keep no state

    def __init__(self, config: KmerConfig, direct: DirectCounts, hashed_tables: np.ndarray,
                 stats: dict | None = None, threads: int = 1):
        """direct: the counts of the (D+1)-mers, D = config.top_direct_order, as stored (DirectCounts);
        hashed_tables: uint16 [len(config.hashed_orders), 2^hash_bits, bucket_slots]. The probability tables are
        built on `threads` threads, which also score until `configure` says otherwise."""
        self.config = config
        self.threads = threads  # a run-time setting, not part of the model
        self.direct = direct
        self.hashed_tables = hashed_tables
        self.stats = stats or {}
        self._probs, self._offsets = direct_probabilities(config, direct, threads)

    @property
    def context(self) -> int:
        return self.config.max_order

    @property
    def top_counts(self) -> np.ndarray:
        """The uint32 counts of every (D+1)-mer."""
        return every_word(self.config, self.direct, self.threads)

    # -- the model contract ---------------------------------------------------------------------------------------

    def configure(self, *, threads: int | None = None, device: str = "cpu", bf16: bool = False) -> None:
        if bf16:
            raise UsageError("--bf16 applies to lstm models, not to kmer models")
        if device not in ("cpu", "auto"):
            raise UsageError(f"kmer models run on the CPU; --device {device} does not apply")
        self.threads = threads or 1

    def config_dict(self) -> dict:
        return self.config.to_dict()

    def state_arrays(self) -> dict[str, np.ndarray]:
        arrays = self.direct.arrays()
        for k, table in zip(self.config.hashed_orders, self.hashed_tables):
            filled = table != 0
            arrays[f"hashed_{k}_fill"] = filled.sum(axis=1).astype(np.uint8)
            arrays[f"hashed_{k}_slots"] = table[filled]
        return arrays

    @classmethod
    def expected_arrays(cls, config: dict) -> dict[str, ArraySpec]:
        c = KmerConfig.from_model_file(config, "kmer")
        arrays = expected_direct_arrays(c)
        for k in c.hashed_orders:
            arrays[f"hashed_{k}_fill"] = ((1 << c.hash_bits,), "uint8")
            arrays[f"hashed_{k}_slots"] = ((None,), "uint16")
        return arrays

    @classmethod
    def from_state(cls, config: dict, arrays: dict[str, np.ndarray], threads: int = 1) -> KmerModel:
        c = KmerConfig.from_dict(config)
        counts = DirectCounts.from_arrays(arrays)
        tables = np.zeros((len(c.hashed_orders), 1 << c.hash_bits, BUCKET_SLOTS), dtype=np.uint16)
        unpack_tables = []
        for table, k in zip(tables, c.hashed_orders):
            fill, slots = arrays[f"hashed_{k}_fill"], arrays[f"hashed_{k}_slots"]
            if int(fill.max(initial=0)) > BUCKET_SLOTS or int(fill.sum(dtype=np.int64)) != len(slots):
                raise ModelFileError(f"kmer hashed table {k} does not match its bucket counts")
            unpack_tables.append(functools.partial(kernels.unpack_buckets, fill, slots, table))

        def model() -> KmerModel:  # the direct tables, while the hashed tables are unpacked beside
            return cls(c, counts, tables, threads=threads)

        return run_tasks([model, *unpack_tables], threads)[0]

    def loglik(self, codes: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(sum of ln p(base t | bases 0..t-1), number of scored positions) per window. Rows are scored in blocks
        on `self.threads` threads (the compiled loop releases the GIL); each row's result is the same for any
        count."""
        codes, lengths = _checked_batch(codes, lengths)
        tasks, (sums, scored) = self._score_tasks(codes, lengths)
        run_tasks(tasks, self.threads)
        return sums[:, 0], scored[:, 0]

    @classmethod
    def pair_loglik(cls, foreground: KmerModel, background: KmerModel, codes: np.ndarray, lengths: np.ndarray):
        """Both models' logliks, their row blocks side by side on the foreground's threads (the background, of
        lower order, is several times cheaper: one pool keeps both threads busy)."""
        codes, lengths = _checked_batch(codes, lengths)
        fg_tasks, fg = foreground._score_tasks(codes, lengths)
        bg_tasks, bg = background._score_tasks(codes, lengths)
        run_tasks(fg_tasks + bg_tasks, foreground.threads)
        return (fg[0][:, 0], fg[1][:, 0]), (bg[0][:, 0], bg[1][:, 0])

    def binned_loglik(self, codes: np.ndarray, lengths: np.ndarray, skip: np.ndarray,
                      bin_size: int) -> tuple[np.ndarray, np.ndarray]:
        """(sums float64 [B, bins], scored positions int64 [B, bins]) over the positions of each row in bins of
        `bin_size` from position skip[i] on (the first skip[i] positions are context only)."""
        codes, lengths = _checked_batch(codes, lengths)
        tasks, result = self._score_tasks(codes, lengths, np.asarray(skip, dtype=np.int64), bin_size)
        run_tasks(tasks, self.threads)
        return result

    @classmethod
    def pair_binned_loglik(cls, foreground: KmerModel, background: KmerModel, codes: np.ndarray,
                           lengths: np.ndarray, skip: np.ndarray, bin_size: int):
        """Both models' binned_loglik, their row blocks side by side on the foreground's threads."""
        codes, lengths = _checked_batch(codes, lengths)
        skip = np.asarray(skip, dtype=np.int64)
        fg_tasks, fg = foreground._score_tasks(codes, lengths, skip, bin_size)
        bg_tasks, bg = background._score_tasks(codes, lengths, skip, bin_size)
        run_tasks(fg_tasks + bg_tasks, foreground.threads)
        return fg, bg

    def _score_tasks(self, codes: np.ndarray, lengths: np.ndarray, skip: np.ndarray | None = None,
                     bin_size: int | None = None):
        """The row-block tasks scoring `codes`, and the (sums, scored) arrays they fill: one value per row, or per
        bin of `bin_size` positions after skip[i] context positions."""
        width = codes.shape[1]
        bins = 1 if bin_size is None else max(1, -(-width // bin_size))
        sums = np.zeros((len(codes), bins), dtype=np.float64)
        scored = np.zeros((len(codes), bins), dtype=np.int64)
        skip = np.zeros(len(codes), dtype=np.int64) if skip is None else skip
        bin_size = bin_size or max(width, 1)
        c = self.config
        orders = np.array(c.hashed_orders, dtype=np.int64)

        def score(first: int, last: int) -> None:
            kernels.loglik_rows(codes, lengths, first, last, self._probs, self._offsets, c.top_direct_order,
                                self.hashed_tables, orders, c.both_strands, c.width, c.discount, c.concentration,
                                skip, bin_size, sums, scored)

        return row_blocks(score, len(codes), SCORE_ROWS), (sums, scored)

    # -- training ---------------------------------------------------------------------------------------------------

    @classmethod
    def fit_pair(cls, batches: Iterable[tuple[np.ndarray, np.ndarray, np.ndarray]], *, config: KmerConfig,
                 background: KmerConfig, mutation_rate: float, seed: int = 0,
                 max_hash_bits: int | None = None) -> tuple[KmerModel, KmerModel]:
        """The foreground and background models, counted in one pass over `batches` (see count_pair)."""
        counters = count_pair(batches, config=config, background=background, mutation_rate=mutation_rate, seed=seed,
                              hash_bits=max_hash_bits or config.hash_bits)
        return tuple(counter.model(fold=max_hash_bits is not None) for counter in counters)


def count_pair(batches: Iterable[tuple[np.ndarray, np.ndarray, np.ndarray]], *, config: KmerConfig,
               background: KmerConfig, mutation_rate: float, seed: int, hash_bits: int) -> tuple[Counter, Counter]:
    """The foreground's and the background's counts of `batches`: (codes [B, L] uint8, lengths [B], skip [B]), the
    first skip[i] bases of row i being context only (counted as the end of the previous row). The background counts
    the rows with each base substituted with probability `mutation_rate`, by a generator seeded with `seed` and the
    batch's content (so counts of parts of the input add up to the counts of the whole). Hashed tables have
    2^hash_bits buckets."""
    counters = Counter(config, hash_bits), Counter(background, hash_bits)
    for codes, lengths, skip in batches:
        codes, lengths = _checked_batch(codes, lengths)
        skip = np.asarray(skip, dtype=np.int64)
        counters[0].add(codes, lengths, skip)
        if mutation_rate > 0:
            key = [seed, zlib.crc32(np.ascontiguousarray(codes)), zlib.crc32(lengths), zlib.crc32(skip)]
            codes = mutate(codes, mutation_rate, np.random.default_rng(key))
        counters[1].add(codes, lengths, skip)
    return counters


class Counter:
    """Streaming counts for one model: exact (D+1)-mer counts and the hashed tables. Counts of parts of the input
    `merge` into the counts of the whole, exactly."""

    def __init__(self, config: KmerConfig, hash_bits: int):
        if not 8 <= hash_bits <= MAX_HASH_BITS:
            raise UsageError(f"hash bits must be in [8, {MAX_HASH_BITS}], got {hash_bits}")
        self.config = replace(config, hash_bits=hash_bits)
        self.top = np.zeros(N_BASES ** (self.config.top_direct_order + 1), dtype=np.uint64)
        self.tables = np.zeros((len(config.hashed_orders), 1 << hash_bits, BUCKET_SLOTS), dtype=np.uint16)
        self.orders = np.array(config.hashed_orders, dtype=np.int64)
        self.positions = 0

    def add(self, codes: np.ndarray, lengths: np.ndarray, skip: np.ndarray) -> None:
        c = self.config
        self.positions += kernels.count_rows(codes, lengths, skip, c.top_direct_order, self.top, self.tables,
                                             self.orders, c.both_strands, c.width)

    def merge(self, other: Counter) -> None:
        """Add the counts of `other` (of the same config)."""
        if other.config != self.config:
            raise ValueError("counts of different settings cannot be merged")
        self.top += other.top
        for mine, theirs in zip(self.tables, other.tables):
            kernels.merge_buckets(mine, theirs)
        self.positions += other.positions

    def direct_counts(self) -> np.ndarray:
        """The direct counts as a model holds them: uint32, with both strands one per reverse-complement pair."""
        c = self.config
        top = self.top
        if c.both_strands:
            top = top + reverse_complemented(top, c.top_direct_order + 1)
        if top.max(initial=0) > np.iinfo(np.uint32).max:
            raise UsageError("too many training positions for 32-bit k-mer counts")
        return _canonical_counts(top.astype(np.uint32), c)

    def model(self, fold: bool) -> KmerModel:
        c = self.config
        tables = canonical_buckets(self.tables)
        bits = c.hash_bits
        while fold and bits > 8 and len(c.hashed_orders) and (tables != 0).sum(axis=(1, 2)).max() <= \
                TARGET_FILL * tables[0].size / 2:
            tables = canonical_buckets(kernels.halve_tables(tables))
            bits -= 1
        stats = {"positions": int(self.positions), "hash_bits": bits,
                 "hashed_fill": [round(float((t != 0).mean()), 4) for t in tables],
                 "hashed_full_buckets": [round(float((t[:, -1] != 0).mean()), 4) for t in tables]}
        return KmerModel(replace(c, hash_bits=bits), DirectCounts.of(self.direct_counts()), tables, stats)


def canonical_buckets(tables: np.ndarray) -> np.ndarray:
    """Each bucket's slots in one order (by key, highest first; empty slots last), whatever order the entries came
    in: the layout does not change scores, and equal counts then give equal bytes."""
    return np.ascontiguousarray(np.sort(tables, axis=-1)[..., ::-1])


# -- helpers ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)  # arrays: no elementwise ==
class DirectCounts:
    """A chain's exact counts of its top direct order's (D+1)-mers as stored: with both strands one per
    reverse-complement pair (pack_counts), else one per word (oldest base most significant); in uint8 or uint16,
    whichever makes the smaller file, each count above that type's maximum in an overflow list (index, count).
    Models keep this form (a quarter of uint32 counts) and unpack it straight into their probability tables."""

    counts: np.ndarray
    overflow_index: np.ndarray  # uint32
    overflow_count: np.ndarray  # uint32

    @classmethod
    def of(cls, counts: np.ndarray) -> DirectCounts:
        """The stored form of uint32 counts."""
        dtype = min(COUNT_DTYPES, key=lambda d: counts.size * d.itemsize + 8 * int((counts > np.iinfo(d).max).sum()))
        overflow = np.flatnonzero(counts > np.iinfo(dtype).max)
        return cls(np.minimum(counts, np.iinfo(dtype).max).astype(dtype), overflow.astype(np.uint32),
                   counts[overflow].astype(np.uint32))

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> DirectCounts:
        """The counts of a model file's arrays (copied: the file need not stay mapped); a ModelFileError if they do
        not add up."""
        counts, index, overflow = (np.array(arrays[name]) for name in
                                   ("direct_counts", "direct_overflow_index", "direct_overflow_count"))
        if len(index) != len(overflow) or (len(index) and int(index.max()) >= len(counts)):
            raise ModelFileError("kmer direct overflow arrays do not match the counts")
        return cls(counts, index, overflow)

    def arrays(self) -> dict[str, np.ndarray]:
        return {"direct_counts": self.counts, "direct_overflow_index": self.overflow_index,
                "direct_overflow_count": self.overflow_count}

    def words_bound(self, both_strands: bool) -> int:
        """At least the sum of every word's count (with both strands a stored count stands for up to two words)."""
        stored = int(self.counts.sum(dtype=np.uint64)) + int(self.overflow_count.sum(dtype=np.uint64))
        return 2 * stored if both_strands else stored

    def full(self, out: np.ndarray | None = None) -> np.ndarray:
        """The counts as uint32, one per stored word (into `out` when given)."""
        out = np.empty(len(self.counts), dtype=np.uint32) if out is None else out
        out[:] = self.counts
        out[self.overflow_index] = self.overflow_count
        return out


def every_word(config: KmerConfig, direct: DirectCounts, threads: int = 1,
               out: np.ndarray | None = None) -> np.ndarray:
    """The uint32 counts of every (D+1)-mer from a model's stored counts (unpacked when both strands are counted),
    into `out` when given: each overflow count goes to its word and, with both strands, its reverse complement."""
    n_bases = config.top_direct_order + 1
    out = np.empty(N_BASES**n_bases, dtype=np.uint32) if out is None else out
    if not config.both_strands:
        return direct.full(out)
    unpack_counts(direct.counts, n_bases, threads, out)
    for words in packed_words(direct.overflow_index.astype(np.int64), n_bases):
        out[words] = direct.overflow_count
    return out


def direct_probabilities(config: KmerConfig, direct: DirectCounts,
                         threads: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """(probabilities, offsets) of every direct order (_interpolate_direct) from a model's stored counts. The top
    order's counts are unpacked into its own table, where their probabilities replace them: a model load holds no
    second copy of them."""
    top = config.top_direct_order
    sizes = [N_BASES ** (k + 1) for k in range(top + 1)]
    offsets = np.cumsum([0] + sizes[:-1]).astype(np.int64)
    probs = np.empty(sum(sizes), dtype=np.float32)
    every_word(config, direct, threads, out=probs[offsets[top]:].view(np.uint32))
    fits = direct.words_bound(config.both_strands) <= np.iinfo(np.uint32).max
    _interpolate_direct(probs, offsets, config.discount, config.concentration, np.uint32 if fits else np.uint64,
                        threads)
    return probs, offsets


def expected_direct_arrays(config: KmerConfig) -> dict[str, ArraySpec]:
    n_words = _n_stored_words(config.top_direct_order + 1, config.both_strands)
    return {"direct_counts": ((n_words,), tuple(d.name for d in COUNT_DTYPES)),
            "direct_overflow_index": ((None,), "uint32"), "direct_overflow_count": ((None,), "uint32")}


def _checked_batch(codes: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    codes = np.ascontiguousarray(codes)
    lengths = np.asarray(lengths, dtype=np.int64)
    if codes.ndim != 2 or codes.dtype != np.uint8 or lengths.shape != (codes.shape[0],):
        raise ValueError(f"expected uint8 codes [B, L] and lengths [B], got {codes.dtype}{list(codes.shape)} and "
                         f"{list(lengths.shape)}")
    return codes, np.minimum(lengths, codes.shape[1])


def _n_stored_words(n_bases: int, both_strands: bool) -> int:
    """Words of n bases stored: all 4^n, or with both strands one per reverse-complement pair (palindromes, which
    exist for even n only, once)."""
    if not both_strands:
        return N_BASES**n_bases
    palindromes = N_BASES ** (n_bases // 2) if n_bases % 2 == 0 else 0
    return (N_BASES**n_bases + palindromes) // 2


def _canonical_counts(top: np.ndarray, config: KmerConfig) -> np.ndarray:
    """The counts stored: of every word, or with both strands one per reverse-complement pair (pack_counts)."""
    return pack_counts(top, config.top_direct_order + 1) if config.both_strands else top


def reverse_complemented(counts: np.ndarray, n_bases: int) -> np.ndarray:
    """Counts indexed by n-mer code, re-indexed so that entry w holds the count of w's reverse complement: with one
    axis per base, complementing reverses every axis and reversing the word reverses the axis order."""
    return np.flip(counts.reshape((N_BASES,) * n_bases)).transpose().ravel()


def _rc_permutation(n_bases: int) -> np.ndarray:
    """rc[w] = the reverse complement of every word w of n_bases."""
    return reverse_complemented(np.arange(N_BASES**n_bases), n_bases)


def pack_counts(counts: np.ndarray, n_bases: int) -> np.ndarray:
    """One count per reverse-complement pair of words of n_bases, from counts equal on both words of a pair.

    Even n = 2m, word P·S (halves of m bases): the matrix M'[P, Q] = counts[P·rc(Q)] is symmetric (counts[P·S] =
    counts[rc(S)·rc(P)]), so its upper triangle, row by row, holds every pair once. Odd n = 2m + 1, word P·b·S:
    the words whose middle base b is A or C, one of each pair."""
    half = N_BASES ** (n_bases // 2)
    if n_bases % 2:
        return counts.reshape(half, N_BASES, half)[:, :2].ravel()
    matrix = counts.reshape(half, half)[:, _rc_permutation(n_bases // 2)]
    return matrix[np.triu_indices(half)]


def packed_words(index: np.ndarray, n_bases: int) -> tuple[np.ndarray, np.ndarray]:
    """The two words (a word and its reverse complement; the same word for a palindrome) whose count the entries
    `index` of pack_counts' output hold."""
    m = n_bases // 2
    half = N_BASES**m
    rc = _rc_permutation(m)
    if n_bases % 2:  # entry (P·2 + b)·half + S holds P·b·S, b in {A, C}; its reverse complement is rc(S)·b'·rc(P)
        prefix, middle, suffix = index // (2 * half), index // half % 2, index % half
        return (prefix * N_BASES + middle) * half + suffix, (rc[suffix] * N_BASES + 3 - middle) * half + rc[prefix]
    rows = np.arange(half, dtype=np.int64)  # entry (low, high), low <= high, of the triangle: M'[low, high]
    starts = rows * half - rows * (rows - 1) // 2
    low = np.searchsorted(starts, index, side="right") - 1
    high = index - starts[low] + low
    return low * half + rc[high], high * half + rc[low]


def unpack_counts(packed: np.ndarray, n_bases: int, threads: int = 1, out: np.ndarray | None = None) -> np.ndarray:
    """The counts of every word from pack_counts' output (on up to `threads` threads; any unsigned dtype), into
    `out` when given (of packed's dtype when not)."""
    m = n_bases // 2
    half = N_BASES**m
    rc = _rc_permutation(m)
    out = np.empty(N_BASES**n_bases, dtype=packed.dtype) if out is None else out
    if n_bases % 2:  # words with middle base G or T: counts[P·b·S] = counts[rc(S)·b'·rc(P)]
        stored, words = packed.reshape(half, 2, half), out.reshape(half, N_BASES, half)
        words[:, :2] = stored
        for base in (2, 3):
            words[:, base] = stored[:, 3 - base].T[rc][:, rc]
        return out
    words = out.reshape(half, half)
    in_thread_shares(lambda first, last: kernels.unpack_symmetric(packed, rc, words, first, last), half, threads)
    return out


def _summed_over_oldest(counts: np.ndarray, dtype: np.dtype, threads: int) -> np.ndarray:
    """The counts of the words one base shorter, in `dtype`: counts summed over the oldest base (in blocks of words
    on up to `threads` threads)."""
    by_oldest = counts.reshape(N_BASES, -1)
    out = np.empty(by_oldest.shape[1], dtype=dtype)
    in_thread_shares(lambda first, last: by_oldest[:, first:last].sum(axis=0, dtype=dtype, out=out[first:last]),
                     len(out), threads)
    return out


def _interpolate_direct(probs: np.ndarray, offsets: np.ndarray, discount: float, concentration: float,
                        dtype: type, threads: int = 1) -> None:
    """Every direct order's interpolated p_k(x | c) in `probs` (float32; order k at offsets[k] + c * 4 + x), whose
    top order holds its uint32 counts on entry and is rebuilt from them in place, row by row. Order k's counts are
    order k+1's summed over the oldest base, in `dtype` (uint32 when all the counts add up to no more, else uint64),
    each dropped once its table is built. An order's contexts are split among `threads` threads in blocks of whole
    lower-order tables (a context's lower row is its index modulo that table's rows)."""
    top = len(offsets) - 1
    top_counts = probs[offsets[top]:].view(np.uint32)
    counts = [top_counts]
    for _ in range(top):
        counts.append(_summed_over_oldest(counts[-1], dtype, threads))
    counts.reverse()
    lower = np.full((1, N_BASES), 1.0 / N_BASES, dtype=np.float32)
    for k in range(top + 1):
        n, counts[k] = counts[k], None  # each order's counts are dropped once its table is built
        table = probs[offsets[k]:offsets[k] + len(n)].reshape(-1, N_BASES)
        rows = n.reshape(-1, N_BASES)
        lower_tables = len(rows) // len(lower)
        block = len(lower) * -(-lower_tables // threads)  # whole lower tables, about a thread's share
        in_row_blocks(lambda first, last: kernels.interpolate(rows[first:last], lower, discount, concentration,
                                                              table[first:last]), len(rows), block, threads)
        lower = table
