"""FASTA/FASTQ reading through dnaio: formats, compression by magic bytes, line endings, pairs, and an InputError
naming file and record for every bad input."""

from __future__ import annotations

import gzip
import io
import re
import sys
import tempfile
from pathlib import Path

import pytest
from Bio import bgzf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fixtures import BAD_INPUTS, FASTA, write_file
from gooddetect.errors import InputError, UsageError
from gooddetect import seqio
from gooddetect.seqio import DuplicateCounter, format_record, read_chunks, read_fragments, read_sequences

FASTA_RECORDS = [("read1", "ACGTACGTACGGTTAA"), ("read2", "acgtnRYacgt"), ("read3", "A-C.G*T")]
# The second quality line starts with '@', which a FASTQ reader must not take for a header.
FASTQ = "@q1 desc\nACGTN\n+\nIIIII\n@q2\nacgt\n+q2\n@III\n"
FASTQ_RECORDS = [("q1", "ACGTN"), ("q2", "acgt")]


def read(path) -> list[tuple[str, str]]:
    return list(read_sequences(str(path)))


def bgzip(data: bytes, path: Path) -> Path:
    writer = bgzf.BgzfWriter(str(path), "wb")
    writer.write(data)
    writer.close()
    return path


def test_multiline_fasta_ids_are_first_word(tmp_path):
    assert read(write_file(tmp_path, "a.fa", FASTA)) == FASTA_RECORDS


def test_fastq_four_line_records(tmp_path):
    assert read(write_file(tmp_path, "a.fq", FASTQ)) == FASTQ_RECORDS


@pytest.mark.parametrize("name", ["reads.fa", "reads.fa.gz", "reads.txt"])
@pytest.mark.parametrize("compression", ["plain", "gzip", "bgzip"])
def test_compression_is_sniffed_from_content_not_name(tmp_path, name, compression):
    data = FASTA.encode()
    if compression == "bgzip":
        path = bgzip(data, tmp_path / name)
        assert path.read_bytes()[12:14] == b"BC"
    else:
        path = write_file(tmp_path, name, data, gz=compression == "gzip")
    assert read(path) == FASTA_RECORDS


def test_bgzip_with_many_blocks(tmp_path):
    records = "".join(f">r{i}\n{'ACGT' * 50}\n" for i in range(500))  # ~110 kB: several 64 kB BGZF blocks
    path = bgzip(records.encode(), tmp_path / "many.fq")
    got = read(path)
    assert [r for r, _ in got] == [f"r{i}" for i in range(500)]
    assert all(s == "ACGT" * 50 for _, s in got)


@pytest.mark.parametrize("text, expected", [(FASTA, FASTA_RECORDS), (FASTQ, FASTQ_RECORDS)])
def test_windows_line_endings(tmp_path, text, expected):
    assert read(write_file(tmp_path, "crlf", text.replace("\n", "\r\n"))) == expected


def test_header_with_leading_blanks_gives_the_first_word(tmp_path):
    assert read(write_file(tmp_path, "blank.fa", ">  r1 desc\nACGT\n")) == [("r1", "ACGT")]


def test_leading_blank_lines_before_fasta(tmp_path):
    assert read(write_file(tmp_path, "blank.fa", "\n\n" + FASTA)) == FASTA_RECORDS


def test_blank_lines_after_the_last_fastq_record_end_the_file(tmp_path):
    assert read(write_file(tmp_path, "tail.fq", FASTQ + "\n\n")) == FASTQ_RECORDS


def test_stdin_dash(monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(gzip.compress(FASTQ.encode()))))
    assert read("-") == FASTQ_RECORDS


def test_stdin_errors_name_stdin(monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"")))
    with pytest.raises(InputError, match=r"^<stdin>: empty file"):
        read("-")


