"""Streaming scoring with a hand-checkable fake model pair: per-read aggregation, skipped reads, the TSV schema,
and invariance to batch size and to a read's neighbours."""

from __future__ import annotations

import io
import math
import random
import re
from collections import Counter

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from gooddetect.score import (COLUMNS, NA, TOO_MANY_UNKNOWN, TOO_SHORT, ReadScore, ScoreCounts, format_row,
                              score_chunks, write_header, write_rows)
from gooddetect.seqio import RecordChunk
from test_detector import BG_PROBS, FG_PROBS, fake_detector

LOGP_FG = {b: math.log(p) for b, p in zip("ACGT", FG_PROBS)}
LOGP_BG = {b: math.log(p) for b, p in zip("ACGT", BG_PROBS)}
MEAN = re.compile(r"^-?\d+\.\d{6}$")
SUM = re.compile(r"^-?\d+\.\d{3}$")


def records(*seqs: str, prefix: str = "r") -> list[RecordChunk]:
    """The reads as one chunk (r0, r1, ...)."""
    return [RecordChunk([f"{prefix}{i}" for i in range(len(seqs))], list(seqs))]


def one_per_chunk(chunks: list[RecordChunk]) -> list[RecordChunk]:
    return [RecordChunk([name], [seq]) for chunk in chunks for name, seq in zip(chunk.names, chunk.seqs)]


def hand_sums(window: str) -> tuple[float, float, int]:
    """(fg sum, bg sum, scored bases) of one window: every known base but the first."""
    scored = [b for b in window[1:] if b in "ACGT"]
    return sum(LOGP_FG[b] for b in scored), sum(LOGP_BG[b] for b in scored), len(scored)


def tsv(reads, threshold=None) -> list[dict[str, str]]:
    out = io.StringIO()
    write_header(out)
    write_rows(reads, out, threshold, ScoreCounts())
    lines = out.getvalue().splitlines()
    assert lines[0].split("\t") == list(COLUMNS)
    rows = [dict(zip(COLUMNS, line.split("\t"))) for line in lines[1:]]
    assert all(len(line.split("\t")) == len(COLUMNS) for line in lines[1:])
    return rows


def test_one_score_per_record_in_input_order():
    seqs = ["ACGTACGTAC", "ACG", "N" * 12, "A" * 35, "", "GATTACA"]
    scores = list(score_chunks(fake_detector(), records(*seqs)))
    assert [s.read_id for s in scores] == [f"r{i}" for i in range(len(seqs))]
    assert [s.length for s in scores] == [len(s) for s in seqs]
    assert [s.reason for s in scores] == [None, TOO_SHORT, TOO_MANY_UNKNOWN, None, TOO_SHORT, None]


def test_single_window_read_matches_hand_computation():
    (read,) = score_chunks(fake_detector(), records("ACGTTA"))
    fg, bg, n = hand_sums("ACGTTA")
    assert (read.n_windows, read.n_scored) == (1, 5)
    assert read.fg_sum == pytest.approx(fg, abs=1e-12) and read.bg_sum == pytest.approx(bg, abs=1e-12)
    assert read.loglik_fg == pytest.approx(fg / 5, abs=1e-12)
    assert read.llr == pytest.approx((fg - bg) / 5, abs=1e-12)
    assert read.score == -read.llr
    assert read.window_llrs == [pytest.approx((fg - bg) / 5, abs=1e-12)]


def test_multi_window_read_is_a_base_weighted_mean():
    # Window 10 bp: the 20 bp read is tiled as [0, 10) and [10, 20); the second window has 4 unknown bases,
    # so the windows have 9 and 5 scored bases and the base-weighted mean differs from the mean of window LLRs.
    first, second = "ACGTACGTAC", "GGNNNNTTTA"
    (read,) = score_chunks(fake_detector(window_length=10, min_length=4), records(first + second))
    (f1, b1, n1), (f2, b2, n2) = hand_sums(first), hand_sums(second)
    assert (n1, n2) == (9, 5)
    assert (read.n_windows, read.n_scored) == (2, 14)
    assert read.fg_sum == pytest.approx(f1 + f2, abs=1e-12)
    assert read.bg_sum == pytest.approx(b1 + b2, abs=1e-12)
    assert read.llr == pytest.approx((f1 + f2 - b1 - b2) / 14, abs=1e-12)
    assert read.window_llrs == pytest.approx([(f1 - b1) / 9, (f2 - b2) / 5], abs=1e-12)
    assert read.llr != pytest.approx(np.mean(read.window_llrs), abs=1e-6)

    row = tsv([read])[0]
    assert row["n_windows"] == "2" and row["n_scored"] == "14"
    assert [float(v) for v in row["window_llrs"].split(",")] == pytest.approx(read.window_llrs, abs=1e-6)
    assert all(MEAN.match(v) for v in row["window_llrs"].split(","))


