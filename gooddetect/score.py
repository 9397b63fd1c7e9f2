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
from .seqio import Record
from .windows import UNKNOWN, encode, pad_batch, window_spans

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


def score_records(detector: Detector, records: Iterable[Record], *, batch_size: int = DEFAULT_BATCH_SIZE,
                  stride: int | None = None, counts: ScoreCounts | None = None) -> Iterator[ReadScore]:
    """Score every record, yielding one ReadScore per record in input order.

    Windows of consecutive reads are batched together (`batch_size` windows per model call), so memory stays
    constant however many reads come in; a read's score does not depend on what else is in the batch."""
    counts = counts if counts is not None else ScoreCounts()
    for pending, batch in _batches(detector, records, batch_size, stride, counts):
        yield from _flush(detector, pending, batch, counts)


def _batches(detector: Detector, records: Iterable[Record], batch_size: int, stride: int | None,
             counts: ScoreCounts) -> Iterator[tuple[list[tuple[ReadScore, int]], tuple[np.ndarray, np.ndarray] | None]]:
    """(reads with their number of windows, padded windows (codes, lengths) or None) per batch of about
    `batch_size` windows, the reads in input order."""
    pending: list[tuple[ReadScore, int]] = []
    batch: list[np.ndarray] = []
    for record in records:
        counts.reads += 1
        read, windows = _windows_of(record, detector.window_length, detector.min_length, stride)
        pending.append((read, len(windows)))
        batch.extend(windows)
        if len(batch) >= batch_size:
            yield pending, pad_batch(batch)
            pending, batch = [], []
    if pending:
        yield pending, pad_batch(batch) if batch else None


def _windows_of(record: Record, length: int, min_length: int, stride: int | None) -> tuple[ReadScore, list]:
    codes = encode(record.seq)
    read = ReadScore(record.name, codes.size)
    spans = window_spans(codes.size, length, stride, min_length)
    windows = [codes[s:e] for s, e in spans if np.count_nonzero(codes[s:e] < UNKNOWN) >= min_length]
    if not windows:
        read.reason = TOO_SHORT if not spans else TOO_MANY_UNKNOWN
    return read, windows


def _flush(detector: Detector, pending, batch, counts: ScoreCounts) -> Iterator[ReadScore]:
    """Score `batch` and yield the reads of `pending`, each with the sums over its own windows (computed per read
    group in one vectorised pass, so a read's values do not depend on its neighbours in the batch)."""
    sizes = np.fromiter((n for _, n in pending), dtype=np.int64, count=len(pending))
    if batch is not None:
        fg, bg, n_scored = detector.loglik(*batch)
        starts = (np.cumsum(sizes) - sizes)[sizes > 0]
        read_fg = np.add.reduceat(fg, starts).tolist()
        read_bg = np.add.reduceat(bg, starts).tolist()
        read_scored = np.add.reduceat(n_scored, starts).tolist()
        with np.errstate(invalid="ignore", divide="ignore"):
            window_llrs = ((fg - bg) / n_scored).tolist()
    group = row = 0
    for (read, _), n_windows in zip(pending, sizes.tolist()):
        if n_windows:
            read.n_windows = n_windows
            read.n_scored = read_scored[group]
            read.fg_sum, read.bg_sum = read_fg[group], read_bg[group]
            read.window_llrs = window_llrs[row:row + n_windows]
            group, row = group + 1, row + n_windows
            counts.windows += n_windows
            counts.scored_reads += 1
        else:
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
