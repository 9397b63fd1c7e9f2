"""Thresholds: the rules that choose one on a labeled sample, and the thresholds that hold across read lengths.

The OOD score is −LLR per scored base; a fragment is flagged when its score is above its threshold. The per-base
mean of a shorter read is noisier, so one threshold flags more short in-distribution reads than long ones. Besides
the rule's threshold, calibration therefore stores a table of the in-distribution scores' upper quantiles for pieces
of several lengths cut from the calibration reads (a few numbers per length, no reads): at run time a fragment's
threshold for a target FPR is read from that table at its number of scored bases (interpolated in log length and
log FPR, clamped to the lengths calibrated).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from . import metrics
from .errors import UsageError
from .support import MIN_SUPPORT, foreign

log = logging.getLogger("gooddetect")

RULES = ("target_fpr", "max_f1", "youden", "percentile")
PIECE_LENGTHS = (31, 40, 50, 75, 100, 125, 150, 200, 250, 500, 1_000, 2_000, 5_000, 10_000, 20_000, 50_000, 100_000)
MIN_PIECES = 200  # a length is calibrated only from this many in-distribution pieces
MAX_PIECES = 5_000  # pieces scored per length at most (a seeded random subset)
FPR_GRID = tuple(sorted({*np.round(np.geomspace(0.0005, 0.5, 31), 6).tolist(), 0.01, 0.02, 0.05, 0.1, 0.2}))
TRADE_OFF_FPRS = (0.01, 0.02, 0.05, 0.1, 0.2)
MAX_IN_DIST_FOREIGN = 0.15  # more in-distribution reads without support than this: the references are incomplete


@dataclass(frozen=True)
class LengthTable:
    """Per calibrated length (row): its median scored bases and the OOD-score thresholds that flag each FPR of the
    grid among that length's in-distribution pieces."""

    n_scored: np.ndarray  # float64 [rows], increasing
    fpr: np.ndarray  # float64 [columns], increasing
    thresholds: np.ndarray  # float64 [rows, columns]

    @classmethod
    def fit(cls, groups: dict[int, np.ndarray], n_scored: dict[int, np.ndarray], fprs=FPR_GRID) -> LengthTable:
        """From the in-distribution scores of pieces grouped by length (lengths with < MIN_PIECES pieces left out)."""
        rows = sorted((float(np.median(n_scored[length])), length) for length in groups
                      if len(groups[length]) >= MIN_PIECES)
        if not rows:
            raise UsageError(f"too few in-distribution reads to calibrate thresholds by length (each length needs "
                             f"{MIN_PIECES} pieces)")
        fpr = np.array(sorted(fprs), dtype=np.float64)
        thresholds = np.array([[metrics.threshold_target_fpr(groups[length], f) for f in fpr] for _, length in rows])
        return cls(np.array([n for n, _ in rows]), fpr, thresholds)

    def thresholds_for(self, fpr: float, n_scored: np.ndarray) -> np.ndarray:
        """The threshold of each fragment for target `fpr`, by its scored bases."""
        if not self.fpr[0] <= fpr <= self.fpr[-1]:
            raise UsageError(f"--fpr {fpr}: the calibration table covers FPR {self.fpr[0]} to {self.fpr[-1]}")
        log_fpr = np.log(self.fpr)
        by_row = np.array([np.interp(np.log(fpr), log_fpr, row) for row in self.thresholds])
        if len(by_row) == 1:
            return np.full(len(n_scored), by_row[0])
        return np.interp(np.log(np.maximum(n_scored, 1)), np.log(self.n_scored), by_row)

    def to_dict(self) -> dict:
        return {"n_scored": self.n_scored.tolist(), "fpr": self.fpr.tolist(), "thresholds": self.thresholds.tolist()}

    @classmethod
    def from_dict(cls, values: dict) -> LengthTable:
        table = cls(*(np.asarray(values[key], dtype=np.float64) for key in ("n_scored", "fpr", "thresholds")))
        rows, columns = len(table.n_scored), len(table.fpr)
        if table.thresholds.shape != (rows, columns) or rows == 0 or columns == 0 or \
                not np.all(np.isfinite(table.thresholds)) or np.any(np.diff(table.n_scored) <= 0) or \
                np.any(np.diff(table.fpr) <= 0) or table.fpr[0] <= 0:
            raise ValueError("the calibration table is malformed")
        return table


@dataclass(frozen=True)
class Thresholds:
    """How fragments are flagged in one run: a fixed threshold, or the length table at a target FPR."""

    fixed: float | None = None
    table: LengthTable | None = None
    fpr: float | None = None

    def describe(self) -> str:
        if self.table is not None:
            return f"length-aware thresholds at FPR {self.fpr:g}"
        return f"threshold {self.fixed:.4f}"

    def code(self) -> str:
        """The thresholds in a table cell: fixed:T or fpr:F."""
        return f"fpr:{self.fpr:g}" if self.table is not None else f"fixed:{self.fixed:.6f}"

    def for_fragments(self, n_scored: np.ndarray) -> np.ndarray:
        if self.table is not None:
            return self.table.thresholds_for(self.fpr, n_scored)
        return np.full(len(n_scored), self.fixed, dtype=np.float64)

    def summary(self) -> dict:
        """What the summary JSON and the report record about the thresholds."""
        if self.table is not None:
            at = self.table.thresholds_for(self.fpr, np.array([149.0, 249.0]))
            return {"mode": "length_aware", "fpr": self.fpr, "at_150bp": float(at[0]), "at_250bp": float(at[1])}
        return {"mode": "fixed", "threshold": self.fixed}