def test_windows_with_too_few_known_bases_are_dropped():
    # Three 10 bp windows; the middle one has only 3 known bases (< min_length 4) and is left out.
    seq = "ACGTACGTAC" + "ANNNNNNNCG" + "TTTTGGGGCC"
    (read,) = score_chunks(fake_detector(window_length=10, min_length=4), records(seq))
    (f1, b1, n1), (f3, b3, n3) = hand_sums(seq[:10]), hand_sums(seq[20:])
    assert read.n_windows == 2 and read.n_scored == n1 + n3 == 18
    assert read.fg_sum == pytest.approx(f1 + f3, abs=1e-12) and read.bg_sum == pytest.approx(b1 + b3, abs=1e-12)
    assert read.reason is None


def test_sliding_windows_count_overlapping_bases_once_per_window():
    seq = "ACGTACGTACGTTGCAAGCT"
    (read,) = score_chunks(fake_detector(window_length=10, min_length=4), records(seq), stride=5)
    windows = [seq[0:10], seq[5:15], seq[10:20]]
    assert read.n_windows == 3 and read.n_scored == 27
    assert read.fg_sum == pytest.approx(sum(hand_sums(w)[0] for w in windows), abs=1e-12)


def test_too_short_and_too_many_unknown_rows_are_na():
    # Too short; all unknown; 10 bp but only 2 known bases (< min_length 4).
    seqs = ("ACG", "NNNNNNNNNNNN", "ANNNNNNNNC")
    reads = list(score_chunks(fake_detector(window_length=10, min_length=4), records(*seqs)))
    reasons = [TOO_SHORT, TOO_MANY_UNKNOWN, TOO_MANY_UNKNOWN]
    assert [r.reason for r in reads] == reasons
    assert all(r.n_windows == 0 and r.n_scored == 0 and math.isnan(r.llr) for r in reads)
    for threshold in (None, 0.0):
        for row, seq, reason in zip(tsv(reads, threshold), seqs, reasons):
            assert row["length"] == str(len(seq))
            assert row["n_windows"] == "0" and row["n_scored"] == "0"
            assert row["reason"] == reason
            for column in ("loglik_fg", "loglik_bg", "llr", "score", "is_ood", "window_llrs", "loglik_fg_sum",
                           "loglik_bg_sum"):
                assert row[column] == NA, column


def test_tsv_schema_and_precision():
    reads = list(score_chunks(fake_detector(window_length=10, min_length=4),
                               records("ACGTTAGGCA", "ACGTACGTACGTACGTACGTA", "CCCCCC")))
    rows = tsv(reads)
    for read, row in zip(reads, rows):
        assert row["read_id"] == read.read_id
        assert (row["length"], row["n_windows"], row["n_scored"]) == (str(read.length), str(read.n_windows),
                                                                     str(read.n_scored))
        for column, value in (("loglik_fg", read.loglik_fg), ("loglik_bg", read.loglik_bg), ("llr", read.llr),
                              ("score", read.score)):
            assert MEAN.match(row[column]), (column, row[column])
            assert float(row[column]) == pytest.approx(value, abs=5e-7)
        for column, value in (("loglik_fg_sum", read.fg_sum), ("loglik_bg_sum", read.bg_sum)):
            assert SUM.match(row[column]), (column, row[column])
            assert float(row[column]) == pytest.approx(value, abs=5e-4)
        assert row["is_ood"] == NA  # uncalibrated
        assert row["reason"] == NA
    assert rows[0]["window_llrs"] == NA and rows[2]["window_llrs"] == NA  # one window: no list
    assert len(rows[1]["window_llrs"].split(",")) == reads[1].n_windows == 3  # 10 + 5 + 6 bp
    assert float(rows[0]["score"]) == -float(rows[0]["llr"])


def test_is_ood_flags_strictly_above_the_threshold():
    reads = list(score_chunks(fake_detector(), records("AAAAAAAA", "TTTTTTTT", "ACGTACGT", "CC")))
    scores = [r.score for r in reads[:3]]
    assert len(set(scores)) == 3
    middle = sorted(scores)[1]
    counts = ScoreCounts()
    out = io.StringIO()
    write_rows(reads, out, middle, counts)
    flags = [line.split("\t")[COLUMNS.index("is_ood")] for line in out.getvalue().splitlines()]
    expected = ["1" if s > middle else "0" for s in scores] + [NA]  # a score equal to the threshold is not flagged
    assert flags == expected and expected.count("1") == 1
    assert counts.ood == 1
    assert [format_row(r, middle - 1e-9).split("\t")[8] for r in reads[:3]] == \
           ["0" if s < middle else "1" for s in scores]


