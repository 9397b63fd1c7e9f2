"""The Python API in-process, on the example data and the session's tiny LSTM model: scoring, the calibration rules
against hand computations, in-place calibration and its failures, labels, evaluation."""

from __future__ import annotations

import gzip
import json
import logging
import os
import shutil

import numpy as np
import pytest

from gooddetect import api, metrics
from gooddetect.detector import Detector
from gooddetect.errors import InputError, UsageError
from gooddetect.formatting import describe_counts, format_calibration, format_metrics_table
from gooddetect.labels import read_labels
from fixtures import READS, READS_LABELS, VAL_IN, VAL_OOD, cpu_runs_bf16, fastx_ids, read_tsv, temp_leftovers

CPU1 = api.Runtime(threads=1, device="cpu")

NUMERIC = ("loglik_fg", "loglik_bg", "llr", "score", "loglik_fg_sum", "loglik_bg_sum")


@pytest.fixture(scope="session")
def model(tiny_model):
    return tiny_model


@pytest.fixture(scope="module")
def detector(model):
    return api.load_detector(str(model), CPU1)


@pytest.fixture(scope="module")
def val_scores(detector):
    """Exact per-read scores of val_in and val_ood, and the labels (True = OOD)."""
    in_dist = api.score_sample(detector, [str(VAL_IN)]).arrays()
    ood = api.score_sample(detector, [str(VAL_OOD)]).arrays()
    return np.concatenate([in_dist["score"], ood["score"]]), np.repeat([False, True], [500, 500])


@pytest.fixture
def model_copy(model, tmp_path):
    copy = tmp_path / "copy.gdm"
    shutil.copyfile(model, copy)
    return copy


def test_score_uncalibrated(model, tmp_path):
    out, summary, report = tmp_path / "s.tsv", tmp_path / "s.json", tmp_path / "r.tsv"
    result = api.score(str(model), [str(VAL_IN), str(VAL_OOD)], str(out), api.ScoreOptions(summary=str(summary), report=str(report)), CPU1)
    rows = read_tsv(out.read_text())
    assert [r["read_id"] for r in rows] == fastx_ids(VAL_IN) + fastx_ids(VAL_OOD)
    assert {r["is_ood"] for r in rows} == {r["threshold"] for r in rows} == {"NA"}
    assert result["thresholds"] is None and result["ood"] is None and result["ood_fraction"] is None
    assert (result["reads"], result["scored_reads"], result["windows"]) == (1000, 1000, 1000)
    assert result["inputs"] == [str(VAL_IN), str(VAL_OOD)] and result["shard"] is None
    assert json.loads(summary.read_text()) == result
    assert report.read_text().splitlines()[1:] == [f"{VAL_IN}\t500\t500\tNA\tNA\t0\tNA\tNA\tNA",
                                                   f"{VAL_OOD}\t500\t500\tNA\tNA\t0\tNA\tNA\tNA"]
    assert "uncalibrated" in describe_counts(result | {"thresholds_text": "NA"})


def test_score_arrays_agree_with_the_tsv(model, detector, val_scores, tmp_path):
    out = tmp_path / "s.tsv"
    api.score(str(model), [str(VAL_IN), str(VAL_OOD)], str(out), runtime=CPU1)
    tsv_scores = np.array([float(r["score"]) for r in read_tsv(out.read_text())])
    np.testing.assert_allclose(tsv_scores, val_scores[0], atol=5e-7)


def test_lstm_rows_do_not_depend_on_batch_size(model, tmp_path):
    rows = {}
    for batch_size in (1024, 7):
        out = tmp_path / f"b{batch_size}.tsv"
        api.score(str(model), [str(READS)], str(out), api.ScoreOptions(batch_size=batch_size), CPU1)
        rows[batch_size] = read_tsv(out.read_text())
    assert [r["read_id"] for r in rows[7]] == [r["read_id"] for r in rows[1024]]
    for a, b in zip(rows[1024], rows[7]):
        for column in NUMERIC:
            assert float(a[column]) == pytest.approx(float(b[column]), rel=1e-5, abs=2e-6), column


def test_threads_do_not_change_rows(model, tmp_path):
    paths = [str(VAL_IN), str(VAL_OOD)]
    runs = {}
    for name, threads in {"fp32": 1, "two_threads": 2}.items():
        out = tmp_path / f"{name}.tsv"
        api.score(str(model), paths, str(out), runtime=api.Runtime(threads=threads, device="cpu"))
        runs[name] = read_tsv(out.read_text())
    assert runs["two_threads"] == runs["fp32"]  # fg and bg side by side on one thread each: same numbers


