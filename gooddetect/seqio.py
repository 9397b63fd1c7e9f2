"""Streaming FASTA/FASTQ reading: compression sniffed from magic bytes, strict records, errors that name file and record.

Records come in chunks (`read_chunks`): plain four-line FASTQ and two-line FASTA are split and checked a chunk at a
time in bulk; from the first chunk that is anything else (wrapped lines, CRLF, blank lines, a malformed record),
Biopython's parsers read the rest of the file record by record, so such files parse, and fail, as they always did.
"""

from __future__ import annotations

import gzip
import io
import re
import sys
import zlib
from array import array
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Iterator

from Bio.SeqIO.FastaIO import SimpleFastaParser
from Bio.SeqIO.QualityIO import FastqGeneralIterator

from .errors import InputError

GZIP_MAGIC = b"\x1f\x8b"
BUFFER_SIZE = 1 << 20
CHUNK_RECORDS = 4096
TEXT_PER_RECORD = 1 << 10  # a chunk of n records holds about n KiB of text at most (more only for one longer record)
# Letters are bases (A/C/G/T) or unknown symbols (N, IUPAC, ...); '-', '.', '*' are gaps/stops, also unknown.
INVALID_SEQUENCE_CHAR = re.compile(r"[^A-Za-z.*\-]")
SEQUENCE_BYTES = bytes(range(ord("A"), ord("Z") + 1)) + bytes(range(ord("a"), ord("z") + 1)) + b".*-"
QUALITY_BYTES = bytes(range(33, 127))
MARKERS = {"fasta": b">", "fastq": b"@"}  # what starts a record
LINES_PER_RECORD = {"fasta": 2, "fastq": 4}  # in the plain layout the bulk path takes
HEADER_ID = re.compile(r"^[>@][^\S\n]*(\S+)", re.MULTILINE)  # the first word of each header line of a chunk


@dataclass(frozen=True, slots=True)
class Record:
    """One read or contig: `name` is the first word of the header."""

    name: str
    seq: str


@dataclass(frozen=True, slots=True)
class RecordChunk:
    """Records of one file, in file order: ids (first header words) and sequences."""

    names: list[str]
    seqs: list[str]

    def __len__(self) -> int:
        return len(self.names)

    def records(self) -> Iterator[Record]:
        return map(Record, self.names, self.seqs)


def display_name(path: str) -> str:
    return "<stdin>" if path == "-" else str(path)


def _open_binary(path: str) -> BinaryIO:
    if path == "-":
        return sys.stdin.buffer
    p = Path(path)
    if p.is_dir():
        raise InputError(f"{path}: is a directory, not a sequence file")
    try:
        return open(p, "rb")
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except PermissionError:
        raise InputError(f"{path}: permission denied") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot open ({exc.strerror})") from None


def _decompressed(raw: BinaryIO) -> io.BufferedReader:
    """A peekable stream of `raw`'s content, gunzipped when it starts with the gzip magic (bgzip is gzip too)."""
    buffered = io.BufferedReader(raw, BUFFER_SIZE) if not hasattr(raw, "peek") else raw
    if buffered.peek(2)[:2] == GZIP_MAGIC:
        return io.BufferedReader(gzip.GzipFile(fileobj=buffered, mode="rb"), BUFFER_SIZE)
    return buffered


def _sniff_format(stream: io.BufferedReader, name: str) -> str:
    """Return 'fasta' or 'fastq' from the first non-blank byte."""
    peeked = stream.peek(BUFFER_SIZE)
    head = peeked.lstrip()
    if not head:
        if not peeked:
            raise InputError(f"{name}: empty file (no FASTA or FASTQ records)")
        raise InputError(f"{name}: only blank lines at the start of the file")
    first = head[:1]
    if first == b">":
        return "fasta"
    if first == b"@":
        return "fastq"
    raise InputError(f"{name}: not FASTA or FASTQ (first byte {first!r}; expected '>' or '@')")


def read_records(path: str) -> Iterator[Record]:
    """Yield records from a FASTA or FASTQ file (plain, gzip or bgzip; `-` is stdin) without loading it whole.

    Raises InputError, naming the file and the record, for anything that is not a well-formed record."""
    for chunk in read_chunks(path):
        yield from chunk.records()


def read_chunks(path: str, max_records: int = CHUNK_RECORDS) -> Iterator[RecordChunk]:
    """Like `read_records`, in chunks of at most `max_records` records and about `max_records` KiB of text: short
    reads fill a chunk, longer ones come fewer to a chunk, so a chunk of any reads stays about the same size."""
    name = display_name(path)
    raw = _open_binary(path)
    try:
        stream = _decompressed(raw)
        try:
            fmt = _sniff_format(stream, name)
            yield from _chunks(stream, fmt, name, max_records)
        except EOFError:
            raise InputError(f"{name}: truncated gzip stream (compressed data ended early)") from None
        except (gzip.BadGzipFile, zlib.error) as exc:
            raise InputError(f"{name}: corrupt gzip data ({exc})") from None
    finally:
        if path != "-":
            raw.close()


