"""The compiled loops of the k-mer model (numba, cached on disk after the first use): counting, scoring, and the
table layouts of the model file. tests/test_kmer.py checks them against brute-force references in plain Python.

Codes are uint64 words of 2-bit bases, oldest base most significant. Per position t of a row: `fwd` holds the last
`width` bases up to and including t, `rev` their reverse complement (same layout), `run` the number of known bases
directly before t (the usable context; an unknown base, code 4, resets it).
"""

from __future__ import annotations

import math

import numba
import numba.extending
import numpy as np
from llvmlite import ir
from numba.core import cgutils

U64 = np.uint64
ONE, TWO, THREE = U64(1), U64(2), U64(3)
COUNT_MASK = 0xF
COUNT_CAP = 15
PRODUCT_BLOCK = 16
JIT = {"nogil": True, "cache": True}


def _slot_patterns() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Lookup tables indexed by flipped << 4 | a << 2 | x: the slot bits (below the fingerprint) that select the
    context's slots (mask, value) and the slot of its continuation x (value under mask 0x00F0)."""
    index = np.arange(32)
    flipped, first, last = index >> 4, index >> 2 & 3, index & 3
    mask = np.where(flipped, 0x0030, 0x00C0)  # reverse-complement filed: last base 3-a; forward: first base a
    value = np.where(flipped, (3 - first) << 4, first << 6)
    pair = np.where(flipped, ((3 - last) << 2) | (3 - first), (first << 2) | last)
    return mask.astype(np.uint16), value.astype(np.uint16), (pair << 4).astype(np.uint16)


SLOT_MASK, SLOT_CONTEXT, SLOT_TARGET = _slot_patterns()


@numba.njit(**JIT)
def low_mask(n_bases):
    """The low 2 * n_bases bits (n_bases <= 32)."""
    if n_bases >= 32:
        return ~U64(0)
    return (ONE << U64(2 * n_bases)) - ONE


@numba.njit(**JIT)
def bucket_and_fingerprint(key, hash_bits):
    """(bucket: the top hash_bits bits, fingerprint: the low 8 bits, never 0) of a splitmix64 hash of `key`."""
    h = key ^ (key >> U64(30))
    h = h * U64(0xBF58476D1CE4E5B9)
    h ^= h >> U64(27)
    h = h * U64(0x94D049BB133111EB)
    h ^= h >> U64(31)
    fingerprint = h & U64(0xFF)
    return np.int64(h >> U64(64 - hash_bits)), max(fingerprint, ONE)


@numba.njit(**JIT)
def rolled(fwd, rev, x, width):
    """(fwd, rev, base) after code x (an unknown base, 4, enters as 0 in fwd and 3 in rev; `run` says it is there)."""
    base = U64(x & 3)
    return ((fwd << TWO) | base) & low_mask(width), (rev >> TWO) | ((THREE - base) << U64(2 * (width - 1))), base


@numba.njit(**JIT)
def split_word(k, fwd, rev, width, canonical):
    """For the (k+1)-mer a·m·x ending at a position: (filing key m*, flipped, palindromic, a), m* being m or, with
    `canonical`, the smaller of m and its reverse complement (read from `rev`: rc(a·m·x) = x'·rc(m)·a')."""
    middle = (fwd >> TWO) & low_mask(k - 1)
    first = (fwd >> U64(2 * k)) & THREE
    if not canonical:
        return middle, False, False, first
    rc_middle = (rev >> U64(2 * (width - k))) & low_mask(k - 1)
    return min(middle, rc_middle), rc_middle < middle, rc_middle == middle, first


@numba.njit(**JIT)
def pair_bits(first, last, flipped):
    """The 4-bit (first, last) code of a slot: the word's, or its reverse complement's if flipped."""
    if flipped:
        return ((THREE - last) << TWO) | (THREE - first)
    return (first << TWO) | last


