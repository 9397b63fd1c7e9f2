"""FASTA/FASTQ reading and writing through dnaio (cutadapt's reader: C-speed FASTQ parsing), and TFRecord reading.

Compression is sniffed from the content (plain, gzip, bgzip; `-` is stdin). Records come in chunks of fragments: a
fragment is one read, or the two mates of a pair (`--paired` R1 R2 files, or `--interleaved` mates alternating in
one file). Every record is checked (a read id, a sequence of letters or gaps), and every problem is an InputError
naming the file and the record.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import sys
import zlib
from array import array
from dataclasses import dataclass, field
from bisect import bisect_left
from itertools import accumulate, chain, islice
from pathlib import Path
from typing import BinaryIO, Iterable, Iterator

import dnaio
from dnaio.exceptions import FastaFormatError, FastqFormatError, FileFormatError

from ._core.sequences import count_byte, first_refused
from .errors import InputError, UsageError

Record = dnaio.SequenceRecord
GZIP_MAGIC = b"\x1f\x8b"
BUFFER_SIZE = 1 << 20
NEWLINE = ord("\n")
CHUNK_RECORDS = 4096
CHUNK_BASES = 4 << 20  # a chunk holds at most about this many bases (more only for one longer record)
LAYOUTS = ("single", "paired", "interleaved")
MATES = {"single": 1, "paired": 2, "interleaved": 2}
# Letters are bases (A/C/G/T) or unknown symbols (N, IUPAC, ...); '-', '.', '*' are gaps/stops, also unknown.
SEQUENCE_BYTES = bytes(range(ord("A"), ord("Z") + 1)) + bytes(range(ord("a"), ord("z") + 1)) + b".*-"
_ALLOWED = bytes(byte in SEQUENCE_BYTES for byte in range(256))  # first_refused's table
INVALID_SEQUENCE_CHAR = re.compile(r"[^A-Za-z.*\-]")
MATE_SUFFIX = re.compile(r"/[12]$")
MARKERS = {b">": "fasta", b"@": "fastq"}
FASTQ_LINES = ("header", "sequence", "'+' line", "qualities")
# What a sequence file name ends in besides its sample's name (classes per file, MultiQC sample names).
SEQUENCE_SUFFIXES = re.compile(r"(\.(fastq|fq|fasta|fa|fna|fas|seq|txt))?(\.(gz|bgz))?$", re.IGNORECASE)


def display_name(path: str) -> str:
    return "<stdin>" if path == "-" else str(path)


@contextlib.contextmanager
def open_input(path: str) -> Iterator[BinaryIO]:
    """A peekable binary stream of `path`'s content, decompressed when it is gzip or bgzip (sniffed from the magic
    bytes, whatever the name); closed on exit (stdin is left open)."""
    name = display_name(path)
    try:
        raw = _stdin() if path == "-" else open(path, "rb")
    except FileNotFoundError:
        raise InputError(f"{name}: no such file") from None
    except IsADirectoryError:
        raise InputError(f"{name}: is a directory, not a sequence file") from None
    except PermissionError:
        raise InputError(f"{name}: permission denied") from None
    except OSError as exc:
        raise InputError(f"{name}: cannot open ({exc.strerror or exc})") from None
    try:
        stream = raw if hasattr(raw, "peek") else io.BufferedReader(raw, BUFFER_SIZE)
        if stream.peek(2)[:2] == GZIP_MAGIC:
            from isal.igzip import IGzipFile

            stream = io.BufferedReader(IGzipFile(fileobj=stream, mode="rb"), BUFFER_SIZE)
        yield stream
    finally:
        if raw is not sys.stdin.buffer:
            raw.close()


def _stdin() -> BinaryIO:
    """stdin as a stream of its own, its descriptor left open: the reader thread may still be blocked on it when
    an interrupted run exits, and Python's shutdown must not wait on sys.stdin's lock. sys.stdin.buffer where stdin
    has no descriptor (a test harness)."""
    try:
        return open(sys.stdin.fileno(), "rb", closefd=False)
    except (AttributeError, OSError, ValueError):
        return sys.stdin.buffer


@dataclass(frozen=True, slots=True)
class RecordChunk:
    """Consecutive fragments of an input: `records` in file order (with two mates, R1 and R2 of each fragment
    alternate), `ids` one per fragment (the first header word; a mate's trailing /1 or /2 removed), `seqs` one per
    record. `headers` holds, by index into `records`, the header as read of every record whose header had non-ASCII
    bytes (the record itself carries an ASCII-escaped copy, see EscapedHeaders)."""

    records: list[Record]
    ids: list[str]
    seqs: list[str]
    mates: int = 1
    format: str = "fasta"
    two_headers: bool = False  # FASTQ whose '+' lines repeat the header
    headers: dict[int, bytes] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.ids)

    @classmethod
    def of_sequences(cls, seqs: list[str], first: int = 0) -> RecordChunk:
        """A chunk of bare sequences (no records to write back), named by their index from `first`."""
        return cls([], [str(i) for i in range(first, first + len(seqs))], seqs)

    @property
    def record_ids(self) -> list[str]:
        """The read id of every record (with two mates, each mate's own)."""
        if self.mates == 1:
            return self.ids
        return [record_id(r, self.headers.get(i)) if i in self.headers else r.id or record_id(r)
                for i, r in enumerate(self.records)]

    def record_bytes(self, index: int) -> bytes:
        """Record `index` as read (see format_record), its header byte for byte."""
        return format_record(self.records[index], self.format, self.two_headers, self.headers.get(index))

    def every(self, first: int, step: int) -> RecordChunk:
        """Fragments first, first + step, ... of this chunk."""
        rows = [i * self.mates + m for i in range(first, len(self.ids), step) for m in range(self.mates)]
        headers = {new: self.headers[old] for new, old in enumerate(rows) if old in self.headers}
        return RecordChunk([self.records[i] for i in rows], self.ids[first::step], [self.seqs[i] for i in rows],
                           self.mates, self.format, self.two_headers, headers)


class EscapedHeaders(io.RawIOBase):
    """A FASTA/FASTQ stream as dnaio can parse it (ASCII only): every non-ASCII byte of a header line (FASTA '>'
    lines, FASTQ lines 1 and 3 of a record) becomes an ASCII escape (\\xHH), and `originals` maps the 1-based
    ordinal of each record so escaped to its header as read (after the marker, without surrounding blanks).
    Sequence and quality lines pass unchanged, so dnaio still refuses non-ASCII bytes there. A header line is held
    back until its end is read; every other byte passes through at once."""

    def __init__(self, stream: BinaryIO, fmt: str):
        self._stream, self._fasta = stream, fmt == "fasta"
        self._ready, self._offset = b"", 0  # bytes ready to be read, from _offset on
        self._held = b""  # the start of a header line whose end has not been read
        self._line_start = True  # whether the next byte read starts a line
        self._lines = 0  # FASTQ: complete lines passed
        self._headers = 0  # FASTA: header lines passed
        self.originals: dict[int, bytes] = {}

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        while self._offset == len(self._ready):
            block = self._stream.read1(BUFFER_SIZE)
            if not block:
                if not self._held:
                    return 0
                block, self._held = self._held + b"\n", b""  # a last header without a line break
                self._line_start = True
            self._ready, self._offset = self._passed(block), 0
        size = min(len(buffer), len(self._ready) - self._offset)
        buffer[:size] = memoryview(self._ready)[self._offset:self._offset + size]  # the one copy
        self._offset += size
        return size

    def _passed(self, block: bytes) -> bytes:
        """The bytes of `block` that can be handed over (escaped); a header line not yet ended is held back."""
        data, starts_line = self._held + block, self._line_start or bool(self._held)
        self._held = b""
        end = data.rfind(b"\n") + 1
        lines = None if self._fasta else _newlines(data, end)  # every line break of data lies before `end`
        tail_starts_line = end > 0 or starts_line
        if tail_starts_line and end < len(data) and self._is_header(data[end:end + 1], lines or 0):
            data, self._held = data[:end], data[end:]
        self._line_start = data.endswith(b"\n") or bool(self._held) or (not data and starts_line)
        if data.isascii():
            self._count(data, starts_line, lines)
            return data
        out = []
        for line in data.splitlines(keepends=True):
            if starts_line and self._is_header(line[:1], 0) and not line.isascii():
                text = line.rstrip(b"\r\n")
                self._remember(text)
                out.append(_escaped(text).encode("ascii") + line[len(text):])
            else:
                out.append(line)
            self._count(line, starts_line)
            starts_line = line.endswith(b"\n")
        return b"".join(out)

    def _is_header(self, first: bytes, lines_before: int) -> bool:
        """Whether a line starting with `first`, after `lines_before` more complete lines, is a header line."""
        if self._fasta:
            return first == b">"
        return (self._lines + lines_before) % 2 == 0

    def _count(self, data: bytes, starts_line: bool, lines: int | None = None) -> None:
        """Count the header lines (FASTA) or lines (FASTQ; `lines` when already counted) that `data` completes."""
        if self._fasta:
            self._headers += data.count(b"\n>") + (starts_line and data[:1] == b">")
        else:
            self._lines += data.count(b"\n") if lines is None else lines

    def _remember(self, text: bytes) -> None:
        """Remember the header line `text` (its record is the next one) as read."""
        if self._fasta:
            self.originals[self._headers + 1] = text.strip(_ASCII_BLANKS)[1:]  # as dnaio strips the line
        elif self._lines % 4 == 0:
            self.originals[self._lines // 4 + 1] = text[1:]


class WrappedFastq:
    """The records of a FASTQ file whose sequences and qualities wrap over several lines (as older tools wrote
    them; dnaio reads only one line each): a record's sequence lines run up to its '+' line, its quality lines until
    they are as long as the sequence (a quality line may start with '@'). Read line by line in Python, so only such
    files pay for it. `originals` holds the headers with non-ASCII bytes, as EscapedHeaders does."""

    def __init__(self, stream: BinaryIO, name: str):
        self._lines = (line.rstrip(b"\r\n") for line in stream)
        self._name = name
        self.originals: dict[int, bytes] = {}

    def __iter__(self) -> Iterator[Record]:
        index = 0
        for header in self._lines:
            if not header.strip():
                continue
            index += 1
            if header[:1] != b"@":
                raise InputError(f"{self._name}: record {index}: expected a '@' header, found {header[:20]!r}")
            sequence, line = [], next(self._lines, None)
            while line is not None and line[:1] != b"+":
                sequence.append(line)
                line = next(self._lines, None)
            sequence = b"".join(sequence)
            qualities, length = [], 0
            while line is not None and length < len(sequence):
                line = next(self._lines, None)
                if line is not None:
                    qualities.append(line)
                    length += len(line)
            qualities = b"".join(qualities)
            text = header[1:].strip(_ASCII_BLANKS)
            if line is None or len(qualities) != len(sequence):
                word = _escaped(text).split(None, 1)[:1]
                raise InputError(f"{self._name}: record {index}{f' ({word[0]})' if word else ''}: "
                                 f"{len(sequence)} bases but {len(qualities)} qualities before the next record or "
                                 "the end of the file (a missing '+' line?)")
            if not text.isascii():
                self.originals[index] = text
            yield Record(_escaped(text), sequence.decode("ascii"), qualities.decode("ascii"))


def _wrapped_fastq(head: bytes) -> bool:
    """Whether a FASTQ record that starts in `head` (the file's first bytes) wraps its sequence over several
    lines: its line after the header does not lead to a '+' line."""
    lines = head.lstrip().split(b"\n")[:-1]  # the complete lines
    at = 0
    while at + 2 < len(lines) and lines[at][:1] == b"@":  # anything else: dnaio says what is wrong
        if lines[at + 2][:1] != b"+":
            return True
        at += 4
    return False


def _newlines(data: bytes, end: int) -> int:
    """The line breaks in data[:end]."""
    return count_byte(data, end, NEWLINE)


_ASCII_BLANKS = b" \t\n\r\x0b\x0c\x1c\x1d\x1e\x1f"  # what str.strip() strips of ASCII


def _escaped(text: bytes) -> str:
    """The ASCII stand-in dnaio parses for a header with non-ASCII bytes."""
    return text.decode("latin-1").encode("ascii", "backslashreplace").decode("ascii")


def record_id(record: Record, header: bytes | None = None) -> str:
    """A record's read id: the first word of its header ("" for none). A header with non-ASCII bytes (`header`, as
    read) is decoded as UTF-8, any other byte written as \\xHH, so the TSV stays valid UTF-8."""
    text = record.name if header is None else header.decode("utf-8", "backslashreplace")
    words = text.split(None, 1)
    return words[0] if words else ""


class SequenceReader:
    """The checked records of one FASTA/FASTQ input, in chunks; a context manager that closes the input."""

    def __init__(self, path: str):
        self.path, self.name = path, display_name(path)
        self._input = open_input(path)
        self._stream = self._input.__enter__()
        self.n_records = 0  # records yielded so far
        self._ahead: list[Record] = []  # records read past the end of the last chunk (its bases limit)
        try:
            self.format = _sniff_format(self._stream, self.name)
            if self.format == "tfrecord":
                self._records, self.two_headers = self._examples(), False
            elif self.format == "fastq" and _wrapped_fastq(self._stream.peek(1 << 16)):
                self._escaper = WrappedFastq(self._stream, self.name)
                self._records, self.two_headers = iter(self._escaper), False
            else:
                self._escaper = EscapedHeaders(self._stream, self.format)
                reader = dnaio.open(self._escaper, fileformat=self.format)
                self._records = iter(reader)
                self.two_headers = bool(getattr(reader, "two_headers", False))
        except BaseException as exc:
            self.close()
            if isinstance(exc, InputError):
                raise
            raise self._error(exc) from None

    def __enter__(self) -> SequenceReader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._input.__exit__(None, None, None)

    def take(self, max_records: int, max_bases: int = CHUNK_BASES) -> tuple[list[Record], dict[int, bytes]]:
        """The next records, checked: at most `max_records`, and no more once `max_bases` bases are reached; and
        the header as read of those whose header had non-ASCII bytes, by index into the records."""
        records, self._ahead = self._ahead[:max_records], self._ahead[max_records:]
        try:  # extend keeps the records read before an error (islice: in C, no Python step per record)
            records.extend(islice(self._records, max_records - len(records)))
        except InputError:
            raise
        except Exception as exc:
            if not _is_blank_tail(exc):
                raise self._error(exc, len(records)) from None
        if sum(map(len, records)) > max_bases:  # up to the record that reaches max_bases; the rest comes next
            last = bisect_left(list(accumulate(map(len, records))), max_bases) + 1
            records, self._ahead = records[:last], records[last:] + self._ahead
        self._check(records)
        headers = self._headers(records)
        self.n_records += len(records)
        if self.n_records == 0:
            raise InputError(f"{self.name}: no {self.format.upper()} records")
        return records, headers

    def _headers(self, records: list[Record]) -> dict[int, bytes]:
        """The original headers of the escaped records among the next `records`."""
        originals = getattr(self, "_escaper", None)
        originals = originals.originals if originals is not None else None
        if not originals:
            return {}
        headers = {}
        for index, record in enumerate(records):
            header = originals.pop(self.n_records + index + 1, None)
            if header is None:
                continue
            if _escaped(header) != record.name:  # never attach a header to the wrong record
                raise InputError(f"{self.name}: record {self.n_records + index + 1}: cannot read its header "
                                 "(non-ASCII bytes in an unusual layout)")
            headers[index] = header
        return headers

    def chunks(self, max_records: int = CHUNK_RECORDS) -> Iterator[RecordChunk]:
        while True:
            records, headers = self.take(max_records)
            if not records:
                return
            ids = record_ids(records, self.n_records - len(records), self.name, headers)
            yield RecordChunk(records, ids, [r.sequence for r in records], 1, self.format, self.two_headers,
                              headers)

    def _examples(self) -> Iterator[Record]:
        """The records of a TFRecord file (the paper's data): ids `<file stem>_<n>`, the class as `class=<y>`."""
        from .tfrecord import read_examples

        stem = Path(self.name).name.split(".")[0] or "record"
        for index, (sequence, label) in enumerate(read_examples(self._stream, self.name), start=1):
            comment = "" if label is None else f" class={label}"
            yield Record(f"{stem}_{index}{comment}", sequence)

    def _check(self, records: list[Record]) -> None:
        """Raise for a record without a sequence or with a character that is no sequence symbol."""
        first = first_refused([r.sequence for r in records], _ALLOWED)
        if first < 0:
            return
        record, index = records[first], self.n_records + first + 1
        where = f"{self.name}: record {index} ({record_ids([record], index - 1, self.name)[0]})"
        if not record.sequence:
            raise InputError(f"{where}: header with no sequence")
        bad = INVALID_SEQUENCE_CHAR.search(record.sequence)
        raise InputError(f"{where}: invalid character {bad.group()!r} in sequence at position {bad.start() + 1}")

    def _error(self, exc: BaseException, taken: int = 0) -> InputError:
        """The InputError for an exception from the decompressor or parser, located as precisely as possible."""
        if isinstance(exc, EOFError):
            return InputError(f"{self.name}: truncated gzip stream (compressed data ended early)")
        if isinstance(exc, UnicodeDecodeError) or "Non-ASCII" in str(exc):
            return self._non_ascii_error(taken)
        if isinstance(exc, FileFormatError):
            return self._format_error(exc, taken)
        if isinstance(exc, (zlib.error, OSError)) or type(exc).__name__ == "IsalError":
            return InputError(f"{self.name}: corrupt gzip data ({_first_line(exc)})")
        return InputError(f"{self.name}: unreadable ({type(exc).__name__}: {_first_line(exc)})")

    def _format_error(self, exc: FileFormatError, taken: int) -> InputError:
        message = _first_line(exc.message)
        if message.startswith("Premature end of file"):
            message = "the file ends inside this record"
        if isinstance(exc, FastqFormatError) and exc.line is not None:
            index = exc.line // 4 + 1
            header = _line_of(self.path, exc.line - exc.line % 4)
            word = header[1:].decode("ascii", "backslashreplace").split(None, 1)[:1] if header else []
            return InputError(f"{self.name}: record {index}{f' ({word[0]})' if word else ''}: {message}")
        index = self.n_records + taken + 1
        if isinstance(exc, FastaFormatError) and message.startswith("Expected '>'"):
            return InputError(f"{self.name}: not FASTA (text before the first '>' header)")
        return InputError(f"{self.name}: record {index}: {message}")

    def _non_ascii_error(self, taken: int) -> InputError:
        where = _first_non_ascii(self.path, self.format)
        if where is None:
            return InputError(f"{self.name}: non-ASCII bytes after record {self.n_records + taken}")
        line, text, index = where
        part = FASTQ_LINES[line % 4] if self.format == "fastq" else "sequence"
        byte = next(b for b in text if b > 127)
        return InputError(f"{self.name}: record {index if self.format == 'fasta' else line // 4 + 1}: "
                          f"non-ASCII byte {bytes([byte])!r} in the {part} (line {line + 1})")


def _sniff_format(stream: BinaryIO, name: str) -> str:
    """'fasta' or 'fastq' from the first non-blank byte, or 'tfrecord' from a valid TFRecord frame header."""
    peeked = stream.peek(1 << 16)
    head = peeked.lstrip()
    if not head:
        if not peeked:
            raise InputError(f"{name}: empty file (no FASTA or FASTQ records)")
        raise InputError(f"{name}: only blank lines at the start of the file")
    first = head[:1]
    if first in MARKERS:
        return MARKERS[first]
    from .tfrecord import looks_like_tfrecord  # imported only here: its CRC32C module is a start-up cost

    if looks_like_tfrecord(peeked[:12]):
        return "tfrecord"
    raise InputError(f"{name}: not FASTA, FASTQ or TFRecord (first byte {first!r}; expected '>' or '@')")


def _is_blank_tail(exc: Exception) -> bool:
    """dnaio's complaint about blank lines after the last FASTQ record, which end a file harmlessly."""
    message = getattr(exc, "message", "")
    return (isinstance(exc, FastqFormatError) and "incomplete final record was: '" in message
            and not message.split("incomplete final record was: '", 1)[1].rstrip("'").replace("\\n", "").strip())


def _line_of(path: str, line: int) -> bytes | None:
    """Line `line` (0-based) of a regular input file, for an error message (None for stdin)."""
    if path == "-":
        return None
    with open_input(path) as stream:
        for index, text in enumerate(stream):
            if index == line:
                return text.rstrip(b"\r\n")
    return None


def _first_non_ascii(path: str, fmt: str) -> tuple[int, bytes, int] | None:
    """(0-based line, its text, 1-based FASTA record) of the first line other than a header (where any byte is
    allowed) holding a non-ASCII byte (None for stdin)."""
    if path == "-":
        return None
    headers = 0
    with open_input(path) as stream:
        for index, text in enumerate(stream):
            is_header = text.startswith(b">") if fmt == "fasta" else index % 2 == 0
            headers += is_header
            if not is_header and not text.isascii():
                return index, text, max(headers, 1)
    return None


def _first_line(exc) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


_BLANK = re.compile(r"[\t\n\x0b\x0c\r\x1c-\x1f ]")  # what str.split() splits ASCII on; dnaio splits on space and tab


def record_ids(records: list[Record], before: int, name: str, headers: dict[int, bytes] | None = None) -> list[str]:
    """The read id (first header word, see record_id) of each record; `before` records of the file came earlier;
    `headers` the original headers of escaped records, by index."""
    ids = [r.id for r in records]
    if headers or "" in ids or _BLANK.search("".join(ids)):  # a header starting with blanks, empty, other blanks
        headers = headers or {}
        for index, record in enumerate(records):
            if index in headers or not ids[index] or _BLANK.search(ids[index]):
                ids[index] = record_id(record, headers.get(index))
                if not ids[index]:
                    raise InputError(f"{name}: record {before + index + 1}: empty header (no read id)")
    return ids


def read_chunks(path: str, max_records: int = CHUNK_RECORDS) -> Iterator[RecordChunk]:
    """Chunks of the checked records of one FASTA/FASTQ file (at most `max_records` records and about
    CHUNK_BASES bases each), read lazily."""
    with SequenceReader(path) as reader:
        yield from reader.chunks(max_records)


def read_sequences(path: str) -> Iterator[tuple[str, str]]:
    """(read id, sequence) of every checked record of one file."""
    for chunk in read_chunks(path):
        yield from zip(chunk.ids, chunk.seqs)


def check_readable(paths: Iterable[str]) -> None:
    """Fail before any output is written when an input path cannot be opened (stdin `-` is always accepted)."""
    for path in paths:
        if path != "-" and (os.path.isfile(path) or not os.path.exists(path)):  # never consume a pipe twice
            next(read_chunks(path, 1), None)  # opens, sniffs and parses the first record only


def check_layout(paths: list[str], layout: str) -> None:
    """Usage errors for inputs that cannot be read in `layout` (single, paired or interleaved)."""
    if layout not in LAYOUTS:
        raise UsageError(f"unknown read layout {layout!r} (known: {', '.join(LAYOUTS)})")
    if layout == "paired" and len(paths) != 2:
        raise UsageError(f"--paired takes two files, R1 and R2 (mates in the same order); got {len(paths)}")
    if layout == "interleaved" and "-" in paths and len(paths) > 1:
        raise UsageError("--interleaved reads stdin ('-') only as the single input")


def read_fragments(paths: list[str], layout: str = "single",
                   max_records: int = CHUNK_RECORDS) -> Iterator[tuple[str, RecordChunk]]:
    """(input label, chunk) for every chunk of fragments of `paths` in `layout`: `single` reads file after file;
    `paired` R1 and R2 files with mates in the same order (label "R1,R2"); `interleaved` R1 and R2 alternating in
    each file. Mates whose ids differ (after removing a trailing /1 or /2) are an InputError."""
    check_layout(paths, layout)
    if layout == "paired":
        label = ",".join(map(display_name, paths))
        yield from ((label, chunk) for chunk in _paired_chunks(paths[0], paths[1], max_records))
        return
    for path in paths:
        label = display_name(path)
        if layout == "single":
            yield from ((label, chunk) for chunk in read_chunks(path, max_records))
        else:
            yield from ((label, chunk) for chunk in _interleaved_chunks(path, max_records))


def _paired_chunks(path1: str, path2: str, max_records: int) -> Iterator[RecordChunk]:
    with SequenceReader(path1) as first, SequenceReader(path2) as second:
        while True:
            records, headers = first.take(max_records)
            if not records:
                break
            mates, mate_headers = second.take(len(records), sys.maxsize)
            if len(mates) < len(records):
                raise InputError(f"{second.name}: ends after {second.n_records} records, but {first.name} has more "
                                 "(R1 and R2 must hold the same fragments in the same order)")
            before = first.n_records - len(records)
            ids = _mate_ids(records, before, first.name, headers)
            _check_mates(ids, _mate_ids(mates, before, second.name, mate_headers), before,
                         lambda n: f"{first.name}, {second.name}: record {n}", (first.name, second.name))
            both = {2 * i: h for i, h in headers.items()} | {2 * i + 1: h for i, h in mate_headers.items()}
            yield _pairs(records, mates, ids, first, both)
        if second.take(1, sys.maxsize)[0]:
            raise InputError(f"{second.name}: has more records than {first.name} ({first.n_records}); R1 and R2 must "
                             "hold the same fragments in the same order")


def _interleaved_chunks(path: str, max_records: int) -> Iterator[RecordChunk]:
    with SequenceReader(path) as reader:
        while True:
            records, headers = reader.take(2 * max_records)
            if not records:
                break
            if len(records) % 2:
                last, last_headers = reader.take(1, sys.maxsize)
                headers |= {len(records) + i: h for i, h in last_headers.items()}
                records += last
                if len(records) % 2:
                    raise InputError(f"{reader.name}: odd number of records ({reader.n_records}); interleaved input "
                                     "needs R1 and R2 of every fragment")
            both = _mate_ids(records, reader.n_records - len(records), reader.name, headers)
            ids, mates = both[0::2], both[1::2]
            _check_mates(ids, mates, (reader.n_records - len(records)) // 2,
                         lambda n: f"{reader.name}: records {2 * n - 1} and {2 * n}", None)
            yield _pairs(records[0::2], records[1::2], ids, reader, headers)


def _mate_ids(records: list[Record], before: int, name: str, headers: dict[int, bytes]) -> list[str]:
    """Read ids with a trailing /1 or /2 removed: the fragment a mate belongs to."""
    return [MATE_SUFFIX.sub("", i) for i in record_ids(records, before, name, headers)]


def _check_mates(ids: list[str], mates: list[str], before: int, where, files: tuple[str, str] | None) -> None:
    if ids == mates:
        return
    index = next(i for i, (a, b) in enumerate(zip(ids, mates)) if a != b)
    seen = f"{ids[index]} in {files[0]}, {mates[index]} in {files[1]}" if files else f"{ids[index]}, {mates[index]}"
    raise InputError(f"{where(before + index + 1)}: mates out of sync ({seen})")


def _pairs(records: list[Record], mates: list[Record], ids: list[str], reader: SequenceReader,
           headers: dict[int, bytes]) -> RecordChunk:
    """The chunk of fragments (records[i], mates[i]); `headers` are indexed by position in the alternating list."""
    both = list(chain.from_iterable(zip(records, mates)))
    return RecordChunk(both, ids, [r.sequence for r in both], 2, reader.format, reader.two_headers, headers)


def format_record(record: Record, fmt: str, two_headers: bool = False, header: bytes | None = None) -> bytes:
    """The record as FASTQ (as read: header with its comment, sequence, '+' line, qualities) or as one-line FASTA;
    `header`, when given, is written instead of the record's (ASCII) name, byte for byte."""
    fastq = fmt == "fastq" and record.qualities is not None
    if header is None:
        if fastq:
            return record.fastq_bytes(two_headers)
        header = record.name.encode("ascii")
    return fastx_bytes(header, record.sequence.encode("ascii"),
                       record.qualities.encode("ascii") if fastq else None, two_headers)


def fastx_bytes(header: bytes, sequence: bytes, qualities: bytes | None, repeat_header: bool = False) -> bytes:
    """One record: FASTQ when it has qualities (its '+' line repeating the header if asked), else one-line FASTA."""
    if qualities is not None:
        return b"@%s\n%s\n+%s\n%s\n" % (header, sequence, header if repeat_header else b"", qualities)
    return b">%s\n%s\n" % (header, sequence)


class DuplicateCounter:
    """Counts repeated read ids with 8 bytes per read (64-bit hashes), so memory stays small for large files."""

    def __init__(self) -> None:
        self._hashes = array("q")

    def add(self, names: Iterable[str]) -> None:
        self._hashes.extend(map(hash, names))

    def count(self) -> int:
        """Number of reads whose id was already seen earlier."""
        import numpy as np

        if len(self._hashes) < 2:
            return 0
        hashes = np.sort(np.frombuffer(self._hashes, dtype=np.int64))
        return int((hashes[1:] == hashes[:-1]).sum())
