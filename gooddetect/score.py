"""Streaming scoring: reads → windows → batched likelihoods → one TSV row per read, in input order.

Unknown bases are *masked* when scoring (not scored, and fed to the model as 'no information'); a window is dropped
only when fewer than `min_length` of its bases are known. Per-read values are base-weighted means over the read's
windows: loglik = Σ window log-likelihood sums / Σ scored bases, so every scored base counts once.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import IO, Iterable, Iterator

import numpy as np

from .detector import Detector
from .seqio import RecordChunk
from .windows import cut_reads

COLUMNS = ("read_id", "length", "n_windows", "n_scored", "loglik_fg", "loglik_bg", "llr", "score", "is_ood",
           "window_llrs", "loglik_fg_sum", "loglik_bg_sum", "reason")
NA = "NA"
DEFAULT_BATCH_SIZE = 4096  # windows per model call: large enough to amortise the k-mer model's thread hand-offs
TOO_SHORT = "too_short"
TOO_MANY_UNKNOWN = "too_many_unknown"


@dataclass
class ReadScore:
    """Scores of one read. Sums are natural-log likelihoods over the scored bases; means are per scored base."""

    read_id: str
    length: int
    n_windows: int = 0
    n_scored: int = 0
    fg_sum: float = 0.0
    bg_sum: float = 0.0
    window_llrs: list[float] = field(default_factory=list)
    reason: str | None = None

    @property
    def loglik_fg(self) -> float:
        return self.fg_sum / self.n_scored if self.n_scored else math.nan

    @property
    def loglik_bg(self) -> float:
        return self.bg_sum / self.n_scored if self.n_scored else math.nan

    @property
    def llr(self) -> float:
        return self.loglik_fg - self.loglik_bg

    @property
    def score(self) -> float:
        """The OOD score: −LLR, higher = more out of distribution (as alibi-detect reports it)."""
        return -self.llr


@dataclass
class ScoreCounts:
    """Totals for the closing summary; every read without a score is counted under its reason."""

    reads: int = 0
    scored_reads: int = 0
    windows: int = 0
    ood: int = 0
    skipped: Counter = field(default_factory=Counter)

    def __add__(self, other: "ScoreCounts") -> "ScoreCounts":
        return ScoreCounts(self.reads + other.reads, self.scored_reads + other.scored_reads,
                           self.windows + other.windows, self.ood + other.ood, self.skipped + other.skipped)

    def as_dict(self, threshold: float | None) -> dict:
        return {"reads": self.reads, "scored_reads": self.scored_reads, "windows": self.windows,
                "threshold": threshold, "ood": self.ood if threshold is not None else None,
                "ood_fraction": (self.ood / self.scored_reads if self.scored_reads else None)
                if threshold is not None else None,
                "skipped": dict(sorted(self.skipped.items()))}


def score_chunks(detector: Detector, chunks: Iterable[RecordChunk], *, batch_size: int = DEFAULT_BATCH_SIZE,
                 stride: int | None = None, counts: ScoreCounts | None = None) -> Iterator[ReadScore]:
    """Score every record, yielding one ReadScore per record in input order.

    Windows of consecutive reads are batched together (about `batch_size` windows per model call), so memory stays
    constant however many reads come in; a read's score does not depend on what else is in the batch."""
    counts = counts if counts is not None else ScoreCounts()
    for names, read_lengths, n_windows, windows in _batches(detector, chunks, batch_size, stride, counts):
        yield from _flush(detector, names, read_lengths, n_windows, windows, counts)


def _batches(detector: Detector, chunks: Iterable[RecordChunk], batch_size: int, stride: int | None,
             counts: ScoreCounts) -> Iterator[tuple[list[str], np.ndarray, np.ndarray, tuple | None]]:
    """Per batch: ids, lengths and window counts of consecutive reads, and their windows padded (codes, lengths),
    or None when none of them has a window. A batch ends at the first read that brings it to `batch_size` windows
    (or at a chunk's end)."""
    for chunk in chunks:
        counts.reads += len(chunk)
        cut = cut_reads(chunk.seqs, detector.window_length, stride, detector.min_length)
        n_windows = np.bincount(cut.reads, minlength=len(chunk))
        ends = np.cumsum(n_windows)
        first = done = 0
        while first < len(chunk):
            last = min(int(np.searchsorted(ends, done + batch_size)), len(chunk) - 1) + 1
            end = int(ends[last - 1])
            yield (chunk.names[first:last], cut.read_lengths[first:last], n_windows[first:last],
                   cut.padded(done, end) if end > done else None)
            first, done = last, end


def _flush(detector: Detector, names: list[str], read_lengths: np.ndarray, n_windows: np.ndarray,
           windows: tuple | None, counts: ScoreCounts) -> Iterator[ReadScore]:
    """Score `windows` and yield one ReadScore per read, each with the sums over its own windows (computed per read
    group in one vectorised pass, so a read's values do not depend on its neighbours in the batch)."""
    if windows is not None:
        fg, bg, n_scored = detector.loglik(*windows)
        starts = (np.cumsum(n_windows) - n_windows)[n_windows > 0]
        read_fg = np.add.reduceat(fg, starts).tolist()
        read_bg = np.add.reduceat(bg, starts).tolist()
        read_scored = np.add.reduceat(n_scored, starts).tolist()
        with np.errstate(invalid="ignore", divide="ignore"):
            window_llrs = ((fg - bg) / n_scored).tolist()
    group = row = 0
    for name, length, n in zip(names, read_lengths.tolist(), n_windows.tolist()):
        read = ReadScore(name, length)
        if n:
            read.n_windows = n
            read.n_scored = read_scored[group]
            read.fg_sum, read.bg_sum = read_fg[group], read_bg[group]
            read.window_llrs = window_llrs[row:row + n]
            group, row = group + 1, row + n
            counts.windows += n
            counts.scored_reads += 1
        else:
            read.reason = TOO_SHORT if length < detector.min_length else TOO_MANY_UNKNOWN
            counts.skipped[read.reason] += 1
        yield read


def _fmt(value: float, digits: int = 6) -> str:
    return NA if value is None or math.isnan(value) else f"{value:.{digits}f}"


def format_row(read: ReadScore, threshold: float | None) -> str:
    """One TSV line (see COLUMNS and the README for their meaning)."""
    scored = read.n_scored > 0
    is_ood = NA if threshold is None or not scored else str(int(read.score > threshold))
    window_llrs = ",".join(_fmt(v) for v in read.window_llrs) if read.n_windows > 1 else NA
    return "\t".join((
        read.read_id, str(read.length), str(read.n_windows), str(read.n_scored),
        _fmt(read.loglik_fg), _fmt(read.loglik_bg), _fmt(read.llr), _fmt(read.score), is_ood, window_llrs,
        _fmt(read.fg_sum if scored else math.nan, 3), _fmt(read.bg_sum if scored else math.nan, 3),
        read.reason or NA,
    )) + "\n"


def write_header(out: IO[str]) -> None:
    out.write("\t".join(COLUMNS) + "\n")


def write_rows(reads: Iterable[ReadScore], out: IO[str], threshold: float | None, counts: ScoreCounts) -> None:
    """Write one row per read, counting reads flagged OOD."""
    for read in reads:
        if threshold is not None and read.n_scored and read.score > threshold:
            counts.ood += 1
        out.write(format_row(read, threshold))