def resolve(calibration: dict | None, threshold: float | None = None, fpr: float | None = None) -> Thresholds | None:
    """The thresholds of a run: `threshold` (fixed, overriding the model's), `fpr` (from the model's calibration
    table), or the model's own calibration; None without any."""
    if threshold is not None and fpr is not None:
        raise UsageError("give --threshold or --fpr, not both")
    if threshold is not None:
        return Thresholds(fixed=float(threshold))
    if calibration is None:
        if fpr is not None:
            raise UsageError("--fpr needs a calibrated model (gooddetect calibrate); or give --threshold")
        return None
    table = LengthTable.from_dict(calibration["table"]) if calibration.get("table") else None
    if fpr is not None:
        if table is None:
            raise UsageError("--fpr needs a model calibrated by this version of gooddetect (its table of in-"
                             "distribution scores); recalibrate, or give --threshold")
        return Thresholds(table=table, fpr=float(fpr))
    if calibration.get("length_aware") and table is not None:
        return Thresholds(table=table, fpr=float(calibration["fpr"]))
    return Thresholds(fixed=float(calibration["value"]))


def support_boundary(hits: np.ndarray, lookups: np.ndarray, min_support: float) -> float:
    """The foreign boundary to store: `min_support`, or 0 (no read foreign) when it would call more than
    MAX_IN_DIST_FOREIGN of the in-distribution reads (their support `hits` and `lookups`) foreign: then the
    references (sampled windows, say) miss much of the in-distribution organisms' sequence, and only the LLR can
    judge."""
    share = float(np.mean(foreign(hits, lookups, min_support))) if len(hits) else 0.0
    if share <= MAX_IN_DIST_FOREIGN:
        return min_support
    log.warning("calibrate: %.1f%% of the in-distribution reads share almost no k-mer with the training sequences "
                "(support < %g), so no read will be called foreign; train on whole genomes for foreign calls",
                100 * share, min_support)
    return 0.0


def min_support(calibration: dict | None, given: float | None = None) -> float:
    """The support below which a read is foreign: `given`, else the calibration's, else MIN_SUPPORT."""
    if given is not None:
        return float(given)
    stored = (calibration or {}).get("min_support")
    return float(stored) if isinstance(stored, (int, float)) else MIN_SUPPORT


def choose_threshold(rule: str, value: float | None, scores: np.ndarray, is_ood: np.ndarray) -> float:
    """The threshold on the OOD score (flag when score > threshold) chosen by `rule` on a labeled sample."""
    if rule == "target_fpr":
        return metrics.threshold_target_fpr(scores[~is_ood], value)
    if rule == "percentile":
        return metrics.threshold_percentile(scores, value)
    if not is_ood.any() or is_ood.all():
        raise UsageError(f"--{rule.replace('_', '-')} needs both in-distribution and OOD reads")
    if rule == "max_f1":
        threshold = metrics.threshold_max_f1(scores, is_ood)
        # -inf means "flag every read"; keep a finite value with that effect on this sample.
        return threshold if np.isfinite(threshold) else float(np.min(scores)) - 1e-6
    if rule == "youden":
        return metrics.threshold_youden(scores, is_ood)
    raise UsageError(f"unknown threshold rule {rule!r}")


def trade_off(scores: np.ndarray, is_ood: np.ndarray, fprs=TRADE_OFF_FPRS) -> list[dict]:
    """Threshold, FPR and TPR on the sample at each target FPR (TPR None without OOD reads)."""
    rows = []
    for target in fprs:
        threshold = metrics.threshold_target_fpr(scores[~is_ood], target)
        flagged = scores > threshold
        rows.append({"target_fpr": target, "threshold": threshold, "fpr": float(flagged[~is_ood].mean()),
                     "tpr": float(flagged[is_ood].mean()) if is_ood.any() else None})
    return rows


def piece_spans(lengths: np.ndarray, rng: np.random.Generator,
                piece_lengths=PIECE_LENGTHS) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """For each piece length: (sequence index, start) of at most MAX_PIECES non-overlapping pieces, tiled from the
    start of every sequence at least that long, a uniform random subset when there are more."""
    spans = {}
    for length in piece_lengths:
        per_sequence = lengths // length
        total = int(per_sequence.sum())
        if total < MIN_PIECES:
            continue
        chosen = np.sort(rng.choice(total, MAX_PIECES, replace=False)) if total > MAX_PIECES else np.arange(total)
        sequence = np.searchsorted(np.cumsum(per_sequence), chosen, side="right")
        within = chosen - (np.cumsum(per_sequence) - per_sequence)[sequence]
        spans[length] = (sequence, within * length)
    return spans