@pytest.mark.parametrize("batch_size", [1, 3, 1024])
def test_rows_do_not_depend_on_batch_size(batch_size):
    seqs = ["ACGTACGTACGTACGTACGTACGTAC", "AC", "NNNNNNNNNN", "GGGCCCAAATTT", "ACGNNNNNNNNNNNNGT" * 3,
            "TTGACA" * 7, "ACGTA"]
    detector = fake_detector(window_length=10, min_length=4)
    reference = [format_row(r, 0.1) for r in score_chunks(detector, records(*seqs), batch_size=1024)]
    rows = [format_row(r, 0.1) for r in score_chunks(detector, records(*seqs), batch_size=batch_size)]
    assert rows == reference


def test_rows_do_not_depend_on_neighbours():
    rng = random.Random(7)
    seqs = ["".join(rng.choice("ACGTN" if i % 3 else "ACGT") for _ in range(rng.randint(0, 45))) for i in range(40)]
    recs = one_per_chunk(records(*seqs))
    detector = fake_detector(window_length=10, min_length=4)
    reference = {r.read_id: format_row(r, None) for r in score_chunks(detector, recs, batch_size=5)}
    shuffled = recs[:]
    rng.shuffle(shuffled)
    shuffled = [RecordChunk([n for c in shuffled for n in c.names], [s for c in shuffled for s in c.seqs])]
    scored = list(score_chunks(detector, shuffled, batch_size=5))
    assert [r.read_id for r in scored] == shuffled[0].names
    assert {r.read_id: format_row(r, None) for r in scored} == reference


read_seqs = st.lists(st.text(alphabet="ACGTN", max_size=40), min_size=1, max_size=12)


@settings(max_examples=60, deadline=None)
@given(seqs=read_seqs, batch_size=st.integers(1, 8), stride=st.sampled_from([None, 3, 10]))
def test_batched_scores_equal_scoring_each_read_alone(seqs, batch_size, stride):
    detector = fake_detector(window_length=10, min_length=4)
    together = [format_row(r, 0.0) for r in score_chunks(detector, records(*seqs), batch_size=batch_size,
                                                          stride=stride)]
    alone = [format_row(next(iter(score_chunks(detector, [rec], stride=stride))), 0.0)
             for rec in one_per_chunk(records(*seqs))]
    assert together == alone
    split = [format_row(r, 0.0) for r in score_chunks(detector, records(*seqs[:3]) + records(*seqs[3:], prefix="s"),
                                                        batch_size=batch_size, stride=stride)]
    assert [row.split("\t", 1)[1] for row in split] == [row.split("\t", 1)[1] for row in together]


def test_score_counts_totals():
    seqs = ["ACGTACGTAC" * 3, "AC", "N" * 20, "GATTACAGATTACA", "", "T" * 10]
    counts = ScoreCounts()
    reads = list(score_chunks(fake_detector(window_length=10, min_length=4), records(*seqs), batch_size=2,
                               counts=counts))
    assert (counts.reads, counts.scored_reads, counts.windows) == (6, 3, 3 + 2 + 1)
    assert counts.skipped == {TOO_SHORT: 2, TOO_MANY_UNKNOWN: 1}
    assert counts.windows == sum(r.n_windows for r in reads)

    threshold = sorted(r.score for r in reads if r.n_scored)[0]  # flags the two higher-scoring reads
    write_rows(reads, io.StringIO(), threshold, counts)
    assert counts.ood == 2
    assert counts.as_dict(threshold) == {
        "reads": 6, "scored_reads": 3, "windows": 6, "threshold": threshold, "ood": 2, "ood_fraction": 2 / 3,
        "skipped": {TOO_MANY_UNKNOWN: 1, TOO_SHORT: 2}}
    uncalibrated = counts.as_dict(None)
    assert uncalibrated["ood"] is None and uncalibrated["ood_fraction"] is None and uncalibrated["threshold"] is None

    total = counts + ScoreCounts(reads=1, skipped=Counter({TOO_SHORT: 1}))
    assert (total.reads, total.scored_reads, total.skipped[TOO_SHORT]) == (7, 3, 3)
    assert counts.reads == 6  # `+` leaves its operands alone


def test_empty_input():
    counts = ScoreCounts()
    assert list(score_chunks(fake_detector(), [], counts=counts)) == []
    assert counts.as_dict(0.5) == {"reads": 0, "scored_reads": 0, "windows": 0, "threshold": 0.5, "ood": 0,
                                   "ood_fraction": None, "skipped": {}}


def test_read_score_without_windows_has_nan_means():
    read = ReadScore("x", 3, reason=TOO_SHORT)
    assert math.isnan(read.loglik_fg) and math.isnan(read.loglik_bg) and math.isnan(read.llr)
    assert math.isnan(read.score)
