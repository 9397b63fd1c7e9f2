"""FASTA/FASTQ reading: formats, compression by magic bytes, line endings, and an InputError for every bad input."""

from __future__ import annotations

import gzip
import io
import random
import re
import sys
import tempfile
from pathlib import Path

import pytest
from Bio import bgzf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import write_file
from gooddetect import seqio
from gooddetect.errors import InputError
from gooddetect.seqio import DuplicateCounter, Record, read_chunks, read_records

FASTA = ">read1 first read\nACGTACGTAC\nGGTTAA\n>read2\nacgtnRYacgt\n>read3 x y z\nA-C.G*T\n"
FASTA_RECORDS = [
    Record("read1", "ACGTACGTACGGTTAA"),
    Record("read2", "acgtnRYacgt"),
    Record("read3", "A-C.G*T"),
]
# The second quality line starts with '@', which a FASTQ reader must not take for a header.
FASTQ = "@q1 desc\nACGTN\n+\nIIIII\n@q2\nacgt\n+q2\n@III\n"
FASTQ_RECORDS = [Record("q1", "ACGTN"), Record("q2", "acgt")]
JUNK = b"\x00" + random.Random(7).randbytes(3000)  # binary that starts with neither '>' nor '@'


def read(path) -> list[Record]:
    return list(read_records(str(path)))


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
    assert [r.name for r in got] == [f"r{i}" for i in range(500)]
    assert all(r.seq == "ACGT" * 50 for r in got)


@pytest.mark.parametrize("text, expected", [(FASTA, FASTA_RECORDS), (FASTQ, FASTQ_RECORDS)])
def test_windows_line_endings(tmp_path, text, expected):
    assert read(write_file(tmp_path, "crlf", text.replace("\n", "\r\n"))) == expected


def test_non_utf8_header_bytes_do_not_crash(tmp_path):
    path = write_file(tmp_path, "latin1.fa", b">r\xe9ad\xff1 caf\xe9\nACGT\n>ok\nGG\n")
    got = read(path)
    assert [r.seq for r in got] == ["ACGT", "GG"]
    assert got[0].name.startswith("r") and " " not in got[0].name
    assert got[1].name == "ok"


def test_leading_blank_lines_before_fasta(tmp_path):
    assert read(write_file(tmp_path, "blank.fa", "\n\n" + FASTA)) == FASTA_RECORDS


def test_stdin_dash(monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(gzip.compress(FASTQ.encode()))))
    assert list(read_records("-")) == FASTQ_RECORDS


def test_stdin_errors_name_stdin(monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"")))
    with pytest.raises(InputError, match=r"^<stdin>: empty file"):
        list(read_records("-"))


def test_reading_is_lazy_chunks_before_an_error_are_yielded(tmp_path):
    path = write_file(tmp_path, "late.fq", FASTQ + "@q3\nACGT\n+\nIII\n")
    chunks = read_chunks(str(path), max_records=2)
    assert list(next(chunks).records()) == FASTQ_RECORDS
    with pytest.raises(InputError, match=r"record 3"):
        next(chunks)


# name, content, expected message pattern after "<path>: " (the record where there is one)
BAD_INPUTS = {
    "empty": ("empty.fa", b"", r"empty file"),
    "empty_gzip": ("empty.fa.gz", gzip.compress(b""), r"empty file"),
    "blank_lines_only": ("blank.fa", b"\n \n\n", r"blank"),
    "fastq_length_mismatch": ("mismatch.fq", b"@q1\nACGT\n+\nIIII\n@q2\nACGT\n+\nIII\n", r"record 2\b.*(?i:length)"),
    "fastq_missing_quality": ("noqual.fq", b"@q1\nACGT\n+\nIIII\n@q2\nACGT\n+\n", r"record 2\b"),
    "fastq_missing_plus_and_quality": ("noplus.fq", b"@q1\nACGT\n+\nIIII\n@q2\nACGT\n", r"record 2\b"),
    "fastq_missing_plus_line": ("noplus2.fq", b"@q1\nACGT\nIIII\n@q2\nACGT\n+\nIIII\n", r"record 1\b"),
    "fasta_header_only_last": ("hdr.fa", b">r1\nACGT\n>r2 desc\n", r"record 2 \(r2\).*no sequence"),
    "fasta_header_only_middle": ("hdr2.fa", b">r1\nACGT\n>r2\n>r3\nAC\n", r"record 2 \(r2\).*no sequence"),
    "fasta_empty_header": ("nohdr.fa", b">r1\nACGT\n>\nACGT\n", r"record 2\b.*header"),
    "invalid_sequence_character": ("digits.fa", b">r1\nACGT\n>r2\nAC1GT\n", r"record 2 \(r2\).*'1'.*position 3"),
    "non_utf8_sequence": ("bytes.fa", b">r1\nAC\xffGT\n", r"record 1 \(r1\).*invalid character"),
    "binary_junk": ("junk.fa", JUNK, r"not FASTA or FASTQ"),
    "gzip_of_junk": ("junk.fa.gz", gzip.compress(JUNK), r"not FASTA or FASTQ"),
    "truncated_gzip": ("cut.fa.gz", gzip.compress(FASTA.encode() * 50)[:-40], r"truncated gzip"),
    # 0x07 opens a deflate block of the reserved type 3, which zlib rejects
    "corrupt_gzip": ("bad.fa.gz", gzip.compress(b"")[:10] + b"\x07" * 40, r"corrupt gzip"),
}


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
    records = read(path)
    counter.add([r.name for r in records[:2]])
    counter.add([r.name for r in records[2:]])
    assert counter.count() == 3
    assert DuplicateCounter().count() == 0


