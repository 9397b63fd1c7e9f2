"""Base encoding and the windowing contract: reads → fixed-length windows, genomes → random windows.

Codes: A=0, C=1, G=2, T=3 (case-insensitive); any other symbol is UNKNOWN (4), which also pads short windows.
"""

from __future__ import annotations

import gzip
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from .errors import InputError, UsageError
from .seqio import GZIP_MAGIC, Record, display_name, read_records

UNKNOWN = 4
BASES = "ACGT"
WINDOW_LENGTH = 250
MIN_LENGTH = 50

_ENCODE = np.full(256, UNKNOWN, dtype=np.uint8)
for _code, _base in enumerate(BASES):
    _ENCODE[ord(_base)] = _ENCODE[ord(_base.lower())] = _code
_DECODE = np.frombuffer(b"ACGTN", dtype=np.uint8)
_COMPLEMENT = np.array([3, 2, 1, 0, UNKNOWN], dtype=np.uint8)


def encode(seq: str) -> np.ndarray:
    """Sequence text → uint8 codes (unknown symbols → 4)."""
    return _ENCODE[np.frombuffer(seq.encode("ascii", "replace"), dtype=np.uint8)]


def decode(codes: np.ndarray) -> str:
    """uint8 codes → sequence text (4 → 'N')."""
    return _DECODE[np.minimum(codes, UNKNOWN)].tobytes().decode("ascii")


def reverse_complement(codes: np.ndarray) -> np.ndarray:
    """Reverse complement of codes along the last axis (unknown stays unknown)."""
    return _COMPLEMENT[codes[..., ::-1]]


def reverse_complement_padded(codes: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Reverse complement of each row of padded codes [B, W] (row i holds lengths[i] bases), padded the same way."""
    source = np.asarray(lengths)[:, None] - 1 - np.arange(codes.shape[1])
    inside = source >= 0
    picked = np.take_along_axis(codes, np.where(inside, source, 0), axis=1)
    return np.where(inside, _COMPLEMENT[picked], np.uint8(UNKNOWN))


def check_window_settings(length: int, stride: int | None, min_length: int) -> None:
    if min_length > length:
        raise UsageError(f"minimum read length ({min_length}) must not exceed the window length ({length})")
    if stride is not None and stride > length:
        raise UsageError(f"--stride ({stride}) larger than the window length ({length}) would leave bases unscored")


def window_spans(read_length: int, length: int = WINDOW_LENGTH, stride: int | None = None,
                 min_length: int = MIN_LENGTH) -> list[tuple[int, int]]:
    """0-based half-open (start, end) spans of the windows cut from a read.

    - shorter than `min_length`: no window;
    - up to `length`: one window, the whole read;
    - longer, default stride (= length): the read is tiled without overlap, every base in exactly one window. The last
      window ends at the read end; a remainder shorter than `min_length` is merged with the previous full window and
      the pair split into two equal halves, so no window is shorter than `min_length` or longer than `length`
      (when the halves would be shorter than `min_length`, possible only if `length < 2 * min_length`, the last
      window is instead a full one aligned to the read end, overlapping the previous one);
    - longer, stride < length (sliding): windows every `stride` bases, plus one aligned to the read end if needed.
    """
    check_window_settings(length, stride, min_length)
    stride = stride or length
    if read_length < min_length:
        return []
    if read_length <= length:
        return [(0, read_length)]
    if stride < length:
        spans = [(s, s + length) for s in range(0, read_length - length + 1, stride)]
        if spans[-1][1] < read_length:
            spans.append((read_length - length, read_length))
        return spans
    full = read_length // length
    spans = [(i * length, (i + 1) * length) for i in range(full)]
    tail = read_length - full * length
    if tail == 0:
        return spans
    if tail >= min_length:
        return spans + [(full * length, read_length)]
    if length + tail < 2 * min_length:
        return spans + [(read_length - length, read_length)]
    start = spans.pop()[0]
    middle = start + (read_length - start + 1) // 2
    return spans + [(start, middle), (middle, read_length)]


@dataclass(frozen=True)
class ChunkWindows:
    """The windows of a list of reads, in read order: `codes` holds the reads end to end, then one window length of
    UNKNOWN (so every window can be viewed at full width); window i is codes[starts[i]: starts[i] + lengths[i]],
    cut from read reads[i]."""

    codes: np.ndarray
    read_lengths: np.ndarray
    reads: np.ndarray
    starts: np.ndarray
    lengths: np.ndarray

    def padded(self, first: int, last: int) -> tuple[np.ndarray, np.ndarray]:
        """Windows first..last-1 as (codes [B, longest] padded with UNKNOWN, lengths [B]), like `pad_batch`."""
        starts, lengths = self.starts[first:last], self.lengths[first:last]
        width = int(lengths.max())
        rows = np.lib.stride_tricks.sliding_window_view(self.codes, width)[starts]
        if lengths.min() < width:
            rows[np.arange(width) >= lengths[:, None]] = UNKNOWN
        return rows, lengths


def cut_reads(seqs: list[str], length: int = WINDOW_LENGTH, stride: int | None = None,
              min_length: int = MIN_LENGTH) -> ChunkWindows:
    """The windows of every read (see `window_spans`) that have at least `min_length` known bases, computed for the
    whole list at once; reads of up to `length` bases, one window each, take no per-read Python work."""
    check_window_settings(length, stride, min_length)
    read_lengths = np.fromiter(map(len, seqs), dtype=np.int64, count=len(seqs))
    bases = int(read_lengths.sum())
    codes = np.full(bases + length, UNKNOWN, dtype=np.uint8)
    codes[:bases] = encode("".join(seqs))
    offsets = np.cumsum(read_lengths) - read_lengths
    reads = np.flatnonzero((read_lengths >= min_length) & (read_lengths <= length))
    starts, lengths = offsets[reads], read_lengths[reads]
    long_reads = np.flatnonzero(read_lengths > length).tolist()
    if long_reads:
        spans = np.array([(read, offsets[read] + start, end - start) for read in long_reads
                          for start, end in window_spans(int(read_lengths[read]), length, stride, min_length)],
                         dtype=np.int64)
        order = np.argsort(np.concatenate([reads, spans[:, 0]]), kind="stable")
        reads, starts, lengths = (np.concatenate(pair)[order] for pair in
                                  ((reads, spans[:, 0]), (starts, spans[:, 1]), (lengths, spans[:, 2])))
    unknown = np.flatnonzero(codes[:bases] == UNKNOWN)
    if unknown.size:
        known = lengths - (np.searchsorted(unknown, starts + lengths) - np.searchsorted(unknown, starts))
        keep = known >= min_length
        reads, starts, lengths = reads[keep], starts[keep], lengths[keep]
    return ChunkWindows(codes, read_lengths, reads, starts, lengths)


def pad_batch(windows: list[np.ndarray], width: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Stack variable-length code arrays into (codes [B, width] padded with UNKNOWN, lengths [B])."""
    lengths = np.fromiter((w.size for w in windows), dtype=np.int64, count=len(windows))
    width = width or (int(lengths.max()) if len(windows) else 0)
    codes = np.full((len(windows), width), UNKNOWN, dtype=np.uint8)
    for row, window in enumerate(windows):
        codes[row, : window.size] = window
    return codes, lengths


@dataclass
class WindowCounts:
    """What windowing did with its input; every read or window left out is counted here."""

    reads: int = 0
    windows: int = 0
    reads_too_short: int = 0
    windows_with_unknown: int = 0
    duplicate_ids: int = 0
    files: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k != "files"}


