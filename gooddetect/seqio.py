"""Streaming FASTA/FASTQ reading: compression sniffed from magic bytes, strict records, errors that name file and record."""

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
# Letters are bases (A/C/G/T) or unknown symbols (N, IUPAC, ...); '-', '.', '*' are gaps/stops, also unknown.
INVALID_SEQUENCE_CHAR = re.compile(r"[^A-Za-z.*\-]")


@dataclass(frozen=True, slots=True)
class Record:
    """One read or contig: `name` is the first word of the header, `index` its 1-based position in the file."""

    name: str
    seq: str
    index: int


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
    name = display_name(path)
    raw = _open_binary(path)
    try:
        stream = _decompressed(raw)
        try:
            fmt = _sniff_format(stream, name)
            text = io.TextIOWrapper(stream, encoding="utf-8", errors="backslashreplace", newline=None)
            yield from _parse(text, fmt, name)
        except EOFError:
            raise InputError(f"{name}: truncated gzip stream (compressed data ended early)") from None
        except (gzip.BadGzipFile, zlib.error) as exc:
            raise InputError(f"{name}: corrupt gzip data ({exc})") from None
    finally:
        if path != "-":
            raw.close()


def _parse(text: io.TextIOWrapper, fmt: str, name: str) -> Iterator[Record]:
    index = 0
    try:
        if fmt == "fasta":
            for index, (title, seq) in enumerate(SimpleFastaParser(text), start=1):
                yield _record(title, seq, index, name, fmt)
        else:
            for index, (title, seq, _qual) in enumerate(FastqGeneralIterator(text), start=1):
                yield _record(title, seq, index, name, fmt)
    except ValueError as exc:
        raise InputError(f"{name}: record {index + 1}: {_first_line(exc)}") from None
    if index == 0:
        raise InputError(f"{name}: no {fmt.upper()} records")


def _record(title: str, seq: str, index: int, name: str, fmt: str) -> Record:
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
    return Record(words[0], seq, index)


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


class DuplicateCounter:
    """Counts repeated read ids with 8 bytes per read (64-bit hashes), so memory stays small for large files."""

    def __init__(self) -> None:
        self._hashes = array("q")

    def add(self, name: str) -> None:
        self._hashes.append(hash(name))

    def count(self) -> int:
        """Number of reads whose id was already seen earlier."""
        import numpy as np

        if len(self._hashes) < 2:
            return 0
        hashes = np.sort(np.frombuffer(self._hashes, dtype=np.int64))
        return int((hashes[1:] == hashes[:-1]).sum())