def test_reading_is_lazy_chunks_before_an_error_are_yielded(tmp_path):
    path = write_file(tmp_path, "late.fq", FASTQ + "@q3\nACGT\n+\nIII\n")
    chunks = read_chunks(str(path), max_records=2)
    first = next(chunks)
    assert list(zip(first.ids, first.seqs)) == FASTQ_RECORDS
    with pytest.raises(InputError, match=r"record 3"):
        next(chunks)


def test_records_keep_header_comment_and_qualities(tmp_path):
    chunk = next(read_chunks(str(write_file(tmp_path, "a.fq", FASTQ))))
    # the '+' lines are written as the file's first record has them (here: bare)
    assert [format_record(r, chunk.format, chunk.two_headers) for r in chunk.records] == [
        b"@q1 desc\nACGTN\n+\nIIIII\n", b"@q2\nacgt\n+\n@III\n"]
    repeated = "@q1 desc\nACGTN\n+q1 desc\nIIIII\n"
    chunk = next(read_chunks(str(write_file(tmp_path, "b.fq", repeated))))
    assert format_record(chunk.records[0], chunk.format, chunk.two_headers) == repeated.encode()
    fasta = next(read_chunks(str(write_file(tmp_path, "a.fa", FASTA))))
    assert format_record(fasta.records[0], fasta.format) == b">read1 first read\nACGTACGTACGGTTAA\n"


# name, content, expected message pattern after "<path>: " (the record where there is one)


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_raises_input_error_naming_file_and_record(tmp_path, case):
    name, content, pattern = BAD_INPUTS[case]
    path = write_file(tmp_path, name, content)
    with pytest.raises(InputError) as info:
        read(path)
    message = str(info.value)
    assert message.startswith(f"{path}: ")
    assert "\n" not in message
    assert re.search(pattern, message), message


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match=r"nope\.fa: no such file"):
        read(tmp_path / "nope.fa")


def test_directory_as_input(tmp_path):
    with pytest.raises(InputError, match=r"is a directory"):
        read(tmp_path)


def test_duplicate_ids_are_allowed_and_counted(tmp_path):
    path = write_file(tmp_path, "dup.fa", ">a\nAC\n>b\nGT\n>a second\nTT\n>a\nGG\n>b\nCC\n>c\nAA\n")
    counter = DuplicateCounter()
    ids = [r for r, _ in read(path)]
    counter.add(ids[:2])
    counter.add(ids[2:])
    assert counter.count() == 3
    assert DuplicateCounter().count() == 0


# -- pairs ---------------------------------------------------------------------------------------------------------

def _fastq(records) -> str:
    return "".join(f"@{name}\n{seq}\n+\n{'I' * len(seq)}\n" for name, seq in records)


def test_paired_files_give_fragments_with_both_mates(tmp_path):
    r1 = write_file(tmp_path, "r_1.fq", _fastq([(f"f{i}/1 c", "ACGT" * (i + 1)) for i in range(5)]))
    r2 = write_file(tmp_path, "r_2.fq", _fastq([(f"f{i}/2", "GG" * (i + 1)) for i in range(5)]))
    chunks = list(read_fragments([str(r1), str(r2)], "paired", max_records=2))
    assert [len(c) for _, c in chunks] == [2, 2, 1]
    assert all(label == f"{r1},{r2}" for label, _ in chunks)
    assert [i for _, c in chunks for i in c.ids] == [f"f{i}" for i in range(5)]
    assert chunks[0][1].seqs == ["ACGT", "GG", "ACGTACGT", "GGGG"]
    assert chunks[0][1].record_ids == ["f0/1", "f0/2", "f1/1", "f1/2"]


def test_interleaved_file_gives_fragments(tmp_path):
    path = write_file(tmp_path, "il.fq", _fastq([(f"f{i // 2}/{i % 2 + 1}", "AC") for i in range(6)]))
    chunks = list(read_fragments([str(path)], "interleaved", max_records=2))
    assert [c.ids for _, c in chunks] == [["f0", "f1"], ["f2"]]
    assert all(c.mates == 2 for _, c in chunks)


