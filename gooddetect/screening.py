"""Foreign ranges along sequences (assemblies, long reads): bins of per-base log-likelihood ratios → a two-state
segmentation → ranges → a verdict per sequence.

Every sequence is scored along its whole length, in bins of `bin_size` bases: the k-mer kind reads it in long rows
that carry their context across row boundaries; an LSTM in rows of its window length, as it was trained. A bin's
OOD score is its per-base −LLR. A foreign insert is a run of high-scoring bins and a false call usually one isolated
bin, so the bins are segmented together: the best path of a two-state chain (in-distribution, foreign), where a
foreign bin of n scored bases with per-base score s adds n·(s − T) and every change of state costs `penalty`. T
follows the sequence's own in-distribution level: sequencing errors (and a strain's novelty) raise the scores of
in-distribution bins far more than those of foreign ones, so T is the sequence's lower-quartile bin score q plus
`margin`, or where that comes near `ceiling` (a level of foreign sequence), q moved 80 % of the way to it; never
below the calibrated threshold nor above `ceiling` (see docs/method.md for how these were chosen).
Runs of unknown bases (scaffold gaps) are never foreign: a range is cut at each gap and its ends trimmed to known
bases. A sequence's own level cannot tell a sequence that is foreign from end to end: with a support table, one
whose minimizers the references hold no more than chance explains (support.foreign) is foreign as a whole, EXCLUDE.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .alphabet import UNKNOWN, encode
from .detector import Detector
from .errors import UsageError
from . import support
from .windows import between_gaps, sequence_slices

DEFAULT_BIN = 50  # bases per bin: a bin boundary is at most 25 bases from a true one
ROW_BASES = 1 << 16  # the k-mer kind reads sequences in rows of about this many bases
ACTIONS = ("PASS", "TRIM", "EXCLUDE", "REVIEW")
TOWARDS_CEILING = 0.8  # chosen on the screening benchmark's validation long reads (0, 5 and 10 % errors)


@dataclass(frozen=True)
class Segmentation:
    """How ranges are called: the per-base OOD-score threshold T (at least `threshold`, at most `ceiling`, else
    the sequence's lower-quartile bin score plus `margin`), the penalty per change of state, the bin size, the
    shortest range cut out, and the foreign fraction from which a whole sequence is excluded."""

    threshold: float
    penalty: float
    margin: float = 0.0
    ceiling: float = -np.inf  # below `threshold`: T is `threshold` everywhere
    bin_size: int = DEFAULT_BIN
    min_range: int = 500
    exclude_fraction: float = 0.5
    min_length: int = 250  # shorter sequences are too short to judge by their bins (REVIEW)
    min_support: float = 0.0  # support.foreign's boundary for a whole sequence; 0: never foreign as a whole


@dataclass
class Track:
    """A sequence's bins: foreground and background log-likelihood sums and scored bases per bin (bin b covers
    bases b·bin_size .. (b+1)·bin_size − 1)."""

    fg: np.ndarray
    bg: np.ndarray
    n: np.ndarray
    hits: int = 0  # the sequence's minimizers found in the support table
    lookups: int = 0  # and looked up (0 without a table)

    @property
    def llr(self) -> np.ndarray:
        """Per-base LLR of each bin (NaN for a bin without a scored base)."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return (self.fg - self.bg) / self.n


@dataclass
class SequenceCall:
    """The verdict on one sequence: its foreign ranges (0-based, half-open) with their per-base LLR, and the
    action (PASS, TRIM, EXCLUDE, REVIEW)."""

    length: int
    scored: int
    mean_llr: float
    ranges: list[tuple[int, int, float]] = field(default_factory=list)
    short_ranges: int = 0  # foreign stretches shorter than min_range, not cut out
    action: str = "PASS"
    support: float = float("nan")  # the fraction of its minimizers in the support table (NaN: none looked up)

    @property
    def foreign_bases(self) -> int:
        return sum(end - start for start, end, _ in self.ranges)