# Fuzzing: whatever the bytes, the reader yields records or raises InputError, never anything else.
_FUZZ_DIR = tempfile.TemporaryDirectory(prefix="gooddetect-fuzz-")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(prefix=st.sampled_from([b"", b">", b"@", b">r\n", b"@r\nACGT\n+\n"]), body=st.binary(max_size=300),
       gz=st.booleans())
def test_arbitrary_bytes_give_records_or_input_error(prefix, body, gz):
    path = write_file(Path(_FUZZ_DIR.name), "fuzz", prefix + body, gz=gz)
    try:
        records = read(path)
    except InputError as exc:
        assert str(exc).startswith(f"{path}: ")
    else:
        assert records and all(r.name and r.seq and not any(c.isspace() for c in r.name) for r in records)


# The bulk path (whole chunks of plain 4-line FASTQ / 2-line FASTA) must give exactly what Biopython's
# record-by-record parsers give, which take over from the first irregular chunk: same records, same errors.

_header_words = st.text(alphabet="ab1:_/|\u00e9 \t\x0b", min_size=0, max_size=8)
_sequences = st.text(alphabet="ACGTNacgtn-.*", min_size=0, max_size=12) | st.sampled_from(["AC1G", "AC G", "AC@"])
_qualities = st.text(alphabet="I#@+!~ ", min_size=0, max_size=12)


@st.composite
def sequence_files(draw) -> tuple[str, bytes]:
    fmt = draw(st.sampled_from(["fasta", "fastq"]))
    lines = []
    for _ in range(draw(st.integers(1, 7))):
        title = draw(_header_words)
        seq = draw(_sequences)
        wrap = draw(st.sampled_from([None, None, None, 2]))
        seq_lines = [seq[i:i + wrap] for i in range(0, len(seq), wrap)] if wrap and seq else [seq]
        if fmt == "fasta":
            lines += [">" + title, *seq_lines]
            continue
        quality = draw(st.sampled_from(["I" * len(seq)]) | _qualities)
        plus = draw(st.sampled_from(["+", "+" + title, "+other"]))
        lines += ["@" + title, *seq_lines, plus, quality]
    if draw(st.booleans()):
        lines.insert(draw(st.integers(0, len(lines))), draw(st.sampled_from(["", " ", "\r"])))
    ending = draw(st.sampled_from(["\n", "\n", "\r\n"]))
    text = ending.join(lines) + draw(st.sampled_from([ending, ""]))
    return fmt, text.encode("utf-8")


def _reference(data: bytes, fmt: str, name: str) -> list[Record] | str:
    """What the record-by-record parsers give for the whole file: its records, or the error message."""
    try:
        return [r for c in seqio._parsed_chunks(seqio._text(data, io.BytesIO()), fmt, name, 3, 0) for r in c.records()]
    except InputError as exc:
        return str(exc)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(file=sequence_files(), max_records=st.integers(1, 4))
def test_bulk_reading_equals_record_by_record_parsing(file, max_records):
    fmt, data = file
    path = write_file(Path(_FUZZ_DIR.name), "bulk", data)
    try:
        chunks = list(read_chunks(str(path), max_records))
    except InputError as exc:
        got: list[Record] | str = str(exc)
    else:
        assert all(0 < len(chunk) <= max_records for chunk in chunks)
        got = [r for chunk in chunks for r in chunk.records()]
    if data.lstrip()[:1] in (b">", b"@"):
        assert got == _reference(data, fmt, str(path))
    else:
        assert isinstance(got, str) and "blank" in got