PAIR_ERRORS = {
    "out_of_sync": ([("a/1", "AC"), ("b/1", "AC")], [("a/2", "AC"), ("c/2", "AC")], r"record 2: mates out of sync \(b "),
    "r2_shorter": ([("a/1", "AC"), ("b/1", "AC")], [("a/2", "AC")], r"r_2\.fq: ends after 1 records"),
    "r2_longer": ([("a/1", "AC")], [("a/2", "AC"), ("b/2", "AC")], r"r_2\.fq: has more records than"),
}


@pytest.mark.parametrize("case", list(PAIR_ERRORS))
def test_paired_input_errors(tmp_path, case):
    first, second, pattern = PAIR_ERRORS[case]
    r1, r2 = write_file(tmp_path, "r_1.fq", _fastq(first)), write_file(tmp_path, "r_2.fq", _fastq(second))
    with pytest.raises(InputError, match=pattern):
        list(read_fragments([str(r1), str(r2)], "paired"))


def test_interleaved_odd_number_of_records(tmp_path):
    path = write_file(tmp_path, "odd.fq", _fastq([("a/1", "AC"), ("a/2", "AC"), ("b/1", "AC")]))
    with pytest.raises(InputError, match=r"odd\.fq: odd number of records \(3\)"):
        list(read_fragments([str(path)], "interleaved"))


@pytest.mark.parametrize("n_files", [1, 3])
def test_paired_needs_two_files(tmp_path, n_files):
    paths = [str(write_file(tmp_path, f"r{i}.fq", _fastq([("a", "AC")]))) for i in range(n_files)]
    with pytest.raises(UsageError, match=r"--paired takes two files"):
        list(read_fragments(paths, "paired"))


# -- fuzzing: whatever the bytes, the reader yields records or raises InputError, never anything else ----------------

_FUZZ_DIR = tempfile.TemporaryDirectory(prefix="gooddetect-fuzz-")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(prefix=st.sampled_from([b"", b">", b"@", b">r\n", b"@r\nACGT\n+\n"]), body=st.binary(max_size=300),
       gz=st.booleans())
def test_arbitrary_bytes_give_records_or_input_error(prefix, body, gz):
    path = write_file(Path(_FUZZ_DIR.name), "fuzz", prefix + body, gz=gz)
    try:
        records = read(path)
    except InputError as exc:
        assert str(exc).startswith(f"{path}: ") and "\n" not in str(exc)
    else:
        assert records and all(r and s and not any(c.isspace() for c in r) for r, s in records)


# -- the reader against a reference parser written from the formats' definitions -------------------------------------

_words = st.text(alphabet="ab1:_/|", min_size=1, max_size=8)
_comments = st.text(alphabet="ab1 :\t", max_size=8)
_sequences = st.text(alphabet="ACGTNacgtn-.*", min_size=1, max_size=14)


@st.composite
def sequence_files(draw) -> tuple[bytes, list[tuple[str, str]]]:
    """A valid FASTA (wrapped lines) or 4-line FASTQ file, with CRLF or LF endings, and its (id, sequence) list."""
    fmt = draw(st.sampled_from(["fasta", "fastq"]))
    lines, expected = [], []
    for _ in range(draw(st.integers(1, 9))):
        word, comment, seq = draw(_words), draw(_comments), draw(_sequences)
        header = word + (" " + comment if comment.strip() else "")
        expected.append((word, seq))
        if fmt == "fasta":
            wrap = draw(st.sampled_from([None, 3, 5]))
            lines += [">" + header, *([seq[i:i + wrap] for i in range(0, len(seq), wrap)] if wrap else [seq])]
        else:
            lines += ["@" + header, seq, draw(st.sampled_from(["+", "+" + header])), "I" * len(seq)]
    ending = draw(st.sampled_from(["\n", "\r\n"]))
    return (ending.join(lines) + draw(st.sampled_from([ending, ""]))).encode(), expected


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(file=sequence_files(), max_records=st.integers(1, 4), gz=st.booleans())
def test_reader_gives_every_record_once_in_order_in_chunks(file, max_records, gz):
    data, expected = file
    path = write_file(Path(_FUZZ_DIR.name), "valid", data, gz=gz)
    chunks = list(read_chunks(str(path), max_records))
    assert all(0 < len(chunk) <= max_records for chunk in chunks)
    assert [(i, s) for c in chunks for i, s in zip(c.ids, c.seqs)] == expected


