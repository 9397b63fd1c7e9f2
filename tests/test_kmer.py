"""The interpolated k-mer Markov chain: hand-computed probabilities, normalisation, strands, unknown bases, state."""

import json
import math
from collections import Counter

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gooddetect.errors import ModelFileError
from gooddetect.models import kmer
from gooddetect.models.kmer import KmerConfig, KmerModel

A, C, G, T, N = 0, 1, 2, 3, 4
SMALL = dict(direct_order=5, max_order=11, order_step=2, hash_bits=12, bucket_slots=8)  # hashed: 7, 9, 11 (sparse)


def batch(*seqs):
    """codes [B, L] padded with N, and lengths, from lists of base codes."""
    length = max(len(s) for s in seqs)
    codes = np.full((len(seqs), length), N, dtype=np.uint8)
    for i, s in enumerate(seqs):
        codes[i, : len(s)] = s
    return codes, np.array([len(s) for s in seqs], dtype=np.int64)


def random_windows(rng, n, length):
    return rng.integers(0, 4, size=(n, length), dtype=np.uint8), np.full(n, length, dtype=np.int64)


def reverse_complement(codes):
    return (3 - codes)[:, ::-1].copy()


def fit(codes, lengths, seed=0, mutation_rate=0.0, **config):
    return KmerModel.fit(codes, lengths, config=KmerConfig(**config), mutation_rate=mutation_rate,
                         rng=np.random.default_rng(seed))


def loglik1(model, seq):
    total, n = model.loglik(*batch(seq))
    return float(total[0]), int(n[0])


@pytest.fixture(scope="module")
def small_model():
    codes, lengths = random_windows(np.random.default_rng(1), 40, 50)
    return fit(codes, lengths, **SMALL), codes


# -- the smoother, by hand --------------------------------------------------------------------------------------------

# Corpus ACACAG (one strand), discount 0.5, concentration 1:
#   order 0: A3 C2 G1 T0 -> p0(x) = (max(n - .5, 0) + (1 + .5 * 3) / 4) / 7
#   order 1: after A: C2 G1; after C: A2      order 2: after AC: A2; after CA: C1 G1
P0 = {A: 3.125 / 7, C: 2.125 / 7, G: 1.125 / 7, T: 0.625 / 7}
P1_C_AFTER_A = (1.5 + 2.0 * P0[C]) / 4
P1_T_AFTER_C = 1.5 * P0[T] / 3
P1_A_AFTER_C = (1.5 + 1.5 * P0[A]) / 3
P2_A_AFTER_AC = (1.5 + 1.5 * P1_A_AFTER_C) / 3


@pytest.mark.parametrize("direct_order", [1, 0])  # order 1 exact, or order 1 from a hashed table
def test_order_one_matches_hand_computation(direct_order):
    model = fit(*batch([A, C, A, C, A, G]), max_order=1, direct_order=direct_order, both_strands=False,
                hash_bits=8, bucket_slots=16)
    total, n = loglik1(model, [A, C, T])
    assert n == 2
    assert total == pytest.approx(math.log(P1_C_AFTER_A) + math.log(P1_T_AFTER_C), rel=1e-6)


def test_hashed_order_two_matches_hand_computation():
    model = fit(*batch([A, C, A, C, A, G]), max_order=2, direct_order=1, both_strands=False, hash_bits=8,
                bucket_slots=16)
    total, n = loglik1(model, [A, C, A])
    assert n == 2
    assert total == pytest.approx(math.log(P1_C_AFTER_A) + math.log(P2_A_AFTER_AC), rel=1e-6)


def reference_loglik(train, config: KmerConfig, seq) -> float:
    """Brute force: exact counts in a dict (capped like the hashed tables), the smoother's formula order by order."""
    counts = Counter()
    strands = [train, reverse_complement(train)] if config.both_strands else [train]
    for row in np.concatenate(strands):
        for t in range(len(row)):
            for k in range(min(t, config.max_order) + 1):
                counts[tuple(row[t - k : t + 1])] += 1
    orders = config.direct_orders + config.hashed_orders
    total = 0.0
    for t in range(1, len(seq)):
        context, p = tuple(seq[:t]), 0.25
        for k in orders:
            if k > len(context):
                break
            stem = context[len(context) - k :]
            n = [counts[stem + (x,)] for x in range(4)]
            if k in config.hashed_orders:
                n = [min(v, kmer.COUNT_CAP) for v in n]
            if sum(n):
                d, alpha = config.discount, config.concentration
                p = (max(n[seq[t]] - d, 0) + (alpha + d * sum(v > 0 for v in n)) * p) / (sum(n) + alpha)
        total += math.log(p)
    return total


@pytest.mark.parametrize("both_strands", [False, True])
def test_matches_brute_force_reference(both_strands):
    rng = np.random.default_rng(2)
    train, lengths = random_windows(rng, 12, 30)
    config = KmerConfig(both_strands=both_strands, discount=0.6, concentration=0.7, **SMALL)
    model = KmerModel.fit(train, lengths, config=config, rng=rng)
    for seq in [train[0, :25], train[5], rng.integers(0, 4, 30, dtype=np.uint8)]:
        assert loglik1(model, list(seq))[0] == pytest.approx(reference_loglik(train, config, list(seq)), rel=1e-6)


