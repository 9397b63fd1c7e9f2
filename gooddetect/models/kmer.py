"""The "kmer" model kind: an interpolated high-order Markov chain over A, C, G, T with bounded-memory counts.

p(x_t | x_{t-K..t-1}) mixes orders 0..K by interpolated absolute discounting (the Pitman–Yor / Kneser–Ney family
without continuation counts), from order 0 up:

    p_k(x | c) = (max(n_k(c, x) - d, 0) + (alpha + d * u_k(c)) * p_{k-1}(x | c')) / (n_k(c) + alpha)

where c' is c without its oldest base, n_k(c) = sum_x n_k(c, x), u_k(c) = number of bases seen after c and
p_{-1} = 1/4. An unseen context leaves p_{k-1} unchanged and ends the chain (a longer context containing it is unseen
too). Counts cover both strands by default: reads come from either.

Orders 0..direct_order are counted exactly in 4^(k+1)-cell uint32 tables, and scoring reads one precomputed float32
table of interpolated probabilities per position. The (few) higher orders live in fixed-size hashed tables, so memory
and file size do not grow with the training data: 2^hash_bits buckets of `bucket_slots` uint16 slots. A slot holds
one (k+1)-mer a·m·x (a: oldest context base, m: the k-1 bases between, x: next base) filed under the smaller of m and
its reverse complement, so one slot serves a word and its reverse complement, and the four continuations of a
context share one bucket (one memory read per position). Slot bits: 8-bit fingerprint of m (never 0, so an empty
slot matches nothing) | first base | last base | 4-bit count saturating at 15. A full bucket keeps its most frequent
entries; a foreign slot passes the fingerprint-and-base check with probability 1/1024.

An unknown base (code 4) in the context limits the usable context to the bases after it, exactly as at the start of
a sequence; unknown targets and position 0 are not scored.
"""

from __future__ import annotations

import logging
import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, fields, replace
from typing import ClassVar, Iterator

import numpy as np

from ..errors import ModelFileError
from ..mutate import mutate

log = logging.getLogger("gooddetect")

N_BASES = 4
UNKNOWN = 4
MAX_ORDER = 31  # a context plus its next base must fit in 64 bits
BACKGROUND_MAX_ORDER = 8
COUNT_BITS = 4
COUNT_CAP = (1 << COUNT_BITS) - 1
SCORE_CHUNK = 1 << 15  # positions scored at a time: small enough for the temporaries to stay in cache
COUNT_CHUNK = 1 << 20  # positions counted at a time while training
COUNTER_FLUSH = 1 << 23  # pending hashed-order keys sorted and merged at a time while counting


@dataclass
class KmerConfig:
    """Hyperparameters of the interpolated Markov chain.

    Orders 0..min(direct_order, max_order) use exact tables; above that, the hashed orders are max_order,
    max_order - order_step, ... down to direct_order + 1. discount (d) and concentration (alpha) are the smoother's
    (d in [0, 1), alpha >= 0, d + alpha > 0). both_strands also counts the reverse complement of every window."""

    max_order: int = 16
    direct_order: int = 11
    order_step: int = 3
    hash_bits: int = 22
    bucket_slots: int = 8
    both_strands: bool = True
    discount: float = 0.5
    concentration: float = 1.0

    def __post_init__(self) -> None:
        if not 0 <= self.max_order <= MAX_ORDER:
            raise ValueError(f"max_order must be in [0, {MAX_ORDER}], got {self.max_order}")
        if not 0 <= self.direct_order <= 12:
            raise ValueError(f"direct_order must be in [0, 12] (4^(k+1) table cells), got {self.direct_order}")
        if self.order_step < 1:
            raise ValueError(f"order_step must be >= 1, got {self.order_step}")
        if not 8 <= self.hash_bits <= 30 or self.bucket_slots not in (4, 8, 12, 16):
            raise ValueError(f"hash_bits must be in [8, 30] and bucket_slots 4, 8, 12 or 16, got {self}")
        if not 0.0 <= self.discount < 1.0 or self.concentration < 0.0 or self.discount + self.concentration <= 0.0:
            raise ValueError(f"need 0 <= discount < 1, concentration >= 0 and discount + concentration > 0, got {self}")

    @property
    def direct_orders(self) -> tuple[int, ...]:
        return tuple(range(min(self.direct_order, self.max_order) + 1))

    @property
    def hashed_orders(self) -> tuple[int, ...]:
        return tuple(sorted(range(self.max_order, self.direct_order, -self.order_step)))

    def background(self) -> KmerConfig:
        """The config recommended for the background model: this one capped at BACKGROUND_MAX_ORDER (exact tables
        only). On the benchmark's validation sets a background with the foreground's high orders cancels the
        foreground's long k-mer matches and lowers AUROC, while a low-order one (with a mutation rate near 0.3) only
        takes out base-composition effects."""
        return replace(self, max_order=min(self.max_order, BACKGROUND_MAX_ORDER))

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> KmerConfig:
        unknown = set(values) - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f"unknown kmer hyperparameters: {sorted(unknown)}")
        return cls(**values)


