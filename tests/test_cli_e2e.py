"""End to end, as a user runs it: `gooddetect` subprocesses on the example data in data/ with one tiny LSTM model
(train → calibrate → info → score → evaluate), checked against hand computations on the TSV they write."""

from __future__ import annotations

import gzip
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import gooddetect
from fixtures import (READS, READS_LABELS, TRAIN, VAL_IN, VAL_OOD, fastx_ids, gd, read_tsv, temp_leftovers,
                      train_tiny)
from gooddetect.detector import read_model_file

pytestmark = pytest.mark.slow

def brute_force_auroc(in_scores: np.ndarray, ood_scores: np.ndarray) -> float:
    """P(OOD score > in-distribution score), ties counting 1/2, over all pairs."""
    diff = ood_scores[:, None] - in_scores[None, :]
    return float(((diff > 0).sum() + 0.5 * (diff == 0).sum()) / diff.size)


@pytest.fixture(scope="session")
def model(tiny_model) -> Path:
    return tiny_model


@pytest.fixture(scope="module")
def calibrated(model, tmp_path_factory):
    """calibrate --in-dist/--ood --target-fpr 0.1 into a new file: (path, JSON report, stderr, model bytes before)."""
    directory = tmp_path_factory.mktemp("calibrated")
    before = model.read_bytes()
    path, report = directory / "cal.gdm", directory / "report.json"
    done = gd("calibrate", model, "--in-dist", VAL_IN, "--ood", VAL_OOD, "--target-fpr", "--fpr", "0.1",
              "-o", path, "--json", report, "--threads", "1")
    return path, json.loads(report.read_text()), done.stderr.decode(), before


@pytest.fixture(scope="module")
def val_rows(calibrated, tmp_path_factory):
    """The score TSV of val_in + val_ood (two inputs, one run) with the calibrated model."""
    out = tmp_path_factory.mktemp("val") / "val.tsv"
    gd("score", calibrated[0], VAL_IN, VAL_OOD, "-o", out, "--threads", "1")
    return read_tsv(out.read_text())


@pytest.fixture(scope="module")
def stdin_run(calibrated, tmp_path_factory):
    """`score MODEL -` fed the gzip bytes of reads.fq.gz, with --summary and --report."""
    directory = tmp_path_factory.mktemp("stdin")
    out, summary, report = directory / "reads.tsv", directory / "summary.json", directory / "report.tsv"
    done = gd("score", calibrated[0], "-", "-o", out, "--summary", summary, "--report", report, "--threads", "1",
              input=READS.read_bytes())
    return done, read_tsv(out.read_text()), json.loads(summary.read_text()), report.read_text()


def split_scores(rows, column: str = "score") -> tuple[np.ndarray, np.ndarray]:
    in_scores = np.array([float(r[column]) for r in rows if r["read_id"].startswith("val_in_")])
    ood_scores = np.array([float(r[column]) for r in rows if r["read_id"].startswith("val_ood_")])
    return in_scores, ood_scores


def test_version():
    done = gd("--version")
    assert done.stdout.decode().strip() == f"gooddetect, version {gooddetect.__version__}"


def test_the_command_line_loads_no_compiled_loops_before_a_command_needs_them():
    """--help and --version do not pay for importing numba (a third of a second) or torch."""
    code = ("import sys; from gooddetect.cli import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
            "print(sorted(m for m in ('numba', 'torch') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, check=True)
    assert done.stdout.decode().splitlines()[-1] == "[]"


def test_scoring_with_a_kmer_model_loads_neither_numba_nor_torch(kmer_model, tmp_path):
    """The k-mer model's loops and the TSV writer are C: a k-mer run starts without numba's or torch's imports."""
    reads = Path(__file__).resolve().parents[1] / "data" / "reads.fq.gz"
    code = ("import sys; from gooddetect.cli import main\ntry:\n    main(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
            "print(sorted(m for m in ('numba', 'torch') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code, "-q", "score", str(kmer_model), str(reads), "-o",
                           str(tmp_path / "s.tsv")], capture_output=True, check=True)
    assert done.stdout.decode().splitlines()[-1] == "[]"
    assert len((tmp_path / "s.tsv").read_text().splitlines()) > 100


def test_training_is_reproducible(model, tmp_path):
    again = train_tiny(tmp_path / "again.gdm")
    (doc_a, tensors_a), (doc_b, tensors_b) = read_model_file(model), read_model_file(again)
    assert doc_a == doc_b
    assert tensors_a.keys() == tensors_b.keys()
    assert all(np.array_equal(tensors_a[k], tensors_b[k]) for k in tensors_a)
    assert again.read_bytes() == model.read_bytes()
    assert not (tmp_path / "again.gdm.ckpt").exists()  # the checkpoint is removed once the model is written