@numba.njit(**JIT)
def insert(table, bucket, fingerprint, pair):
    """Count the entry (fingerprint, pair) in its bucket: +1 (saturating), a new slot, or, in a full bucket, in
    place of the entry of the lowest key (fingerprint << 8 | pair << 4) when its own key is higher (else dropped).
    So a bucket keeps, of all the entries that ever reach it, those of the highest keys, each counted since it
    first came: the same whatever order the entries come in, which lets counts made in parts be merged exactly."""
    entry = (np.int64(fingerprint) << 8) | (np.int64(pair) << 4)
    lowest = 0
    for j in range(table.shape[1]):
        slot = np.int64(table[bucket, j])
        if slot == 0:
            table[bucket, j] = np.uint16(entry | 1)
            return
        if (slot & 0xFFF0) == entry:
            if (slot & COUNT_MASK) < COUNT_CAP:
                table[bucket, j] = np.uint16(slot + 1)
            return
        if slot < np.int64(table[bucket, lowest]):
            lowest = j
    if entry > (np.int64(table[bucket, lowest]) & 0xFFF0):
        table[bucket, lowest] = np.uint16(entry | 1)


@numba.njit(**JIT)
def count_rows(codes, lengths, skip, top, top_counts, tables, orders, canonical, width):
    """Add the (top+1)-mers and the hashed orders' words ending at every position t >= skip[i] with a known base
    and enough known context to the counts; returns the positions counted."""
    top_mask = low_mask(top + 1)
    hash_bits = int(math.log2(tables.shape[1])) if tables.shape[0] else 0
    positions = 0
    for i in range(codes.shape[0]):
        fwd = U64(0)
        rev = U64(0)
        run = 0
        for t in range(lengths[i]):
            x = codes[i, t]
            fwd, rev, base = rolled(fwd, rev, x, width)
            if x >= 4:
                run = 0
                continue
            if t >= skip[i]:
                positions += 1
                if run >= top:
                    top_counts[np.int64(fwd & top_mask)] += 1
                for j in range(orders.size):
                    k = orders[j]
                    if run < k:
                        break
                    key, flipped, palindromic, first = split_word(k, fwd, rev, width, canonical)
                    bucket, fingerprint = bucket_and_fingerprint(key, hash_bits)
                    insert(tables[j], bucket, fingerprint, pair_bits(first, base, flipped))
                    if palindromic:  # m equal to its reverse complement: file the reverse-strand word too
                        insert(tables[j], bucket, fingerprint, pair_bits(first, base, True))
            run += 1
    return positions


@numba.njit(**JIT)
def merge_buckets(table, other):
    """Add the hashed table `other` into `table` (both counted with `insert`): per bucket, the entries of the
    highest keys of both, the counts of an entry in both added (saturating): what counting both inputs into one
    table gives."""
    for bucket in range(table.shape[0]):
        for k in range(other.shape[1]):
            theirs = np.int64(other[bucket, k])
            if theirs == 0:
                continue
            key = theirs & 0xFFF0
            lowest = 0
            placed = False
            for j in range(table.shape[1]):
                slot = np.int64(table[bucket, j])
                if slot == 0:
                    table[bucket, j] = np.uint16(theirs)
                    placed = True
                    break
                if (slot & 0xFFF0) == key:
                    table[bucket, j] = np.uint16(key | min((slot & COUNT_MASK) + (theirs & COUNT_MASK), COUNT_CAP))
                    placed = True
                    break
                if slot < np.int64(table[bucket, lowest]):
                    lowest = j
            if not placed and key > (np.int64(table[bucket, lowest]) & 0xFFF0):
                table[bucket, lowest] = np.uint16(theirs)


@numba.extending.intrinsic
def prefetch(typingctx, array, index):
    """Ask the processor to bring array[index] (a 1-D array) into the caches, without waiting for it."""

    def codegen(context, builder, signature, args):
        array_type = signature.args[0]
        item = cgutils.get_item_pointer(context, builder, array_type, context.make_array(array_type)(
            context, builder, args[0]), [args[1]], wraparound=False)
        pointer = builder.bitcast(item, ir.IntType(8).as_pointer())
        i32 = ir.IntType(32)
        function = builder.module.declare_intrinsic("llvm.prefetch", [pointer.type], ir.FunctionType(
            ir.VoidType(), [pointer.type, i32, i32, i32]))
        builder.call(function, [pointer, i32(0), i32(3), i32(1)])  # read, keep in all cache levels, data
        return context.get_dummy_value()

    return numba.core.types.void(array, index), codegen


