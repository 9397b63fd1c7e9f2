"""The "kmer" model kind: an interpolated high-order Markov chain over A, C, G, T with bounded-memory counts.

p(x_t | x_{t-K..t-1}) mixes the orders 0..K by interpolated absolute discounting (the Pitman–Yor / Kneser–Ney family
without continuation counts), from order 0 up:

    p_k(x | c) = (max(n_k(c, x) - d, 0) + (alpha + d * u_k(c)) * p_{k-1}(x | c')) / (n_k(c) + alpha)

where c' is c without its oldest base, n_k(c) = sum_x n_k(c, x), u_k(c) = number of bases seen after c, p_{-1} = 1/4,
and an unseen context leaves p_{k-1} unchanged. Orders 0..direct_order are counted exactly in 4^(k+1)-cell tables;
the higher orders go to fixed-size hashed tables, so memory and file size do not grow with the training data.

Hashed table of order k: 2^hash_bits buckets of `bucket_slots` uint16 slots. A slot holds one (k+1)-mer a·m·x
(a: oldest context base, m: the k-1 bases between, x: next base), canonicalised over the two strands: it is filed
under the smaller of m and its reverse complement, so one slot serves a k-mer and its reverse complement and the
four continuations of a context share one bucket. Slot bits: 8-bit fingerprint of m (never 0, so an empty slot
matches nothing) | 2-bit first base | 2-bit last base | 4-bit count (saturating at 15). A bucket that overflows keeps
its most frequent entries; a wrong fingerprint match is rare (about slots/1024 per lookup at full load).

An unknown base (code 4) in the context limits the usable context to the bases after it, exactly as at the start of
a sequence; unknown targets and position 0 are not scored.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, fields
from typing import ClassVar, Iterator

import numpy as np

from ..errors import ModelFileError
from ..mutate import mutate

log = logging.getLogger("gooddetect")

N_BASES = 4
UNKNOWN = 4
MAX_ORDER = 31  # a context plus its next base must fit in 64 bits
CODE_WIDTH = 32  # bases held by the rolling uint64 codes
COUNT_BITS = 4
COUNT_CAP = (1 << COUNT_BITS) - 1
CHUNK_POSITIONS = 1 << 20  # positions per chunk while counting or scoring (bounds the temporary arrays)
COUNTER_FLUSH = 1 << 24  # pending hashed-order keys sorted and merged at a time while counting


@dataclass
class KmerConfig:
    """Hyperparameters of the interpolated Markov chain.

    Orders 0..min(direct_order, max_order) use exact tables; above that, the hashed orders are max_order,
    max_order - order_step, ... down to direct_order + 1. discount (d) and concentration (alpha) are the smoother's
    (d in [0, 1), alpha >= 0, d + alpha > 0). both_strands also counts the reverse complement of every window."""

    max_order: int = 16
    direct_order: int = 11
    order_step: int = 2
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
        if not 8 <= self.hash_bits <= 30 or self.bucket_slots not in range(4, 65, 4):
            raise ValueError(f"hash_bits must be in [8, 30] and bucket_slots a multiple of 4 up to 64, got {self}")
        if not 0.0 <= self.discount < 1.0 or self.concentration < 0.0 or self.discount + self.concentration <= 0.0:
            raise ValueError(f"need 0 <= discount < 1, concentration >= 0 and discount + concentration > 0, got {self}")

    @property
    def direct_orders(self) -> tuple[int, ...]:
        return tuple(range(min(self.direct_order, self.max_order) + 1))

    @property
    def hashed_orders(self) -> tuple[int, ...]:
        return tuple(sorted(range(self.max_order, self.direct_order, -self.order_step)))

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
        self.direct_counts = direct_counts
        self.hashed_tables = hashed_tables
        self._probs, self._offsets = _interpolate_direct(direct_counts, config.discount, config.concentration)

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
        """(sum of ln p(base t | bases 0..t-1), number of scored positions) per window."""
        codes, lengths = _checked_batch(codes, lengths)
        total = np.zeros(len(codes), dtype=np.float64)
        scored = np.zeros(len(codes), dtype=np.int64)
        for start, stop in _chunks(codes.shape):
            total[start:stop], scored[start:stop] = self._loglik_chunk(codes[start:stop], lengths[start:stop])
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
        fwd, rev, avail, target = _position_codes(codes, lengths)
        scored = target < UNKNOWN
        scored[:, 0] = False
        fwd, rev, avail, target = fwd[scored], rev[scored], avail[scored], target[scored].astype(np.uint64)
        order = np.minimum(avail, len(self._offsets) - 1)
        index = self._offsets[order] + (fwd & _low_mask(order + 1)).astype(np.int64)
        prob = self._probs[index].astype(np.float64)
        d, alpha = self.config.discount, self.config.concentration
        usable = np.arange(len(prob))
        for k, table in zip(self.config.hashed_orders, self.hashed_tables):
            # An order whose context is unseen ends the chain: a longer context containing it is unseen too.
            usable = usable[avail[usable] >= k]
            n_x, n_ctx, n_seen = _hashed_lookup(table, k, fwd[usable], rev[usable], target[usable],
                                                self.config.both_strands)
            seen = n_ctx > 0
            usable = usable[seen]
            n_x, n_ctx, n_seen = n_x[seen], n_ctx[seen], n_seen[seen]
            prob[usable] = (np.maximum(n_x - d, 0.0) + (alpha + d * n_seen) * prob[usable]) / (n_ctx + alpha)
        per_position = np.zeros(codes.shape, dtype=np.float64)
        per_position[scored] = np.log(prob)
        return per_position.sum(axis=1), scored.sum(axis=1)


# -- positions and codes ------------------------------------------------------------------------------------------


def _checked_batch(codes: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    codes = np.asarray(codes)
    lengths = np.asarray(lengths, dtype=np.int64)
    if codes.ndim != 2 or codes.dtype != np.uint8 or lengths.shape != (codes.shape[0],):
        raise ValueError(f"expected uint8 codes [B, L] and lengths [B], got {codes.dtype}{list(codes.shape)} and "
                         f"{list(lengths.shape)}")
    return codes, lengths


def _chunks(shape: tuple[int, int]) -> Iterator[tuple[int, int]]:
    rows = max(1, CHUNK_POSITIONS // max(shape[1], 1))
    for start in range(0, shape[0], rows):
        yield start, min(start + rows, shape[0])


def _low_mask(n_bases) -> np.ndarray:
    """uint64 mask of the low 2 * n_bases bits (n_bases <= 32; scalar or array)."""
    n_bases = np.asarray(n_bases, dtype=np.uint64)
    full = np.uint64(0xFFFFFFFFFFFFFFFF)
    return np.where(n_bases >= CODE_WIDTH, full, (np.uint64(1) << (2 * n_bases)) - np.uint64(1)).astype(np.uint64)


def _shift_right_positions(values: np.ndarray, by: int) -> np.ndarray:
    """values[:, t - by] at position t (zero for t < by)."""
    out = np.zeros_like(values)
    out[:, by:] = values[:, :-by]
    return out


def _position_codes(codes: np.ndarray, lengths: np.ndarray):
    """Per position t of codes [B, L]:
    fwd: the last CODE_WIDTH bases up to and including t as a uint64 (oldest base most significant, 2 bits each);
    rev: the reverse complement of those bases, same layout;
    avail: how many known bases directly precede t (the usable context length);
    target: the base at t (UNKNOWN beyond lengths)."""
    batch, length = codes.shape
    target = codes.copy()
    target[np.arange(length)[None, :] >= lengths[:, None]] = UNKNOWN
    base = (target & 3).astype(np.uint64)
    fwd, rev = base, np.uint64(3) - base
    width = 1
    while width < CODE_WIDTH:  # double the number of bases covered: older half then newer half
        shift = np.uint64(2 * width)
        fwd, rev = ((_shift_right_positions(fwd, width) << shift) | fwd,
                    (rev << shift) | _shift_right_positions(rev, width))
        width *= 2
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
    lower = np.full((1, N_BASES), 1.0 / N_BASES)
    for counts in direct_counts:
        n = counts.astype(np.float64)
        lower = np.tile(lower, (len(n) // len(lower), 1))  # row c -> p_{k-1}(. | c without its oldest base)
        n_ctx = n.sum(axis=1, keepdims=True)
        n_seen = (n > 0).sum(axis=1, keepdims=True)
        with np.errstate(invalid="ignore", divide="ignore"):
            mixed = (np.maximum(n - discount, 0.0) + (concentration + discount * n_seen) * lower) / (n_ctx + concentration)
        lower = np.where(n_ctx > 0, mixed, lower)
        tables.append(lower.astype(np.float32).ravel())
    offsets = np.cumsum([0] + [len(t) for t in tables[:-1]]).astype(np.int64)
    return np.concatenate(tables), offsets


# -- counting --------------------------------------------------------------------------------------------------------


class _Sweep:
    """Replayable passes over the training windows: each iteration yields position codes chunk by chunk, mutated
    identically every time it is replayed (pass p, chunk i use the generator seeded by (seeds[p], i))."""

    def __init__(self, codes: np.ndarray, lengths: np.ndarray, mutation_rate: float, seeds: list[int]):
        self.codes, self.lengths, self.mutation_rate, self.seeds = codes, lengths, mutation_rate, seeds

    def __iter__(self):
        for seed in self.seeds:
            for i, (start, stop) in enumerate(_chunks(self.codes.shape)):
                chunk = self.codes[start:stop]
                if self.mutation_rate > 0:
                    chunk = mutate(chunk, self.mutation_rate, np.random.default_rng([seed, i]))
                yield _position_codes(chunk, self.lengths[start:stop])


def _count_direct(sweep: _Sweep, config: KmerConfig) -> list[np.ndarray]:
    """Exact counts n_k(c, x) for the direct orders. Only the top order is counted over every position; a lower
    order is the top one summed over the oldest base, plus the positions with exactly k bases of context."""
    top = config.direct_orders[-1]
    tops = np.zeros(4 ** (top + 1), dtype=np.int64)
    edges = [np.zeros(4 ** (k + 1), dtype=np.int64) for k in range(top)]
    for fwd, _, avail, target in sweep:
        known = target < UNKNOWN
        full = known & (avail >= top)
        tops += np.bincount((fwd[full] & _low_mask(top + 1)).astype(np.int64), minlength=len(tops))
        short = known & (avail < top)
        for k in range(top):
            at_k = short & (avail == k)
            edges[k] += np.bincount((fwd[at_k] & _low_mask(k + 1)).astype(np.int64), minlength=len(edges[k]))
    counts = [tops]
    for k in range(top - 1, -1, -1):
        counts.append(counts[-1].reshape(N_BASES, -1).sum(axis=0) + edges[k])
    counts.reverse()
    if config.both_strands:
        counts = [n + n[_reverse_complement_index(k + 1)] for k, n in enumerate(counts)]
    if max(int(n.max()) for n in counts) > np.iinfo(np.uint32).max:
        raise ValueError("too many training positions for uint32 counts")
    return [n.astype(np.uint32).reshape(-1, N_BASES) for n in counts]


def _reverse_complement_index(n_bases: int) -> np.ndarray:
    """For every n_bases-mer code, the code of its reverse complement."""
    remaining = np.arange(4**n_bases, dtype=np.int64)
    out = np.zeros_like(remaining)
    for _ in range(n_bases):
        out = (out << 2) | (3 - (remaining & 3))
        remaining >>= 2
    return out


def _split_kmer(k: int, fwd: np.ndarray, rev: np.ndarray, both_strands: bool):
    """For the (k+1)-mers a·m·x ending at each position: (filing key m*, flipped, palindromic, a, x), where m* is m
    or, when both_strands and smaller, its reverse complement."""
    word = fwd & _low_mask(k + 1)
    middle = (word >> np.uint64(2)) & _low_mask(k - 1)
    first = word >> np.uint64(2 * k)
    last = word & np.uint64(3)
    if not both_strands:
        no = np.zeros(len(word), dtype=bool)
        return middle, no, no, first, last
    rc_middle = (rev >> np.uint64(2 * (CODE_WIDTH - k))) & _low_mask(k - 1)  # rc(a·m·x) = x'·rc(m)·a'
    flipped = rc_middle < middle
    return np.where(flipped, rc_middle, middle), flipped, rc_middle == middle, first, last


def _pair(first, last, flipped):
    """2+2-bit code of the (first, last) bases of a slot: the word itself, or its reverse complement if flipped."""
    three = np.uint64(3)
    return np.where(flipped, ((three - last) << np.uint64(2)) | (three - first), (first << np.uint64(2)) | last)


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


class _KeyCounter:
    """Exact counts of uint64 keys: pending keys are sorted in batches and merged into sorted unique keys."""

    def __init__(self) -> None:
        self.keys = np.zeros(0, dtype=np.uint64)
        self.counts = np.zeros(0, dtype=np.int64)
        self._pending: list[np.ndarray] = []
        self._n_pending = 0

    def add(self, keys: np.ndarray) -> None:
        self._pending.append(keys)
        self._n_pending += len(keys)
        if self._n_pending >= COUNTER_FLUSH:
            self.flush()

    def flush(self) -> None:
        if not self._pending:
            return
        batch = np.concatenate(self._pending)
        self._pending, self._n_pending = [], 0
        batch.sort()
        keys, counts = _run_lengths(batch)
        merged = np.concatenate([self.keys, keys])
        order = np.argsort(merged, kind="stable")  # two sorted runs: a linear merge
        merged = merged[order]
        all_counts = np.concatenate([self.counts, counts])[order]
        starts = np.flatnonzero(np.r_[True, merged[1:] != merged[:-1]])
        self.keys, self.counts = merged[starts], np.add.reduceat(all_counts, starts) if len(starts) else all_counts


def _run_lengths(sorted_keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    starts = np.flatnonzero(np.r_[True, sorted_keys[1:] != sorted_keys[:-1]]) if len(sorted_keys) else np.zeros(0, int)
    return sorted_keys[starts], np.diff(np.r_[starts, len(sorted_keys)]).astype(np.int64)


def _build_hashed_table(sweep: _Sweep, config: KmerConfig, k: int) -> np.ndarray:
    """Count the canonical (k+1)-mers of the windows exactly, then file them into the fixed-size bucket table."""
    counter = _KeyCounter()
    for fwd, rev, avail, target in sweep:
        use = (target < UNKNOWN) & (avail >= k)
        middle, flipped, palindromic, first, last = _split_kmer(k, fwd[use], rev[use], config.both_strands)
        counter.add((middle << np.uint64(4)) | _pair(first, last, flipped))
        if palindromic.any():  # m equal to its reverse complement: file the reverse-strand word too
            counter.add((middle[palindromic] << np.uint64(4)) | _pair(first[palindromic], last[palindromic], True))
    counter.flush()
    keys, counts = counter.keys, counter.counts
    table = np.zeros((1 << config.hash_bits, config.bucket_slots), dtype=np.uint16)
    if not len(keys):
        return table
    bucket, fingerprint = _hash_bucket_fingerprint(keys >> np.uint64(4), config.hash_bits)
    slot_key = (fingerprint << np.uint64(4)) | (keys & np.uint64(15))  # 12 bits
    del keys
    # Merge words that share bucket and slot key (different m, same fingerprint), then rank by count in each bucket.
    count_bits = 20
    packed = (bucket.astype(np.uint64) << np.uint64(12 + count_bits)) | (slot_key << np.uint64(count_bits)) | \
        np.minimum(counts, (1 << count_bits) - 1).astype(np.uint64)
    packed.sort()
    group = packed >> np.uint64(count_bits)
    starts = np.flatnonzero(np.r_[True, group[1:] != group[:-1]])
    merged = np.minimum(np.add.reduceat((packed & np.uint64((1 << count_bits) - 1)).astype(np.int64), starts),
                        (1 << count_bits) - 1).astype(np.uint64)
    group = group[starts]
    bucket = (group >> np.uint64(12)).astype(np.int64)
    by_count = (bucket.astype(np.uint64) << np.uint64(32)) | ((np.uint64((1 << count_bits) - 1) - merged)
                                                            << np.uint64(12)) | (group & np.uint64(0xFFF))
    by_count.sort()
    bucket = (by_count >> np.uint64(32)).astype(np.int64)
    count = np.uint64((1 << count_bits) - 1) - ((by_count >> np.uint64(12)) & np.uint64((1 << count_bits) - 1))
    slot_key = by_count & np.uint64(0xFFF)
    first_in_bucket = np.flatnonzero(np.r_[True, bucket[1:] != bucket[:-1]])
    rank = np.arange(len(bucket)) - np.repeat(first_in_bucket, np.diff(np.r_[first_in_bucket, len(bucket)]))
    keep = rank < config.bucket_slots
    table.reshape(-1)[bucket[keep] * config.bucket_slots + rank[keep]] = (
        (slot_key[keep] << np.uint64(COUNT_BITS)) | np.minimum(count[keep], np.uint64(COUNT_CAP))).astype(np.uint16)
    log.debug("kmer order %d: %d distinct words, %d slots filled (%.1f%% of %d), %d dropped by full buckets",
              k, len(counts), int(keep.sum()), 100.0 * keep.sum() / table.size, table.size, int((~keep).sum()))
    return table


def _hashed_lookup(table: np.ndarray, k: int, fwd: np.ndarray, rev: np.ndarray, target: np.ndarray,
                   both_strands: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(n_k(c, x_t), n_k(c), u_k(c)) as float64 for the order-k context of each position, read from its bucket."""
    middle, flipped, _, first, _ = _split_kmer(k, fwd, rev, both_strands)
    bucket, fingerprint = _hash_bucket_fingerprint(middle, table.shape[0].bit_length() - 1)
    slots = np.take(table, bucket, axis=0)  # much faster than table[bucket] for 2-D tables
    top = fingerprint << np.uint64(8)
    three = np.uint64(3)
    # Slots of this context: fingerprint and first base a (forward), or last base 3-a (reverse-complement filed).
    context_mask = np.where(flipped, 0xFF30, 0xFFC0).astype(np.uint16)
    context_value = (top | np.where(flipped, (three - first) << np.uint64(4), first << np.uint64(6))).astype(np.uint16)
    mine = (slots & context_mask[:, None]) == context_value[:, None]
    counts = slots & np.uint16(COUNT_CAP)
    target_value = (top | (_pair(first, target, flipped) << np.uint64(4))).astype(np.uint16)
    hit = (slots & np.uint16(0xFFF0)) == target_value[:, None]
    return _slot_sum(counts * hit), _slot_sum(counts * mine), _slot_sum(mine.astype(np.uint16))


def _slot_sum(values: np.ndarray) -> np.ndarray:
    """Row sums of small uint16 values [N, S] (S a multiple of 4, sums < 2^16) as float64: four 16-bit lanes of a
    uint64 are added by one multiplication, far faster than a reduction along a short axis."""
    lanes = np.ascontiguousarray(values).view(np.uint64) * np.uint64(0x0001000100010001) >> np.uint64(48)
    total = lanes[:, 0].astype(np.float64)
    for column in range(1, lanes.shape[1]):
        total += lanes[:, column]
    return total
