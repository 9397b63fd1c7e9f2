import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from fixtures import cpu_runs_bf16
from gooddetect.alphabet import UNKNOWN, mask_padding
from gooddetect.errors import ModelFileError, UsageError
from gooddetect.models.lstm.model import (PAIR_MAX_HIDDEN, LSTMConfig, LSTMModel, LSTMNet, dequantize_rows,
                                    kmer_tokens, next_base_nll, quantize_rows)


pytestmark = pytest.mark.usefixtures("one_thread")


def random_model(seed: int = 0, **config) -> LSTMModel:
    """A randomly initialised model; its k-mer table (zero at initialisation) is randomised too, except the
    'no token' row."""
    torch.manual_seed(seed)
    model = LSTMModel(LSTMConfig(**{"hidden": 8, "kmer_input": 3, **config}))
    if model.module.kmer_embed is not None:
        with torch.no_grad():
            model.module.kmer_embed.weight[:-1].normal_()
    return model


def token_logprobs(model: LSTMModel, codes: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """log p(base t | bases 0..t-1) [B, L] from the network itself; NaN where a position is not scored."""
    masked = mask_padding(codes, lengths)
    with torch.no_grad():
        logp = -next_base_nll(model.module.eval(), torch.from_numpy(masked).long()).numpy()
    out = np.full(codes.shape, np.nan, dtype=np.float32)
    out[:, 1:] = np.where(masked[:, 1:] < UNKNOWN, logp, np.nan)
    return out


def random_windows(rng: np.random.Generator, n: int, width: int, unknown_rate: float = 0.1):
    lengths = rng.integers(0, width + 1, n)
    codes = rng.integers(0, 4, (n, width)).astype(np.uint8)
    codes[rng.random((n, width)) < unknown_rate] = UNKNOWN
    codes[np.arange(width) >= lengths[:, None]] = UNKNOWN
    return codes, lengths


def test_loglik_of_a_constant_model_is_the_log_softmax_of_the_output_bias():
    model = LSTMModel(LSTMConfig(hidden=4, dropout=0.0, kmer_input=2))
    bias = torch.tensor([0.5, -1.0, 2.0, 0.0])
    with torch.no_grad():
        for parameter in model.module.lstm.parameters():
            parameter.zero_()  # all gates 0.5, cell input 0: the hidden state stays 0
        model.module.head.weight.normal_()
        model.module.head.bias.copy_(bias)
    logp = torch.log_softmax(bias, 0).double().numpy()
    codes = np.array([[0, 1, 2, 3, 3, 4], [2, 4, 1, 0, 4, 4], [3, 3, 4, 4, 4, 4]], dtype=np.uint8)
    lengths = np.array([6, 4, 1])
    sums, n_scored = model.loglik(codes, lengths)
    # Row 0: positions 1..4 scored (5 is unknown); row 1: 2, 3 (1 is unknown); row 2: nothing.
    np.testing.assert_array_equal(n_scored, [4, 2, 0])
    expected = [logp[[1, 2, 3, 3]].sum(), logp[[1, 0]].sum(), 0.0]
    np.testing.assert_allclose(sums, expected, rtol=1e-6)
    assert sums.dtype == np.float64 and n_scored.dtype == np.int64

    tokens = token_logprobs(model, codes, lengths)
    np.testing.assert_array_equal(np.isnan(tokens[0]), [True, False, False, False, False, True])
    np.testing.assert_allclose(np.nansum(tokens, axis=1), expected, rtol=1e-6)


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), batch_size=st.integers(1, 9), extra_padding=st.integers(0, 5))
def test_loglik_does_not_depend_on_batching_or_padding(seed, batch_size, extra_padding):
    rng = np.random.default_rng(seed)
    codes, lengths = random_windows(rng, 12, 20)
    model = random_model()
    reference = model.loglik(codes, lengths)

    model.batch_size = batch_size
    padded = np.concatenate([codes, np.full((len(codes), extra_padding), UNKNOWN, np.uint8)], axis=1)
    permutation = rng.permutation(len(codes))
    sums, n_scored = model.loglik(padded[permutation], lengths[permutation])
    np.testing.assert_allclose(sums, reference[0][permutation], rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(n_scored, reference[1][permutation])

    one_by_one = [model.loglik(codes[i : i + 1, : lengths[i]], lengths[i : i + 1])[0][0] for i in range(len(codes))]
    np.testing.assert_allclose(one_by_one, reference[0], rtol=1e-5, atol=1e-6)


def test_bases_after_the_length_are_ignored():
    rng = np.random.default_rng(1)
    codes, lengths = random_windows(rng, 6, 15)
    garbage = np.where(np.arange(15) >= lengths[:, None], rng.integers(0, 4, codes.shape), codes).astype(np.uint8)
    model = random_model()
    np.testing.assert_array_equal(model.loglik(garbage, lengths)[0], model.loglik(codes, lengths)[0])


@pytest.mark.parametrize("config", [{"kmer_input": 0}, {"kmer_input": 3, "kmer_embedding": 4}])
def test_an_unknown_base_changes_only_later_positions_and_is_not_scored(config):
    model = random_model(**config)
    codes = np.random.default_rng(2).integers(0, 4, (1, 30)).astype(np.uint8)
    masked = codes.copy()
    masked[0, 10] = UNKNOWN
    lengths = np.array([30])
    clean, with_unknown = token_logprobs(model, codes, lengths)[0], token_logprobs(model, masked, lengths)[0]
    np.testing.assert_array_equal(clean[:10], with_unknown[:10])
    assert np.isnan(with_unknown[10])
    assert not np.allclose(clean[11:], with_unknown[11:])
    assert model.loglik(masked, lengths)[1][0] == 28


@pytest.mark.parametrize("config", [{"kmer_input": 0}, {"embedding": 3, "layers": 2},
                                    {"kmer_input": 4, "kmer_embedding": 5}])
def test_state_round_trip_gives_identical_logliks(config):
    """The stored form (the k-mer table in int8) loads to the model from_weights makes of the trained weights, and
    storing that again changes nothing."""
    trained = random_model(seed=3, **config)
    weights = {name: t.detach().numpy().copy() for name, t in trained.module.state_dict().items()}
    model = LSTMModel.from_weights(trained.config, weights)
    codes, lengths = random_windows(np.random.default_rng(3), 10, 25)
    arrays = model.state_arrays()
    assert {a.dtype.name for name, a in arrays.items() if not name.startswith("kmer_embed")} == {"float32"}
    copy = LSTMModel.from_state(model.config_dict(), arrays)
    assert copy.kind == "lstm" and copy.config == model.config
    for original, restored in zip(model.loglik(codes, lengths), copy.loglik(codes, lengths)):
        np.testing.assert_array_equal(original, restored)
    again = copy.state_arrays()
    assert all(np.array_equal(again[name], arrays[name]) for name in arrays)
    if model.config.kmer_input:  # rounding the table moves log-likelihoods a little, not a lot
        np.testing.assert_allclose(model.loglik(codes, lengths)[0], trained.loglik(codes, lengths)[0], rtol=2e-3)


def test_quantized_rows_are_within_half_a_step_and_zero_rows_stay_zero():
    table = np.random.default_rng(0).normal(size=(50, 16)).astype(np.float32) * np.geomspace(1e-4, 10, 50)[:, None]
    table[7] = 0
    codes, scales = quantize_rows(table)
    assert codes.dtype == np.int8 and scales.dtype == np.float16 and scales[7] == 0
    restored = dequantize_rows(codes, scales)
    assert not restored[7].any()
    step = scales.astype(np.float32)[:, None]
    assert np.all(np.abs(restored - table) <= 0.5 * step + 1e-3 * np.abs(table).max(axis=1, keepdims=True))


@pytest.mark.parametrize("config", [{"kmer_input": 0}, {"embedding": 3, "layers": 2},
                                    {"kmer_input": 4, "kmer_embedding": 5}])
def test_expected_arrays_are_what_the_model_stores(config):
    model = random_model(**config)
    expected = LSTMModel.expected_arrays(model.config_dict())
    assert {name: (tuple(a.shape), a.dtype.name) for name, a in model.state_arrays().items()} == expected


def test_expected_arrays_refuse_a_bad_config_without_building_anything():
    with pytest.raises(ModelFileError, match="unknown"):
        LSTMModel.expected_arrays({**LSTMConfig().to_dict(), "tie": True})
    with pytest.raises(ModelFileError, match="hidden"):
        LSTMModel.expected_arrays({**LSTMConfig().to_dict(), "hidden": 0})
    with pytest.raises(ModelFileError, match="hidden: 10000 is out of range"):  # the command line's bound
        LSTMModel.expected_arrays({**LSTMConfig().to_dict(), "hidden": 10**4})
    # the largest hidden size is only arithmetic here: nothing is allocated
    assert LSTMModel.expected_arrays({**LSTMConfig().to_dict(), "hidden": 8192})["lstm.weight_hh_l0"][0] == \
        (4 * 8192, 8192)


@settings(max_examples=40, deadline=None)
@given(k=st.integers(1, 5), rows=st.lists(st.lists(st.integers(0, 4), min_size=1, max_size=12), min_size=1,
                                          max_size=4))
def test_kmer_tokens_are_the_base4_code_of_the_last_k_bases(k, rows):
    width = max(map(len, rows))
    codes = np.full((len(rows), width), UNKNOWN, dtype=np.int64)
    for i, row in enumerate(rows):
        codes[i, : len(row)] = row
    tokens = kmer_tokens(torch.from_numpy(codes).T, k).T.numpy()
    for i in range(len(rows)):
        for t in range(width):
            last = codes[i, max(0, t - k + 1) : t + 1]
            complete = len(last) == k and (last < UNKNOWN).all()
            assert tokens[i, t] == (int("".join(map(str, last)), 4) if complete else 4**k)


def test_kmer_table_starts_at_zero_and_the_config_is_checked():
    net = LSTMNet(LSTMConfig(hidden=4, kmer_input=2, kmer_embedding=3))
    assert net.kmer_embed.weight.shape == (17, 3) and torch.all(net.kmer_embed.weight == 0)
    assert net.lstm.input_size == 4 + 3
    for bad in ({"kmer_input": 12}, {"kmer_input": -1}, {"kmer_embedding": 0}):
        with pytest.raises(ValueError):
            LSTMConfig(**bad)


def test_unknown_embedding_row_is_zero():
    net = LSTMNet(LSTMConfig(hidden=4, embedding=5, kmer_input=0))
    assert torch.all(net.embed.weight[UNKNOWN] == 0)
    assert net.embed.padding_idx == UNKNOWN


def test_untrained_model_is_near_uniform_and_dropout_is_off_when_scoring():
    model = random_model(hidden=16, dropout=0.5)
    model.module.train()  # loglik must switch to eval mode
    codes, lengths = random_windows(np.random.default_rng(4), 20, 40, unknown_rate=0.0)
    first, n_scored = model.loglik(codes, lengths)
    second, _ = model.loglik(codes, lengths)
    np.testing.assert_array_equal(first, second)
    assert abs(-first.sum() / n_scored.sum() - math.log(4)) < 0.2


def test_device_attribute_moves_the_module():
    model = random_model()
    assert model.to("cpu") is model and model.device == torch.device("cpu")
    model.device = "meta"
    assert next(model.module.parameters()).device.type == "meta"


def test_config_dict_round_trip_and_validation():
    config = LSTMConfig(hidden=32, layers=2, dropout=0.2, embedding=8)
    assert LSTMConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ValueError):
        LSTMConfig(hidden=0)
    with pytest.raises(ValueError):
        LSTMConfig(dropout=1.0)


