"""Streaming scoring: per-read and per-fragment aggregation checked by hand on a fake model pair, the TSV schema,
and rows that do not depend on batch size, neighbours or threads (fake, LSTM and k-mer models)."""

from __future__ import annotations

import math
import random
import re
import threading
from collections import Counter

import dnaio
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from gooddetect import scoring as score_module
from gooddetect.outputs import NA
from gooddetect.outputs.score import columns, tsv_rows
from gooddetect.runtime import Runtime
from gooddetect.scoring import REASONS, TOO_MANY_UNKNOWN, TOO_SHORT, ScoreCounts, call_codes, score_chunks
from gooddetect.seqio import RecordChunk
from fixtures import BG_PROBS, FG_PROBS, fake_detector

LOGP_FG = {b: math.log(p) for b, p in zip("ACGT", FG_PROBS)}
LOGP_BG = {b: math.log(p) for b, p in zip("ACGT", BG_PROBS)}
MEAN = re.compile(r"^-?\d+\.\d{6}$")
SUM = re.compile(r"^-?\d+\.\d{3}$")


def reasons(scored) -> list[str | None]:
    """Why each fragment has no score (None when it has one), by name."""
    return [REASONS[code] for code in scored.reason_codes.tolist()]


def chunk(*seqs: str, prefix: str = "r", mates: int = 1) -> RecordChunk:
    """The reads (or, with two mates, consecutive pairs of sequences) as one chunk: r0, r1, ..."""
    ids = [f"{prefix}{i}" for i in range(len(seqs) // mates)]
    records = [dnaio.SequenceRecord(ids[i // mates], seq) for i, seq in enumerate(seqs)]
    return RecordChunk(records, ids, list(seqs), mates)


def one_per_chunk(whole: RecordChunk) -> list[RecordChunk]:
    return [whole.every(i, len(whole)) for i in range(len(whole))]


def hand_sums(window: str) -> tuple[float, float, int]:
    """(fg sum, bg sum, scored bases) of one window: every known base but the first."""
    scored = [b for b in window[1:] if b in "ACGT"]
    return sum(LOGP_FG[b] for b in scored), sum(LOGP_BG[b] for b in scored), len(scored)


def score(detector, *chunks, **options):
    return [scored for c in chunks for scored in score_chunks(detector, [c], **options)]


def tsv(detector, *chunks, thresholds=None, **options) -> list[dict[str, str]]:
    """The TSV rows of the chunks, parsed; with a threshold, every fragment is compared with it."""
    rows = []
    for scored in score(detector, *chunks, **options):
        limits = None if thresholds is None else np.full(len(scored), thresholds)
        header = columns(scored.chunk.mates)
        calls = call_codes(scored.scored, None if limits is None else scored.score > limits, scored.foreign())
        for line in tsv_rows(scored, limits, calls, {}).splitlines():
            fields = line.split("\t")
            assert len(fields) == len(header)
            rows.append(dict(zip(header, fields)))
    return rows


def test_one_row_per_record_in_input_order():
    seqs = ["ACGTACGTAC", "ACG", "N" * 12, "A" * 35, "", "GATTACA"]
    (scored,) = score(fake_detector(), chunk(*seqs))
    assert scored.chunk.ids == [f"r{i}" for i in range(len(seqs))]
    assert scored.read_lengths[:, 0].tolist() == [len(s) for s in seqs]
    assert reasons(scored) == [None, TOO_SHORT, TOO_MANY_UNKNOWN, None, TOO_SHORT, None]


def test_single_window_read_matches_hand_computation():
    (scored,) = score(fake_detector(), chunk("ACGTTA"))
    fg, bg, n = hand_sums("ACGTTA")
    assert (scored.n_windows[0], scored.n_scored[0]) == (1, 5)
    assert scored.fg_sum[0] == pytest.approx(fg, abs=1e-12) and scored.bg_sum[0] == pytest.approx(bg, abs=1e-12)
    assert scored.loglik_fg[0] == pytest.approx(fg / 5, abs=1e-12)
    assert scored.llr[0] == pytest.approx((fg - bg) / 5, abs=1e-12) and scored.score[0] == -scored.llr[0]
    assert scored.window_llr.tolist() == [pytest.approx((fg - bg) / 5, abs=1e-12)]


def test_multi_window_read_is_a_base_weighted_mean():
    # Window 10 bp: the 20 bp read is tiled as [0, 10) and [10, 20); the second window has 4 unknown bases,
    # so the windows have 9 and 5 scored bases and the base-weighted mean differs from the mean of window LLRs.
    first, second = "ACGTACGTAC", "GGNNNNTTTA"
    (scored,) = score(fake_detector(window_length=10, min_length=4), chunk(first + second))
    (f1, b1, n1), (f2, b2, n2) = hand_sums(first), hand_sums(second)
    assert (n1, n2) == (9, 5)
    assert (scored.n_windows[0], scored.n_scored[0]) == (2, 14)
    assert scored.fg_sum[0] == pytest.approx(f1 + f2, abs=1e-12) and scored.bg_sum[0] == pytest.approx(b1 + b2)
    assert scored.llr[0] == pytest.approx((f1 + f2 - b1 - b2) / 14, abs=1e-12)
    assert scored.window_llr.tolist() == pytest.approx([(f1 - b1) / 9, (f2 - b2) / 5], abs=1e-12)
    assert scored.llr[0] != pytest.approx(np.mean(scored.window_llr), abs=1e-6)
    (row,) = tsv(fake_detector(window_length=10, min_length=4), chunk(first + second))
    assert row["n_windows"] == "2" and row["n_scored"] == "14"
    assert [float(v) for v in row["window_llrs"].split(",")] == pytest.approx(scored.window_llr.tolist(), abs=1e-6)
    assert all(MEAN.match(v) for v in row["window_llrs"].split(","))


def test_a_pair_is_scored_over_both_mates_and_no_window_spans_them():
    detector = fake_detector(window_length=10, min_length=4)
    r1, r2 = "ACGTACGTACGGT", "TTGACCAN"  # 13 bp: windows [0, 10) [10, 13)? no: 3 bp < 4 merges: two halves
    (scored,) = score(detector, chunk(r1, r2, "AC", "ACG", mates=2))
    windows = [r1[:7], r1[7:], r2]  # 13 = 10 + 3 (< min_length 4): the two last tiles split in halves 7 + 6
    sums = [hand_sums(w) for w in windows]
    assert scored.chunk.ids == ["r0", "r1"] and scored.read_lengths.tolist() == [[13, 8], [2, 3]]
    assert scored.n_windows.tolist() == [3, 0] and scored.n_scored[0] == sum(s[2] for s in sums)
    assert scored.fg_sum[0] == pytest.approx(sum(s[0] for s in sums), abs=1e-12)
    assert scored.llr[0] == pytest.approx(sum(s[0] - s[1] for s in sums) / sum(s[2] for s in sums), abs=1e-12)
    assert scored.window_record.tolist() == [0, 0, 1] and scored.window_fragment.tolist() == [0, 0, 0]
    assert reasons(scored) == [None, TOO_SHORT]
    first, second = tsv(detector, chunk(r1, r2, "AC", "ACG", mates=2))
    assert (first["read_id"], first["length"], first["length2"]) == ("r0", "13", "8")
    assert len(first["window_llrs"].split(",")) == 3 and second["reason"] == TOO_SHORT


def test_a_pair_with_one_unscored_mate_is_scored_on_the_other():
    detector = fake_detector(window_length=10, min_length=4)
    (scored,) = score(detector, chunk("ACGTACG", "NNNNNNNNN", mates=2))
    assert scored.n_windows.tolist() == [1] and reasons(scored) == [None]
    assert scored.llr[0] == pytest.approx(next(score(detector, chunk("ACGTACG"))[0].llr.flat))


def test_windows_with_too_few_known_bases_are_dropped():
    # Three 10 bp windows; the middle one has only 3 known bases (< min_length 4) and is left out.
    seq = "ACGTACGTAC" + "ANNNNNNNCG" + "TTTTGGGGCC"
    (scored,) = score(fake_detector(window_length=10, min_length=4), chunk(seq))
    (f1, b1, n1), (f3, b3, n3) = hand_sums(seq[:10]), hand_sums(seq[20:])
    assert scored.n_windows[0] == 2 and scored.n_scored[0] == n1 + n3 == 18
    assert scored.fg_sum[0] == pytest.approx(f1 + f3, abs=1e-12) and scored.bg_sum[0] == pytest.approx(b1 + b3)
    assert scored.window_start.tolist() == [0, 20] and scored.window_end.tolist() == [10, 30]


def test_sliding_windows_count_overlapping_bases_once_per_window():
    seq = "ACGTACGTACGTTGCAAGCT"
    (scored,) = score(fake_detector(window_length=10, min_length=4), chunk(seq), stride=5)
    windows = [seq[0:10], seq[5:15], seq[10:20]]
    assert scored.n_windows[0] == 3 and scored.n_scored[0] == 27
    assert scored.fg_sum[0] == pytest.approx(sum(hand_sums(w)[0] for w in windows), abs=1e-12)


def test_too_short_and_too_many_unknown_rows_are_na():
    # Too short; all unknown; 10 bp but only 2 known bases (< min_length 4).
    seqs = ("ACG", "NNNNNNNNNNNN", "ANNNNNNNNC")
    detector = fake_detector(window_length=10, min_length=4)
    for threshold in (None, 0.0):
        for row, seq, reason in zip(tsv(detector, chunk(*seqs), thresholds=threshold), seqs,
                                    [TOO_SHORT, TOO_MANY_UNKNOWN, TOO_MANY_UNKNOWN]):
            assert (row["length"], row["n_windows"], row["n_scored"], row["reason"]) == (str(len(seq)), "0", "0",
                                                                                         reason)
            for column in ("loglik_fg", "loglik_bg", "llr", "score", "is_ood", "window_llrs", "loglik_fg_sum",
                           "loglik_bg_sum"):
                assert row[column] == NA, column
            assert row["threshold"] == (NA if threshold is None else "0.000000")


def test_tsv_schema_and_precision():
    detector = fake_detector(window_length=10, min_length=4)
    seqs = ("ACGTTAGGCA", "ACGTACGTACGTACGTACGTA", "CCCCCC")
    (scored,) = score(detector, chunk(*seqs))
    rows = tsv(detector, chunk(*seqs))
    assert list(rows[0]) == list(columns(1))
    for i, row in enumerate(rows):
        for column, value in (("loglik_fg", scored.loglik_fg), ("loglik_bg", scored.loglik_bg), ("llr", scored.llr),
                              ("score", scored.score)):
            assert MEAN.match(row[column]) and float(row[column]) == pytest.approx(value[i], abs=5e-7), column
        for column, value in (("loglik_fg_sum", scored.fg_sum), ("loglik_bg_sum", scored.bg_sum)):
            assert SUM.match(row[column]) and float(row[column]) == pytest.approx(value[i], abs=5e-4), column
        assert row["is_ood"] == row["threshold"] == row["reason"] == NA  # uncalibrated
    assert rows[0]["window_llrs"] == NA and rows[2]["window_llrs"] == NA  # one window: no list
    assert len(rows[1]["window_llrs"].split(",")) == 3  # 10 + 5 + 6 bp
    assert float(rows[0]["score"]) == -float(rows[0]["llr"])


def test_is_ood_flags_strictly_above_the_threshold():
    detector = fake_detector()
    (scored,) = score(detector, chunk("AAAAAAAA", "TTTTTTTT", "ACGTACGT", "CC"))
    scores = scored.score[:3].tolist()
    assert len(set(scores)) == 3
    middle = sorted(scores)[1]
    flags = [row["is_ood"] for row in tsv(detector, chunk("AAAAAAAA", "TTTTTTTT", "ACGTACGT", "CC"), thresholds=middle)]
    assert flags == ["1" if s > middle else "0" for s in scores] + [NA]  # equal to the threshold: not flagged
    assert flags.count("1") == 1


def test_rows_do_not_depend_on_neighbours():
    rng = random.Random(7)
    seqs = ["".join(rng.choice("ACGTN" if i % 3 else "ACGT") for _ in range(rng.randint(0, 45))) for i in range(40)]
    detector = fake_detector(window_length=10, min_length=4)
    reference = {row["read_id"]: row for row in tsv(detector, *one_per_chunk(chunk(*seqs)), batch_size=5)}
    order = list(range(40))
    rng.shuffle(order)
    shuffled = RecordChunk([dnaio.SequenceRecord(f"r{i}", seqs[i]) for i in order], [f"r{i}" for i in order],
                           [seqs[i] for i in order])
    rows = tsv(detector, shuffled, batch_size=5)
    assert [row["read_id"] for row in rows] == shuffled.ids
    assert {row["read_id"]: row for row in rows} == reference


def test_with_threads_chunks_are_cut_on_the_reader_thread_and_scored_on_the_worker(monkeypatch):
    """Cutting a chunk into windows (Python, under the GIL) is the reader's work, so that the worker goes from one
    chunk's compiled loops to the next's without waiting for it; the rows are those of scoring on one thread."""
    seqs = ["ACGTTGCA" * 5, "GATTACA" * 3, "ACGN" * 6] * 4
    detector = fake_detector().configure(Runtime(threads=1))
    reference = tsv(detector, *one_per_chunk(chunk(*seqs)))
    cut_on, loglik_on = set(), set()
    cut_reads, loglik = score_module.cut_reads, detector.loglik
    monkeypatch.setattr(score_module, "cut_reads",
                        lambda *args, **kw: cut_on.add(threading.current_thread().name) or cut_reads(*args, **kw))
    monkeypatch.setattr(detector, "loglik",
                        lambda *args: loglik_on.add(threading.current_thread().name) or loglik(*args))
    detector.configure(Runtime(threads=2))
    rows = [row for c in one_per_chunk(chunk(*seqs)) for row in tsv(detector, c)]
    assert rows == reference
    assert cut_on == {"gooddetect-read"}
    assert len(loglik_on) == 1 and loglik_on.pop().startswith("gooddetect-compute")


read_seqs = st.lists(st.text(alphabet="ACGTN", max_size=40), min_size=1, max_size=12)


@settings(max_examples=60, deadline=None)
@given(seqs=read_seqs, batch_size=st.integers(1, 8), stride=st.sampled_from([None, 3, 10]))
def test_batched_scores_equal_scoring_each_read_alone(seqs, batch_size, stride):
    detector = fake_detector(window_length=10, min_length=4)
    together = tsv(detector, chunk(*seqs), batch_size=batch_size, stride=stride, thresholds=0.0)
    alone = tsv(detector, *one_per_chunk(chunk(*seqs)), stride=stride, thresholds=0.0)
    assert together == alone


@pytest.fixture(scope="module")
def real_models():
    """A small LSTM pair (random weights, k-mer table randomised) and a small k-mer pair."""
    import torch

    from gooddetect.detector import Detector
    from gooddetect.models.kmer.model import KmerConfig, KmerModel
    from gooddetect.models.lstm.model import LSTMConfig, LSTMModel

    torch.manual_seed(0)
    lstm = [LSTMModel(LSTMConfig(hidden=24, kmer_input=4, kmer_embedding=4)) for _ in range(2)]
    for model in lstm:
        with torch.no_grad():
            model.module.kmer_embed.weight[:-1].normal_()
    meta = {"window_length": 60, "min_length": 20, "strands": "both"}
    rng = np.random.default_rng(1)
    codes = rng.integers(0, 4, (300, 200), dtype=np.uint8)
    config = KmerConfig(max_order=12, direct_order=6, hash_bits=12)
    kmer = KmerModel.fit_pair([(codes, np.full(300, 200), np.zeros(300, np.int64))], config=config,
                              background=config.background(), mutation_rate=0.3)
    return {"lstm": Detector(*lstm, meta), "kmer": Detector(*kmer, {**meta, "strands": "forward"})}, codes


@pytest.mark.parametrize("kind", ["lstm", "kmer"])
def test_real_models_rows_do_not_depend_on_batch_size_or_threads(kind, real_models):
    import torch

    from gooddetect.alphabet import decode

    detectors, codes = real_models
    rng = np.random.default_rng(2)
    seqs = [decode(codes[i, :n]) if i % 2 else "".join(rng.choice(list("ACGTN"), n))
            for i, n in enumerate(rng.integers(1, 200, 40).tolist())]  # mixed lengths: 1 to 3 windows
    detector = detectors[kind]
    reference = tsv(detector, chunk(*seqs), batch_size=4096, thresholds=0.1)
    threads = torch.get_num_threads()
    try:
        for n_threads in (1, 2):
            torch.set_num_threads(n_threads)
            detector.configure(Runtime(threads=n_threads, device="cpu"))
            for batch_size in (1, 7, 4096):
                assert tsv(detector, chunk(*seqs), batch_size=batch_size, thresholds=0.1) == reference
    finally:
        torch.set_num_threads(threads)
        detector.configure(Runtime(threads=1, device="cpu"))


def test_score_counts_totals():
    seqs = ["ACGTACGTAC" * 3, "AC", "N" * 20, "GATTACAGATTACA", "", "T" * 10]
    (scored,) = score(fake_detector(window_length=10, min_length=4), chunk(*seqs), batch_size=2)
    threshold = sorted(scored.score[scored.scored])[0]  # flags the two higher-scoring reads
    counts = ScoreCounts()
    counts.add(scored, call_codes(scored.scored, scored.score > threshold, None))
    assert (counts.reads, counts.scored_reads, counts.windows) == (6, 3, 3 + 2 + 1)
    assert counts.skipped == {TOO_SHORT: 2, TOO_MANY_UNKNOWN: 1}
    assert counts.as_dict(True) == {"reads": 6, "scored_reads": 3, "windows": 6, "ood": 2, "ood_fraction": 2 / 3,
                                    "in_reads": 1, "novel_reads": 2, "foreign_reads": 0, "foreign_fraction": 0.0,
                                    "unscored_reads": 3, "skipped": {TOO_MANY_UNKNOWN: 1, TOO_SHORT: 2}}
    uncalibrated = counts.as_dict(False)
    assert uncalibrated["ood"] is None and uncalibrated["ood_fraction"] is None
    assert uncalibrated["foreign_reads"] is None
    total = counts + ScoreCounts(reads=1, skipped=Counter({TOO_SHORT: 1}))
    assert (total.reads, total.scored_reads, total.skipped[TOO_SHORT]) == (7, 3, 3)
    assert counts.reads == 6  # `+` leaves its operands alone


def test_empty_input():
    assert score(fake_detector()) == []
    (scored,) = score(fake_detector(), chunk())
    assert len(scored) == 0 and tsv_rows(scored, None, np.zeros(0, np.int64), {}) == ""