def tracks(detector: Detector, seqs: list[str], bin_size: int) -> list[Track]:
    """The bins of every sequence, scored as the model kind reads sequences (see the module docstring)."""
    if detector.foreground.context is not None and detector.strands == "forward":
        row = ROW_BASES // bin_size * bin_size
        context = detector.foreground.context
    else:  # a model without context (an LSTM), or both strands: rows of the window length, no context across them
        row, context = detector.window_length, 0
        if row % bin_size:
            raise UsageError(f"--bin-size {bin_size} must divide the model's window length ({row})")
    lengths = np.fromiter(map(len, seqs), dtype=np.int64, count=len(seqs))
    codes, row_lengths, skip = sequence_slices(seqs, row, context)
    rows_per_sequence = np.maximum((lengths + row - 1) // row, 1)
    fg, bg, n = _binned(detector, codes, row_lengths, skip, bin_size)
    hits = lookups = np.zeros(len(codes), dtype=np.int64)
    if detector.support is not None:
        hits, lookups = detector.support.lookup(codes, row_lengths, detector.threads or 1)
    bins_per_row = row // bin_size
    out, first = [], 0
    for length, rows in zip(lengths.tolist(), rows_per_sequence.tolist()):
        bins = -(-length // bin_size)
        parts = [a[first:first + rows, :bins_per_row].reshape(-1)[:bins] for a in (fg, bg, n)]
        out.append(Track(*parts, int(hits[first:first + rows].sum()), int(lookups[first:first + rows].sum())))
        first += rows
    return out


def _binned(detector: Detector, codes: np.ndarray, lengths: np.ndarray, skip: np.ndarray,
            bin_size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """detector.binned_loglik in batches of rows of about 4 Mb (memory stays flat)."""
    step = max(1, (4 << 20) // max(codes.shape[1], 1))
    parts = [detector.binned_loglik(codes[i:i + step], lengths[i:i + step], skip[i:i + step], bin_size)
             for i in range(0, len(codes), step)]
    if not parts:
        width = max(1, -(-codes.shape[1] // bin_size))
        return np.zeros((0, width)), np.zeros((0, width)), np.zeros((0, width), dtype=np.int64)
    return tuple(np.concatenate(arrays) for arrays in zip(*parts))


def call(track: Track, sequence: str, rule: Segmentation) -> SequenceCall:
    """The foreign ranges of one sequence and its action."""
    from ._core.segment import viterbi  # numba: imported on first use

    length = len(sequence)
    scored = int(track.n.sum())
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_llr = float((track.fg.sum() - track.bg.sum()) / scored) if scored else float("nan")
    result = SequenceCall(length, scored, mean_llr, support=track.hits / track.lookups if track.lookups else np.nan)
    if support.foreign(np.array([track.hits]), np.array([track.lookups]), rule.min_support)[0]:
        result.ranges = [(start, end, _range_llr(track, start, end, rule.bin_size))
                         for start, end in _known_runs([(0, length)], sequence)]
        result.action = "EXCLUDE"
        return result
    if length < rule.min_length or not scored:
        result.action = "REVIEW"
        return result
    score = -np.nan_to_num(track.llr, nan=0.0)
    evidence = track.n * (score - sequence_threshold(score, track.n, rule))
    foreign = np.zeros(len(evidence), dtype=np.bool_)
    viterbi(evidence.astype(np.float64), float(rule.penalty), foreign)
    for start, end in _known_runs(_runs(foreign, rule.bin_size, length), sequence):
        if end - start < rule.min_range:
            result.short_ranges += 1
            continue
        result.ranges.append((start, end, _range_llr(track, start, end, rule.bin_size)))
    if result.ranges and result.foreign_bases >= rule.exclude_fraction * length:
        result.action = "EXCLUDE"
    elif result.ranges:
        result.action = "TRIM"
    elif result.short_ranges:
        result.action = "REVIEW"
    return result


def _range_llr(track: Track, start: int, end: int, bin_size: int) -> float:
    """The per-base LLR of the bins a range covers (NaN without a scored base)."""
    first, last = start // bin_size, -(-end // bin_size)
    n = track.n[first:last].sum()
    return float((track.fg[first:last].sum() - track.bg[first:last].sum()) / n) if n else float("nan")


def sequence_threshold(score: np.ndarray, n: np.ndarray, rule: Segmentation) -> float:
    """T of one sequence (see the module docstring) from the lower quartile q of its bins at least half scored."""
    full = score[n * 2 >= rule.bin_size]
    if not full.size or rule.ceiling <= rule.threshold:
        return rule.threshold
    q = float(np.quantile(full, 0.25))
    adapted = min(q + rule.margin, q + TOWARDS_CEILING * (rule.ceiling - q))
    return float(np.clip(adapted, rule.threshold, rule.ceiling))


def _runs(flags: np.ndarray, bin_size: int, length: int) -> list[tuple[int, int]]:
    """(start, end) in bases of every run of True bins."""
    edges = np.flatnonzero(np.diff(np.concatenate([[False], flags, [False]]).astype(np.int8)))
    return [(int(a) * bin_size, min(int(b) * bin_size, length)) for a, b in zip(edges[::2], edges[1::2])]


def _known_runs(ranges: list[tuple[int, int]], sequence: str) -> list[tuple[int, int]]:
    """The ranges cut at every gap (windows.between_gaps) and trimmed to known bases at both ends."""
    out = []
    for start, end in ranges:
        codes = encode(sequence[start:end])
        for a, b in between_gaps(codes):
            inside = np.flatnonzero(codes[a:b] < UNKNOWN)
            if inside.size:
                out.append((start + a + int(inside[0]), start + a + int(inside[-1]) + 1))
    return out