def test_calibrate_target_fpr_report(calibrated, model):
    path, report, stderr, before = calibrated
    assert model.read_bytes() == before  # -o: the input model is left alone
    assert report["rule"] == "target_fpr" and report["rule_value"] == 0.1
    assert (report["n_in"], report["n_ood"]) == (500, 500)
    assert report["in_dist_flagged"] <= 0.1
    assert report["metrics"]["n_in"] == 500 and report["metrics"]["threshold"] == report["value"]
    assert f"threshold {report['value']:.6f}" in stderr and "AUROC" in stderr
    assert temp_leftovers(path.parent) == []


def test_calibration_metrics_match_hand_computation(calibrated, val_rows):
    _, report, _, _ = calibrated
    assert [r["read_id"] for r in val_rows] == fastx_ids(VAL_IN) + fastx_ids(VAL_OOD)
    in_scores, ood_scores = split_scores(val_rows)
    assert (in_scores.size, ood_scores.size) == (500, 500)
    metrics = report["metrics"]
    # TSV scores have 6 decimals: a rounding tie can move a pair by 1/2 out of 250 000.
    assert metrics["auroc"] == pytest.approx(brute_force_auroc(in_scores, ood_scores), abs=1e-3)
    # Target FPR 0.1 on 500 reads: the threshold is the 51st largest in-distribution score.
    threshold = report["value"]
    assert np.sort(in_scores)[::-1][50] == pytest.approx(threshold, abs=1e-6)
    assert report["in_dist_flagged"] == pytest.approx(np.mean(in_scores > threshold + 1e-6), abs=2 / 500)
    assert metrics["fpr"] == report["in_dist_flagged"]
    assert metrics["tpr"] == pytest.approx(np.mean(ood_scores > threshold + 1e-6), abs=2 / 500)


def test_calibrate_percentile(calibrated, val_rows, tmp_path):
    """alibi-detect's rule: the P-th percentile of all the sample's scores (--percentile -p P)."""
    done = gd("calibrate", calibrated[0], "--in-dist", VAL_IN, "--ood", VAL_OOD, "--percentile", "-p", "90",
              "-o", tmp_path / "p.gdm", "--json", tmp_path / "p.json", "--threads", "1")
    report = json.loads((tmp_path / "p.json").read_text())
    assert report["rule"] == "percentile" and report["rule_value"] == 90.0
    scores = np.concatenate(split_scores(val_rows))
    assert report["value"] == pytest.approx(np.percentile(scores, 90), abs=1e-6)
    assert "percentile 90.0" in done.stderr.decode()


def test_score_flags_reads_above_the_stored_threshold(calibrated, val_rows):
    """The 250 bp windows are the calibration table's 250 bp row: their threshold is the rule's."""
    threshold = calibrated[1]["value"]
    assert {r["threshold"] for r in val_rows} == {f"{threshold:.6f}"}
    decided = [r for r in val_rows if abs(float(r["score"]) - threshold) > 1e-6]
    assert len(decided) >= len(val_rows) - 2
    assert all(r["is_ood"] == str(int(float(r["score"]) > threshold)) for r in decided)
    assert all(r["reason"] == "NA" and r["n_windows"] == "1" and r["n_scored"] == "249" for r in val_rows)


def test_info_shows_the_threshold(calibrated, model):
    path, report, _, _ = calibrated
    document = json.loads(gd("info", "--json", path).stdout)
    assert document["threshold"] == report
    assert document["kind"] == "lstm" and document["models"]["foreground"]["hidden"] == 16
    assert document["training"]["max_windows"] == 600 and document["training"]["optimiser"]["steps"] == 10
    assert document["threshold"]["table"]["n_scored"][-1] == 249 and document["threshold"]["length_aware"]
    text = gd("info", path).stdout.decode()
    assert any(line.split()[:2] == ["threshold.rule", "target_fpr"] for line in text.splitlines())
    assert json.loads(gd("info", "--json", model).stdout)["threshold"] is None


