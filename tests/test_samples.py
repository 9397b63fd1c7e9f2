"""`score --samples SHEET`: many samples with one model load, outputs named by {sample}, a failing sample reported
and left without outputs while the others complete, and a one-line error for every problem of the sheet."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from fixtures import PAIRS, READS, gd

pytestmark = pytest.mark.slow


@pytest.fixture
def work(tmp_path) -> Path:
    shutil.copy(READS, tmp_path / "a.fq.gz")
    for mate, path in enumerate(PAIRS, start=1):
        shutil.copy(path, tmp_path / f"p{mate}.fq.gz")
    (tmp_path / "bad.fq").write_text("@x\nACGT\n+\nIIII\n@y\nACGT\n+\nII\n")
    (tmp_path / "out").mkdir()
    return tmp_path


def sheet(work: Path, text: str) -> Path:
    path = work / "sheet.tsv"
    path.write_text(text)
    return path


def test_every_sample_is_scored_as_a_direct_run_would(kmer_model, work):
    path = sheet(work, "sample\tR1\tR2\na\ta.fq.gz\npaired\tp1.fq.gz\tp2.fq.gz\n")
    gd("score", kmer_model, "--samples", path, "-o", work / "out" / "{sample}.tsv", "--ood-out",
       work / "out" / "{sample}.foreign#.fq", "--multiqc", work / "out" / "run_mqc.json", "--threads", "1")
    gd("score", kmer_model, work / "a.fq.gz", "-o", work / "a.tsv", "--threads", "1")
    gd("score", kmer_model, work / "p1.fq.gz", work / "p2.fq.gz", "--paired", "-o", work / "p.tsv", "--ood-out",
       work / "p#.fq", "--threads", "1")
    assert (work / "out" / "a.tsv").read_bytes() == (work / "a.tsv").read_bytes()
    assert (work / "out" / "paired.tsv").read_bytes() == (work / "p.tsv").read_bytes()
    for mate in (1, 2):
        assert (work / "out" / f"paired.foreign_{mate}.fq").read_bytes() == (work / f"p_{mate}.fq").read_bytes()
    table = json.loads((work / "out" / "run_mqc.json").read_text())
    assert list(table["data"]) == ["a", "paired"] and table["data"]["paired"]["reads"] == 500


def test_a_failing_sample_fails_alone(kmer_model, work):
    path = sheet(work, "a\ta.fq.gz\nbad\tbad.fq\npaired\tp1.fq.gz\tp2.fq.gz\n")
    done = gd("score", kmer_model, "--samples", path, "-o", work / "out" / "{sample}.tsv", "--summary",
              work / "out" / "{sample}.json", "--threads", "1", check=False)
    errors = [line for line in done.stderr.decode().splitlines() if "error" in line]
    assert done.returncode == 1 and len(errors) == 2, done.stderr
    assert errors[0].startswith("gooddetect: error: sample bad (") and "row 2" in errors[0]
    assert "record 2 (y)" in errors[0] and "1 of 3 samples failed (bad)" in errors[1]
    assert sorted(p.name for p in (work / "out").iterdir()) == ["a.json", "a.tsv", "paired.json", "paired.tsv"]


@pytest.mark.parametrize("text, args, message", [
    ("a\tmissing.fq\n", [], "row 1: sample 'a': no such file"),
    ("a\ta.fq.gz\na\tbad.fq\n", [], "row 2: sample 'a' also on row 1"),
    ("../x\ta.fq.gz\n", [], "sample name '../x' is not safe in a file name"),
    ("a\ta.fq.gz\tp1.fq.gz\tp2.fq.gz\n", [], "row 1: need `sample<TAB>R1` or `sample<TAB>R1<TAB>R2`"),
    ("a\ta.fq.gz\n", ["--report", "report.tsv"], "--report 'report.tsv': with --samples every output names its"),
    ("# nothing\n", [], "no samples in the sheet"),
])
def test_sheet_problems_are_one_line_errors_before_any_work(kmer_model, work, text, args, message):
    path = sheet(work, text)
    done = gd("score", kmer_model, "--samples", path, "-o", work / "out" / "{sample}.tsv", *args, check=False)
    lines = done.stderr.decode().splitlines()
    assert done.returncode == 1 and len(lines) == 1 and message in lines[0], lines
    assert str(path) in lines[0] or "--report" in lines[0]
    assert not list((work / "out").iterdir())