@numba.njit(**JIT)
def _row_addresses(codes, lengths, i, offsets, top, orders, canonical, width, hash_bits, direct, run_at, buckets,
                   patterns):
    """Row i's table addresses: per position t, direct[t] (into probs), run_at[t] (known bases before t; -1: not
    scored), and per hashed order j buckets[j, t] (-1: context too short) and patterns[j, t] (fingerprint << 8 |
    flipped << 4 | first << 2 | x)."""
    fwd = U64(0)
    rev = U64(0)
    run = 0
    for t in range(lengths[i]):
        x = codes[i, t]
        fwd, rev, base = rolled(fwd, rev, x, width)
        run_at[t] = run if x < 4 and t >= 1 else -1
        k = min(run, top)
        direct[t] = offsets[k] + np.int64(fwd & low_mask(k + 1))
        for j in range(orders.size):
            buckets[j, t] = -1
            if x >= 4 or run < orders[j]:
                continue
            key, flipped, _, first_base = split_word(orders[j], fwd, rev, width, canonical)
            bucket, fingerprint = bucket_and_fingerprint(key, hash_bits)
            buckets[j, t] = bucket
            patterns[j, t] = (np.int64(fingerprint) << 8) | (int(flipped) << 4) | (np.int64(first_base) << 2) \
                | np.int64(base)
        run = run + 1 if x < 4 else 0


@numba.njit(**JIT)
def _read_tables(n, probs, words, direct, buckets, p_direct, slots):
    """The table reads of a row's n positions, in short loops without branches (the reads overlap)."""
    for t in range(n):
        p_direct[t] = probs[direct[t]]
    for j in range(buckets.shape[0]):
        for t in range(n):
            bucket = max(buckets[j, t], 0)
            slots[j, t, 0] = words[j, bucket, 0]
            slots[j, t, 1] = words[j, bucket, 1]


@numba.njit(**JIT)
def loglik_rows(codes, lengths, first, last, probs, offsets, top, tables, orders, canonical, width, discount,
                concentration, skip, bin_size, sums, scored):
    """sums[i, b], scored[i, b] = Σ ln p(x_t | context), number of scored positions, over the positions t of row i
    (rows first..last-1) in bin b = (t - skip[i]) // bin_size; positions before skip[i] are context only. With one
    bin per row (bin_size at least the row length, skip 0) a row's sum is the same in any bin layout.

    Table reads miss the caches. Per row: the table addresses of every position, then the reads alone (short
    loops: the processor keeps many in flight), then the arithmetic on what was read, during which the next row's
    addresses (computed before it) are prefetched, one position at a time (a tight loop of prefetches stalls once
    the processor's miss buffers are full), so that its reads find them in cache. Buffers alternate between the
    row and the next. The probabilities are multiplied in blocks and a block's log taken once."""
    n_orders = orders.size
    hash_bits = int(math.log2(tables.shape[1])) if n_orders else 0
    words = tables.view(np.uint64)  # a bucket of 8 slots: two uint64 words of four
    flat_words = words.reshape(-1)
    length = codes.shape[1]
    direct = np.zeros((2, length), dtype=np.int64)  # index into probs
    run_at = np.zeros((2, length), dtype=np.int64)
    buckets = np.zeros((2, n_orders, length), dtype=np.int64)
    patterns = np.zeros((2, n_orders, length), dtype=np.int64)
    p_direct = np.zeros((2, length), dtype=np.float64)
    slots = np.zeros((2, n_orders, length, 2), dtype=np.uint64)
    if first >= last:
        return
    _row_addresses(codes, lengths, first, offsets, top, orders, canonical, width, hash_bits, direct[0], run_at[0],
                   buckets[0], patterns[0])
    _read_tables(lengths[first], probs, words, direct[0], buckets[0], p_direct[0], slots[0])
    for i in range(first, last):
        here = (i - first) & 1
        ahead = 1 - here
        n = lengths[i]
        n_ahead = lengths[i + 1] if i + 1 < last else 0
        if n_ahead:
            _row_addresses(codes, lengths, i + 1, offsets, top, orders, canonical, width, hash_bits, direct[ahead],
                           run_at[ahead], buckets[ahead], patterns[ahead])
        total = 0.0
        product = 1.0
        scored_here = 0
        in_bin = 0
        bin_index = 0
        bin_end = skip[i] + bin_size
        for t in range(max(n, n_ahead)):
            if t < n_ahead:
                prefetch(probs, direct[ahead, t])
                for j in range(n_orders):
                    prefetch(flat_words, (j * words.shape[1] + max(buckets[ahead, j, t], 0)) * 2)
            if t >= n or run_at[here, t] < 0 or t < skip[i]:
                continue
            if t >= bin_end:  # close the bin (bins without a scored position keep 0)
                sums[i, bin_index] = total + math.log(product)
                scored[i, bin_index] = in_bin
                total, product, in_bin = 0.0, 1.0, 0
                bin_index = (t - skip[i]) // bin_size
                bin_end = skip[i] + (bin_index + 1) * bin_size
            p = p_direct[here, t]
            alive = True  # an unseen context ends the chain (a longer one containing it is unseen too)
            for j in range(n_orders):
                if buckets[here, j, t] < 0:
                    break
                n_x, n_context, seen = _bucket_counts(slots[here, j, t], patterns[here, j, t])
                alive = alive and n_context > 0
                mixed = (max(n_x - discount, 0.0) + (concentration + discount * seen) * p) / (n_context + concentration)
                p = mixed if alive else p
            product *= p
            scored_here += 1
            in_bin += 1
            if scored_here % PRODUCT_BLOCK == 0 or product < 1e-200:
                total += math.log(product)
                product = 1.0
        if in_bin:
            sums[i, bin_index] = total + math.log(product)
            scored[i, bin_index] = in_bin
        _read_tables(n_ahead, probs, words, direct[ahead], buckets[ahead], p_direct[ahead], slots[ahead])