def test_score_fastq_gz_from_stdin(stdin_run, calibrated):
    done, rows, summary, report = stdin_run
    assert done.stdout == b""
    assert [r["read_id"] for r in rows] == fastx_ids(READS)
    assert all(r["length"] == "150" and r["n_scored"] == "149" for r in rows)
    flagged = sum(r["is_ood"] == "1" for r in rows)
    assert {r["is_ood"] for r in rows} <= {"0", "1"}
    # 150 bp reads: the threshold of the calibration table's 150 bp row (pieces of the calibration windows)
    table = calibrated[1]["table"]
    at_149 = np.interp(np.log(0.1), np.log(table["fpr"]), table["thresholds"][table["n_scored"].index(149)])
    assert {r["threshold"] for r in rows} == {f"{at_149:.6f}"}
    assert summary["reads"] == summary["scored_reads"] == summary["windows"] == 1000
    assert summary["thresholds"]["mode"] == "length_aware" and summary["thresholds"]["fpr"] == 0.1
    assert summary["thresholds"]["at_150bp"] == pytest.approx(at_149) and summary["ood"] == flagged
    assert summary["ood_fraction"] == pytest.approx(flagged / 1000)
    assert summary["inputs"] == ["<stdin>"] and summary["skipped"] == {} and summary["duplicate_ids"] == 0
    novel, foreign = (sum(r["call"] == call for r in rows) for call in ("novel", "foreign"))
    assert novel + foreign == flagged and {r["call"] for r in rows} <= {"in", "novel", "foreign"}
    assert report.splitlines() == [
        "input\treads\tscored_reads\tood_reads\tood_fraction\tunscored_reads\tthresholds\tnovel_reads\tforeign_reads",
        f"<stdin>\t1000\t1000\t{flagged}\t{flagged / 1000:.6f}\t0\tfpr:0.1\t{novel}\t{foreign}"]
    assert "1000 reads" in done.stderr.decode()


def test_calibrate_with_labels_in_place_max_f1(model, stdin_run, tmp_path):
    copy = tmp_path / "copy.gdm"
    shutil.copyfile(model, copy)
    gd("calibrate", copy, READS, "--labels", READS_LABELS, "--max-f1", "--json", tmp_path / "r.json",
       "--threads", "1")
    report = json.loads((tmp_path / "r.json").read_text())
    assert json.loads(gd("info", "--json", copy).stdout)["threshold"] == report
    assert report["rule"] == "max_f1" and report["rule_value"] is None
    assert (report["n_in"], report["n_ood"]) == (500, 500)
    assert temp_leftovers(tmp_path) == []

    # Hand check on the TSV of the same reads (same weights): no threshold gives a higher F1.
    rows = stdin_run[1]
    labels = dict(line.split("\t")[:2] for line in READS_LABELS.read_text().splitlines()[1:])
    scores = np.array([float(r["score"]) for r in rows])
    is_ood = np.array([labels[r["read_id"]] == "ood" for r in rows])

    def f1(threshold: float) -> float:
        flagged = scores > threshold
        tp = np.sum(flagged & is_ood)
        return 2 * tp / (2 * tp + np.sum(flagged & ~is_ood) + np.sum(~flagged & is_ood))

    best = max(f1(t) for t in np.append(np.unique(scores), -np.inf))
    assert report["metrics"]["f1"] == pytest.approx(best, abs=3e-3)
    assert f1(report["value"] + 5e-7) == pytest.approx(best, abs=3e-3)


def test_evaluate_json_and_plots(calibrated, val_rows, tmp_path):
    path, report, _, _ = calibrated
    done = gd("evaluate", path, "--in-dist", VAL_IN, "--ood", VAL_OOD, "--json", tmp_path / "e.json",
              "--plots", tmp_path / "plots", "--threads", "1")
    result = json.loads((tmp_path / "e.json").read_text())
    pngs = sorted((tmp_path / "plots").iterdir())
    assert [p.name for p in pngs] == ["llr_hist.png", "loglik_hist.png", "roc.png"]
    assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and p.stat().st_size > 1000 for p in pngs)
    assert sorted(result["plots"]) == sorted(str(p) for p in pngs)
    scores = result["scores"]
    for key in ("llr", "likelihood"):
        assert {"auroc", "auprc", "fpr_at_tpr80", "fpr_at_tpr95", "n_in", "n_ood"} <= scores[key].keys()
        assert (scores[key]["n_in"], scores[key]["n_ood"]) == (500, 500)
    assert scores["llr"]["auroc"] == pytest.approx(report["metrics"]["auroc"], abs=1e-12)
    # the calls `score` makes, each read against its length's threshold (here all 250 bp: the rule's)
    assert result["at_thresholds"]["thresholds"] == "fpr:0.1"
    assert result["at_thresholds"]["fpr"] == report["metrics"]["fpr"] and result["at_thresholds"]["tpr"] == \
        report["metrics"]["tpr"]
    in_ll, ood_ll = split_scores(val_rows, "loglik_fg")
    assert scores["likelihood"]["auroc"] == pytest.approx(brute_force_auroc(-in_ll, -ood_ll), abs=1e-3)
    table = done.stdout.decode().splitlines()
    assert table[0].split("\t") == ["score", "AUROC", "AUPRC", "FPR@80%TPR", "FPR@95%TPR"]
    assert table[2].startswith("llr") and f"{scores['llr']['auroc']:.4f}" in table[2]


