"""The Detector: LLR arithmetic on a hand-checkable fake pair, the model file round trip, `info`, atomic saving."""

from __future__ import annotations

import math
import os

import numpy as np
import pytest

import gooddetect
from gooddetect import api, files
from gooddetect.alphabet import decode, encode, reverse_complement
from gooddetect.runtime import Runtime
from gooddetect.detector import FORMAT_NAME, FORMAT_VERSION, Detector, read_model_file
from gooddetect.errors import ModelFileError, UsageError
from fixtures import BG_PROBS, FG_PROBS, BaseFrequencyModel, fake_detector, pad_batch
from gooddetect.formatting import format_info

def lstm_detector(seed: int = 0, threshold: dict | None = None) -> Detector:
    import torch

    from gooddetect.models.lstm.model import LSTMConfig, LSTMModel

    torch.manual_seed(seed)
    meta = {"window_length": 250, "min_length": 50, "threshold": threshold,
            "training": {"seed": seed, "note": "unit test"}}
    config = LSTMConfig(hidden=8, kmer_input=2, kmer_embedding=3)
    return Detector(LSTMModel(config), LSTMModel(config), meta)


def batch(*seqs: str) -> tuple[np.ndarray, np.ndarray]:
    return pad_batch([encode(s) for s in seqs])


def test_loglik_and_llr_match_a_hand_computation():
    codes, lengths = batch("ACGTTA", "GNNC", "T")
    fg, bg, n = fake_detector().loglik(codes, lengths)
    lf, lb = [math.log(p) for p in FG_PROBS], math.log(0.25)
    # "ACGTTA": the first base is not scored; C, G, T, T, A are.
    assert n.tolist() == [5, 1, 0]
    assert fg[0] == pytest.approx(lf[1] + lf[2] + 2 * lf[3] + lf[0], abs=1e-12)
    assert bg[0] == pytest.approx(5 * lb, abs=1e-12)
    # "GNNC": the unknown bases are neither scored nor counted; only the final C is.
    assert fg[1] == pytest.approx(lf[1], abs=1e-12) and bg[1] == pytest.approx(lb, abs=1e-12)
    assert fg[2] == 0.0 and bg[2] == 0.0

    llr = fake_detector().llr(codes, lengths)
    assert llr[0] == pytest.approx((lf[1] + lf[2] + 2 * lf[3] + lf[0] - 5 * lb) / 5, abs=1e-12)
    assert llr[1] == pytest.approx(math.log(0.2 / 0.25), abs=1e-12)
    assert math.isnan(llr[2])  # nothing scored: no ratio


def test_both_strands_is_the_mean_of_the_window_and_its_reverse_complement():
    seqs = ("ACGTTA", "GNNCA", "T", "CCCGGA")
    codes, lengths = batch(*seqs)
    forward = fake_detector().loglik(codes, lengths)
    reverse = fake_detector().loglik(*batch(*(decode(reverse_complement(encode(s))) for s in seqs)))
    fg, bg, n = fake_detector(strands="both").loglik(codes, lengths)
    np.testing.assert_allclose(fg, (forward[0] + reverse[0]) / 2, atol=1e-12)
    np.testing.assert_allclose(bg, (forward[1] + reverse[1]) / 2, atol=1e-12)
    np.testing.assert_array_equal(n, forward[2])
    # The first base is scored only on the reverse strand: "ACGTTA" scores C,G,T,T,A forward and T,A,A,C,G back.
    lf = [math.log(p) for p in FG_PROBS]
    assert fg[0] == pytest.approx((lf[1] + lf[2] + 2 * lf[3] + lf[0] + lf[3] + 2 * lf[0] + lf[1] + lf[2]) / 2)


