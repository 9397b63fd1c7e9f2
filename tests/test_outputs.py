"""The output layer shared by `score` and `screen`: outputs checked before any work, sinks that each write one file
atomically, per-input counts and their MultiQC rows, the one BED writer."""

from __future__ import annotations

from contextlib import ExitStack

import numpy as np
import pytest

from gooddetect import tsv
from gooddetect.errors import UsageError
from gooddetect.outputs import (PerInput, TextSink, bed_rows, check_multiqc_name, checked_paths, multiqc_sample,
                                open_sinks)
from gooddetect.scoring import ScoreCounts


def test_outputs_are_checked_before_any_work(tmp_path):
    assert checked_paths("-", None, str(tmp_path / "a.tsv")) == [str(tmp_path / "a.tsv")]
    with pytest.raises(UsageError, match="two outputs name the same file"):
        checked_paths(str(tmp_path / "a.tsv"), str(tmp_path / "." / "a.tsv"))
    with pytest.raises(UsageError, match="output directory .* does not exist"):
        checked_paths(str(tmp_path / "missing" / "a.tsv"))
    with pytest.raises(UsageError, match="end it in _mqc.json"):
        check_multiqc_name(str(tmp_path / "run.json"))
    check_multiqc_name(None)


def test_sinks_write_only_what_was_asked_and_nothing_when_the_run_fails(tmp_path):
    made = {"a": lambda handle: TextSink(handle, lambda batch: f"{batch}\n", "header\n"),
            "b": lambda handle: TextSink(handle, lambda batch: f"b{batch}\n")}
    with ExitStack() as stack:
        sinks = open_sinks(stack, {"a": (str(tmp_path / "a.txt"), "w"), "b": (None, "w")}, made)
        for batch in (1, 2):
            for sink in sinks:
                sink.write(batch)
    assert (tmp_path / "a.txt").read_text() == "header\n1\n2\n" and len(list(tmp_path.iterdir())) == 1
    with pytest.raises(RuntimeError), ExitStack() as stack:
        open_sinks(stack, {"a": (str(tmp_path / "c.txt"), "w")}, made)[0].write(1)
        raise RuntimeError("the run fails")
    assert not (tmp_path / "c.txt").exists() and len(list(tmp_path.iterdir())) == 1  # no temp file left either


def test_counts_per_input_sum_and_name_multiqc_rows():
    per_input = PerInput(ScoreCounts)
    per_input.of("runs/a.fq.gz").reads += 2
    per_input.of("runs/b_R1.fq,runs/b_R2.fq").reads += 3
    per_input.of("runs/a.fq.gz").reads += 1
    assert list(per_input) == ["runs/a.fq.gz", "runs/b_R1.fq,runs/b_R2.fq"] and per_input.total().reads == 6
    assert {name: c.reads for name, c in per_input.samples(None).items()} == {"a": 3, "b": 3}
    assert {name: c.reads for name, c in per_input.samples("run7").items()} == {"run7": 6}
    assert multiqc_sample("x/sample_R1.fastq.gz,x/sample_R2.fastq.gz") == "sample"


def test_bed_rows_are_five_columns_with_na_for_an_undefined_score():
    text = bed_rows(["r1", "r2"], np.array([0, 10]), np.array([250, 260]), tsv.text_column(["in", "ood"]),
                    np.array([0.1234567, np.nan]))
    assert text == "r1\t0\t250\tin\t0.123457\nr2\t10\t260\tood\tNA\n"
    assert bed_rows([], np.zeros(0), np.zeros(0), tsv.text_column([]), np.zeros(0)) == ""