def test_uncalibrated_model_scores_to_stdout_with_na_flags(model):
    done = gd("-q", "score", model, VAL_OOD, "--threads", "1")
    rows = read_tsv(done.stdout.decode())
    assert [r["read_id"] for r in rows] == fastx_ids(VAL_OOD)
    assert {r["is_ood"] for r in rows} == {"NA"}
    assert all(r["score"] != "NA" for r in rows)
    assert done.stderr == b""


def _bad_fastq(tmp_path: Path, good: int = 40) -> Path:
    with gzip.open(READS, "rt") as handle:
        lines = handle.read().splitlines()[: 4 * good]
    lines += ["@broken", "ACGT1ACGT", "+", "IIIIIIIII"]
    path = tmp_path / "bad.fq"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_failed_input_leaves_previous_output_intact(model, tmp_path):
    bad = _bad_fastq(tmp_path)
    out, summary = tmp_path / "out.tsv", tmp_path / "summary.json"
    out.write_text("previous\n")
    done = gd("score", model, bad, "-o", out, "--summary", summary, "--batch-size", "4", "--threads", "1",
              check=False)
    assert done.returncode == 1
    stderr = done.stderr.decode().strip().splitlines()
    assert stderr[-1].startswith("gooddetect: error: ") and "record 41" in stderr[-1] and "broken" in stderr[-1]
    assert out.read_text() == "previous\n"
    assert not summary.exists()
    assert temp_leftovers(tmp_path) == []


def test_failed_calibration_leaves_the_model_intact(model, tmp_path):
    copy = tmp_path / "copy.gdm"
    shutil.copyfile(model, copy)
    bad = _bad_fastq(tmp_path)
    done = gd("calibrate", copy, "--in-dist", VAL_IN, "--ood", bad, "--threads", "1", check=False)
    assert done.returncode == 1 and b"record 41" in done.stderr
    done = gd("calibrate", copy, "--in-dist", VAL_IN, "--youden", "--threads", "1", check=False)
    assert done.returncode == 1 and b"needs both" in done.stderr
    done = gd("calibrate", copy, "--ood", VAL_OOD, "--threads", "1", check=False)
    assert done.returncode == 1 and b"needs in-distribution reads" in done.stderr
    assert copy.read_bytes() == model.read_bytes()
    assert temp_leftovers(tmp_path) == []


def test_defaults_are_sized_for_the_small_example_set():
    """`train` with no tuning flags sizes the LSTM to its training set: on the example set's 5,700 windows a 6-mer
    input (a 10-mer table would memorise them) and 4 epochs (200 optimizer steps); the sizes are recorded in the
    model file. (That these defaults learn, LLR AUROC 0.80 against 0.60 for the likelihood on the example reads, is
    what README's quick start shows.)"""
    from gooddetect.models.lstm.options import LstmData
    from gooddetect.models.lstm.training import sized_defaults
    from gooddetect.windows import split_validation
    from gooddetect.windows import WindowCounts, collect_windows

    windows = collect_windows([str(p) for p in TRAIN], WindowCounts())
    train, _ = split_validation(windows, LstmData.val_fraction, 0)
    assert sized_defaults(int(train.lengths.sum()), len(train), 100) == {"kmer_input": 6, "train_strands": "forward",
                                                                         "epochs": 4}


def test_train_on_genomes_draws_windows_from_them_reproducibly(tmp_path):
    """`train --genomes`: the genome split is recorded, validation windows (both strands) come from held-out blocks,
    the same seed gives the same file, and the model scores reads."""
    from fixtures import write_file
    from fixtures import fasta_text, random_bases

    rng = np.random.default_rng(8)
    genome = write_file(tmp_path, "g.fa.gz", fasta_text({"chr": random_bases(rng, 40_000),
                                                         "plasmid": random_bases(rng, 9_000)}), gz=True)
    args = ("train", genome, "--genomes", "--hidden", "8", "--kmer-input", "2", "--steps", "6", "--seed", "2",
            "--threads", "1", "-o")
    gd(*args, tmp_path / "a.gdm")
    gd(*args, tmp_path / "b.gdm")
    assert (tmp_path / "a.gdm").read_bytes() == (tmp_path / "b.gdm").read_bytes()
    training = read_model_file(tmp_path / "a.gdm")[0]["training"]
    assert training["genomes"]["records"] == 2 and training["genomes"]["val_blocks"] == 1
    assert training["both_strands"] and training["n_val_windows"] == 2 * training["genomes"]["val_windows"]
    assert training["n_train_windows"] == training["genomes"]["train_bases"] // 250
    rows = read_tsv(gd("score", tmp_path / "a.gdm", READS, "--threads", "1").stdout.decode())
    assert len(rows) == len(fastx_ids(READS))
    clash = gd(*args, tmp_path / "c.gdm", "--max-windows", "5", check=False)
    assert clash.returncode == 1 and b"--max-windows: not with --genomes" in clash.stderr
