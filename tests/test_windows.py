"""Encoding, read windowing, random genome windows and training-set collection."""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

import numpy as np
import pytest
from Bio import bgzf
from hypothesis import given
from hypothesis import strategies as st

from fixtures import fasta_text, pad_batch, random_bases, revcomp_text, write_file
from gooddetect.alphabet import UNKNOWN, decode, encode, gc_fraction, reverse_complement, reverse_complement_padded
from gooddetect.errors import InputError, UsageError
from gooddetect.windows import (WindowCounts, collect_windows, cut_reads, sample_genome_windows, split_genomes,
                                sequence_slices, window_label, window_spans, with_reverse_complements)

LABEL = re.compile(r"(?P<read>.+):(?P<start>\d+)-(?P<end>\d+)", re.S)
READ_IDS = st.text(st.characters(exclude_categories=["Zs", "Zl", "Zp", "Cc", "Cf", "Cs", "Co", "Cn"])
                   | st.sampled_from(":-()+"), min_size=1, max_size=20)


def window_key(w: tuple) -> tuple:
    name, start, codes = w
    return name, start, codes.tobytes()


# ---------------------------------------------------------------------------------------------------------------
# Encoding


def test_encoding_contract():
    np.testing.assert_array_equal(encode("ACGTacgtNnRY-."), [0, 1, 2, 3, 0, 1, 2, 3, 4, 4, 4, 4, 4, 4])
    assert encode("ACGT").dtype == np.uint8
    assert decode(np.array([0, 1, 2, 3, 4], dtype=np.uint8)) == "ACGTN"


@given(st.text(alphabet="ACGTacgt"))
def test_encode_decode_round_trip(seq):
    assert decode(encode(seq)) == seq.upper()


@given(st.text())
def test_encode_any_text_maps_each_character_to_one_code(seq):
    codes = encode(seq)
    assert codes.size == len(seq) and (codes <= UNKNOWN).all()


@given(st.lists(st.integers(0, UNKNOWN)))
def test_decode_encode_round_trip(values):
    codes = np.array(values, dtype=np.uint8)
    np.testing.assert_array_equal(encode(decode(codes)), codes)


@given(st.lists(st.integers(0, UNKNOWN), min_size=1), st.integers(1, 3))
def test_reverse_complement_is_an_involution(values, rows):
    codes = np.tile(np.array(values, dtype=np.uint8), (rows, 1))
    np.testing.assert_array_equal(reverse_complement(reverse_complement(codes)), codes)


def test_reverse_complement_by_hand():
    assert revcomp_text("AACGTN") == "NACGTT"
    batch = np.stack([encode("AACG"), encode("TTTN")])
    assert [decode(row) for row in reverse_complement(batch)] == ["CGTT", "NAAA"]


@given(st.lists(st.text("ACGTN", max_size=12), min_size=1, max_size=5))
def test_reverse_complement_padded_matches_each_row(seqs):
    codes, lengths = pad_batch([encode(s) for s in seqs])
    expected, _ = pad_batch([reverse_complement(encode(s)) for s in seqs], width=codes.shape[1])
    np.testing.assert_array_equal(reverse_complement_padded(codes, lengths), expected)


def test_gc_fraction():
    codes, _ = pad_batch([encode("GGCA"), encode("ATN"), encode("NN")])
    np.testing.assert_allclose(gc_fraction(codes), [0.75, 0.0, np.nan])


# ---------------------------------------------------------------------------------------------------------------
# Windowing reads


def coverage(spans: list[tuple[int, int]], read_length: int) -> np.ndarray:
    covered = np.zeros(read_length, dtype=np.int64)
    for start, end in spans:
        covered[start:end] += 1
    return covered


@st.composite
def lengths(draw, longer_than_min: bool = True):
    length = draw(st.integers(2, 300))
    min_length = draw(st.integers(1, length))
    read_length = draw(st.integers(min_length, 2000) if longer_than_min else st.integers(0, min_length - 1))
    return length, min_length, read_length