def test_both_strands_equals_adding_reverse_complements():
    train, lengths = random_windows(np.random.default_rng(3), 20, 40)
    both = fit(train, lengths, both_strands=True, **SMALL)
    single = fit(np.concatenate([train, reverse_complement(train)]), np.concatenate([lengths, lengths]),
                 both_strands=False, **SMALL)
    test, test_lengths = random_windows(np.random.default_rng(4), 5, 40)
    test[:2] = train[:2]
    np.testing.assert_allclose(both.loglik(test, test_lengths)[0], single.loglik(test, test_lengths)[0], rtol=1e-9)


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
    np.testing.assert_allclose(model.loglik(padded, lengths)[0], model.loglik(codes, lengths)[0], rtol=1e-12)


def test_batch_and_chunk_invariance(small_model, monkeypatch):
    model, train = small_model
    rng = np.random.default_rng(5)
    codes, lengths = random_windows(rng, 30, 60)
    codes[:10, :40] = train[:10, :40]
    codes[rng.random(codes.shape) < 0.02] = N
    lengths = rng.integers(1, 61, size=30)
    codes[np.arange(60)[None, :] >= lengths[:, None]] = N
    together, n_together = model.loglik(codes, lengths)
    monkeypatch.setattr(kmer, "SCORE_CHUNK", 7)
    alone = [model.loglik(codes[i : i + 1, : lengths[i]], lengths[i : i + 1]) for i in range(30)]
    np.testing.assert_allclose(together, [a[0][0] for a in alone], rtol=1e-12)
    np.testing.assert_array_equal(n_together, [a[1][0] for a in alone])
    model.threads = 3
    try:
        threaded, n_threaded = model.loglik(codes, lengths)
    finally:
        model.threads = 1
    np.testing.assert_allclose(threaded, together, rtol=1e-12)
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
    mutated = [fit(train, lengths, seed=s, mutation_rate=0.2, **SMALL).state_arrays() for s in (1, 1, 2)]
    clean = fit(train, lengths, seed=1, **SMALL).state_arrays()
    for name in clean:
        np.testing.assert_array_equal(mutated[0][name], mutated[1][name])
    assert any(not np.array_equal(mutated[0][name], mutated[2][name]) for name in clean)
    assert any(not np.array_equal(mutated[0][name], clean[name]) for name in clean)
    assert mutated[0]["direct_0"].sum() == clean["direct_0"].sum()  # same positions, different bases


def test_mutation_passes_add_fresh_copies():
    train, lengths = random_windows(np.random.default_rng(8), 10, 30)
    one = KmerModel.fit(train, lengths, config=KmerConfig(**SMALL), mutation_rate=0.1, rng=np.random.default_rng(0))
    three = KmerModel.fit(train, lengths, config=KmerConfig(**SMALL), mutation_rate=0.1, mutation_passes=3,
                          rng=np.random.default_rng(0))
    assert three.direct_counts[0].sum() == 3 * one.direct_counts[0].sum()


# -- config and state ------------------------------------------------------------------------------------------------


def test_state_round_trip(small_model):
    model, train = small_model
    config = json.loads(json.dumps(model.config_dict()))
    arrays = {name: array.copy() for name, array in model.state_arrays().items()}
    restored = KmerModel.from_state(config, arrays)
    codes, lengths = random_windows(np.random.default_rng(9), 4, 50)
    np.testing.assert_array_equal(restored.loglik(codes, lengths)[0], model.loglik(codes, lengths)[0])
    assert sorted(arrays) == [f"direct_{k}" for k in range(6)] + ["hashed_11", "hashed_7", "hashed_9"]


def test_from_state_refuses_mismatched_arrays(small_model):
    model, _ = small_model
    arrays = model.state_arrays()
    with pytest.raises(ModelFileError):
        KmerModel.from_state(model.config_dict(), {k: v for k, v in arrays.items() if k != "hashed_9"})
    with pytest.raises(ModelFileError):
        KmerModel.from_state(model.config_dict(), {**arrays, "direct_2": arrays["direct_2"].astype(np.int64)})
    with pytest.raises(ValueError):
        KmerModel.from_state({**model.config_dict(), "colour": 1}, arrays)


def test_config_orders_and_validation():
    assert KmerConfig().direct_orders == tuple(range(12)) and KmerConfig().hashed_orders == (13, 16)
    assert KmerConfig(max_order=5).hashed_orders == () and KmerConfig(max_order=5).direct_orders == tuple(range(6))
    assert KmerConfig.from_dict(KmerConfig(max_order=20).to_dict()) == KmerConfig(max_order=20)
    for bad in (dict(max_order=32), dict(bucket_slots=6), dict(discount=1.0), dict(discount=0.0, concentration=0.0),
                dict(hash_bits=31), dict(order_step=0)):
        with pytest.raises(ValueError):
            KmerConfig(**bad)


def test_default_config_fits_and_scores():
    codes, lengths = random_windows(np.random.default_rng(10), 50, 250)
    model = fit(codes, lengths)
    total, n = model.loglik(codes[:3], lengths[:3])
    assert (n == 249).all() and (total / n > -0.5).all()  # every 17-mer was seen: near-certain predictions
    sizes = {name: a.nbytes for name, a in model.state_arrays().items()}
    assert sum(sizes.values()) < 300e6


def test_background_config_caps_the_order():
    assert KmerConfig().background() == KmerConfig(max_order=kmer.BACKGROUND_MAX_ORDER)
    assert KmerConfig().background().hashed_orders == ()
    assert KmerConfig(max_order=4).background() == KmerConfig(max_order=4)
