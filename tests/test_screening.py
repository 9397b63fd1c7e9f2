"""`gooddetect screen`: the segmentation on synthetic tracks, gaps, and the command on small sequences built from the
example data (the session's small k-mer model), through click's CliRunner and a real subprocess."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from fixtures import DATA, gd, read_tsv
from gooddetect._core.segment import viterbi
from gooddetect.cli import main
from gooddetect.screening import Segmentation, Track, call, sequence_threshold
from gooddetect.windows import GAP_MIN


def segment(evidence: np.ndarray, penalty: float) -> np.ndarray:
    foreign = np.zeros(len(evidence), dtype=np.bool_)
    viterbi(np.asarray(evidence, dtype=np.float64), penalty, foreign)
    return foreign


def brute_force(evidence: list[float], penalty: float) -> float:
    """The best path score over every in/foreign labelling (small n)."""
    best = -np.inf
    for mask in range(1 << len(evidence)):
        states = [(mask >> b) & 1 for b in range(len(evidence))]
        changes = sum(a != b for a, b in zip([0] + states, states))
        best = max(best, sum(e for e, s in zip(evidence, states) if s) - penalty * changes)
    return best


def path_score(evidence, foreign, penalty) -> float:
    states = [0] + [int(f) for f in foreign]
    return float(np.sum(np.asarray(evidence)[foreign])) - penalty * sum(a != b for a, b in zip(states, states[1:]))


@settings(max_examples=200)
@given(st.lists(st.floats(-5, 5), min_size=1, max_size=10), st.floats(0, 6))
def test_the_segmentation_is_the_best_path(evidence, penalty):
    foreign = segment(np.array(evidence), penalty)
    assert path_score(evidence, foreign, penalty) == pytest.approx(brute_force(evidence, penalty), abs=1e-9)


def test_known_change_points_are_recovered_on_a_noisy_track():
    """Bins of 50 bases, in-distribution per-base scores around -0.5, foreign around +0.5 (sd 0.3 per bin):
    the two foreign blocks come back exactly; isolated outliers do not."""
    rng = np.random.default_rng(1)
    truth = np.zeros(400, dtype=bool)
    truth[100:140] = truth[300:380] = True
    score = np.where(truth, 0.5, -0.5) + rng.normal(0, 0.3, 400)
    score[[20, 200, 250]] = 1.5  # isolated high bins inside in-distribution sequence
    foreign = segment(50 * score, penalty=200.0)
    np.testing.assert_array_equal(foreign, truth)


def track_of(scores: np.ndarray, bin_size: int = 50, n: np.ndarray | None = None) -> Track:
    n = np.full(len(scores), bin_size) if n is None else n
    return Track(fg=-scores * n, bg=np.zeros(len(scores)), n=n)


def test_a_gap_of_unknown_bases_is_never_foreign_and_splits_a_range():
    rule = Segmentation(threshold=0.0, penalty=50.0, bin_size=50, min_range=100)
    sequence = "A" * 1000 + "N" * 200 + "C" * 1000 + "n" * (GAP_MIN - 1) + "G" * 800
    bins = -(-len(sequence) // 50)
    scores = np.full(bins, 1.0)  # everything scores as foreign
    n = np.array([sum(c in "ACGT" for c in sequence[b * 50:(b + 1) * 50]) for b in range(bins)])
    result = call(track_of(scores, n=n), sequence, rule)
    assert [(s, e) for s, e, _ in result.ranges] == [(0, 1000), (1200, len(sequence))]  # a short N run is no gap
    assert result.action == "EXCLUDE" and result.foreign_bases == len(sequence) - 200


def test_actions():
    rule = Segmentation(threshold=0.0, penalty=50.0, bin_size=50, min_range=500, exclude_fraction=0.5,
                        min_length=250)
    clean = np.full(100, -1.0)
    assert call(track_of(clean), "A" * 5000, rule).action == "PASS"
    insert = clean.copy()
    insert[40:60] = 1.0
    trimmed = call(track_of(insert), "A" * 5000, rule)
    assert trimmed.action == "TRIM" and [(s, e) for s, e, _ in trimmed.ranges] == [(2000, 3000)]
    assert trimmed.ranges[0][2] == pytest.approx(-1.0)  # the range's per-base LLR
    short = clean.copy()
    short[40:44] = 1.0  # 200 bp: found, but shorter than min_range
    review = call(track_of(short), "A" * 5000, rule)
    assert review.action == "REVIEW" and not review.ranges and review.short_ranges == 1
    mostly = np.full(100, 1.0)
    mostly[:10] = -1.0
    assert call(track_of(mostly), "A" * 5000, rule).action == "EXCLUDE"
    assert call(track_of(np.full(4, -1.0)), "A" * 200, rule).action == "REVIEW"  # too short to judge


def test_the_threshold_follows_a_sequences_in_distribution_level():
    """Errors raise in-distribution scores: T is the sequence's lower quartile plus the margin, pulled towards the
    ceiling near it, and kept within [threshold, ceiling]."""
    rule = Segmentation(threshold=-0.1, penalty=100.0, margin=0.2, ceiling=0.2)
    n = np.full(100, 50)
    assert sequence_threshold(np.full(100, -0.6), n, rule) == -0.1  # clean: the calibrated threshold
    assert sequence_threshold(np.full(100, -0.25), n, rule) == pytest.approx(-0.05)  # q + margin
    assert sequence_threshold(np.full(100, 0.0), n, rule) == pytest.approx(0.16)  # 80 % of the way to the ceiling
    assert sequence_threshold(np.full(100, 0.5), n, rule) == 0.2
    assert sequence_threshold(np.full(100, 0.5), n, Segmentation(threshold=-0.1, penalty=100.0)) == -0.1
    noisy = np.full(200, 0.05) + np.random.default_rng(0).normal(0, 0.05, 200)  # a read with many errors
    noisy[80:120] = 0.3  # and a foreign segment
    result = call(track_of(noisy), "A" * 10_000, rule)
    assert [(s, e) for s, e, _ in result.ranges] == [(4000, 6000)]
    assert call(track_of(noisy), "A" * 10_000, Segmentation(threshold=-0.1, penalty=100.0)).action == "EXCLUDE"


# -- the command ---------------------------------------------------------------------------------------------------


def chimera() -> tuple[str, str]:
    with gzip.open(DATA / "chimera.fa.gz", "rt") as handle:
        header, sequence = handle.read().split("\n")[:2]
    return header[1:], sequence


def screen(*args) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["screen", *map(str, args)], catch_exceptions=False)
    return result.exit_code, result.output


@pytest.fixture(scope="module")
def sequences(tmp_path_factory) -> Path:
    """The 25 kb chimera (5 kb of Epstein–Barr virus inside E. coli), a clean E. coli stretch with a scaffold gap
    and soft-masked bases, an all-virus sequence, a short one, and one with IUPAC codes."""
    name, seq = chimera()
    path = tmp_path_factory.mktemp("screen") / "seqs.fa"
    host = seq[:10_000] + seq[15_000:]
    records = {"chimera": seq, "host_with_gap": host[:8000] + "N" * 300 + host[8000:12000].lower() + host[12000:],
               "virus": seq[10_000:15_000], "short": host[:200], "iupac": host[:3000] + "RYKM" * 25 + host[3000:6000]}
    path.write_text("".join(f">{k} some comment\n{v}\n" for k, v in records.items()))
    return path


def test_screen_finds_the_insert_and_reports_every_sequence(kmer_model, sequences, tmp_path):
    report, bed = tmp_path / "r.tsv", tmp_path / "r.bed"
    code, output = screen(kmer_model, sequences, "-o", report, "--bed", bed, "--bedgraph", tmp_path / "t.bedgraph")
    assert code == 0, output
    rows = {r["seq_id"]: r for r in read_tsv(report.read_text())}
    assert list(rows) == ["chimera", "host_with_gap", "virus", "short", "iupac"]
    assert rows["chimera"]["action"] == "TRIM" and rows["chimera"]["ranges"] == "1"
    assert rows["host_with_gap"]["action"] == "PASS" and rows["iupac"]["action"] == "PASS"
    assert rows["virus"]["action"] == "EXCLUDE" and rows["short"]["action"] == "REVIEW"
    (line,) = [b for b in bed.read_text().splitlines() if b.startswith("chimera\t")]
    _, start, end, name, llr = line.split("\t")
    assert abs(int(start) - 10_000) <= 250 and abs(int(end) - 15_000) <= 250 and name == "foreign"
    assert float(llr) < 0
    assert int(rows["chimera"]["foreign_bases"]) == int(end) - int(start)
    track = (tmp_path / "t.bedgraph").read_text().splitlines()
    assert track[0].startswith("track type=bedGraph") and track[1].split("\t")[:3] == ["chimera", "0", "50"]


def test_cut_pieces_and_foreign_ranges_reassemble_every_sequence(kmer_model, sequences, tmp_path):
    clean, foreign = tmp_path / "clean.fa", tmp_path / "foreign.fa"
    code, output = screen(kmer_model, sequences, "-o", tmp_path / "r.tsv", "--clean-out", clean, "--foreign-out",
                          foreign, "--exclude-fraction", "1")
    assert code == 0, output
    pieces: dict[str, list[tuple[int, str]]] = {}
    for text in (clean.read_text(), foreign.read_text()):
        lines = text.splitlines()
        for header, seq in zip(lines[::2], lines[1::2]):
            name = header[1:].split()[0]
            seq_id, span = (name.rsplit(":", 1) + ["1-"])[:2] if ":" in name else (name, "1-")
            pieces.setdefault(seq_id, []).append((int(span.split("-")[0]), seq))
    originals = dict(zip(*[iter(l[1:].split()[0] if l.startswith(">") else l
                                for l in sequences.read_text().splitlines())] * 2))
    for seq_id, original in originals.items():
        assert "".join(seq for _, seq in sorted(pieces[seq_id])) == original, seq_id
    assert ">chimera:1-" in clean.read_text() and ">chimera:" in foreign.read_text()
    assert ">host_with_gap some comment\n" in clean.read_text()  # untouched records keep their header


def test_mask_keeps_coordinates_and_exclude_is_left_out(kmer_model, sequences, tmp_path):
    clean = tmp_path / "masked.fa"
    code, _ = screen(kmer_model, sequences, "-o", tmp_path / "r.tsv", "--clean-out", clean, "--mask")
    assert code == 0
    records = dict(zip(*[iter(clean.read_text().splitlines())] * 2))
    assert ">virus some comment" not in records  # EXCLUDE
    masked = records[">chimera some comment"]
    assert len(masked) == 25_000 and masked[12_000:13_000] == "N" * 1000 and "N" not in masked[:9_900]


def test_fastq_long_reads_keep_their_qualities(kmer_model, tmp_path):
    _, seq = chimera()
    quality = "".join(chr(33 + (i % 40)) for i in range(len(seq)))
    reads = tmp_path / "reads.fq"
    reads.write_text(f"@read1\n{seq}\n+\n{quality}\n")
    clean = tmp_path / "clean.fq"
    code, _ = screen(kmer_model, reads, "-o", tmp_path / "r.tsv", "--clean-out", clean)
    assert code == 0
    lines = clean.read_text().splitlines()
    for header, bases, plus, quals in zip(*[iter(lines)] * 4):
        start, end = (int(x) for x in header.split(":")[1].split("-"))
        assert bases == seq[start - 1:end] and quals == quality[start - 1:end] and plus == "+"


def test_results_do_not_depend_on_threads(kmer_model, sequences, tmp_path):
    outputs = []
    for threads in (1, 2):
        report, bed = tmp_path / f"r{threads}.tsv", tmp_path / f"r{threads}.bed"
        assert screen(kmer_model, sequences, "-o", report, "--bed", bed, "--threads", threads)[0] == 0
        outputs.append((report.read_bytes(), bed.read_bytes()))
    assert outputs[0] == outputs[1]


def test_bad_input_is_one_line_and_leaves_nothing(kmer_model, tiny_model, sequences, tmp_path):
    uncalibrated = tmp_path / "u.gdm"
    gd("train", *sorted((DATA / "train").glob("*.fa.gz")), "-o", uncalibrated, "--arch", "kmer", "--max-order", "6",
       "--threads", "1")
    done = gd("screen", uncalibrated, sequences, "-o", tmp_path / "r.tsv", check=False)
    assert done.returncode == 1 and b"needs a threshold: calibrate the model, or give --threshold" in done.stderr
    assert not (tmp_path / "r.tsv").exists()
    done = gd("screen", kmer_model, sequences, "-o", tmp_path / "r.tsv", "--clean-out", tmp_path / "no" / "c.fa",
              check=False)
    assert done.returncode == 1 and b"does not exist" in done.stderr and not (tmp_path / "r.tsv").exists()
    empty = tmp_path / "empty.fa"
    empty.write_text(">a\nACGT\n>b\n>c\nACGT\n")
    done = gd("screen", kmer_model, empty, "-o", tmp_path / "r.tsv", check=False)
    assert done.returncode == 1 and b"record 2 (b): header with no sequence" in done.stderr
    assert not (tmp_path / "r.tsv").exists()
    duplicated = tmp_path / "dup.fa"
    duplicated.write_text(sequences.read_text() * 2)
    done = gd("screen", kmer_model, duplicated, "-o", tmp_path / "d.tsv", "--multiqc", tmp_path / "s_mqc.json")
    assert b"5 duplicate ids" in done.stderr and len(read_tsv((tmp_path / "d.tsv").read_text())) == 10
    table = json.loads((tmp_path / "s_mqc.json").read_text())
    assert table["data"]["dup"]["sequences"] == 10 and table["data"]["dup"]["trim"] == 2