class KmerModel:
    """Interpolated Markov chain implementing the model contract (see gooddetect.detector)."""

    kind: ClassVar[str] = "kmer"

    def __init__(self, config: KmerConfig, direct_counts: list[np.ndarray], hashed_tables: list[np.ndarray]):
        """direct_counts[k]: uint32 [4^k, 4] for k in config.direct_orders (context code: oldest base most
        significant); hashed_tables[i]: uint16 [2^hash_bits, bucket_slots] for config.hashed_orders[i]."""
        self.config = config
        self.threads = 1  # scoring threads: a run-time setting, not part of the model
        self.direct_counts = direct_counts
        self.hashed_tables = hashed_tables
        self._probs, self._offsets = _interpolate_direct(direct_counts, config.discount, config.concentration)
        self._masks = _low_mask(np.arange(len(direct_counts)) + 1)  # order k: context and next base, k + 1 bases
        self._width = _code_width(config.max_order + 1)
        self._with_reverse = config.both_strands and bool(config.hashed_orders)  # rev codes: canonical lookups

    # -- the model contract ---------------------------------------------------------------------------------------

    def config_dict(self) -> dict:
        return self.config.to_dict()

    def state_arrays(self) -> dict[str, np.ndarray]:
        arrays = {f"direct_{k}": counts for k, counts in enumerate(self.direct_counts)}
        arrays.update({f"hashed_{k}": table for k, table in zip(self.config.hashed_orders, self.hashed_tables)})
        return arrays

    @classmethod
    def from_state(cls, config: dict, arrays: dict[str, np.ndarray]) -> KmerModel:
        cfg = KmerConfig.from_dict(config)
        expected = {f"direct_{k}": ((4**k, N_BASES), np.uint32) for k in cfg.direct_orders}
        expected.update({f"hashed_{k}": ((1 << cfg.hash_bits, cfg.bucket_slots), np.uint16) for k in cfg.hashed_orders})
        if set(arrays) != set(expected):
            raise ModelFileError(f"kmer arrays {sorted(arrays)} do not match the config (expected {sorted(expected)})")
        for name, (shape, dtype) in expected.items():
            if arrays[name].shape != shape or arrays[name].dtype != dtype:
                raise ModelFileError(f"kmer array {name} is {arrays[name].dtype}{list(arrays[name].shape)}, "
                                     f"expected {np.dtype(dtype)}{list(shape)}")
        return cls(cfg, [arrays[f"direct_{k}"] for k in cfg.direct_orders],
                   [arrays[f"hashed_{k}"] for k in cfg.hashed_orders])

    def loglik(self, codes: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(sum of ln p(base t | bases 0..t-1), number of scored positions) per window. Chunks of windows are scored
        on `self.threads` threads (numpy releases the GIL); each window's result is the same for any thread count."""
        codes, lengths = _checked_batch(codes, lengths)
        total = np.zeros(len(codes), dtype=np.float64)
        scored = np.zeros(len(codes), dtype=np.int64)

        def score(span: tuple[int, int]) -> None:
            start, stop = span
            total[start:stop], scored[start:stop] = self._loglik_chunk(codes[start:stop], lengths[start:stop])

        spans = list(_chunks(codes.shape, SCORE_CHUNK))
        if self.threads > 1 and len(spans) > 1:
            with ThreadPoolExecutor(min(self.threads, len(spans))) as pool:
                list(pool.map(score, spans))
        else:
            for span in spans:
                score(span)
        return total, scored

    # -- training ---------------------------------------------------------------------------------------------------

    @classmethod
    def fit(cls, codes: np.ndarray, lengths: np.ndarray, *, config: KmerConfig, mutation_rate: float = 0.0,
            mutation_passes: int = 1, rng: np.random.Generator) -> KmerModel:
        """Count the windows (mutation_rate > 0: `mutation_passes` copies, each base substituted with that
        probability, fresh mutations per pass — the background model) and build the model."""
        if mutation_passes < 1:
            raise ValueError(f"mutation_passes must be >= 1, got {mutation_passes}")
        codes, lengths = _checked_batch(codes, lengths)
        passes = mutation_passes if mutation_rate > 0 else 1
        # One seed per pass; every sweep over the data replays the same mutated copies from it.
        seeds = [int(s) for s in rng.integers(0, 2**63 - 1, size=passes)]
        sweep = _Sweep(codes, lengths, mutation_rate, seeds)
        direct = _count_direct(sweep, config)
        hashed = [_build_hashed_table(sweep, config, k) for k in config.hashed_orders]
        return cls(config, direct, hashed)

    # -- scoring ----------------------------------------------------------------------------------------------------

    def _loglik_chunk(self, codes: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        fwd, rev, avail, target = _position_codes(codes, lengths, self._width, self._with_reverse)
        fwd, avail, target = fwd.ravel(), avail.ravel(), target.ravel()
        rev = None if rev is None else rev.ravel()
        scored = target < UNKNOWN
        scored.reshape(codes.shape)[:, 0] = False
        order = np.minimum(avail, len(self._offsets) - 1)
        index = self._offsets[order] + (fwd & self._masks[order]).astype(np.int64)
        prob = np.take(self._probs, index).astype(np.float64)
        d, alpha = self.config.discount, self.config.concentration
        usable = np.flatnonzero(scored)
        for k, table in zip(self.config.hashed_orders, self.hashed_tables):
            # An order whose context is unseen ends the chain: a longer context containing it is unseen too.
            usable = usable[avail[usable] >= k]
            n_x, n_ctx, n_seen = _hashed_lookup(table, k, fwd[usable], None if rev is None else rev[usable],
                                                target[usable], self._width)
            seen = n_ctx > 0
            usable = usable[seen]
            n_x, n_ctx, n_seen = n_x[seen], n_ctx[seen], n_seen[seen]
            prob[usable] = (np.maximum(n_x - d, 0.0) + (alpha + d * n_seen) * prob[usable]) / (n_ctx + alpha)
        logp = np.where(scored, np.log(prob), 0.0).reshape(codes.shape)
        return logp.sum(axis=1), scored.reshape(codes.shape).sum(axis=1)


# -- positions and codes ------------------------------------------------------------------------------------------


def _checked_batch(codes: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    codes = np.asarray(codes)
    lengths = np.asarray(lengths, dtype=np.int64)
    if codes.ndim != 2 or codes.dtype != np.uint8 or lengths.shape != (codes.shape[0],):
        raise ValueError(f"expected uint8 codes [B, L] and lengths [B], got {codes.dtype}{list(codes.shape)} and "
                         f"{list(lengths.shape)}")
    return codes, lengths


def _chunks(shape: tuple[int, int], positions: int) -> Iterator[tuple[int, int]]:
    rows = max(1, positions // max(shape[1], 1))
    for start in range(0, shape[0], rows):
        yield start, min(start + rows, shape[0])


def _low_mask(n_bases) -> np.ndarray:
    """uint64 mask of the low 2 * n_bases bits (n_bases <= 32; scalar or array)."""
    n_bases = np.asarray(n_bases, dtype=np.uint64)
    full = np.uint64(0xFFFFFFFFFFFFFFFF)
    return np.where(n_bases >= 32, full, (np.uint64(1) << (2 * n_bases)) - np.uint64(1)).astype(np.uint64)


def _shift_right_positions(values: np.ndarray, by: int) -> np.ndarray:
    """values[:, t - by] at position t (zero for t < by)."""
    out = np.zeros_like(values)
    out[:, by:] = values[:, :-by]
    return out


def _code_width(n_bases: int) -> int:
    """The number of bases the rolling codes cover to hold n_bases: a power of two (at most 32)."""
    return 1 << max(n_bases - 1, 0).bit_length()


def _position_codes(codes: np.ndarray, lengths: np.ndarray, width: int, with_reverse: bool):
    """Per position t of codes [B, L]:
    fwd: the last `width` bases up to and including t as a uint64 (oldest base most significant, 2 bits each);
    rev: the reverse complement of those bases, same layout (None unless with_reverse);
    avail: how many known bases directly precede t (the usable context length);
    target: the base at t (UNKNOWN beyond lengths)."""
    batch, length = codes.shape
    target = codes.copy()
    target[np.arange(length)[None, :] >= lengths[:, None]] = UNKNOWN
    base = (target & 3).astype(np.uint64)
    fwd, rev = base, (np.uint64(3) - base if with_reverse else None)
    covered = 1
    while covered < width:  # double the number of bases covered: older half then newer half
        shift = np.uint64(2 * covered)
        fwd = (_shift_right_positions(fwd, covered) << shift) | fwd
        if with_reverse:
            rev = (rev << shift) | _shift_right_positions(rev, covered)
        covered *= 2
    positions = np.arange(length, dtype=np.int64)
    last_unknown = np.maximum.accumulate(np.where(target >= UNKNOWN, positions, -1), axis=1)
    avail = np.zeros((batch, length), dtype=np.int64)
    avail[:, 1:] = positions[:-1] - last_unknown[:, :-1]
    return fwd, rev, avail, target


# -- the smoother ----------------------------------------------------------------------------------------------------


def _interpolate_direct(direct_counts: list[np.ndarray], discount: float,
                        concentration: float) -> tuple[np.ndarray, np.ndarray]:
    """All direct orders' interpolated p_k(x | c) in one flat float32 array (order k at offsets[k] + c * 4 + x)."""
    tables = []
    lower = np.full((1, N_BASES), 1.0 / N_BASES, dtype=np.float32)
    for counts in direct_counts:
        n = counts.astype(np.float32)
        lower = np.tile(lower, (len(n) // len(lower), 1))  # row c -> p_{k-1}(. | c without its oldest base)
        n_ctx = (n[:, 0] + n[:, 1] + n[:, 2] + n[:, 3])[:, None]  # faster than a sum along the short axis
        n_seen = ((n[:, 0] > 0) * 1.0 + (n[:, 1] > 0) + (n[:, 2] > 0) + (n[:, 3] > 0)).astype(np.float32)[:, None]
        mixed = np.maximum(n - discount, 0.0, out=n)
        mixed += (concentration + discount * n_seen) * lower
        mixed /= np.maximum(n_ctx + concentration, np.float32(1e-30))
        lower = np.where(n_ctx > 0, mixed, lower)
        tables.append(lower.ravel())
    offsets = np.cumsum([0] + [len(t) for t in tables[:-1]]).astype(np.int64)
    return np.concatenate(tables), offsets


# -- counting --------------------------------------------------------------------------------------------------------


class _Sweep:
    """Replayable passes over the training windows, yielding position codes chunk by chunk, mutated identically
    every time they are replayed (pass p, chunk i use the generator seeded by (seeds[p], i))."""

    def __init__(self, codes: np.ndarray, lengths: np.ndarray, mutation_rate: float, seeds: list[int]):
        self.codes, self.lengths, self.mutation_rate, self.seeds = codes, lengths, mutation_rate, seeds

    def positions(self, n_bases: int, with_reverse: bool):
        """(fwd, rev, avail, target) per chunk, the codes covering at least n_bases (see _position_codes)."""
        for seed in self.seeds:
            for i, (start, stop) in enumerate(_chunks(self.codes.shape, COUNT_CHUNK)):
                chunk = self.codes[start:stop]
                if self.mutation_rate > 0:
                    chunk = mutate(chunk, self.mutation_rate, np.random.default_rng([seed, i]))
                yield _position_codes(chunk, self.lengths[start:stop], _code_width(n_bases), with_reverse)


def _count_direct(sweep: _Sweep, config: KmerConfig) -> list[np.ndarray]:
    """Exact counts n_k(c, x) for the direct orders. Only the top order is counted over every position; a lower
    order is the top one summed over the oldest base, plus the positions with exactly k bases of context."""
    top = config.direct_orders[-1]
    tops = _Histogram(4 ** (top + 1))
    edges = [_Histogram(4 ** (k + 1)) for k in range(top)]
    for fwd, _, avail, target in sweep.positions(top + 1, with_reverse=False):
        known = target < UNKNOWN
        tops.add(fwd[known & (avail >= top)] & _low_mask(top + 1))
        short = known & (avail < top)
        for k in range(top):
            edges[k].add(fwd[short & (avail == k)] & _low_mask(k + 1))
    counts = [tops.counts()]
    for k in range(top - 1, -1, -1):
        counts.append(counts[-1].reshape(N_BASES, -1).sum(axis=0) + edges[k].counts())
    counts.reverse()
    if config.both_strands:
        counts = [n + _reverse_complemented(n) for n in counts]
    if max(int(n.max()) for n in counts) > np.iinfo(np.uint32).max:
        raise ValueError("too many training positions for uint32 counts")
    return [n.astype(np.uint32).reshape(-1, N_BASES) for n in counts]


class _Histogram:
    """Counts of the integers 0..size-1, binned in batches at least as large as the histogram (cheap allocation)."""

    def __init__(self, size: int) -> None:
        self._counts = np.zeros(size, dtype=np.int64)
        self._pending: list[np.ndarray] = []
        self._n_pending = 0

    def add(self, values: np.ndarray) -> None:
        self._pending.append(values.astype(np.int64))
        self._n_pending += len(values)
        if self._n_pending >= len(self._counts):
            self._flush()

    def counts(self) -> np.ndarray:
        self._flush()
        return self._counts

    def _flush(self) -> None:
        if self._pending:
            self._counts += np.bincount(np.concatenate(self._pending), minlength=len(self._counts))
            self._pending, self._n_pending = [], 0


def _reverse_complemented(counts: np.ndarray) -> np.ndarray:
    """Counts indexed by n-mer code, re-indexed so that entry w holds the count of w's reverse complement: with one
    axis per base, complementing reverses every axis and reversing the word reverses the axis order."""
    n_bases = round(math.log(len(counts), N_BASES))
    return np.flip(counts.reshape((N_BASES,) * n_bases)).transpose().ravel()


def _split_kmer(k: int, fwd: np.ndarray, rev: np.ndarray | None, width: int):
    """For the (k+1)-mers a·m·x ending at each position (codes of `width` bases): (filing key m*, flipped,
    palindromic, a as uint8), where m* is m or, when both strands count (rev given), the smaller of m and its
    reverse complement."""
    middle = (fwd >> np.uint64(2)) & _low_mask(k - 1)
    first = ((fwd >> np.uint64(2 * k)) & np.uint64(3)).astype(np.uint8)
    if rev is None:
        no = np.zeros(len(fwd), dtype=bool)
        return middle, no, no, first
    rc_middle = (rev >> np.uint64(2 * (width - k))) & _low_mask(k - 1)  # rc(a·m·x) = x'·rc(m)·a'
    return np.minimum(middle, rc_middle), rc_middle < middle, rc_middle == middle, first


def _pair(first: np.ndarray, last: np.ndarray, flipped) -> np.ndarray:
    """4-bit code (uint8) of the (first, last) bases of a slot: the word's, or its reverse complement's if flipped."""
    return np.where(flipped, ((3 - last) << 2) | (3 - first), (first << 2) | last).astype(np.uint8)


def _hash_bucket_fingerprint(middle: np.ndarray, hash_bits: int) -> tuple[np.ndarray, np.ndarray]:
    """(bucket int64, 8-bit fingerprint in 1..255 as uint64) from a splitmix64 hash of the filing key."""
    h = middle ^ (middle >> np.uint64(30))
    h = h * np.uint64(0xBF58476D1CE4E5B9)
    h ^= h >> np.uint64(27)
    h = h * np.uint64(0x94D049BB133111EB)
    h ^= h >> np.uint64(31)
    bucket = (h >> np.uint64(64 - hash_bits)).astype(np.int64)
    fingerprint = (h >> np.uint64(56 - hash_bits)) & np.uint64(0xFF)
    return bucket, np.maximum(fingerprint, np.uint64(1))


class _SlotCounter:
    """Exact counts of slot keys (bucket << 12 | fingerprint << 4 | pair, at most 42 bits), each stored with its
    count (saturating at 2^22 - 1) in one sorted uint64; pending keys are sorted and merged in batches."""

    COUNT_FIELD = 22

    def __init__(self) -> None:
        self.packed = np.zeros(0, dtype=np.uint64)
        self._pending: list[np.ndarray] = []
        self._n_pending = 0

    def add(self, slot_keys: np.ndarray) -> None:
        self._pending.append(slot_keys)
        self._n_pending += len(slot_keys)
        if self._n_pending >= COUNTER_FLUSH:
            self.flush()

    def flush(self) -> None:
        batch = np.concatenate(self._pending) if self._pending else self.packed[:0]
        self._pending, self._n_pending = [], 0
        if not len(batch):
            return
        batch.sort()
        starts = _run_starts(batch)
        counts = np.diff(np.append(starts, len(batch))).astype(np.uint64)
        merged = np.concatenate([self.packed, batch[starts] << np.uint64(self.COUNT_FIELD) | counts])
        del batch, starts, counts
        merged.sort()
        self.packed = self._sum_duplicates(merged)

    def keys_and_counts(self) -> tuple[np.ndarray, np.ndarray]:
        self.flush()
        field = np.uint64(self.COUNT_FIELD)
        return self.packed >> field, self.packed & ((np.uint64(1) << field) - np.uint64(1))

    @classmethod
    def _sum_duplicates(cls, packed: np.ndarray) -> np.ndarray:
        field = np.uint64(cls.COUNT_FIELD)
        keys = packed >> field
        starts = _run_starts(keys)
        if len(starts) == len(packed):
            return packed
        counts = np.add.reduceat(packed & ((np.uint64(1) << field) - np.uint64(1)), starts)
        return keys[starts] << field | np.minimum(counts, (np.uint64(1) << field) - np.uint64(1))


def _run_starts(sorted_values: np.ndarray) -> np.ndarray:
    """Where each run of equal values starts in a non-empty sorted array."""
    return np.flatnonzero(np.r_[True, sorted_values[1:] != sorted_values[:-1]])


def _build_hashed_table(sweep: _Sweep, config: KmerConfig, k: int) -> np.ndarray:
    """Count the windows' canonical (k+1)-mers by slot key, then keep each bucket's most frequent entries."""
    counter = _SlotCounter()
    width = _code_width(k + 1)
    for fwd, rev, avail, target in sweep.positions(k + 1, with_reverse=config.both_strands):
        use = (target < UNKNOWN) & (avail >= k)
        middle, flipped, palindromic, first = _split_kmer(k, fwd[use], None if rev is None else rev[use], width)
        last = target[use]
        bucket, fingerprint = _hash_bucket_fingerprint(middle, config.hash_bits)
        key = bucket.astype(np.uint64) << np.uint64(12) | fingerprint << np.uint64(4)
        counter.add(key | _pair(first, last, flipped))
        if palindromic.any():  # m equal to its reverse complement: file the reverse-strand word too
            counter.add(key[palindromic] | _pair(first[palindromic], last[palindromic], True))
    keys, counts = counter.keys_and_counts()
    table = np.zeros((1 << config.hash_bits, config.bucket_slots), dtype=np.uint16)
    if not len(keys):
        return table
    # Sort each bucket's entries by decreasing count and keep the first bucket_slots.
    count_field = np.uint64(_SlotCounter.COUNT_FIELD)
    most = (np.uint64(1) << count_field) - np.uint64(1)
    ranked = np.sort((keys >> np.uint64(12)) << (count_field + np.uint64(12)) | (most - counts) << np.uint64(12)
                     | (keys & np.uint64(0xFFF)))
    del keys, counts
    bucket = (ranked >> (count_field + np.uint64(12))).astype(np.int64)
    count = most - ((ranked >> np.uint64(12)) & most)
    first_in_bucket = _run_starts(bucket)
    rank = np.arange(len(bucket)) - np.repeat(first_in_bucket, np.diff(np.append(first_in_bucket, len(bucket))))
    keep = rank < config.bucket_slots
    table.reshape(-1)[bucket[keep] * config.bucket_slots + rank[keep]] = (
        (ranked[keep] & np.uint64(0xFFF)) << np.uint64(COUNT_BITS) | np.minimum(count[keep], np.uint64(COUNT_CAP))
    ).astype(np.uint16)
    log.debug("kmer order %d: %d distinct slot keys, %d kept (%.1f%% of %d slots), %d dropped by full buckets",
              k, len(bucket), int(keep.sum()), 100.0 * keep.sum() / table.size, table.size, int((~keep).sum()))
    return table


def _slot_patterns() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Lookup tables indexed by flipped << 4 | a << 2 | x: the slot bits (below the fingerprint) that select the
    context's slots (mask, value) and the slot of its continuation x (value under mask 0x00F0)."""
    index = np.arange(32)
    flipped, first, last = index >> 4, index >> 2 & 3, index & 3
    mask = np.where(flipped, 0x0030, 0x00C0)  # reverse-complement filed: last base 3-a; forward: first base a
    value = np.where(flipped, (3 - first) << 4, first << 6)
    target = _pair(first, last, flipped).astype(np.int64) << 4
    return mask.astype(np.uint16), value.astype(np.uint16), target.astype(np.uint16)


_SLOT_MASK, _SLOT_CONTEXT, _SLOT_TARGET = _slot_patterns()


def _hashed_lookup(table: np.ndarray, k: int, fwd: np.ndarray, rev: np.ndarray | None, target: np.ndarray,
                   width: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(n_k(c, x_t), n_k(c), u_k(c)) as float64 for the order-k context of each position, read from its bucket."""
    middle, flipped, _, first = _split_kmer(k, fwd, rev, width)
    bucket, fingerprint = _hash_bucket_fingerprint(middle, table.shape[0].bit_length() - 1)
    slots = np.take(table, bucket, axis=0)  # much faster than table[bucket] for 2-D tables
    top = fingerprint.astype(np.uint16) << np.uint16(8)
    pattern = (flipped.view(np.uint8) << 4) | (first << 2) | target
    mine = (slots & (_SLOT_MASK[pattern] | 0xFF00)[:, None]) == (_SLOT_CONTEXT[pattern] | top)[:, None]
    hit = (slots & np.uint16(0xFFF0)) == (_SLOT_TARGET[pattern] | top)[:, None]
    counts = slots & np.uint16(COUNT_CAP)
    # Pack three per-slot quantities in one uint16 so one lane sum adds them all: the count if the slot is the
    # context's (bits 0-3), the count if it is the continuation x (bits 8-11), and 1 if it is the context's (bit 12).
    # Four slots sum to < 2^16 within a uint64; the per-word sums are added in uint64 with room to spare (S <= 16).
    packed = (counts | np.uint16(1 << 12)) * mine | (counts * hit) << np.uint16(8)
    total = _slot_sum(packed)
    return (total >> 8 & 0xF).astype(np.float64), (total & 0xFF).astype(np.float64), (total >> 12).astype(np.float64)


def _slot_sum(values: np.ndarray) -> np.ndarray:
    """Row sums (uint64) of uint16 values [N, S], S a multiple of 4, where any four values sum to < 2^16: the four
    16-bit lanes of a uint64 are added by one multiplication, far faster than a reduction along a short axis."""
    lanes = np.ascontiguousarray(values).view(np.uint64) * np.uint64(0x0001000100010001) >> np.uint64(48)
    total = lanes[:, 0].copy()
    for column in range(1, lanes.shape[1]):
        total += lanes[:, column]
    return total