@pytest.mark.parametrize("hidden", [16, PAIR_MAX_HIDDEN + 8])
def test_loglik_pair_equals_the_two_calls_and_restores_the_thread_count(hidden, monkeypatch):
    codes, lengths = random_windows(np.random.default_rng(5), 30, 40)
    first, second = random_model(1, hidden=hidden), random_model(2, hidden=hidden)
    expected = first.loglik(codes, lengths), second.loglik(codes, lengths)
    seen_threads = []
    loglik = LSTMModel.loglik
    monkeypatch.setattr(LSTMModel, "loglik", lambda self, *a: seen_threads.append(torch.get_num_threads())
                        or loglik(self, *a))
    torch.set_num_threads(2)
    try:
        mine, theirs = LSTMModel.pair_loglik(first, second, codes, lengths)
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(1)
    for got, want in zip((mine, theirs), expected):
        np.testing.assert_array_equal(got[0], want[0])
        np.testing.assert_array_equal(got[1], want[1])
    # Small models run side by side on one thread each; larger ones in turn on both threads.
    assert seen_threads == ([1, 1] if hidden <= PAIR_MAX_HIDDEN else [2, 2])


def test_bf16_is_refused_with_a_clear_error_where_the_cpu_has_no_kernel():
    model = random_model()
    if cpu_runs_bf16():
        model.configure(device="cpu", bf16=True)
        assert model.bf16
    else:
        with pytest.raises(UsageError, match="no bfloat16 LSTM kernel"):
            model.configure(device="cpu", bf16=True)


@pytest.mark.skipif(not cpu_runs_bf16(), reason="this CPU has no bfloat16 LSTM kernel (AVX512-BF16 or AMX)")
def test_bf16_scoring_is_close_to_float32_and_returns_float64_sums():
    codes, lengths = random_windows(np.random.default_rng(6), 16, 60, unknown_rate=0.0)
    model = random_model(3, hidden=32)
    reference, n_scored = model.loglik(codes, lengths)
    model.bf16 = True
    sums, n_bf16 = model.loglik(codes, lengths)
    assert sums.dtype == np.float64
    np.testing.assert_array_equal(n_bf16, n_scored)
    np.testing.assert_allclose(sums / n_scored, reference / n_scored, atol=0.02)
    assert not np.array_equal(sums, reference)  # the autocast really ran
