"""The interpolated k-mer Markov chain: the compiled scoring and counting against brute-force references written
from the definitions (random data, unknown bases, both strands, edge lengths), normalisation, the file layout."""

import json
import math
from collections import Counter

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gooddetect._core import kmer as kmer_kernels
from gooddetect.models.kmer import model as kmer
from gooddetect.models.kmer.model import KmerConfig, KmerModel, pack_counts, reverse_complemented, unpack_counts
from gooddetect.models.configs import BACKGROUND_MAX_ORDER

A, C, G, T, N = 0, 1, 2, 3, 4
SMALL = dict(direct_order=5, max_order=11, order_step=3, hash_bits=12)  # hashed orders 8, 11


def batch(*seqs):
    """codes [B, L] padded with N, and lengths, from lists of base codes."""
    length = max(len(s) for s in seqs)
    codes = np.full((len(seqs), length), N, dtype=np.uint8)
    for i, s in enumerate(seqs):
        codes[i, : len(s)] = s
    return codes, np.array([len(s) for s in seqs], dtype=np.int64)


def random_windows(rng, n, length, unknown=0.0):
    codes = rng.integers(0, 4, size=(n, length), dtype=np.uint8)
    codes[rng.random(codes.shape) < unknown] = N
    return codes, np.full(n, length, dtype=np.int64)


def fit(codes, lengths, seed=0, mutation_rate=0.0, **config):
    """The model counted from the rows (mutated when mutation_rate > 0), at the config's own table size."""
    cfg = KmerConfig(**config)
    rows = [(codes, lengths, np.zeros(len(codes), dtype=np.int64))]
    foreground, background = KmerModel.fit_pair(rows, config=cfg, background=cfg, mutation_rate=mutation_rate,
                                                 seed=seed)
    return background if mutation_rate else foreground


def loglik1(model, seq):
    total, n = model.loglik(*batch(seq))
    return float(total[0]), int(n[0])


@pytest.fixture(scope="module")
def small_model():
    codes, lengths = random_windows(np.random.default_rng(1), 40, 50)
    return fit(codes, lengths, **SMALL), codes


def reference_counts(train, lengths, config: KmerConfig) -> Counter:
    """(k+1)-mer counts as the model defines them: a word of order k <= D (the top direct order) counts at the
    positions with at least D known bases before them (lower orders are the top one summed over its oldest base),
    a hashed order's at the positions with at least k; both strands add every reverse complement."""
    counts = Counter()
    rows = [row[:n] for row, n in zip(train, lengths)]
    if config.both_strands:
        rows += [(3 - row[::-1]) for row in rows]
    top = config.top_direct_order
    for row in rows:
        run = 0
        for t, x in enumerate(row):
            if x >= 4:
                run = 0
                continue
            for k in [*range(top + 1), *config.hashed_orders]:
                if run >= (top if k <= top else k):
                    counts[tuple(row[t - k: t + 1])] += 1
            run += 1
    return counts


def reference_loglik(counts: Counter, config: KmerConfig, seq) -> tuple[float, int]:
    """Σ ln p(x_t | context) by the smoother's formula, order by order, from a Counter of (k+1)-mers."""
    total, scored, run = 0.0, 0, 0
    for t, x in enumerate(seq):
        if x >= 4:
            run = 0
            continue
        if t >= 1:
            p = 0.25
            for k in [*range(config.top_direct_order + 1), *config.hashed_orders]:
                if k > run:
                    break
                stem = tuple(seq[t - k: t])
                n = [counts[stem + (b,)] for b in range(4)]
                if k in config.hashed_orders:
                    n = [min(v, kmer_kernels.COUNT_CAP) for v in n]
                if not sum(n):
                    if k in config.hashed_orders:
                        break
                    continue
                d, alpha = config.discount, config.concentration
                p = (max(n[x] - d, 0) + (alpha + d * sum(v > 0 for v in n)) * p) / (sum(n) + alpha)
            total += math.log(p)
            scored += 1
        run += 1
    return total, scored