@dataclass(frozen=True, slots=True)
class Window:
    """A window of a read: `start`/`end` 0-based half-open on the read's forward strand."""

    read: str
    start: int
    end: int
    strand: str
    codes: np.ndarray

    @property
    def label(self) -> str:
        """`readid:start-end(strand)` with 1-based inclusive coordinates, as samtools writes regions."""
        return f"{self.read}:{self.start + 1}-{self.end}({self.strand})"


def read_windows(records: Iterable[Record], counts: WindowCounts, length: int = WINDOW_LENGTH,
                 stride: int | None = None, min_length: int = MIN_LENGTH, both_strands: bool = False,
                 skip_unknown: bool = True) -> Iterator[Window]:
    """Cut every record into windows (see `window_spans`), counting reads and windows left out."""
    for record in records:
        counts.reads += 1
        codes = encode(record.seq)
        spans = window_spans(codes.size, length, stride, min_length)
        if not spans:
            counts.reads_too_short += 1
            continue
        for start, end in spans:
            window = codes[start:end]
            if skip_unknown and (window == UNKNOWN).any():
                counts.windows_with_unknown += 1 + both_strands
                continue
            counts.windows += 1
            yield Window(record.name, start, end, "+", window)
            if both_strands:
                counts.windows += 1
                yield Window(record.name, start, end, "-", reverse_complement(window))


# ---------------------------------------------------------------------------------------------------------------
# Random windows from reference genomes (indexed FASTA through pyfaidx)


def sample_genome_windows(path: str, n: int, rng: np.random.Generator, counts: WindowCounts,
                          length: int = WINDOW_LENGTH, both_strands: bool = True,
                          max_tries_per_window: int = 100) -> Iterator[Window]:
    """`n` windows at uniformly random positions of a genome FASTA (records weighted by length), on a random strand
    when `both_strands`. Windows touching an unknown base are redrawn (and counted). Plain and bgzip FASTA are
    indexed in place with pyfaidx (reading only the sampled bytes); plain gzip cannot be indexed, so it is first
    decompressed to a temporary file (streamed, never held in memory)."""
    with _indexed_fasta(path) as fasta:
        names = list(fasta.keys())
        sizes = np.array([len(fasta[name]) for name in names], dtype=np.int64)
        usable = np.maximum(sizes - length + 1, 0)
        if usable.sum() == 0:
            raise InputError(f"{display_name(path)}: no record is at least {length} bp long")
        weights = usable / usable.sum()
        made = 0
        tries = 0
        while made < n:
            tries += 1
            if tries > n * max_tries_per_window:
                raise InputError(f"{display_name(path)}: could not find {n} windows without unknown bases")
            which = int(rng.choice(len(names), p=weights))
            start = int(rng.integers(0, usable[which]))
            minus = both_strands and bool(rng.integers(0, 2))
            codes = encode(str(fasta[names[which]][start: start + length]))
            if (codes == UNKNOWN).any():
                counts.windows_with_unknown += 1
                continue
            made += 1
            counts.windows += 1
            if minus:
                yield Window(names[which], start, start + length, "-", reverse_complement(codes))
            else:
                yield Window(names[which], start, start + length, "+", codes)