def _chunks(stream: io.BufferedReader, fmt: str, name: str, max_records: int) -> Iterator[RecordChunk]:
    """Bulk path over whole lines; hands the text from the first irregular chunk on to `_parsed_chunks`."""
    per_record = LINES_PER_RECORD[fmt]
    wanted, max_size = per_record * max_records, TEXT_PER_RECORD * max_records
    pending, at_end, done = b"", False, 0
    while True:
        blocks, newlines, size = [pending], pending.count(b"\n"), len(pending)
        while not at_end and newlines < wanted and (size < max_size or newlines < per_record):
            block = stream.read(BUFFER_SIZE)
            at_end = not block
            blocks.append(block)
            newlines, size = newlines + block.count(b"\n"), size + len(block)
        text = b"".join(blocks)
        lines = text.split(b"\n", wanted)
        pending = lines.pop()  # what follows the last complete line taken
        if at_end and pending and len(lines) < wanted:
            lines.append(pending)  # the file's last line, without a newline
            pending = b""
        if not at_end:  # a partial record waits for the next round
            whole = len(lines) - len(lines) % per_record
            pending = b"\n".join(lines[whole:] + [pending])
            del lines[whole:]
        following = pending[:1] or (b"" if at_end else stream.peek(1)[:1])
        regular = b"\r" not in text and following in (b"", MARKERS[fmt])  # the next record starts right after
        chunk = _bulk_chunk(lines, fmt) if regular else None
        if chunk is None:
            yield from _parsed_chunks(_text(text, stream), fmt, name, max_records, done)
            return
        if len(chunk):
            yield chunk
        done += len(chunk)
        if at_end and not pending:
            if done == 0:
                raise InputError(f"{name}: no {fmt.upper()} records")
            return


def _bulk_chunk(lines: list[bytes], fmt: str) -> RecordChunk | None:
    """The records of `lines` when every one is a plain, valid 2-line FASTA or 4-line FASTQ record, else None."""
    per_record = LINES_PER_RECORD[fmt]
    if not lines:
        return RecordChunk([], [])
    if len(lines) % per_record:
        return None
    n = len(lines) // per_record
    heads, seqs = lines[0::per_record], lines[1::per_record]
    marker = MARKERS[fmt]
    head_text = b"\n".join(heads)
    if not head_text.startswith(marker) or head_text.count(b"\n" + marker) != n - 1:
        return None
    lengths = list(map(len, seqs))
    if min(lengths) == 0 or b"".join(seqs).translate(None, SEQUENCE_BYTES):
        return None
    if fmt == "fastq":
        quals, plus = lines[3::4], lines[2::4]
        if list(map(len, quals)) != lengths or b"".join(quals).translate(None, QUALITY_BYTES):
            return None
        if plus.count(b"+") != n and not all(p[:1] == b"+" and (len(p) == 1 or p[1:].rstrip() == h[1:].rstrip())
                                             for p, h in zip(plus, heads)):
            return None
    names = HEADER_ID.findall(head_text.decode("utf-8", "backslashreplace"))
    if len(names) != n:
        return None
    return RecordChunk(names, [s.decode("ascii") for s in seqs])


class _Prefixed(io.RawIOBase):
    """Bytes already read, then the rest of a stream."""

    def __init__(self, prefix: bytes, stream: io.BufferedReader):
        self._prefix, self._stream = memoryview(prefix), stream

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        if self._prefix:
            n = min(len(buffer), len(self._prefix))
            buffer[:n], self._prefix = self._prefix[:n], self._prefix[n:]
            return n
        data = self._stream.read(len(buffer))
        buffer[:len(data)] = data
        return len(data)


def _text(prefix: bytes, stream: io.BufferedReader) -> io.TextIOWrapper:
    return io.TextIOWrapper(io.BufferedReader(_Prefixed(prefix, stream), BUFFER_SIZE), encoding="utf-8",
                            errors="backslashreplace", newline=None)


def _parsed_chunks(text: io.TextIOWrapper, fmt: str, name: str, max_records: int,
                   done: int) -> Iterator[RecordChunk]:
    """Biopython's record-by-record parsers, for the rest of a file after `done` records."""
    index = done
    names: list[str] = []
    seqs: list[str] = []
    size = 0
    try:
        parser = SimpleFastaParser(text) if fmt == "fasta" else (t[:2] for t in FastqGeneralIterator(text))
        for index, (title, seq) in enumerate(parser, start=done + 1):
            names.append(_read_id(title, seq, index, name, fmt))
            seqs.append(seq)
            size += len(seq)
            if len(names) == max_records or size >= TEXT_PER_RECORD * max_records:
                yield RecordChunk(names, seqs)
                names, seqs, size = [], [], 0
    except ValueError as exc:
        raise InputError(f"{name}: record {index + 1}: {_first_line(exc)}") from None
    if names:
        yield RecordChunk(names, seqs)
    if index == 0:
        raise InputError(f"{name}: no {fmt.upper()} records")


def _read_id(title: str, seq: str, index: int, name: str, fmt: str) -> str:
    """The id of a parsed record (first word of its header), after checking the record."""
    words = title.split(None, 1)
    if not words:
        raise InputError(f"{name}: record {index}: empty {fmt.upper()} header (no read id)")
    if not seq:
        raise InputError(f"{name}: record {index} ({words[0]}): header with no sequence")
    bad = INVALID_SEQUENCE_CHAR.search(seq)
    if bad:
        raise InputError(
            f"{name}: record {index} ({words[0]}): invalid character {bad.group()!r} in sequence at position {bad.start() + 1}"
        )
    return words[0]


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


class DuplicateCounter:
    """Counts repeated read ids with 8 bytes per read (64-bit hashes), so memory stays small for large files."""

    def __init__(self) -> None:
        self._hashes = array("q")

    def add(self, names: list[str]) -> None:
        self._hashes.extend(map(hash, names))

    def count(self) -> int:
        """Number of reads whose id was already seen earlier."""
        import numpy as np

        if len(self._hashes) < 2:
            return 0
        hashes = np.sort(np.frombuffer(self._hashes, dtype=np.int64))
        return int((hashes[1:] == hashes[:-1]).sum())