@given(lengths())
def test_default_stride_tiles_the_read(sizes):
    length, min_length, read_length = sizes
    spans = window_spans(read_length, length, min_length=min_length)
    starts = [s for s, _ in spans]
    ends = [e for _, e in spans]
    assert spans and starts[0] == 0 and ends[-1] == read_length
    assert starts == sorted(starts) and ends == sorted(ends)
    assert all(min_length <= e - s <= length for s, e in spans)
    covered = coverage(spans, read_length)
    assert (covered >= 1).all()
    if length >= 2 * min_length:  # always possible then: every base in exactly one window
        assert (covered == 1).all()
    assert all(e - s == length for s, e in spans[:-2])  # only the last one or two windows are not full


@given(lengths(), st.data())
def test_sliding_stride_covers_every_base(sizes, data):
    length, min_length, read_length = sizes
    stride = data.draw(st.integers(1, max(1, length - 1)))
    spans = window_spans(read_length, length, stride, min_length)
    assert spans[0][0] == 0 and spans[-1][1] == read_length
    assert (coverage(spans, read_length) >= 1).all()
    if read_length > length:
        assert all(e - s == length for s, e in spans)
        assert [s for s, _ in spans[:-1]] == list(range(0, stride * (len(spans) - 1), stride))
    else:
        assert spans == [(0, read_length)]


@given(lengths(longer_than_min=False))
def test_reads_shorter_than_min_length_give_no_window(sizes):
    length, min_length, read_length = sizes
    assert window_spans(read_length, length, min_length=min_length) == []


def test_window_spans_by_hand():
    assert window_spans(600, 250, min_length=50) == [(0, 250), (250, 500), (500, 600)]
    assert window_spans(510, 250, min_length=50) == [(0, 250), (250, 380), (380, 510)]
    assert window_spans(500, 250, min_length=50) == [(0, 250), (250, 500)]
    assert window_spans(130, 60, min_length=50) == [(0, 60), (60, 120), (70, 130)]  # halves would be < 50
    assert window_spans(300, 250, 100, 50) == [(0, 250), (50, 300)]


def test_min_length_above_window_length_is_a_usage_error():
    with pytest.raises(UsageError):
        window_spans(500, 50, min_length=100)
    with pytest.raises(UsageError):
        cut_reads(["ACGT"], 50, min_length=100)
    with pytest.raises(UsageError, match="stride"):
        cut_reads(["ACGT"], 50, stride=60, min_length=10)