# -- headers are free text: non-ASCII bytes are read, and written back byte for byte ---------------------------

HEADER_BYTES = st.binary(min_size=1, max_size=12).map(lambda b: bytes(c for c in b if c not in b"\r\n\x00"))
HEADER = st.tuples(st.text("abcXYZ019_.", min_size=1, max_size=6).map(str.encode), HEADER_BYTES,
                   st.sampled_from([b"", b" ", b"\t"]), HEADER_BYTES).map(lambda p: p[0] + p[1] + p[2] + p[3])


def records_file(headers: list[bytes], fmt: str, two_headers: bool) -> bytes:
    out = []
    for index, header in enumerate(headers):
        seq = b"ACGT"[index % 4:] + b"ACGTACGTAC"[: index % 7 + 1]
        if fmt == "fasta":
            out.append(b">%s\n%s\n" % (header, seq))
        else:
            out.append(b"@%s\n%s\n+%s\n%s\n" % (header, seq, header if two_headers else b"", b"I" * len(seq)))
    return b"".join(out)


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(headers=st.lists(HEADER.filter(lambda h: h.strip(b" \t\x0b\x0c\x1c\x1d\x1e\x1f") == h), min_size=1,
                        max_size=8),
       fmt=st.sampled_from(["fasta", "fastq"]), two_headers=st.booleans(), block=st.sampled_from([3, 7, 64, 1 << 20]))
def test_any_header_bytes_are_read_and_written_back_unchanged(tmp_path, monkeypatch, headers, fmt, two_headers,
                                                              block):
    """Whatever bytes a header holds, and wherever the reading blocks cut it: every record is read, its id is the
    first header word (UTF-8, other bytes as \\xHH), and the records written back are the file's bytes."""
    monkeypatch.setattr(seqio, "BUFFER_SIZE", block)
    data = records_file(headers, fmt, two_headers)
    path = write_file(tmp_path, "h.fq" if fmt == "fastq" else "h.fa", data)
    chunks = list(read_chunks(str(path), max_records=3))
    assert b"".join(c.record_bytes(i) for c in chunks for i in range(len(c.records))) == data
    expected = [h.decode("utf-8", "backslashreplace").split(None, 1)[0] for h in headers]
    assert [i for c in chunks for i in c.ids] == expected
    assert all(i.encode("utf-8").decode("utf-8") == i for i in expected)


def test_latin1_and_invalid_utf8_headers_are_read(tmp_path):
    path = write_file(tmp_path, "l.fa", b">r\xe9ad caf\xc3\xa9\nACGT\n>ok\nAC\n>\xff\xfe7 x\nGG\n")
    (chunk,) = read_chunks(str(path))
    assert chunk.ids == ["r\\xe9ad", "ok", "\\xff\\xfe7"]
    assert chunk.headers == {0: b"r\xe9ad caf\xc3\xa9", 2: b"\xff\xfe7 x"}
    assert chunk.record_bytes(0) == b">r\xe9ad caf\xc3\xa9\nACGT\n"


def test_non_ascii_mate_headers_pair_up(tmp_path):
    r1 = write_file(tmp_path, "r1.fq", b"@fr\xe9g/1 x\nACGT\n+\nIIII\n")
    r2 = write_file(tmp_path, "r2.fq", b"@fr\xe9g/2 y\nTTGA\n+\nIIII\n")
    ((_, chunk),) = read_fragments([str(r1), str(r2)], "paired")
    assert chunk.ids == ["fr\\xe9g"] and chunk.record_ids == ["fr\\xe9g/1", "fr\\xe9g/2"]
    assert [chunk.record_bytes(i) for i in (0, 1)] == [r1.read_bytes(), r2.read_bytes()]