@pytest.mark.parametrize("both_strands", [False, True])
@pytest.mark.parametrize("unknown", [0.0, 0.05])
def test_scores_match_the_brute_force_reference(both_strands, unknown):
    rng = np.random.default_rng(2)
    train, lengths = random_windows(rng, 12, 40, unknown)
    lengths[3] = 17  # a shorter row
    config = KmerConfig(both_strands=both_strands, discount=0.6, concentration=0.7, **SMALL)
    model = fit(train, lengths, **config.to_dict())
    counts = reference_counts(train, lengths, config)
    queries = [list(train[0, :35]), list(train[5]), list(rng.integers(0, 5, 30)), [A], [A, C], [N, N, G]]
    for seq in queries:
        got = loglik1(model, seq)
        want = reference_loglik(counts, config, seq)
        assert got[1] == want[1] and got[0] == pytest.approx(want[0], rel=1e-6, abs=1e-6)  # float32 direct table


def test_counts_match_the_reference():
    rng = np.random.default_rng(3)
    train, lengths = random_windows(rng, 20, 30, unknown=0.03)
    config = KmerConfig(**SMALL)
    model = fit(train, lengths, **SMALL)
    counts = reference_counts(train, lengths, config)
    top = config.top_direct_order + 1
    words = np.indices((4,) * top).reshape(top, -1).T
    np.testing.assert_array_equal(model.top_counts, [counts[tuple(w)] for w in words])


def test_hand_computed_order_one():
    # corpus ACACAG, one strand, d 0.5, alpha 1: order-0 counts from positions 1..5 (C A C A G: A2 C2 G1)
    model = fit(*batch([A, C, A, C, A, G]), max_order=1, direct_order=1, both_strands=False, hash_bits=8)
    p0 = {b: (max(n - 0.5, 0) + (1 + 0.5 * 3) / 4) / 6 for b, n in ((A, 2), (C, 2), (G, 1), (T, 0))}
    c_after_a = (1.5 + (1 + 0.5 * 2) * p0[C]) / 4  # after A: C2 G1
    t_after_c = (1 + 0.5 * 1) * p0[T] / 3  # after C: A2
    assert loglik1(model, [A, C, T]) == (pytest.approx(math.log(c_after_a) + math.log(t_after_c), rel=1e-6), 2)


def test_both_strands_equals_adding_reverse_complements():
    train, lengths = random_windows(np.random.default_rng(3), 20, 40)
    both = fit(train, lengths, **{**SMALL, "both_strands": True})
    single = fit(np.concatenate([train, (3 - train)[:, ::-1]]), np.concatenate([lengths, lengths]),
                 **{**SMALL, "both_strands": False})
    test, test_lengths = random_windows(np.random.default_rng(4), 5, 40)
    test[:2] = train[:2]
    np.testing.assert_allclose(both.loglik(test, test_lengths)[0], single.loglik(test, test_lengths)[0], rtol=1e-9)


def test_slices_with_context_count_like_whole_rows():
    """Counting a long row in slices whose first `skip` bases are context only equals counting it whole."""
    row, length = random_windows(np.random.default_rng(11), 1, 300)
    whole = fit(row, length, **SMALL)
    config = KmerConfig(**SMALL)
    slices = [(row[:, :100], np.array([100]), np.array([0])), (row[:, 100 - 11:200], np.array([111]), np.array([11])),
              (row[:, 200 - 11:], np.array([111]), np.array([11]))]
    pieces, _ = KmerModel.fit_pair(slices, config=config, background=config, mutation_rate=0.0)
    np.testing.assert_array_equal(pieces.top_counts, whole.top_counts)
    np.testing.assert_array_equal(pieces.hashed_tables, whole.hashed_tables)


# -- normalisation ---------------------------------------------------------------------------------------------------


def next_base_probabilities(model, context):
    """p(x | context) for x = A, C, G, T from the likelihoods of context + x."""
    codes, lengths = batch(*[list(context) + [x] for x in range(4)])
    total, _ = model.loglik(codes, lengths)
    prefix, _ = model.loglik(*batch(list(context)))
    return np.exp(total - prefix)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(context=st.lists(st.integers(0, 4), min_size=1, max_size=14))
def test_next_base_probabilities_sum_to_one(small_model, context):
    model, train = small_model
    assert next_base_probabilities(model, context).sum() == pytest.approx(1.0, abs=1e-5)


def test_probabilities_sum_to_one_after_training_contexts(small_model):
    model, train = small_model
    for row in train[:5]:
        for end in (3, 12, 30):
            assert next_base_probabilities(model, row[:end]).sum() == pytest.approx(1.0, abs=1e-5)


# -- positions that are scored -----------------------------------------------------------------------------------------


def test_first_base_and_unknown_targets_are_not_scored(small_model):
    model, _ = small_model
    total, n = model.loglik(*batch([A], [A, C, G, T], [A, N, G, N], [N, N, N]))
    assert n.tolist() == [0, 3, 1, 0]
    assert total[0] == 0.0 and total[3] == 0.0