@pytest.mark.skipif(not cpu_runs_bf16(), reason="this CPU has no bfloat16 LSTM kernel (AVX512-BF16 or AMX)")
def test_bf16_scoring_is_close_to_float32(model, tmp_path):
    paths = [str(VAL_IN), str(VAL_OOD)]
    runs = {}
    for name, bf16 in {"fp32": False, "bf16": True}.items():
        out = tmp_path / f"{name}.tsv"
        api.score(str(model), paths, str(out), api.ScoreOptions(bf16=bf16), CPU1)
        runs[name] = read_tsv(out.read_text())
    fp32, bf16 = (np.array([float(r["llr"]) for r in runs[k]]) for k in ("fp32", "bf16"))
    assert not np.array_equal(fp32, bf16) and np.abs(fp32 - bf16).mean() < 0.01
    labels = np.repeat([False, True], [500, 500])
    assert metrics.auroc(-bf16, labels) == pytest.approx(metrics.auroc(-fp32, labels), abs=0.01)


def test_bf16_is_refused_for_a_kmer_model(tmp_path):
    kmer = tmp_path / "k.gdm"
    api.train([str(VAL_IN)], str(kmer), arch="kmer", max_order=4)
    with pytest.raises(UsageError, match="--bf16 applies to lstm models"):
        api.score(str(kmer), [str(VAL_OOD)], str(tmp_path / "s.tsv"), api.ScoreOptions(bf16=True))
    assert not (tmp_path / "s.tsv").exists()


def test_score_strands_default_by_kind_and_recorded(model, tmp_path):
    assert Detector.load(model).strands == "both"  # the lstm default
    kmer = tmp_path / "k.gdm"
    api.train([str(VAL_IN)], str(kmer), arch="kmer", max_order=4)
    assert Detector.load(kmer).strands == "forward"
    api.train([str(VAL_IN)], str(kmer), arch="kmer", max_order=4, score_strands="both")
    assert api.info(str(kmer))["strands"] == "both"
    with pytest.raises(UsageError, match="--score-strands"):
        api.train([str(VAL_IN)], str(kmer), arch="kmer", score_strands="reverse")


def test_output_to_a_descriptor_path(model, tmp_path):
    """`-o /dev/fd/N` (what `-o >(gzip > out.gz)` passes) is written through, not replaced by a renamed temp file."""
    target = tmp_path / "through-fd.tsv"
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    try:
        api.score(str(model), [str(VAL_OOD)], f"/dev/fd/{fd}", runtime=CPU1)
    finally:
        os.close(fd)
    assert [r["read_id"] for r in read_tsv(target.read_text())] == fastx_ids(VAL_OOD)


@pytest.mark.parametrize("rule, value", [("youden", None), ("max_f1", None), ("percentile", 90.0),
                                         ("target_fpr", 0.05)])
def test_calibration_rules_match_hand_computations(model, val_scores, tmp_path, rule, value):
    out = tmp_path / "cal.gdm"
    report = api.calibrate(str(model), str(out), rule=rule, value=value, in_dist=[str(VAL_IN)],
                           ood=[str(VAL_OOD)], runtime=CPU1)
    scores, is_ood = val_scores
    threshold = report["value"]
    candidates = np.append(np.unique(scores), -np.inf)

    def rates(t):
        flagged = scores > t
        return np.sum(flagged & is_ood) / 500, np.sum(flagged & ~is_ood) / 500  # tpr, fpr

    if rule == "youden":
        best = max(tpr - fpr for tpr, fpr in map(rates, candidates))
        assert rates(threshold)[0] - rates(threshold)[1] == pytest.approx(best, abs=1e-12)
    elif rule == "max_f1":
        best = max(2 * tpr / (tpr + fpr + 1) for tpr, fpr in map(rates, candidates))
        tpr, fpr = rates(threshold)
        assert 2 * tpr / (tpr + fpr + 1) == pytest.approx(best, abs=1e-12)
        assert report["metrics"]["f1"] == pytest.approx(best, abs=1e-12)
    elif rule == "percentile":
        assert threshold == pytest.approx(np.percentile(scores, 90.0), abs=1e-12)
    else:
        in_sorted = np.sort(scores[~is_ood])[::-1]
        assert threshold == in_sorted[25]  # floor(0.05 * 500) = 25 in-distribution reads may score above
        assert report["in_dist_flagged"] == np.mean(scores[~is_ood] > threshold) <= 0.05
    assert threshold in scores or rule == "percentile" or threshold < scores.min()  # below all: flag every read
    assert report["metrics"]["auroc"] == pytest.approx(metrics.auroc(scores, is_ood), abs=1e-12)
    assert (report["n_in"], report["n_ood"], report["rule"], report["rule_value"]) == (500, 500, rule, value)
    assert Detector.load(out).calibration["value"] == threshold
    assert api.info(str(out))["threshold"] == report
    assert report["length_aware"] == (rule == "target_fpr")