def test_strands_default_and_round_trip(tmp_path):
    assert Detector(None, None, {}).strands == "forward"  # files written before the entry: the paper's scoring
    detector = lstm_detector()
    detector.meta["strands"] = "both"
    detector.save(tmp_path / "m.gdm")
    loaded = Detector.load(tmp_path / "m.gdm")
    assert loaded.strands == "both"
    codes, lengths = batch("ACGTACGTTTGACCA" * 5, "GGGCCCATAT" * 6)
    np.testing.assert_allclose(loaded.llr(codes, lengths), detector.llr(codes, lengths), rtol=1e-6)
    assert not np.allclose(loaded.llr(codes, lengths), lstm_detector().llr(codes, lengths))


def test_properties_come_from_meta():
    detector = fake_detector(window_length=12, min_length=5)
    assert (detector.kind, detector.window_length, detector.min_length) == ("fake", 12, 5)
    assert detector.calibration is None
    assert Detector(detector.foreground, detector.background, {"window_length": 1}).calibration is None
    assert fake_detector(threshold=0.125).calibration == {"value": 0.125, "rule": "test"}
    assert detector.configure(Runtime(threads=1, device="cpu")) is detector


def test_lstm_save_load_round_trip(tmp_path):
    threshold = {"value": -0.0123, "rule": "target_fpr", "rule_value": 0.05}
    detector = lstm_detector(threshold=threshold)
    path = tmp_path / "m.gdm"
    detector.save(path)
    loaded = Detector.load(path)

    assert loaded.kind == "lstm"
    for role in ("foreground", "background"):
        before, after = getattr(detector, role), getattr(loaded, role)
        assert after.config_dict() == before.config_dict()
        a, b = before.state_arrays(), after.state_arrays()
        assert a.keys() == b.keys()
        for name in a:
            assert a[name].dtype == b[name].dtype and np.array_equal(a[name], b[name]), name
    rng = np.random.default_rng(1)
    codes = rng.integers(0, 5, size=(6, 40)).astype(np.uint8)
    lengths = np.array([40, 39, 25, 2, 1, 0])
    np.testing.assert_array_equal(loaded.llr(codes, lengths), detector.llr(codes, lengths))
    assert loaded.calibration == threshold
    assert loaded.meta["training"] == {"seed": 0, "note": "unit test"}
    assert (loaded.window_length, loaded.min_length) == (250, 50)
    assert loaded.version == gooddetect.__version__ and "gooddetect_version" not in loaded.meta

    # Saving what was loaded writes the same document and tensors again.
    again = tmp_path / "again.gdm"
    loaded.save(again)
    (doc_a, tensors_a), (doc_b, tensors_b) = read_model_file(path), read_model_file(again)
    assert doc_a == doc_b
    assert tensors_a.keys() == tensors_b.keys()
    assert all(np.array_equal(tensors_a[k], tensors_b[k]) for k in tensors_a)


def test_save_is_deterministic(tmp_path):
    """The same detector always gives the same bytes (reproducible training needs byte-identical files)."""
    detector = lstm_detector(seed=3)
    blobs = set()
    for i in range(8):  # safetensors stores its metadata map in a per-call random order: try several times
        detector.save(tmp_path / f"{i}.gdm")
        blobs.add((tmp_path / f"{i}.gdm").read_bytes())
    assert len(blobs) == 1


def test_info_document(tmp_path):
    detector = lstm_detector(threshold={"value": 0.5, "rule": "youden", "rule_value": None})
    path = tmp_path / "m.gdm"
    detector.save(path)
    document = api.info(str(path))

    assert document["format"] == FORMAT_NAME == "gooddetect-model"
    assert document["format_version"] == FORMAT_VERSION
    assert document["gooddetect_version"] == gooddetect.__version__
    assert document["kind"] == "lstm"
    assert document["models"] == {"foreground": detector.foreground.config_dict(),
                                  "background": detector.background.config_dict()}
    assert document["models"]["foreground"]["hidden"] == 8
    assert (document["window_length"], document["min_length"]) == (250, 50)
    assert document["training"] == {"seed": 0, "note": "unit test"}
    assert document["threshold"] == {"value": 0.5, "rule": "youden", "rule_value": None}
    n_params = sum(a.size for a in detector.foreground.state_arrays().values())
    assert document["parameters"] == {"foreground": n_params, "background": n_params}
    # The 2-mer table (17 rows of 3, and a scale per row), 4 * (input 4 + 3, hidden 8, 2 biases) * 8 LSTM weights and
    # biases, 8 -> 4 head.
    assert n_params == 17 * 3 + 17 + 4 * 8 * (4 + 3 + 8 + 2) + 8 * 4 + 4
    assert document["file_bytes"] == os.path.getsize(path)

    text = format_info(document)
    assert "threshold.value" in text and "0.5" in text
    assert "models.foreground.hidden" in text