def test_unknown_base_restarts_the_context(small_model):
    model, train = small_model
    left, right = list(train[0, :20]), list(train[1, :25])
    total, n = loglik1(model, left + [N] + right)
    first_after_unknown, _ = loglik1(model, [N, right[0]])  # empty context: the order-0 probability
    assert n == (len(left) - 1) + len(right)
    assert total == pytest.approx(loglik1(model, left)[0] + first_after_unknown + loglik1(model, right)[0], rel=1e-9)


def test_padding_beyond_length_is_ignored(small_model):
    model, train = small_model
    codes, lengths = batch(list(train[0, :30]))
    padded = np.concatenate([codes, train[1:2, :10]], axis=1)  # junk bases beyond `lengths`
    np.testing.assert_array_equal(model.loglik(padded, lengths)[0], model.loglik(codes, lengths)[0])


def test_rows_do_not_depend_on_batch_or_threads(small_model, monkeypatch):
    model, train = small_model
    rng = np.random.default_rng(5)
    codes, lengths = random_windows(rng, 30, 60, unknown=0.02)
    codes[:10, :40] = train[:10, :40]
    lengths = rng.integers(1, 61, size=30)
    lengths[[4, 5, 29]] = 0  # empty rows (in a row, and last) in the kernel's pipeline of rows
    together, n_together = model.loglik(codes, lengths)
    monkeypatch.setattr(kmer, "SCORE_ROWS", 7)
    alone = [model.loglik(codes[i: i + 1], lengths[i: i + 1]) for i in range(30)]
    np.testing.assert_array_equal(together, [a[0][0] for a in alone])
    np.testing.assert_array_equal(n_together, [a[1][0] for a in alone])
    model.threads = 3
    try:
        threaded, n_threaded = model.loglik(codes, lengths)
    finally:
        model.threads = 1
    np.testing.assert_array_equal(threaded, together)
    np.testing.assert_array_equal(n_threaded, n_together)


# -- training --------------------------------------------------------------------------------------------------------


def test_training_sequence_scores_higher_than_random(small_model):
    model, train = small_model
    random_seq = np.random.default_rng(6).integers(0, 4, size=50, dtype=np.uint8)
    seen, n = loglik1(model, list(train[7]))
    unseen, m = loglik1(model, list(random_seq))
    assert seen / n > unseen / m + 0.5


def test_fit_is_deterministic_and_mutation_changes_counts():
    train, lengths = random_windows(np.random.default_rng(7), 30, 40)
    mutated = [fit(train, lengths, seed=s, mutation_rate=0.2, **SMALL) for s in (1, 1, 2)]
    clean = fit(train, lengths, seed=1, **SMALL)
    np.testing.assert_array_equal(mutated[0].top_counts, mutated[1].top_counts)
    assert not np.array_equal(mutated[0].top_counts, mutated[2].top_counts)
    assert not np.array_equal(mutated[0].top_counts, clean.top_counts)
    assert mutated[0].top_counts.sum() == clean.top_counts.sum()  # same positions, different bases


def test_tables_halve_while_they_stay_sparse():
    train, lengths = random_windows(np.random.default_rng(12), 20, 60)
    config = KmerConfig(**SMALL)
    folded, _ = KmerModel.fit_pair([(train, lengths, np.zeros(20, np.int64))], config=config, background=config,
                                   mutation_rate=0.0, max_hash_bits=16)
    fixed = fit(train, lengths, **{**SMALL, "hash_bits": 16})
    bits = folded.config.hash_bits
    entries = (folded.hashed_tables != 0).sum(axis=(1, 2)).max()
    assert bits < 16 and entries <= kmer.TARGET_FILL * folded.hashed_tables[0].size
    assert bits == 8 or entries > kmer.TARGET_FILL * folded.hashed_tables[0].size / 2  # one more halving: too full
    # every entry kept is one of the merged buckets' (only a full bucket's least frequent entries are dropped)
    group = 1 << (16 - bits)
    for order, table in enumerate(folded.hashed_tables):
        merged = fixed.hashed_tables[order].reshape(len(table), group * 8)
        for bucket, slots in enumerate(table):
            kept = sorted(s for s in slots.tolist() if s)
            source = sorted(s for s in merged[bucket].tolist() if s)
            assert set(kept) <= set(source) and (len(kept) == len(source) or len(kept) == 8)
            if len(kept) < len(source):
                assert min(s & 0xF for s in kept) >= max(s & 0xF for s in set(source) - set(kept))