@given(st.lists(st.text(alphabet="ACGTNacgt.*-0 é", max_size=12), max_size=12))
def test_the_compiled_check_finds_the_first_refused_sequence(seqs):
    """first_refused: the first sequence that is empty or holds a letter outside SEQUENCE_BYTES, as the regex finds."""
    from gooddetect._core.sequences import first_refused

    refused = [i for i, s in enumerate(seqs) if not s or seqio.INVALID_SEQUENCE_CHAR.search(s)]
    assert first_refused(seqs, seqio._ALLOWED) == (refused[0] if refused else -1)


def wrapped(records: list[tuple[str, str, str]], width: int) -> str:
    """FASTQ with sequence and quality lines wrapped at `width` (as older tools wrote it)."""
    def lines(text: str) -> str:
        return "".join(text[i:i + width] + "\n" for i in range(0, len(text), width))

    return "".join(f"@{name}\n{lines(seq)}+\n{lines(qual)}" for name, seq, qual in records)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.text("ACGTN", min_size=1, max_size=90), st.text("!#@+I", min_size=90, max_size=90)),
                min_size=1, max_size=6), st.integers(5, 40))
def test_wrapped_fastq_gives_the_records_of_its_one_line_form(tmp_path, records, width):
    """Quality lines may start with '@' or '+': a record's qualities end when they are as long as its sequence."""
    records = [(f"r{i}", seq, qual[:len(seq)]) for i, (seq, qual) in enumerate(records)]
    if all(len(seq) <= width for _, seq, _ in records):
        width = max(1, min(len(seq) for _, seq, _ in records) - 1) or 1
    one_line = write_file(tmp_path, "one.fq", wrapped(records, 1000))
    folded = write_file(tmp_path, "folded.fq.gz", wrapped(records, width), gz=True)
    got = [(r.name, r.sequence, r.qualities) for c in read_chunks(str(folded)) for r in c.records]
    assert got == [(r.name, r.sequence, r.qualities) for c in read_chunks(str(one_line)) for r in c.records]
    assert got == records


def test_wrapped_fastq_that_ends_inside_a_record_names_it(tmp_path):
    path = write_file(tmp_path, "cut.fq", wrapped([("a", "ACGTACGT", "IIIIIIII"), ("b", "ACGTACGT", "IIIIIIII")], 5)
                      [:-4])
    with pytest.raises(InputError, match=r"cut.fq: record 2 \(b\): 8 bases but \d qualities"):
        list(read_chunks(str(path)))


def test_score_writes_the_same_rows_and_reads_for_a_wrapped_fastq(tmp_path, kmer_model):
    from click.testing import CliRunner

    from gooddetect.cli import main

    with gzip.open(Path(__file__).resolve().parents[1] / "data" / "reads.fq.gz", "rt") as handle:
        lines = handle.read().splitlines()[:80]
    records = [(lines[i][1:], lines[i + 1], lines[i + 3]) for i in range(0, len(lines), 4)]
    outputs = {}
    for name, width in (("one", 1000), ("wrapped", 60)):
        reads = write_file(tmp_path, f"{name}.fq", wrapped(records, width))
        result = CliRunner().invoke(main, ["score", str(kmer_model), str(reads), "-o", str(tmp_path / f"{name}.tsv"),
                                           "--in-out", str(tmp_path / f"{name}_in.fq"),
                                           "--ood-out", str(tmp_path / f"{name}_ood.fq")])
        assert result.exit_code == 0, result.output
        outputs[name] = [(tmp_path / f"{name}{suffix}").read_bytes() for suffix in (".tsv", "_in.fq", "_ood.fq")]
    assert outputs["wrapped"] == outputs["one"]
    assert outputs["one"][1].count(b"\n") + outputs["one"][2].count(b"\n") == 4 * len(records)