CLASS_AHEAD = 4  # positions whose table rows are prefetched ahead of the one being added up


@numba.njit(**JIT)
def class_loglik_rows(codes, lengths, first, last, logp, offsets, top, width, out):
    """out[i, c] = Σ ln p_c(x_t | context) over the positions of rows first..last-1 that loglik_rows scores (their
    table rows from _row_addresses, no hashed orders), for every class c at once: logp[offsets[k] + word of k+1
    bases, c] holds class c's ln p_k, the classes side by side, so a position reads one row of the table for all of
    them. A row's table rows are listed first, then added up in order while those CLASS_AHEAD positions on are
    prefetched (a row of hundreds of classes spans many cache lines)."""
    n_classes = logp.shape[1]
    flat = logp.reshape(-1)
    total = np.zeros(n_classes, dtype=np.float64)
    length = codes.shape[1]
    direct = np.empty(length, dtype=np.int64)
    run_at = np.empty(length, dtype=np.int64)
    no_orders = np.empty(0, dtype=np.int64)
    no_slots = np.empty((0, length), dtype=np.int64)
    table_rows = np.empty(length, dtype=np.int64)
    for i in range(first, last):
        _row_addresses(codes, lengths, i, offsets, top, no_orders, True, width, 0, direct, run_at, no_slots,
                       no_slots)
        n = 0
        for t in range(lengths[i]):
            if run_at[t] >= 0:
                table_rows[n] = direct[t]
                n += 1
        total[:] = 0.0
        for j in range(n):
            if j + CLASS_AHEAD < n:
                start = table_rows[j + CLASS_AHEAD] * n_classes
                for line in range(0, n_classes, 16):  # 16 float32 per 64-byte line
                    prefetch(flat, start + line)
            row = logp[table_rows[j]]
            for c in range(n_classes):
                total[c] += row[c]
        out[i, :] = total


@numba.njit(**JIT)
def into_columns(group, table, first_column, first, last):
    """table[r, first_column + g] = group[g, r] for rows first..last-1: a group of classes' values written into
    their columns of the class table a row at a time (contiguous writes, not one strided column after another)."""
    for r in range(first, last):
        for g in range(group.shape[0]):
            table[r, first_column + g] = group[g, r]


LANES = U64(0x0001000100010001)  # one in each 16-bit lane of a uint64
HIGH_BITS = U64(0x8000800080008000)
LOW_15 = U64(0x7FFF7FFF7FFF7FFF)


@numba.njit(**JIT)
def _equal_lanes(words, value):
    """1 in each 16-bit lane of `words` that equals the lane of `value`, else 0 (exact, no carries across lanes)."""
    diff = words ^ value
    nonzero = ((diff & LOW_15) + LOW_15) | diff
    return (~nonzero & HIGH_BITS) >> U64(15)