def test_a_full_bucket_keeps_the_highest_keys_whatever_the_order():
    """A bucket keeps, of the entries that reach it, the 8 of the highest keys, each counted in full: the same table
    for any order of the same occurrences."""
    occurrences = [f for f in range(1, 13) for _ in range(f % 3 + 1)]  # 12 entries, 1-3 occurrences each
    tables = []
    for seed in range(5):
        table = np.zeros((1, 8), dtype=np.uint16)
        for fingerprint in np.random.default_rng(seed).permutation(occurrences).tolist():
            kmer_kernels.insert(table, 0, fingerprint, 5)
        tables.append(kmer.canonical_buckets(table[None])[0])
    for table in tables:
        np.testing.assert_array_equal(table, tables[0])
    assert [slot >> 8 for slot in tables[0][0].tolist()] == list(range(12, 4, -1))
    assert [slot & 0xF for slot in tables[0][0].tolist()] == [f % 3 + 1 for f in range(12, 4, -1)]


@settings(max_examples=40)
@given(st.lists(st.tuples(st.integers(0, 3), st.integers(1, 255), st.integers(0, 15)), min_size=1, max_size=200),
       st.integers(1, 199))
def test_merged_tables_equal_one_table_of_all_occurrences(occurrences, cut):
    """Counts of two parts merged = counts of the whole (buckets, keys and saturating counts)."""
    def table_of(items):
        table = np.zeros((4, 8), dtype=np.uint16)
        for bucket, fingerprint, pair in items:
            kmer_kernels.insert(table, bucket, fingerprint, pair)
        return table

    whole = table_of(occurrences)
    first, second = table_of(occurrences[:cut]), table_of(occurrences[cut:])
    kmer_kernels.merge_buckets(first, second)
    np.testing.assert_array_equal(kmer.canonical_buckets(first[None]), kmer.canonical_buckets(whole[None]))


# -- the file layout ---------------------------------------------------------------------------------------------------


@given(st.integers(1, 7), st.integers(0, 2**32 - 1))
def test_count_packing_round_trips(n_bases, seed):
    counts = np.random.default_rng(seed).integers(0, 1000, 4**n_bases).astype(np.uint32)
    symmetric = counts + reverse_complemented(counts, n_bases)
    packed = pack_counts(symmetric, n_bases)
    assert len(packed) == kmer._n_stored_words(n_bases, True)
    for threads in (1, 3):
        np.testing.assert_array_equal(unpack_counts(packed, n_bases, threads), symmetric)


def test_unpacking_and_the_probability_tables_on_several_threads_equal_one_thread():
    """The rows of the unpacked counts shared by 3 threads; the order-k tables split in runs of whole lower tables."""
    n_bases = 10
    counts = np.random.default_rng(1).integers(0, 1000, 4**n_bases).astype(np.uint32)
    symmetric = counts + reverse_complemented(counts, n_bases)
    packed = pack_counts(symmetric, n_bases)
    np.testing.assert_array_equal(unpack_counts(packed, n_bases, 3), unpack_counts(packed, n_bases, 1))
    config = KmerConfig(direct_order=n_bases - 1, max_order=n_bases - 1, discount=0.5, concentration=2.0)
    one = kmer.direct_probabilities(config, kmer.DirectCounts.of(packed), threads=1)
    for threads in (2, 3, 8):
        many = kmer.direct_probabilities(config, kmer.DirectCounts.of(packed), threads=threads)
        np.testing.assert_array_equal(many[0], one[0])
        np.testing.assert_array_equal(many[1], one[1])


