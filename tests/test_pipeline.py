"""The pipeline's last mile, through the API and the real CLI: read pairs as fragments, the reads written by call,
run-time thresholds, BED tracks, MultiQC custom content, gzip outputs, and a clean error for each misuse."""

from __future__ import annotations

import gzip
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gooddetect import api
from gooddetect.errors import InputError, UsageError
from fixtures import DATA, PAIRS, READS, TRAIN, VAL_IN, VAL_OOD, fastx_ids, gd, read_tsv

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def model(kmer_model) -> Path:
    return kmer_model


@pytest.fixture(scope="module")
def uncalibrated(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("kmer") / "u.gdm"
    gd("train", *TRAIN, "-o", path, "--arch", "kmer", "--max-order", "8", "--threads", "1")
    return path


def fastq_records(path: Path) -> list[bytes]:
    data = gzip.decompress(path.read_bytes()) if path.read_bytes()[:2] == b"\x1f\x8b" else path.read_bytes()
    lines = data.split(b"\n")
    return [b"\n".join(lines[i:i + 4]) + b"\n" for i in range(0, len(lines) - 1, 4)]


# -- pairs ----------------------------------------------------------------------------------------------------------

def test_paired_reads_give_one_row_per_fragment(model, tmp_path):
    gd("score", model, *PAIRS, "--paired", "-o", tmp_path / "pairs.tsv", "--report", tmp_path / "r.tsv")
    rows = read_tsv((tmp_path / "pairs.tsv").read_text())
    assert [r["read_id"] for r in rows] == [i[:-2] for i in fastx_ids(PAIRS[0])]  # the /1 removed
    assert all(r["length"] == "150" and r["length2"] == "150" and r["n_windows"] == "2" for r in rows)
    assert all(int(r["n_scored"]) == 2 * 149 for r in rows)
    report = (tmp_path / "r.tsv").read_text().splitlines()
    assert report[1].startswith(f"{PAIRS[0]},{PAIRS[1]}\t{len(rows)}\t")


def test_a_fragment_scores_its_mates_base_weighted(model, tmp_path):
    """The pair's per-base LLR is the mean of its mates' per-base LLRs (equal lengths, no unknown bases)."""
    gd("score", model, *PAIRS, "--paired", "-o", tmp_path / "pairs.tsv")
    gd("score", model, PAIRS[0], "-o", tmp_path / "r1.tsv")
    gd("score", model, PAIRS[1], "-o", tmp_path / "r2.tsv")
    pairs, r1, r2 = (read_tsv((tmp_path / f"{name}.tsv").read_text()) for name in ("pairs", "r1", "r2"))
    for pair, first, second in zip(pairs, r1, r2):
        assert float(pair["llr"]) == pytest.approx((float(first["llr"]) + float(second["llr"])) / 2, abs=2e-6)
        assert pair["window_llrs"] == f"{first['llr']},{second['llr']}"


def test_interleaved_equals_paired(model, tmp_path):
    interleaved = tmp_path / "il.fq"
    r1, r2 = fastq_records(PAIRS[0]), fastq_records(PAIRS[1])
    interleaved.write_bytes(b"".join(a + b for a, b in zip(r1, r2)))
    gd("score", model, *PAIRS, "--paired", "-o", tmp_path / "paired.tsv")
    gd("score", model, interleaved, "--interleaved", "-o", tmp_path / "interleaved.tsv")
    assert (tmp_path / "paired.tsv").read_bytes() == (tmp_path / "interleaved.tsv").read_bytes()


def test_shards_keep_mates_together_and_merge_restores_order(model, tmp_path):
    gd("score", model, *PAIRS, "--paired", "-o", tmp_path / "all.tsv")
    for i in (1, 2, 3):
        gd("score", model, *PAIRS, "--paired", "--shard", f"{i}/3", "-o", tmp_path / f"s{i}.tsv")
    gd("merge", *(tmp_path / f"s{i}.tsv" for i in (1, 2, 3)), "-o", tmp_path / "merged.tsv")
    assert (tmp_path / "merged.tsv").read_bytes() == (tmp_path / "all.tsv").read_bytes()


# -- reads by call ----------------------------------------------------------------------------------------------------

def test_reads_out_partition_the_input_unchanged(model, tmp_path):
    gd("score", model, READS, "-o", tmp_path / "s.tsv", "--in-out", tmp_path / "in.fq.gz", "--ood-out",
       tmp_path / "ood.fq")
    rows = read_tsv((tmp_path / "s.tsv").read_text())
    records = dict(zip(fastx_ids(READS), fastq_records(READS)))
    calls = {r["read_id"]: r["is_ood"] for r in rows}
    for name, flag in (("in.fq.gz", "0"), ("ood.fq", "1")):
        written = fastq_records(tmp_path / name)
        assert written == [records[i] for i in fastx_ids(READS) if calls[i] == flag]
    assert (tmp_path / "in.fq.gz").read_bytes()[:2] == b"\x1f\x8b"


def test_paired_reads_out_expand_the_hash(model, tmp_path):
    gd("score", model, *PAIRS, "--paired", "-o", tmp_path / "s.tsv", "--ood-out", tmp_path / "ood#.fq",
       "--in-out", tmp_path / "in#.fq")
    calls = [r["is_ood"] for r in read_tsv((tmp_path / "s.tsv").read_text())]
    for mate, path in ((0, PAIRS[0]), (1, PAIRS[1])):
        records = fastq_records(path)
        for name, flag in (("in", "0"), ("ood", "1")):
            assert fastq_records(tmp_path / f"{name}_{mate + 1}.fq") == \
                [r for r, call in zip(records, calls) if call == flag]


_records = st.lists(st.tuples(st.text("ACGTN", min_size=1, max_size=400), st.sampled_from(["", " comment x"])),
                    min_size=1, max_size=25)
_DIR = tempfile.TemporaryDirectory(prefix="gooddetect-split-")


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(records=_records, threshold=st.floats(-0.5, 0.5), unscored_out=st.booleans(), gz=st.booleans())
def test_reads_out_are_an_exact_partition_in_input_order(model, records, threshold, unscored_out, gz):
    directory = Path(_DIR.name)
    reads = directory / "reads.fq"
    texts = [f"@r{i}{comment}\n{seq}\n+\n{'I' * len(seq)}\n".encode() for i, (seq, comment) in enumerate(records)]
    reads.write_bytes(b"".join(texts))
    suffix = ".fq.gz" if gz else ".fq"
    options = api.ScoreOptions(threshold=threshold, in_out=str(directory / f"in{suffix}"),
                               ood_out=str(directory / f"ood{suffix}"),
                               unscored_out=str(directory / f"none{suffix}") if unscored_out else None)
    api.score(str(model), [str(reads)], str(directory / "s.tsv"), options)
    rows = read_tsv((directory / "s.tsv").read_text())
    written = {call: fastq_records(Path(path)) if path else [] for call, path in options.read_outputs.items()}
    assert sorted(r for part in written.values() for r in part) == sorted(texts)  # each record once
    for call, part in written.items():
        assert part == [t for t in texts if t in part]  # input order
    for text, row in zip(texts, rows):
        call = "ood" if row["is_ood"] == "1" else "in" if row["is_ood"] == "0" else \
            "unscored" if unscored_out else "in"
        assert text in written[call]


# -- thresholds at run time ---------------------------------------------------------------------------------------------

def test_threshold_and_fpr_override_the_model(model, tmp_path):
    gd("score", model, READS, "-o", tmp_path / "model.tsv")
    gd("score", model, READS, "-o", tmp_path / "fixed.tsv", "--threshold", "0.4")
    gd("score", model, READS, "-o", tmp_path / "loose.tsv", "--fpr", "0.2")
    default, fixed, loose = (read_tsv((tmp_path / f"{n}.tsv").read_text()) for n in ("model", "fixed", "loose"))
    assert {r["threshold"] for r in fixed} == {"0.400000"}
    assert all(r["is_ood"] == str(int(float(r["score"]) > 0.4)) for r in fixed)
    assert float(loose[0]["threshold"]) < float(default[0]["threshold"])  # a higher FPR: a lower threshold
    assert sum(r["is_ood"] == "1" for r in loose) > sum(r["is_ood"] == "1" for r in default)


def test_length_aware_thresholds_follow_the_read_length(model, tmp_path):
    """Calibrated on 250 bp windows at 5 % FPR: shorter reads get higher thresholds (their per-base mean is noisier),
    and each length's in-distribution pieces are flagged at about 5 %."""
    reads = tmp_path / "pieces.fa"
    with gzip.open(VAL_IN, "rt") as handle:
        seqs = handle.read().splitlines()[1::2]
    reads.write_text("".join(f">p{length}_{i}\n{seq[:length]}\n" for length in (75, 150, 250)
                             for i, seq in enumerate(seqs)))
    gd("score", model, reads, "-o", tmp_path / "s.tsv")
    rows = read_tsv((tmp_path / "s.tsv").read_text())
    by_length = {n: [r for r in rows if r["length"] == str(n)] for n in (75, 150, 250)}
    thresholds = [float(by_length[n][0]["threshold"]) for n in (75, 150, 250)]
    assert thresholds[0] > thresholds[1] > thresholds[2]
    for n in (75, 150, 250):
        assert len({r["threshold"] for r in by_length[n]}) == 1
        assert np.mean([r["is_ood"] == "1" for r in by_length[n]]) == pytest.approx(0.05, abs=0.02)


def test_calibrate_prints_the_trade_off_and_stores_no_reads(model, tmp_path):
    copy = tmp_path / "c.gdm"
    shutil.copyfile(model, copy)
    done = gd("calibrate", copy, "--in-dist", VAL_IN, "--ood", VAL_OOD, "--json", tmp_path / "c.json")
    report = json.loads((tmp_path / "c.json").read_text())
    assert [row["target_fpr"] for row in report["trade_off"]] == [0.01, 0.02, 0.05, 0.1, 0.2]
    assert all(row["fpr"] <= row["target_fpr"] for row in report["trade_off"])
    assert all(a["tpr"] <= b["tpr"] for a, b in zip(report["trade_off"], report["trade_off"][1:]))
    text = done.stderr.decode()
    assert "target FPR" in text and "20%" in text
    assert len(json.dumps(report["table"])) < 20_000  # a few numbers per length, no reads


# -- BED and MultiQC -------------------------------------------------------------------------------------------------------

def test_bed_has_one_line_per_scored_window(model, tmp_path):
    gd("score", model, DATA / "chimera.fa.gz", "-o", tmp_path / "c.tsv", "--bed", tmp_path / "c.bed")
    (row,) = read_tsv((tmp_path / "c.tsv").read_text())
    lines = [line.split("\t") for line in (tmp_path / "c.bed").read_text().splitlines()]
    assert len(lines) == int(row["n_windows"]) == 100
    assert [(chrom, int(s), int(e)) for chrom, s, e, *_ in lines] == [("chimera", 250 * i, 250 * i + 250)
                                                                     for i in range(100)]
    assert [line[4] for line in lines] == row["window_llrs"].split(",")
    assert {line[3] for line in lines} <= {"in", "ood"}


def test_multiqc_finds_and_reads_the_custom_content(model, tmp_path):
    multiqc = shutil.which("multiqc") or str(Path(sys.executable).with_name("multiqc"))
    if not Path(multiqc).exists():
        pytest.skip("multiqc is not installed (pip install multiqc)")
    for sample, reads in (("alpha", READS), ("beta", VAL_OOD)):
        gd("score", model, reads, "-o", tmp_path / f"{sample}.tsv", "--multiqc", tmp_path / f"{sample}_mqc.json",
           "--sample-name", sample)
    done = subprocess.run([multiqc, str(tmp_path), "-o", str(tmp_path / "report"), "--quiet"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    data = json.loads((tmp_path / "report" / "multiqc_data" / "multiqc_data.json").read_text())
    section = data["report_saved_raw_data"]["multiqc_gooddetect_table"]
    alpha = json.loads((tmp_path / "alpha_mqc.json").read_text())["data"]["alpha"]
    assert section["alpha"]["reads"] == 1000 and section["beta"]["reads"] == 500
    assert section["alpha"]["ood_percent"] == pytest.approx(alpha["ood_percent"])
    assert "gooddetect" in (tmp_path / "report" / "multiqc_report.html").read_text()


def test_outputs_ending_in_gz_are_gzip_and_deterministic(model, tmp_path):
    for run in (1, 2):
        gd("score", model, READS, "-o", tmp_path / f"s{run}.tsv.gz", "--bed", tmp_path / f"w{run}.bed.gz")
    assert (tmp_path / "s1.tsv.gz").read_bytes() == (tmp_path / "s2.tsv.gz").read_bytes()
    assert gzip.decompress((tmp_path / "s1.tsv.gz").read_bytes()).startswith(b"read_id\tlength\t")
    assert gzip.decompress((tmp_path / "w1.bed.gz").read_bytes()).count(b"\n") == 1000


# -- misuse: one line, exit 1, nothing written --------------------------------------------------------------------------

def assert_refused(done, *fragments, outputs=()):
    lines = done.stderr.decode().splitlines()
    assert done.returncode == 1 and len(lines) == 1 and lines[0].startswith("gooddetect: error: "), lines
    assert all(f in lines[0] for f in fragments), lines[0]
    assert not any(Path(o).exists() for o in outputs)


def _fastq(path: Path, names: list[str]) -> Path:
    path.write_text("".join(f"@{n}\nACGTACGTAC\n+\nIIIIIIIIII\n" for n in names))
    return path


@pytest.mark.parametrize("case", ["out_of_sync", "r2_shorter", "r2_longer"])
def test_mates_that_do_not_pair_are_refused(model, tmp_path, case):
    r1 = _fastq(tmp_path / "r1.fq", ["a/1", "b/1", "c/1"])
    r2 = _fastq(tmp_path / "r2.fq", {"out_of_sync": ["a/2", "x/2", "c/2"], "r2_shorter": ["a/2", "b/2"],
                                     "r2_longer": ["a/2", "b/2", "c/2", "d/2"]}[case])
    out = tmp_path / "s.tsv"
    done = gd("score", model, r1, r2, "--paired", "-o", out, "--in-out", tmp_path / "in#.fq", check=False)
    expected = {"out_of_sync": "record 2: mates out of sync (b in", "r2_shorter": "r2.fq: ends after 2 records",
                "r2_longer": "r2.fq: has more records than"}[case]
    assert_refused(done, expected, outputs=[out, tmp_path / "in_1.fq", tmp_path / "in_2.fq"])


@pytest.mark.parametrize("n_files", [1, 3])
def test_paired_needs_two_files(model, tmp_path, n_files):
    files = [_fastq(tmp_path / f"r{i}.fq", ["a"]) for i in range(n_files)]
    assert_refused(gd("score", model, *files, "--paired", "-o", tmp_path / "s.tsv", check=False),
                   "--paired takes two files", outputs=[tmp_path / "s.tsv"])


def test_interleaved_file_with_an_odd_number_of_records(model, tmp_path):
    odd = _fastq(tmp_path / "odd.fq", ["a/1", "a/2", "b/1"])
    assert_refused(gd("score", model, odd, "--interleaved", "-o", tmp_path / "s.tsv", check=False),
                   "odd.fq: odd number of records (3)", outputs=[tmp_path / "s.tsv"])


def test_split_outputs_need_a_threshold_before_any_input_is_read(uncalibrated, tmp_path):
    fifo = tmp_path / "never-opened"
    import os

    os.mkfifo(fifo)  # reading it would block: the error must come first
    done = gd("score", uncalibrated, fifo, "-o", tmp_path / "s.tsv", "--ood-out", tmp_path / "ood.fq", check=False)
    assert_refused(done, "needs a threshold", outputs=[tmp_path / "s.tsv", tmp_path / "ood.fq"])


def test_two_outputs_naming_the_same_file(model, tmp_path):
    done = gd("score", model, READS, "-o", tmp_path / "x.fq", "--ood-out", tmp_path / "x.fq", check=False)
    assert_refused(done, "two outputs name the same file", outputs=[tmp_path / "x.fq"])


def test_paired_read_outputs_need_a_hash(model, tmp_path):
    done = gd("score", model, *PAIRS, "--paired", "-o", tmp_path / "s.tsv", "--in-out", tmp_path / "in.fq",
              check=False)
    assert_refused(done, "need a '#'", outputs=[tmp_path / "s.tsv", tmp_path / "in.fq"])


def test_fpr_outside_the_calibration_table_and_without_calibration(model, uncalibrated, tmp_path):
    assert_refused(gd("score", model, READS, "--fpr", "0.9", "-o", tmp_path / "s.tsv", check=False),
                   "covers FPR", outputs=[tmp_path / "s.tsv"])
    assert_refused(gd("score", uncalibrated, READS, "--fpr", "0.1", "-o", tmp_path / "s.tsv", check=False),
                   "needs a calibrated model", outputs=[tmp_path / "s.tsv"])


def test_api_errors_are_the_cli_errors(model, tmp_path):
    with pytest.raises(UsageError, match="--threshold or --fpr"):
        api.score(str(model), [str(READS)], str(tmp_path / "s.tsv"), api.ScoreOptions(threshold=0.1, fpr=0.1))
    with pytest.raises(InputError, match="mates out of sync"):
        api.score(str(model), [str(PAIRS[0]), str(READS)], str(tmp_path / "s.tsv"), api.ScoreOptions(layout="paired"))
    assert not (tmp_path / "s.tsv").exists()