@numba.njit(**JIT)
def _bucket_counts(words, pattern):
    """(n_k(c, x), n_k(c), u_k(c)) from a bucket's 8 slots (two uint64 words of four 16-bit slots) for a position's
    pattern: fingerprint << 8 | flipped << 4 | first base << 2 | next base. The four slots of a word are compared
    at once, lane by lane."""
    low = pattern & 31
    top = pattern >> 8 << 8
    mask = U64(np.int64(SLOT_MASK[low]) | 0xFF00) * LANES
    context = U64(np.int64(SLOT_CONTEXT[low]) | top) * LANES
    target = U64(np.int64(SLOT_TARGET[low]) | top) * LANES
    n_x = n_context = seen = U64(0)
    for w in range(2):
        counts = words[w] & U64(COUNT_MASK) * LANES
        mine = _equal_lanes(words[w] & mask, context)
        hit = _equal_lanes(words[w] & (U64(0xFFF0) * LANES), target)
        n_context += ((counts & (mine * U64(COUNT_MASK))) * LANES) >> U64(48)
        seen += (mine * LANES) >> U64(48)
        n_x += ((counts & (hit * U64(COUNT_MASK))) * LANES) >> U64(48)
    return float(n_x), float(n_context), float(seen)


@numba.njit(**JIT)
def unpack_symmetric(upper, rc, out, first, last):
    """Rows first..last-1 of out[r, c] = M[r, rc[c]], M [N, N] the symmetric matrix whose upper triangle (row by
    row, diagonal included) is `upper`: written in order, read from row min(r, rc[c]) of the triangle."""
    size = out.shape[0]
    for r in range(first, last):
        for c in range(size):
            low, high = min(r, rc[c]), max(r, rc[c])
            out[r, c] = upper[low * size - (low * (low - 1)) // 2 - low + high]


@numba.njit(**JIT)
def interpolate(counts, lower, discount, concentration, out):
    """out[c, x] = p_k(x | c) of every order-k context c from its counts [4^k, 4] and p_{k-1} `lower` [4^(k-1), 4]
    (row c uses lower row c without its oldest base: c modulo the power of four `lower` has rows), in float32."""
    d, alpha = np.float32(discount), np.float32(concentration)
    below_mask = lower.shape[0] - 1
    for c in range(counts.shape[0]):
        below = c & below_mask
        n = counts[c]
        n_context = np.float32(n[0]) + np.float32(n[1]) + np.float32(n[2]) + np.float32(n[3])
        if n_context == 0:
            for x in range(4):
                out[c, x] = lower[below, x]
            continue
        weight = alpha + d * np.float32((n[0] > 0) + (n[1] > 0) + (n[2] > 0) + (n[3] > 0))
        total = n_context + alpha
        for x in range(4):
            out[c, x] = (max(np.float32(n[x]) - d, np.float32(0)) + weight * lower[below, x]) / total


@numba.njit(**JIT)
def unpack_buckets(fill, slots, table):
    """table[b, :fill[b]] = the next fill[b] of `slots`, bucket after bucket."""
    position = 0
    for bucket in range(fill.size):
        for j in range(fill[bucket]):
            table[bucket, j] = slots[position]
            position += 1


@numba.njit(**JIT)
def _halve(tables, out):
    width = tables.shape[2]
    merged = np.zeros(2 * width, dtype=np.uint16)
    for t in range(tables.shape[0]):
        for bucket in range(out.shape[1]):
            n = 0
            for source in (2 * bucket, 2 * bucket + 1):
                for j in range(width):
                    if tables[t, source, j] != 0:
                        merged[n] = tables[t, source, j]
                        n += 1
            for j in range(min(n, width)):  # keep the largest counts, earlier entries first among equals
                best = j
                for m in range(j + 1, n):
                    if (merged[m] & COUNT_MASK) > (merged[best] & COUNT_MASK):
                        best = m
                chosen = merged[best]
                for m in range(best, j, -1):
                    merged[m] = merged[m - 1]
                merged[j] = chosen
                out[t, bucket, j] = chosen


def halve_tables(tables: np.ndarray) -> np.ndarray:
    """Tables with half the buckets: bucket b takes the entries of buckets 2b and 2b+1 (the hash's next-lower top
    bit), keeping the most frequent when they do not fit."""
    out = np.zeros((tables.shape[0], tables.shape[1] // 2, tables.shape[2]), dtype=tables.dtype)
    _halve(tables, out)
    return out