def reference_tables(top_counts: np.ndarray, discount: float, concentration: float) -> list[np.ndarray]:
    """Every direct order's float32 table from the top order's counts, by the formula in numpy (uint64 sums)."""
    counts = [top_counts.astype(np.uint64)]
    while len(counts[-1]) > 4:
        counts.append(counts[-1].reshape(4, -1).sum(axis=0))
    d, alpha = np.float32(discount), np.float32(concentration)
    lower, tables = np.full((1, 4), 0.25, dtype=np.float32), []
    for n in reversed(counts):
        n = n.reshape(-1, 4)
        below = np.tile(lower, (len(n) // len(lower), 1))
        f = n.astype(np.float32)
        n_context = ((f[:, 0] + f[:, 1]) + f[:, 2]) + f[:, 3]
        weight = alpha + d * (n > 0).sum(axis=1).astype(np.float32)
        with np.errstate(invalid="ignore", divide="ignore"):
            mixed = (np.maximum(f - d, np.float32(0)) + weight[:, None] * below) / (n_context + alpha)[:, None]
        lower = np.where((n_context == 0)[:, None], below, mixed).astype(np.float32)
        tables.append(lower.ravel())
    return tables


@pytest.mark.parametrize("scale", [1, 2**26])  # 2^26: the counts add up beyond 32 bits, summed in uint64
def test_probability_tables_follow_the_formula(scale):
    n_bases = 6
    rng = np.random.default_rng(7)
    counts = (rng.integers(0, 40, 4**n_bases) * (rng.random(4**n_bases) < 0.7)).astype(np.uint64) * scale
    config = KmerConfig(direct_order=n_bases - 1, max_order=n_bases - 1, both_strands=False, discount=0.75,
                        concentration=1.5)
    assert (int(counts.sum()) > 2**32) == (scale > 1)
    probs, offsets = kmer.direct_probabilities(config, kmer.DirectCounts.of(counts.astype(np.uint32)), threads=2)
    for k, table in enumerate(reference_tables(counts, 0.75, 1.5)):
        np.testing.assert_array_equal(probs[offsets[k]:offsets[k] + len(table)], table)


@given(st.integers(1, 7), st.integers(0, 2**32 - 1), st.integers(0, 5))
def test_stored_counts_unpack_to_every_word(n_bases, seed, big):
    """Counts stored in one byte with `big` overflow counts unpack to the counts of every word: each entry of the
    packed counts is the count of the two words packed_words names."""
    rng = np.random.default_rng(seed)
    counts = rng.integers(0, 200, 4**n_bases).astype(np.uint32)
    counts[rng.integers(0, 4**n_bases, big)] = rng.integers(256, 10**6, big, dtype=np.uint32)
    symmetric = counts + reverse_complemented(counts, n_bases)
    packed = pack_counts(symmetric, n_bases)
    for word, other in zip(*kmer.packed_words(np.arange(len(packed)), n_bases)):
        assert symmetric[word] == symmetric[other]
    stored = kmer.DirectCounts.of(packed)
    np.testing.assert_array_equal(stored.full(), packed)
    config = KmerConfig(direct_order=n_bases - 1, max_order=n_bases - 1)
    np.testing.assert_array_equal(kmer.every_word(config, stored, threads=2), symmetric)
    words = kmer.packed_words(np.arange(len(packed)), n_bases)
    np.testing.assert_array_equal(symmetric[words[0]], packed)
    np.testing.assert_array_equal(symmetric[words[1]], packed)


def test_reverse_complemented_by_hand():
    counts = np.arange(16)  # words of two bases: AA=0, AC=1, ... TT=15
    assert reverse_complemented(counts, 2)[1] == 11  # rc(AC) = GT = 2*4 + 3
    acgt = 0b00011011
    assert reverse_complemented(np.arange(256), 4)[acgt] == acgt  # ACGT is its own reverse complement


def test_state_round_trip_and_overflow(small_model):
    model, _ = small_model
    n_bases = model.config.top_direct_order + 1
    top = model.top_counts
    top[5] = 70_000  # above uint16: stored in the overflow list (and its reverse complement's)
    top[int(reverse_complemented(np.arange(len(top)), n_bases)[5])] = 70_000
    model = KmerModel(model.config, kmer.DirectCounts.of(pack_counts(top, n_bases)), model.hashed_tables)
    arrays = {name: array.copy() for name, array in model.state_arrays().items()}
    assert sorted(arrays) == ["direct_counts", "direct_overflow_count", "direct_overflow_index", "hashed_11_fill",
                              "hashed_11_slots", "hashed_8_fill", "hashed_8_slots"]
    assert arrays["direct_overflow_count"].tolist() == [70_000]
    probs = model._probs
    for threads in (1, 3):  # on several threads, the hashed tables are unpacked beside the direct tables' rebuild
        restored = KmerModel.from_state(json.loads(json.dumps(model.config_dict())), arrays, threads)
        np.testing.assert_array_equal(restored.top_counts, top)
        np.testing.assert_array_equal(restored.hashed_tables, model.hashed_tables)
        np.testing.assert_array_equal(restored._probs, probs)
    shapes = KmerModel.expected_arrays(model.config_dict())
    assert all(spec[0][0] in (None, arrays[name].shape[0]) for name, spec in shapes.items())


@pytest.mark.parametrize("big, dtype", [(3, "uint8"), (None, "uint16")])
def test_direct_counts_are_stored_in_the_smaller_dtype(small_model, big, dtype):
    """One byte per count with an overflow list when few counts pass 255 (`big` of them), else two; exact either
    way."""
    model, _ = small_model
    n_bases = model.config.top_direct_order + 1
    if big:
        top = np.minimum(model.top_counts, 200)
        chosen = np.arange(big)
        top[chosen] = top[reverse_complemented(np.arange(len(top)), n_bases)[chosen]] = 300 + chosen  # both strands
    else:
        top = model.top_counts + 300
    model = KmerModel(model.config, kmer.DirectCounts.of(pack_counts(top, n_bases)), model.hashed_tables)
    arrays = model.state_arrays()
    assert arrays["direct_counts"].dtype == dtype
    assert len(arrays["direct_overflow_index"]) == (0 if big is None else int((model.direct.full() > 255).sum()))
    assert dtype in KmerModel.expected_arrays(model.config_dict())["direct_counts"][1]
    np.testing.assert_array_equal(KmerModel.from_state(model.config_dict(), arrays).top_counts, top)


def test_config_orders_and_validation():
    assert KmerConfig().top_direct_order == 11 and KmerConfig().hashed_orders == (14,)
    assert KmerConfig(max_order=5).hashed_orders == () and KmerConfig(max_order=5).top_direct_order == 5
    assert KmerConfig.from_dict(KmerConfig(max_order=20).to_dict()) == KmerConfig(max_order=20)
    for bad in (dict(max_order=32), dict(discount=1.0), dict(discount=0.0, concentration=0.0), dict(hash_bits=31),
                dict(order_step=0), dict(direct_order=13)):
        with pytest.raises(ValueError):
            KmerConfig(**bad)


def test_background_config_caps_the_order():
    assert KmerConfig().background() == KmerConfig(max_order=BACKGROUND_MAX_ORDER)
    assert KmerConfig().background().hashed_orders == ()
    assert KmerConfig(max_order=4).background() == KmerConfig(max_order=4)


def test_the_scoring_loop_refuses_arrays_it_would_read_past():
    """The C loop checks what it is given (kind, shape, table bounds) and raises instead of reading out of bounds."""
    codes, lengths = np.zeros((2, 10), np.uint8), np.array([10, 10], dtype=np.int64)
    probs, offsets = np.zeros(20, np.float32), np.array([0, 4], np.int64)
    no_tables, no_orders = np.zeros((0, 256, 8), np.uint16), np.zeros(0, np.int64)

    def call(**changes):
        args = dict(codes=codes, lengths=lengths, first=0, last=2, probs=probs, offsets=offsets, top=1,
                    tables=no_tables, orders=no_orders, canonical=True, width=3, discount=0.5, concentration=1.0,
                    skip=np.zeros(2, np.int64), bin_size=10, sums=np.zeros((2, 1)), scored=np.zeros((2, 1), np.int64))
        args.update(changes)
        kmer_kernels.loglik_rows(*args.values())

    call()
    for changes in (dict(top=2), dict(probs=np.zeros(19, np.float32)), dict(lengths=np.array([10, 11])),
                    dict(skip=np.array([-1, 0])), dict(last=3), dict(bin_size=3),
                    dict(tables=np.zeros((1, 300, 8), np.uint16), orders=np.array([2])),
                    dict(orders=np.array([3]), tables=np.zeros((1, 256, 8), np.uint16))):
        with pytest.raises(ValueError):
            call(**changes)
    with pytest.raises(TypeError):
        call(probs=np.zeros(20, np.float64))
    counts = np.zeros(4**3, np.uint64)  # counting: the same checks of the top order and the hashed tables
    kmer_kernels.count_rows(codes, lengths, np.zeros(2, np.int64), 2, counts, no_tables, no_orders, True, 3)
    for top, tables, orders in ((3, no_tables, no_orders), (2, np.zeros((1, 300, 8), np.uint16), np.array([2])),
                                (2, np.zeros((1, 256, 8), np.uint16), np.array([3]))):
        with pytest.raises(ValueError):
            kmer_kernels.count_rows(codes, lengths, np.zeros(2, np.int64), top, counts, tables, orders, True, 3)
    with pytest.raises((TypeError, ValueError, BufferError)):
        call(codes=np.zeros((2, 20), np.uint8)[:, ::2])