class _indexed_fasta:
    """Context manager giving a pyfaidx.Fasta for `path`, via a temporary copy when it cannot be indexed in place."""

    def __init__(self, path: str):
        self.path = path
        self.tmpdir: tempfile.TemporaryDirectory | None = None
        self.fasta = None

    def __enter__(self):
        from pyfaidx import Fasta, FastaIndexingError

        source = Path(self.path)
        if not source.is_file():
            raise InputError(f"{display_name(self.path)}: genome sampling needs a regular file (not stdin or a directory)")
        with open(source, "rb") as handle:
            gzipped = handle.read(2) == GZIP_MAGIC
        try:
            if _pyfaidx_reads_in_place(source, gzipped):
                try:
                    self.fasta = Fasta(str(source), sequence_always_upper=True)
                    return self.fasta
                except (OSError, PermissionError):
                    pass  # read-only directory: index a private copy below
            self.tmpdir = tempfile.TemporaryDirectory(prefix="gooddetect-")
            plain = Path(self.tmpdir.name) / "genome.fa"
            opener = gzip.open if gzipped else open
            with opener(source, "rb") as src, open(plain, "wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
            self.fasta = Fasta(str(plain), sequence_always_upper=True)
            return self.fasta
        except (FastaIndexingError, ValueError, EOFError) as exc:
            raise InputError(f"{display_name(self.path)}: cannot index as FASTA ({exc})") from None

    def __exit__(self, *exc):
        if self.fasta is not None:
            self.fasta.close()
        if self.tmpdir is not None:
            self.tmpdir.cleanup()


def _pyfaidx_reads_in_place(path: Path, gzipped: bool) -> bool:
    """Whether pyfaidx can index `path` itself: it picks its reader from the file name (.gz/.bgz: bgzip; .bz2/.zip:
    refused; anything else: plain), so the name must agree with the content, which only bgzip or plain can be."""
    suffix = path.suffix.lower()
    if gzipped:
        return suffix in (".gz", ".bgz") and _is_bgzip(path)
    return suffix not in (".gz", ".bgz", ".bz2", ".zip")


def _is_bgzip(path: Path) -> bool:
    """bgzip files carry a 'BC' extra subfield in every gzip member header."""
    with open(path, "rb") as handle:
        header = handle.read(18)
    return len(header) >= 16 and header[3] & 4 and header[12:14] == b"BC"


# ---------------------------------------------------------------------------------------------------------------
# Training sets


def collect_windows(paths: Iterable[str], counts: WindowCounts, *, length: int = WINDOW_LENGTH,
                    stride: int | None = None, min_length: int = MIN_LENGTH, windows_per_file: int | None = None,
                    max_windows: int | None = None, both_strands: bool = False,
                    seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """All training windows of `paths` as (codes [N, length], lengths [N]).

    With `windows_per_file`, each file is a genome and that many random windows are sampled from it; otherwise every
    record is windowed (reads). Windows with unknown bases are skipped and counted. With `max_windows`, a uniform
    random subset of that size is kept (reservoir sampling, so memory stays bounded)."""
    rng = np.random.default_rng(seed)
    reservoir: list[np.ndarray] = []
    seen = 0
    for path in paths:
        counts.files.append(display_name(path))
        if windows_per_file:
            windows = sample_genome_windows(path, windows_per_file, rng, counts, length, both_strands)
        else:
            windows = read_windows(read_records(path), counts, length, stride, min_length, both_strands)
        for window in windows:
            seen += 1
            if max_windows is None or len(reservoir) < max_windows:
                reservoir.append(window.codes)
            else:
                slot = int(rng.integers(0, seen))
                if slot < max_windows:
                    reservoir[slot] = window.codes
    if not reservoir:
        raise InputError(f"{', '.join(counts.files)}: no usable window (reads shorter than {min_length} bp "
                         f"or with unknown bases: {counts.reads_too_short} too short, "
                         f"{counts.windows_with_unknown} windows with unknown bases)")
    return pad_batch(reservoir, width=length)


def gc_fraction(codes: np.ndarray) -> np.ndarray:
    """Fraction of G+C among the known bases of each row (NaN for rows without known bases)."""
    known = (codes < UNKNOWN).sum(axis=-1)
    gc = ((codes == 1) | (codes == 2)).sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return gc / known