def test_uncalibrated_info_has_null_threshold(tmp_path):
    path = tmp_path / "m.gdm"
    lstm_detector().save(path)
    assert api.info(str(path))["threshold"] is None
    assert Detector.load(path).calibration is None
    assert "none" in [line.split()[-1] for line in format_info(api.info(str(path))).splitlines()
                      if line.startswith("threshold")]


def test_a_file_of_an_unknown_kind_is_refused_before_its_arrays_are_read(tmp_path):
    """Saving needs no registered kind, but reading checks the arrays against the kind's configs first."""
    path = tmp_path / "fake.gdm"
    fake_detector(threshold=1.5).save(path)
    with pytest.raises(ModelFileError, match="unknown model kind 'fake'"):
        api.info(str(path))


def test_training_provenance_survives_calibration(tmp_path):
    """The version that trained a model stays in the file when a later version calibrates it; calibration
    records its own."""
    from gooddetect.models.kmer.model import KmerConfig, KmerModel

    rng = np.random.default_rng(0)
    codes = rng.integers(0, 4, (400, 120), dtype=np.uint8)
    rows = [(codes, np.full(400, 120), np.zeros(400, np.int64))]
    config = KmerConfig(max_order=6, direct_order=6)
    foreground, background = KmerModel.fit_pair(rows, config=config, background=config, mutation_rate=0.3)
    detector = Detector(foreground, background, {"window_length": 120, "min_length": 50, "threshold": None},
                        version="0.0.1-trained-elsewhere")
    model = tmp_path / "m.gdm"
    detector.save(model)
    reads = tmp_path / "in.fa"
    reads.write_text("".join(f">r{i}\n{decode(row)}\n" for i, row in enumerate(codes[:300])))
    api.calibrate(str(model), in_dist=[str(reads)])
    document = api.info(str(model))
    assert document["gooddetect_version"] == "0.0.1-trained-elsewhere"
    assert document["threshold"]["gooddetect_version"] == gooddetect.__version__


def _leftovers(directory) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(".tmp"))


def test_failing_save_mid_write_keeps_previous_file(tmp_path, monkeypatch):
    path = tmp_path / "m.gdm"
    lstm_detector(seed=0).save(path)
    before = path.read_bytes()

    def broken_fsync(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(files.os, "fsync", broken_fsync)
    with pytest.raises(OSError, match="No space left"):
        lstm_detector(seed=1).save(path)
    monkeypatch.undo()

    assert path.read_bytes() == before
    assert _leftovers(tmp_path) == []
    assert Detector.load(path).meta["training"]["seed"] == 0


def test_failing_model_keeps_previous_file(tmp_path):
    path = tmp_path / "m.gdm"
    lstm_detector().save(path)
    before = path.read_bytes()

    class Unserialisable(BaseFrequencyModel):
        def state_arrays(self):
            return {"logp": np.array(["not", "numbers"], dtype=object)}

    broken = Detector(Unserialisable(FG_PROBS), Unserialisable(BG_PROBS), {"window_length": 10, "min_length": 4})
    from safetensors import SafetensorError

    with pytest.raises(SafetensorError, match="dtype"):
        broken.save(path)
    assert path.read_bytes() == before
    assert _leftovers(tmp_path) == []


def test_save_into_missing_directory_is_a_usage_error(tmp_path):
    with pytest.raises(UsageError, match="does not exist"):
        fake_detector().save(tmp_path / "no" / "such" / "m.gdm")
