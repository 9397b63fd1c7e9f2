"""The windowing contract, one path for training and scoring: reads → fixed-length windows, genomes → random windows.

A window is kept when at least `min_length` of its bases are known (A/C/G/T); its unknown bases are masked (not
scored, and fed to the models as "no information"), everywhere: `windows`, `train`, `score`, `calibrate`.
"""

from __future__ import annotations

import gzip
import hashlib
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator

import numpy as np

from .alphabet import UNKNOWN, decode, encode, encode_all, reverse_complement_padded
from .errors import InputError, UsageError
from .seqio import display_name, read_chunks

WINDOW_LENGTH = 250
MIN_LENGTH = 31  # what adapter trimming commonly keeps; shorter reads are too short to call
GZIP_MAGIC = b"\x1f\x8b"


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
    """The windows of a list of reads, in read order: `codes` holds the reads end to end (read i from offsets[i]),
    then one window length of UNKNOWN (so every window can be viewed at full width); window i is
    codes[starts[i]: starts[i] + lengths[i]], cut from read reads[i]. `dropped` windows had too few known bases."""

    codes: np.ndarray
    read_lengths: np.ndarray
    offsets: np.ndarray
    reads: np.ndarray
    starts: np.ndarray
    lengths: np.ndarray
    dropped: int = 0

    def __len__(self) -> int:
        return len(self.starts)

    def padded(self, first: int, last: int, width: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Windows first..last-1 as (codes [B, width] padded with UNKNOWN, lengths [B]); width: the longest."""
        starts, lengths = self.starts[first:last], self.lengths[first:last]
        width = width or int(lengths.max())
        rows = np.lib.stride_tricks.sliding_window_view(self.codes, width)[starts]
        if lengths.min() < width:
            rows[np.arange(width) >= lengths[:, None]] = UNKNOWN
        return rows, lengths

    def spans(self, first: int = 0, last: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """0-based (start, end) of windows first..last-1 on their reads."""
        starts = self.starts[first:last] - self.offsets[self.reads[first:last]]
        return starts, starts + self.lengths[first:last]


def cut_reads(seqs: list[str], length: int = WINDOW_LENGTH, stride: int | None = None,
              min_length: int = MIN_LENGTH) -> ChunkWindows:
    """The windows of every read (see `window_spans`) that have at least `min_length` known bases, computed for the
    whole list at once; reads of up to `length` bases, one window each, take no per-read Python work."""
    check_window_settings(length, stride, min_length)
    read_lengths = np.fromiter(map(len, seqs), dtype=np.int64, count=len(seqs))
    bases = int(read_lengths.sum())
    codes = np.full(bases + length, UNKNOWN, dtype=np.uint8)
    encode_all(seqs, codes)
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
    dropped = 0
    if unknown.size:
        known = lengths - (np.searchsorted(unknown, starts + lengths) - np.searchsorted(unknown, starts))
        keep = known >= min_length
        dropped = int(len(keep) - keep.sum())
        reads, starts, lengths = reads[keep], starts[keep], lengths[keep]
    return ChunkWindows(codes, read_lengths, offsets, reads, starts, lengths, dropped)


def sequence_slices(seqs: list[str], slice_length: int, overlap: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every base of every sequence, as rows for counting: (codes [R, W] padded with UNKNOWN, lengths [R], skip [R]).
    A sequence longer than `slice_length` is cut into consecutive slices; each slice after the first also repeats
    the `overlap` bases before it, as context only (skip), so every position is counted once with its full context."""
    lengths = np.fromiter(map(len, seqs), dtype=np.int64, count=len(seqs))
    bases = int(lengths.sum())
    starts = np.concatenate([np.arange(0, max(n, 1), slice_length) for n in lengths.tolist()]) if len(seqs) else \
        np.zeros(0, np.int64)
    sequence = np.repeat(np.arange(len(seqs)), np.maximum((lengths + slice_length - 1) // slice_length, 1))
    offsets = np.cumsum(lengths) - lengths
    skip = np.minimum(starts, overlap)
    ends = np.minimum(starts + slice_length, lengths[sequence])
    row_lengths = ends - starts + skip
    width = int(row_lengths.max(initial=1))
    codes = np.full(bases + width, UNKNOWN, dtype=np.uint8)
    encode_all(seqs, codes)
    rows = np.lib.stride_tricks.sliding_window_view(codes, width)[offsets[sequence] + starts - skip]
    rows = np.where(np.arange(width) < row_lengths[:, None], rows, np.uint8(UNKNOWN))
    return rows, row_lengths, skip


def window_label(read: str, start: int, end: int) -> str:
    """`readid:start-end` with 1-based inclusive coordinates, as samtools writes regions."""
    return f"{read}:{start + 1}-{end}"


@dataclass
class WindowCounts:
    """What windowing did with its input; every read or window left out is counted here."""

    reads: int = 0
    windows: int = 0
    reads_too_short: int = 0
    windows_too_many_unknown: int = 0
    duplicate_ids: int = 0
    files: list[str] = field(default_factory=list)

    def add(self, cut: ChunkWindows, min_length: int) -> None:
        self.reads += len(cut.read_lengths)
        self.windows += len(cut)
        self.reads_too_short += int((cut.read_lengths < min_length).sum())
        self.windows_too_many_unknown += cut.dropped

    def as_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k != "files"}


# ---------------------------------------------------------------------------------------------------------------
# Random windows from reference genomes (indexed FASTA through pyfaidx)


def sample_genome_windows(path: str, n: int, rng: np.random.Generator, counts: WindowCounts,
                          length: int = WINDOW_LENGTH, min_length: int = MIN_LENGTH,
                          max_tries_per_window: int = 100) -> Iterator[tuple[str, int, np.ndarray]]:
    """(record name, start, codes) of `n` windows at uniformly random positions of a genome FASTA (records weighted
    by length),
    on its forward strand. Windows with fewer than `min_length` known bases are redrawn (and counted). Plain and
    bgzip FASTA are indexed in place with pyfaidx (reading only the sampled bytes); plain gzip cannot be indexed, so
    it is first decompressed to a temporary file (streamed, never held in memory)."""
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
                raise InputError(f"{display_name(path)}: could not find {n} windows with {min_length} known bases")
            which = int(rng.choice(len(names), p=weights))
            start = int(rng.integers(0, usable[which]))
            codes = encode(str(fasta[names[which]][start: start + length]))
            if int((codes < UNKNOWN).sum()) < min_length:
                counts.windows_too_many_unknown += 1
                continue
            made += 1
            counts.windows += 1
            yield names[which], start, codes


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
# Genomes as a whole: training stretches and held-out validation blocks (the LSTM's `train --genomes`)

GAP_MIN = 10  # a run of at least this many unknown bases is an assembly gap (it splits a record into stretches)
VAL_BLOCK = 10_000  # bases per block of a stretch that may be held out for validation
MAX_VAL_WINDOWS = 5_000  # validation windows kept (a random subset of the held-out blocks' tiling), before strands


@dataclass(frozen=True)
class GenomeSplit:
    """Genomes cut for training: `sequence` holds every stretch (runs of ≥ GAP_MIN unknown bases removed) end to
    end; training windows are drawn inside the training pieces (`starts`, `lengths`: stretches minus their held-out
    blocks, at least a window long), validation windows are the held-out blocks tiled (`val`); `stats` counts it
    all."""

    sequence: np.ndarray
    starts: np.ndarray
    lengths: np.ndarray
    val: Windows
    stats: dict


def split_genomes(paths: Iterable[str], *, length: int = WINDOW_LENGTH, min_length: int = MIN_LENGTH,
                  val_fraction: float = 0.05, seed: int = 0) -> GenomeSplit:
    """Every record of `paths` (FASTA/FASTQ, any compression) split into stretches at assembly gaps; each stretch cut
    into blocks of about VAL_BLOCK bases, a seeded random `val_fraction` of all blocks (at least one) held out."""
    paths = list(paths)
    parts, stretches, stats = [], [], {"records": 0, "bases": 0, "gap_bases": 0}
    position = 0
    for path in paths:
        for chunk in read_chunks(path):
            for seq in chunk.seqs:
                codes = encode(seq)
                stats["records"] += 1
                stats["bases"] += len(codes)
                for begin, end in between_gaps(codes):
                    parts.append(codes[begin:end])
                    stretches.append((position, position + end - begin))
                    position += end - begin
    stats["gap_bases"] = stats["bases"] - position
    blocks = [(stretch, start + (end - start) * i // n, start + (end - start) * (i + 1) // n)
              for stretch, (start, end) in enumerate(stretches)
              for n in [max(1, (end - start) // VAL_BLOCK)] for i in range(n)]
    if len(blocks) < 2:
        raise InputError(f"{', '.join(map(display_name, paths))}: genomes of {position} bp are too short to hold out "
                         f"a validation block (at least 2 blocks of {VAL_BLOCK} bp)")
    rng = np.random.default_rng([seed, 2])
    held_out = np.zeros(len(blocks), dtype=bool)
    held_out[rng.choice(len(blocks), max(1, int(round(val_fraction * len(blocks)))), replace=False)] = True
    sequence = np.concatenate(parts)
    pieces, piece = [], None  # training pieces: runs of kept blocks within a stretch
    for (stretch, start, end), out in zip(blocks, held_out):
        if piece is not None and (out or piece[0] != stretch):
            pieces.append(piece)
            piece = None
        if not out:
            piece = (stretch, piece[1] if piece else start, end)
    pieces += [piece] if piece else []
    kept = [(start, end - start) for _, start, end in pieces if end - start >= length]
    if not kept:
        raise InputError(f"{', '.join(map(display_name, paths))}: no stretch of known bases holds a {length} bp "
                         "training window")
    starts, lengths = (np.array(column, dtype=np.int64) for column in zip(*kept))
    val_blocks = [decode(sequence[start:end]) for (_, start, end), out in zip(blocks, held_out) if out]
    val_bases = sum(map(len, val_blocks))
    cut = cut_reads(val_blocks, length, None, min_length)
    val = Windows(*cut.padded(0, len(cut), width=length))
    if len(val) > MAX_VAL_WINDOWS:
        val = val.take(np.sort(rng.choice(len(val), MAX_VAL_WINDOWS, replace=False)))
    stats |= {"stretches": len(stretches), "val_blocks": int(held_out.sum()),
              "val_bases": val_bases, "val_windows": len(val), "train_bases": int(lengths.sum()),
              "unused_bases": int(position - lengths.sum() - val_bases)}
    return GenomeSplit(sequence, starts, lengths, val, stats)


def between_gaps(codes: np.ndarray) -> list[tuple[int, int]]:
    """(start, end) of the non-empty stretches of `codes` between gaps (runs of at least GAP_MIN unknown bases)."""
    edges = np.flatnonzero(np.diff(np.concatenate(([0], (codes == UNKNOWN).view(np.int8), [0]))))
    gaps = [(s, e) for s, e in zip(edges[0::2].tolist(), edges[1::2].tolist()) if e - s >= GAP_MIN]
    bounds = [0, *(x for gap in gaps for x in gap), len(codes)]
    return [(s, e) for s, e in zip(bounds[0::2], bounds[1::2]) if e > s]


# ---------------------------------------------------------------------------------------------------------------
# Training sets


def collect_windows(paths: Iterable[str], counts: WindowCounts, *, length: int = WINDOW_LENGTH,
                    stride: int | None = None, min_length: int = MIN_LENGTH, windows_per_file: int | None = None,
                    max_windows: int | None = None, seed: int = 0,
                    classes: Callable[[int, list[str]], np.ndarray] | None = None) -> Windows:
    """All training windows of `paths` (forward strand).

    With `windows_per_file`, each file is a genome and that many random windows are sampled from it; otherwise every
    record is windowed (reads). With `max_windows`, a uniform random subset of that size is kept (reservoir
    sampling, so memory stays bounded). `classes(file index, read headers)` gives each window's class index."""
    rng = np.random.default_rng(seed)
    reservoir = _Reservoir(length, max_windows, rng)
    for index, path in enumerate(paths):
        counts.files.append(display_name(path))
        if windows_per_file:
            sampled = list(sample_genome_windows(path, windows_per_file, rng, counts, length, min_length))
            labels = classes(index, [name for name, _, _ in sampled]) if classes else None
            reservoir.add(np.stack([codes for _, _, codes in sampled]), np.full(len(sampled), length), labels)
            continue
        for chunk in read_chunks(path):
            cut = cut_reads(chunk.seqs, length, stride, min_length)
            counts.add(cut, min_length)
            labels = classes(index, [record.name for record in chunk.records]) if classes else None
            if len(cut):
                reservoir.add(*cut.padded(0, len(cut), width=length), None if labels is None else labels[cut.reads])
    if not reservoir.size:
        raise InputError(f"{', '.join(counts.files)}: no usable window ({counts.reads_too_short} reads shorter than "
                         f"{min_length} bp, {counts.windows_too_many_unknown} windows with fewer than {min_length} "
                         "known bases)")
    return reservoir.windows()


@dataclass(frozen=True)
class Windows:
    """Training windows: codes [N, length] padded with UNKNOWN, lengths [N], class indices [N] (or None)."""

    codes: np.ndarray
    lengths: np.ndarray
    labels: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.codes)

    def take(self, rows: np.ndarray) -> Windows:
        return Windows(self.codes[rows], self.lengths[rows], None if self.labels is None else self.labels[rows])


def split_validation(windows: Windows, fraction: float, seed: int) -> tuple[Windows, Windows]:
    """A seeded random split of source windows into (training, validation)."""
    order = np.random.default_rng([seed, 1]).permutation(len(windows))
    n_val = max(1, int(round(fraction * len(windows)))) if fraction > 0 else 0
    if n_val >= len(windows):
        raise UsageError(f"only {len(windows)} training windows: too few to hold out a validation set")
    return windows.take(np.sort(order[n_val:])), windows.take(np.sort(order[:n_val]))


def digest(codes: np.ndarray, lengths: np.ndarray) -> str:
    """The SHA-256 of windows (or sequences and their starts), as the model file records what it was trained on."""
    sha = hashlib.sha256(np.ascontiguousarray(codes).tobytes())
    sha.update(np.ascontiguousarray(lengths, dtype=np.int64).tobytes())
    return sha.hexdigest()


class _Reservoir:
    """A uniform random sample of at most `limit` of the windows added (all of them when `limit` is None)."""

    def __init__(self, length: int, limit: int | None, rng: np.random.Generator):
        self.length, self.limit, self.rng = length, limit, rng
        self.seen = 0
        self.parts: list[list[np.ndarray]] = []  # [codes, lengths, labels] blocks

    @property
    def size(self) -> int:
        return sum(len(part[1]) for part in self.parts)

    def add(self, codes: np.ndarray, lengths: np.ndarray, labels: np.ndarray | None) -> None:
        labels = np.full(len(codes), -1, dtype=np.int64) if labels is None else np.asarray(labels, dtype=np.int64)
        block = [np.array(codes, copy=True), np.array(lengths, dtype=np.int64), labels]
        first = self.seen
        self.seen += len(codes)
        if self.limit is None or self.size + len(codes) <= self.limit:
            self.parts.append(block)
            return
        room = max(self.limit - self.size, 0)
        self.parts = [[np.concatenate(arrays) for arrays in zip(*self.parts, [a[:room] for a in block])]]
        kept = self.parts[0]
        # Algorithm R: window number i (0-based) replaces a random slot with probability limit / (i + 1).
        slots = self.rng.integers(0, np.arange(first + room, self.seen) + 1)
        for row, slot in enumerate(slots.tolist(), start=room):
            if slot < self.limit:
                for kept_array, array in zip(kept, block):
                    kept_array[slot] = array[row]

    def windows(self) -> Windows:
        codes, lengths, labels = (np.concatenate(arrays) for arrays in zip(*self.parts))
        return Windows(codes, lengths, None if (labels < 0).all() else labels)


def with_reverse_complements(codes: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each window followed by its reverse complement (padded the same way)."""
    both = np.empty((2 * len(codes), codes.shape[1]), dtype=codes.dtype)
    both[0::2], both[1::2] = codes, reverse_complement_padded(codes, lengths)
    return both, np.repeat(lengths, 2)