@given(st.lists(st.text("ACGTNacgt-", max_size=40), max_size=8), st.integers(4, 15), st.data())
def test_cut_reads_equals_each_read_windowed_alone(seqs, length, data):
    min_length = data.draw(st.integers(1, length))
    stride = data.draw(st.none() | st.integers(1, length))
    expected = [(read, codes[start:end]) for read, seq in enumerate(seqs) for codes in [encode(seq)]
                for start, end in window_spans(len(seq), length, stride, min_length)
                if np.count_nonzero(codes[start:end] < UNKNOWN) >= min_length]
    cut = cut_reads(seqs, length, stride, min_length)
    assert cut.read_lengths.tolist() == [len(s) for s in seqs]
    assert cut.reads.tolist() == [read for read, _ in expected]
    for first, last in [(0, len(expected)), (len(expected) // 2, len(expected))]:
        if last > first:
            codes, lengths = cut.padded(first, last)
            want_codes, want_lengths = pad_batch([w for _, w in expected[first:last]])
            assert np.array_equal(codes, want_codes) and np.array_equal(lengths, want_lengths)


@given(READ_IDS, st.integers(0, 10**9), st.integers(1, 10**4))
def test_window_label_round_trips(read, start, size):
    match = LABEL.fullmatch(window_label(read, start, start + size))
    assert match is not None
    assert (match["read"], int(match["start"]) - 1, int(match["end"])) == (read, start, start + size)


def test_window_label_is_one_based_inclusive():
    assert window_label("chr1:x", 0, 250) == "chr1:x:1-250"


def make_reads() -> dict[str, str]:
    rng = np.random.default_rng(3)
    seqs = {"short": random_bases(rng, 30), "one": random_bases(rng, 90), "three": random_bases(rng, 250)}
    with_n = random_bases(rng, 220)
    # length 100, min 40: spans 0-100, 100-160 (25 N: 35 known bases), 160-220 (10 N: 50 known)
    seqs["with_n"] = with_n[:110] + "N" * 25 + with_n[135:170] + "N" * 10 + with_n[180:]
    return seqs


def test_cut_reads_counts_content_and_masks_unknown_bases():
    seqs = make_reads()
    names = list(seqs)
    cut = cut_reads(list(seqs.values()), length=100, min_length=40)
    counts = WindowCounts()
    counts.add(cut, 40)
    starts, ends = cut.spans()
    got = [(names[r], s, e) for r, s, e in zip(cut.reads.tolist(), starts.tolist(), ends.tolist())]
    # with_n 100-160 holds 25 N among 60 bases: 35 known < 40, dropped; 160-220 keeps its 10 N, masked
    assert got == [("one", 0, 90), ("three", 0, 100), ("three", 100, 200), ("three", 200, 250),
                   ("with_n", 0, 100), ("with_n", 160, 220)]
    codes, lengths = cut.padded(0, len(cut))
    for (name, s, e), row, n in zip(got, codes, lengths):
        assert decode(row[:n]) == seqs[name][s:e].upper() and (row[n:] == UNKNOWN).all()
    assert counts.as_dict() == {"reads": 4, "windows": 6, "reads_too_short": 1, "windows_too_many_unknown": 1,
                                "duplicate_ids": 0}


def test_with_reverse_complements_follows_each_window():
    codes, lengths = pad_batch([encode("ACGTT"), encode("GGA")], width=6)
    both, both_lengths = with_reverse_complements(codes, lengths)
    assert [decode(row[:n]) for row, n in zip(both, both_lengths)] == ["ACGTT", "AACGT", "GGA", "TCC"]


@given(st.lists(st.text("ACGTN", max_size=30), min_size=1, max_size=6), st.integers(1, 12), st.integers(0, 5))
def test_sequence_slices_give_every_position_once_with_its_context(seqs, slice_length, overlap):
    rows, lengths, skip = sequence_slices(seqs, slice_length, overlap)
    counted = "".join(decode(row[k:n]) for row, n, k in zip(rows, lengths, skip))
    assert counted == "".join(s.upper() for s in seqs)
    position = 0
    for row, n, k in zip(rows, lengths, skip):  # the context bases are the ones just before, in the same sequence
        assert k <= overlap and (row[n:] == UNKNOWN).all()
        position += n - k


# ---------------------------------------------------------------------------------------------------------------
# Random windows from genomes

WINDOW = 100


@pytest.fixture(scope="module")
def genome() -> dict[str, str]:
    rng = np.random.default_rng(11)
    chr1 = random_bases(rng, 3000)
    return {"chr1": chr1[:1000] + "N" * 600 + chr1[1600:], "chr2": random_bases(rng, 1234),
            "tiny": random_bases(rng, WINDOW - 1)}  # too short to hold a window: never drawn


def genome_file(directory: Path, genome: dict[str, str], kind: str, name: str) -> Path:
    text = fasta_text({"chr1 description here": genome["chr1"], **{k: genome[k] for k in ("chr2", "tiny")}})
    if kind == "bgzip":
        writer = bgzf.BgzfWriter(str(directory / name), "wb")
        writer.write(text.encode())
        writer.close()
        return directory / name
    return write_file(directory, name, text, gz=kind == "gzip")


def sample(path, n=40, seed=5, counts=None, min_length=WINDOW) -> list[tuple]:
    counts = WindowCounts() if counts is None else counts
    return list(sample_genome_windows(str(path), n, np.random.default_rng(seed), counts, WINDOW, min_length))


def assert_windows_in_genome(windows: list[tuple], genome: dict[str, str], min_length: int = WINDOW) -> None:
    for name, start, codes in windows:
        assert codes.size == WINDOW and decode(codes) == genome[name][start:start + WINDOW].upper()
        assert (codes < UNKNOWN).sum() >= min_length


def test_genome_windows_come_from_the_genome_with_enough_known_bases(tmp_path, genome):
    counts = WindowCounts()
    windows = sample(genome_file(tmp_path, genome, "plain", "g.fa"), n=200, counts=counts)
    assert len(windows) == counts.windows == 200
    assert_windows_in_genome(windows, genome)
    assert {name for name, _, _ in windows} == {"chr1", "chr2"}
    assert counts.windows_too_many_unknown > 0  # the N block was hit and redrawn


def test_genome_windows_may_hold_masked_unknown_bases(tmp_path, genome):
    windows = sample(genome_file(tmp_path, genome, "plain", "g.fa"), n=300, min_length=60)
    assert_windows_in_genome(windows, genome, min_length=60)
    assert any((codes == UNKNOWN).any() for _, _, codes in windows)


def test_genome_windows_deterministic_per_seed(tmp_path, genome):
    path = genome_file(tmp_path, genome, "plain", "g.fa")
    first = [window_key(w) for w in sample(path, seed=1)]
    assert first == [window_key(w) for w in sample(path, seed=1)]
    assert first != [window_key(w) for w in sample(path, seed=2)]


@pytest.mark.parametrize("kind, name", [("plain", "named.gz"), ("gzip", "g.fa.gz"), ("gzip", "named.fa"),
                                        ("bgzip", "g.fa.gz"), ("bgzip", "g.fa.bgz"), ("bgzip", "named.fa")])
def test_genome_windows_same_for_every_compression(tmp_path, genome, kind, name):
    expected = [window_key(w) for w in sample(genome_file(tmp_path, genome, "plain", "reference.fa"))]
    (tmp_path / "other").mkdir()
    assert [window_key(w) for w in sample(genome_file(tmp_path / "other", genome, kind, name))] == expected


def test_genome_index_failing_in_place_falls_back_to_a_private_copy(tmp_path, genome, monkeypatch):
    import pyfaidx

    expected = [window_key(w) for w in sample(genome_file(tmp_path, genome, "plain", "reference.fa"))]
    source = genome_file(tmp_path, genome, "plain", "g.fa")
    real_fasta = pyfaidx.Fasta

    def fasta_unwritable_beside_source(filename, *args, **kwargs):
        if Path(filename) == source:
            raise OSError(f"{filename}.fai may not be writable")
        return real_fasta(filename, *args, **kwargs)

    private_tmp = tmp_path / "tmp"
    private_tmp.mkdir()
    monkeypatch.setattr(pyfaidx, "Fasta", fasta_unwritable_beside_source)
    monkeypatch.setattr(tempfile, "tempdir", str(private_tmp))
    assert [window_key(w) for w in sample(source)] == expected
    assert not list(private_tmp.iterdir())  # the private copy is removed afterwards
    assert not (tmp_path / "g.fa.fai").exists()


def test_genome_in_read_only_directory(tmp_path, genome):
    expected = [window_key(w) for w in sample(genome_file(tmp_path, genome, "plain", "reference.fa"))]
    locked = tmp_path / "locked"
    locked.mkdir()
    path = genome_file(locked, genome, "plain", "g.fa")
    locked.chmod(0o555)
    try:
        if os.access(locked, os.W_OK):
            pytest.skip("running as a user (root) who can write to a read-only directory")
        assert [window_key(w) for w in sample(path)] == expected
    finally:
        locked.chmod(0o755)


def test_stale_index_is_rebuilt(tmp_path, genome):
    path = genome_file(tmp_path, genome, "plain", "g.fa")
    sample(path)
    assert (tmp_path / "g.fa.fai").exists()
    changed = {"chrX": genome["chr2"], "chr1": genome["chr1"][::-1]}
    path.write_text(fasta_text(changed, width=70))
    later = os.stat(tmp_path / "g.fa.fai").st_mtime + 10
    os.utime(path, (later, later))
    windows = sample(path)
    assert {name for name, _, _ in windows} == {"chrX", "chr1"}
    assert_windows_in_genome(windows, changed)


@pytest.mark.parametrize("content, pattern", [
    (">a\n" + "ACGT" * 10 + "\n", r"no record is at least 100 bp"),
    (">a\n" + "N" * 300 + "\n", r"could not find"),
    (">a\n" + "A" * 60 + "\n" + "A" * 30 + "\n" + "A" * 60 + "\n", r"cannot index"),  # ragged line lengths
    (">a\n" + "A" * 200 + "\n>a\n" + "C" * 200 + "\n", r"cannot index"),  # duplicate names
])
def test_unusable_genomes(tmp_path, content, pattern):
    path = write_file(tmp_path, "bad.fa", content)
    with pytest.raises(InputError, match=pattern) as info:
        sample(path, n=3)
    assert str(info.value).startswith(f"{path}: ")


@pytest.mark.parametrize("path", ["-", "."])
def test_genome_sampling_needs_a_regular_file(path):
    with pytest.raises(InputError, match="regular file"):
        sample(path)


# ---------------------------------------------------------------------------------------------------------------
# Training sets


@pytest.fixture
def reads_file(tmp_path) -> Path:
    rng = np.random.default_rng(8)
    return write_file(tmp_path, "reads.fq", "".join(f"@r{i}\n{s}\n+\n{'I' * len(s)}\n" for i, s in
                                                    enumerate(random_bases(rng, 250) for _ in range(30))))


def test_collect_windows_all(reads_file):
    counts = WindowCounts()
    windows = collect_windows([str(reads_file)], counts, length=100, min_length=40)
    seqs = [line for line in reads_file.read_text().splitlines()[1::4]]
    cut = cut_reads(seqs, 100, None, 40)
    assert windows.codes.shape == (90, 100) and windows.codes.dtype == np.uint8 and windows.labels is None
    np.testing.assert_array_equal(windows.codes, cut.padded(0, len(cut), width=100)[0])
    np.testing.assert_array_equal(windows.lengths, cut.lengths)
    assert counts.files == [str(reads_file)] and counts.windows == 90


def test_collect_windows_reservoir_is_exact_and_deterministic(reads_file):
    def collect(seed):
        return collect_windows([str(reads_file)], WindowCounts(), length=100, min_length=40, max_windows=7,
                               seed=seed, classes=lambda file, ids: np.array([int(i[1:]) for i in ids]))

    first = collect(3)
    assert first.codes.shape == (7, 100) and first.lengths.shape == (7,)
    np.testing.assert_array_equal(first.codes, collect(3).codes)
    assert not np.array_equal(first.codes, collect(4).codes)
    everything = collect_windows([str(reads_file)], WindowCounts(), length=100, min_length=40,
                                 classes=lambda file, ids: np.array([int(i[1:]) for i in ids]))
    pairs = {(row.tobytes(), label) for row, label in zip(everything.codes, everything.labels.tolist())}
    assert {(row.tobytes(), label) for row, label in zip(first.codes, first.labels.tolist())} <= pairs


def test_collect_windows_from_genomes(tmp_path, genome):
    paths = [str(genome_file(tmp_path, genome, "plain", "a.fa")), str(genome_file(tmp_path, genome, "gzip", "b.fa.gz"))]
    counts = WindowCounts()
    windows = collect_windows(paths, counts, length=WINDOW, windows_per_file=25, seed=2,
                              classes=lambda file, ids: np.full(len(ids), file))
    assert windows.codes.shape == (50, WINDOW) and (windows.lengths == WINDOW).all()
    assert windows.labels.tolist() == [0] * 25 + [1] * 25 and counts.windows == 50


def test_collect_windows_with_nothing_usable(tmp_path):
    path = write_file(tmp_path, "short.fa", ">a\nACGT\n>b\nNNNNNNNNNNNNNNNNNNNN\n")
    with pytest.raises(InputError, match=r"no usable window \(1 reads shorter than 10 bp, 1 windows with fewer"):
        collect_windows([str(path)], WindowCounts(), length=20, min_length=10)


def test_split_genomes_holds_out_whole_blocks_and_trains_inside_records_and_between_gaps(tmp_path):
    rng = np.random.default_rng(11)
    records = {"chr": random_bases(rng, 30_000), "gapped": random_bases(rng, 11_000) + "N" * 15 +
               random_bases(rng, 9_000), "plasmid": random_bases(rng, 400), "tiny": random_bases(rng, 100)}
    path = write_file(tmp_path, "g.fa.gz", fasta_text(records), gz=True)
    split = split_genomes([path], length=250, val_fraction=0.3, seed=3)
    assert split.stats["records"] == 4
    assert split.stats["bases"] == 50_515 and split.stats["gap_bases"] == 15
    assert split.stats["val_blocks"] == 2 and split.stats["stretches"] == 5  # blocks: 3 + 1 + 1 + 1 + 1 → round(2.1)
    pieces = [decode(split.sequence[s:s + n]) for s, n in zip(split.starts, split.lengths)]
    upper = {name: seq.upper() for name, seq in records.items()}
    assert all(n >= 250 for n in split.lengths) and not any(upper["tiny"] in piece for piece in pieces)
    assert all(any(piece in seq for seq in upper.values()) for piece in pieces)  # inside one record, no gap
    val = [decode(row[:n]) for row, n in zip(split.val.codes, split.val.lengths)]
    assert all(any(w in seq for seq in upper.values()) for w in val)
    stats = split.stats  # every held-out block is tiled whole; every base is trained on, held out or too short
    assert sum(map(len, val)) == stats["val_bases"] > 0 and stats["val_windows"] == len(val)
    assert stats["train_bases"] + stats["val_bases"] + stats["unused_bases"] + stats["gap_bases"] == stats["bases"]
    assert not any(w[:50] in piece for w in val for piece in pieces)  # held-out blocks are never trained on
    again = split_genomes([path], length=250, val_fraction=0.3, seed=3)
    np.testing.assert_array_equal(again.starts, split.starts)
    other = split_genomes([path], length=250, val_fraction=0.3, seed=4)
    assert not np.array_equal(other.starts, split.starts) or not np.array_equal(other.lengths, split.lengths)
    with pytest.raises(InputError, match="too short to hold out"):
        split_genomes([write_file(tmp_path, "s.fa", fasta_text({"a": random_bases(rng, 5_000)}))])


@given(st.lists(st.integers(30, 200), min_size=1, max_size=5), st.integers(0, 2**32 - 1))
def test_genome_windows_lie_inside_one_stretch_on_either_strand(stretch_lengths, seed):
    from gooddetect.training.data import GenomeWindows

    rng = np.random.default_rng(seed)
    starts = np.cumsum([0, *(n + 7 for n in stretch_lengths[:-1])])
    sequence = rng.integers(0, 4, int(starts[-1] + stretch_lengths[-1])).astype(np.uint8)
    source = GenomeWindows(sequence, starts, np.array(stretch_lengths), 30)
    windows = source.epoch(rng)(0, len(source))
    texts = [decode(sequence[s:s + n]) for s, n in zip(starts, stretch_lengths)]
    for row in windows:
        forward, backward = decode(row), decode(reverse_complement(row))
        assert any(forward in t or backward in t for t in texts)
    everywhere = source.windows(np.arange(source.positions[-1]), np.zeros(source.positions[-1], bool))
    assert sorted(map(decode, everywhere)) == sorted(t[i:i + 30] for t in texts for i in range(len(t) - 29))


@given(st.lists(st.text(alphabet="ACGTNacgtn-é€", max_size=40), max_size=20))
def test_encoding_a_list_equals_encoding_the_joined_text(seqs):
    """encode_all writes the codes of the sequences end to end and nothing past them; a non-ASCII letter is unknown,
    as in encode."""
    from gooddetect.alphabet import encode_all

    total = sum(map(len, seqs))
    codes = np.full(total + 3, 9, dtype=np.uint8)
    encode_all(seqs, codes)
    np.testing.assert_array_equal(codes[:total], encode("".join(seqs)))
    assert (codes[total:] == 9).all()


def test_encoding_a_list_refuses_a_short_output():
    from gooddetect.alphabet import encode_all

    with pytest.raises(ValueError, match="shorter"):
        encode_all(["ACGT", "AC"], np.zeros(5, dtype=np.uint8))


def test_encoding_into_an_array_writes_the_codes_there():
    out = np.full(6, 9, dtype=np.uint8)
    encode("ACGTN", out=out[1:])
    np.testing.assert_array_equal(out, [9, 0, 1, 2, 3, 4])
    returned = encode("acgt")
    returned[0] = 3  # a fresh array the caller may write
    assert returned.tolist() == [3, 1, 2, 3]