def test_calibrate_in_place_with_in_distribution_only(model_copy, val_scores):
    report = api.calibrate(str(model_copy), rule="target_fpr", value=0.1, in_dist=[str(VAL_IN)], runtime=CPU1)
    assert (report["n_in"], report["n_ood"]) == (500, 0) and "metrics" not in report
    assert report["in_dist_flagged"] <= 0.1
    assert report["value"] == np.sort(val_scores[0][:500])[::-1][50]
    assert Detector.load(model_copy).meta["threshold"] == report
    assert temp_leftovers(model_copy.parent) == []
    text = format_calibration(report, str(model_copy))
    assert f"threshold {report['value']:.6f}" in text and "AUROC" not in text


def test_calibrate_with_labels(model, tmp_path, caplog):
    # Label only the first 300 reads: the others are left out, with a warning.
    lines = READS_LABELS.read_text().splitlines()
    partial = tmp_path / "labels.tsv"
    partial.write_text("\n".join(lines[:301]) + "\n")
    truth = [line.split("\t")[1] for line in lines[1:301]]
    with caplog.at_level(logging.WARNING, logger="gooddetect"):
        report = api.calibrate(str(model), str(tmp_path / "cal.gdm"), rule="youden", value=None, reads=[str(READS)],
                               labels=str(partial), runtime=CPU1)
    assert (report["n_in"], report["n_ood"]) == (truth.count("in"), truth.count("ood"))
    assert "700 scored reads have no label" in caplog.text


def test_calibration_failures_leave_the_model_intact(model_copy, tmp_path):
    before = model_copy.read_bytes()
    with pytest.raises(UsageError, match="needs both"):
        api.calibrate(str(model_copy), rule="max_f1", value=None, in_dist=[str(VAL_IN)], runtime=CPU1)
    with pytest.raises(UsageError, match="needs in-distribution"):
        api.calibrate(str(model_copy), rule="target_fpr", value=0.05, ood=[str(VAL_OOD)], runtime=CPU1)
    with pytest.raises(UsageError, match="labeled sample"):
        api.calibrate(str(model_copy), runtime=CPU1)
    with pytest.raises(InputError, match="no such file"):
        api.calibrate(str(model_copy), in_dist=[str(tmp_path / "missing.fa")], runtime=CPU1)
    assert model_copy.read_bytes() == before
    assert temp_leftovers(tmp_path) == []


def test_read_labels(tmp_path):
    (tmp_path / "plain.tsv").write_text("a\tin\nb\tood\n\n")
    assert read_labels(str(tmp_path / "plain.tsv")) == {"a": False, "b": True}
    (tmp_path / "header.tsv.gz").write_bytes(gzip.compress(b"read_id\tgenome\tlabel\na\tE.coli\tood\n"))
    assert read_labels(str(tmp_path / "header.tsv.gz")) == {"a": True}
    assert sum(read_labels(str(READS_LABELS)).values()) == 500
    (tmp_path / "bad.tsv").write_text("a\tin\nb\tOOD\n")
    with pytest.raises(InputError, match="line 2"):
        read_labels(str(tmp_path / "bad.tsv"))
    with pytest.raises(InputError, match="cannot read labels"):
        read_labels(str(tmp_path / "missing.tsv"))


def test_evaluate(model, detector, val_scores):
    result = api.evaluate(str(model), in_dist=[str(VAL_IN)], ood=[str(VAL_OOD)], runtime=CPU1)
    scores, is_ood = val_scores
    assert result["scores"]["llr"] == metrics.summarize(scores, is_ood)
    loglik = np.concatenate([api.score_sample(detector, [str(p)]).arrays()["loglik_fg"] for p in (VAL_IN, VAL_OOD)])
    assert result["scores"]["likelihood"] == metrics.summarize(-loglik, is_ood)
    assert result["scores"]["likelihood"]["auroc"] == pytest.approx(
        np.mean(-loglik[is_ood][:, None] > -loglik[~is_ood][None, :]), abs=1e-9)  # no ties among 6-decimal-free floats
    assert "plots" not in result and "at_thresholds" not in result  # uncalibrated: no calls to count
    support = np.concatenate([api.score_sample(detector, [str(p)]).arrays()["support"] for p in (VAL_IN, VAL_OOD)])
    assert result["scores"]["support"] == metrics.summarize(1 - support, is_ood)
    table = format_metrics_table(result).splitlines()
    assert [line.split("\t")[0] for line in table[1:]] == ["likelihood", "llr", "support"]
    with pytest.raises(UsageError, match="both"):
        api.evaluate(str(model), in_dist=[str(VAL_IN)], runtime=CPU1)
