"""Detection metrics and threshold rules, in pure numpy.

Conventions used throughout:
- OOD is the positive class: `labels` is a bool (or 0/1) array with True = out of distribution.
- A score is "higher = more OOD" (for the likelihood ratio, score = -LLR).
- A threshold `t` flags a read as OOD when `score > t` (strictly), as alibi-detect's `predict` does.
- Scores must be finite: callers drop reads without a score (NaN) first and report how many they dropped.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = [
    "finite_scores",
    "roc_curve",
    "auroc",
    "auprc",
    "fpr_at_tpr",
    "confusion_at",
    "threshold_target_fpr",
    "threshold_max_f1",
    "threshold_youden",
    "threshold_percentile",
    "summarize",
    "pearson",
]

# Slack when comparing a rate computed as a ratio of counts with a target given as a float
# (0.29 * 100 == 28.999999999999996).
_RATE_SLACK = 1e-9


def finite_scores(scores, name: str = "scores") -> np.ndarray:
    """`scores` as a 1-D float64 array, or a ValueError naming `name` when it holds NaN or inf."""
    values = np.asarray(scores, dtype=np.float64)
    if values.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array, got shape {values.shape}")
    bad = ~np.isfinite(values)
    if bad.any():
        raise ValueError(
            f"{name} contains {int(bad.sum())} non-finite value(s) (NaN or inf); drop reads without a score first"
        )
    return values


def _as_scored_labels(scores, labels) -> tuple[np.ndarray, np.ndarray]:
    values = finite_scores(scores)
    raw = np.asarray(labels)
    if raw.shape != values.shape:
        raise ValueError(f"labels shape {raw.shape} does not match scores shape {values.shape}")
    if raw.dtype != np.bool_ and not np.isin(raw, (0, 1)).all():
        raise ValueError("labels must be bool or 0/1 (True/1 = OOD)")
    return values, raw.astype(bool)


def _require_both_classes(labels: np.ndarray) -> tuple[int, int]:
    n_ood = int(labels.sum())
    n_in = int(labels.size - n_ood)
    if n_ood == 0 or n_in == 0:
        raise ValueError(f"need both in-distribution and OOD examples, got n_in={n_in}, n_ood={n_ood}")
    return n_in, n_ood


def _roc_counts(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(false positives, true positives, thresholds) at each distinct threshold, thresholds descending.
    Point i flags `score > thresholds[i]`; thresholds are the distinct scores followed by -inf, so the first
    point flags nothing and the last flags everything."""
    order = np.argsort(-scores, kind="stable")
    sorted_scores = scores[order]
    sorted_labels = labels[order]
    group_ends = np.append(np.flatnonzero(sorted_scores[1:] != sorted_scores[:-1]), sorted_scores.size - 1)
    tps = np.concatenate(([0], np.cumsum(sorted_labels)[group_ends]))
    fps = np.concatenate(([0], np.cumsum(~sorted_labels)[group_ends]))
    thresholds = np.append(sorted_scores[group_ends], -np.inf)
    return fps, tps, thresholds


def roc_curve(scores, labels) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """ROC curve with one point per distinct threshold: (fpr, tpr, thresholds), thresholds descending.

    Point i flags `score > thresholds[i]`. The thresholds are the distinct score values in descending order
    followed by -inf, so the curve starts at (0, 0) (threshold = max score, nothing flagged) and ends at (1, 1)
    (threshold = -inf, everything flagged). Tied scores move together, giving one (possibly diagonal) step."""
    values, truth = _as_scored_labels(scores, labels)
    n_in, n_ood = _require_both_classes(truth)
    fps, tps, thresholds = _roc_counts(values, truth)
    return fps / n_in, tps / n_ood, thresholds


def auroc(scores, labels) -> float:
    """Area under the ROC curve: the probability that a random OOD read scores higher than a random
    in-distribution read, ties counting 1/2 (the Mann-Whitney U statistic divided by n_in * n_ood)."""
    values, truth = _as_scored_labels(scores, labels)
    n_in, n_ood = _require_both_classes(truth)
    fps, tps, _ = _roc_counts(values, truth)
    # Trapezoids on integer counts: a tied group contributes its in-vs-OOD pairs with weight 1/2.
    area = np.sum(np.diff(fps) * (tps[1:] + tps[:-1])) / 2.0
    return float(area / (n_in * n_ood))


def auprc(scores, labels) -> float:
    """Area under the precision-recall curve as average precision, defined as scikit-learn's
    `average_precision_score`: AP = sum_n (R_n - R_{n-1}) * P_n over the distinct thresholds in descending
    order, with R_0 = 0 -- a step function, no interpolation. OOD is the positive class."""
    values, truth = _as_scored_labels(scores, labels)
    _, n_ood = _require_both_classes(truth)
    fps, tps, _ = _roc_counts(values, truth)
    precision = tps[1:] / (tps[1:] + fps[1:])  # every point after the first flags at least one read
    recall_steps = np.diff(tps) / n_ood
    return float(np.sum(recall_steps * precision))


def _check_rate(value: float, name: str, *, low_open: bool, high_open: bool) -> None:
    low_ok = value > 0.0 if low_open else value >= 0.0
    high_ok = value < 1.0 if high_open else value <= 1.0
    if not (low_ok and high_ok):
        interval = ("(" if low_open else "[") + "0, 1" + (")" if high_open else "]")
        raise ValueError(f"{name} must be in {interval}, got {value}")


def fpr_at_tpr(scores, labels, tpr: float = 0.8) -> float:
    """The paper's FPR@TPR metric: the smallest false positive rate among the thresholds whose true positive
    rate reaches `tpr` (TPR >= tpr - 1e-9, the slack absorbing float rounding of the target)."""
    _check_rate(tpr, "tpr", low_open=True, high_open=False)
    fpr_points, tpr_points, _ = roc_curve(scores, labels)
    reached = tpr_points >= tpr - _RATE_SLACK
    return float(fpr_points[reached].min())


def _ratio(numerator: int, denominator: int) -> float:
    return numerator / denominator if denominator else math.nan


def confusion_at(scores, labels, threshold: float) -> dict[str, float]:
    """Precision, recall, F1, FPR and TPR when reads with `score > threshold` are flagged as OOD.

    recall and tpr are the same number (both keys are kept for readers). F1 = 2TP / (2TP + FP + FN).
    A ratio whose denominator is zero is NaN: precision when nothing is flagged, FPR without in-distribution
    reads, TPR/recall without OOD reads."""
    if math.isnan(threshold):
        raise ValueError("threshold is NaN")
    values, truth = _as_scored_labels(scores, labels)
    flagged = values > threshold
    tp = int(np.sum(flagged & truth))
    fp = int(np.sum(flagged & ~truth))
    fn = int(np.sum(~flagged & truth))
    tn = int(np.sum(~flagged & ~truth))
    tpr = _ratio(tp, tp + fn)
    return {
        "precision": _ratio(tp, tp + fp),
        "recall": tpr,
        "f1": _ratio(2 * tp, 2 * tp + fp + fn),
        "fpr": _ratio(fp, fp + tn),
        "tpr": tpr,
    }


def threshold_target_fpr(in_scores, fpr: float) -> float:
    """Threshold from in-distribution scores alone, for a target false positive rate `fpr` in [0, 1).

    Returns the smallest t such that the fraction of `in_scores` strictly greater than t is <= fpr.
    With n scores and k = floor(fpr * n), that is the (k+1)-th largest score: at most k scores exceed it,
    and any smaller t would also count the (k+1)-th. When that score is tied with higher ones, fewer than k
    scores exceed it, so the achieved FPR on `in_scores` can be below the target, never above.
    fpr = 0 gives the maximum score (no in-distribution read flagged)."""
    _check_rate(fpr, "fpr", low_open=False, high_open=True)
    values = finite_scores(in_scores, "in_scores")
    if values.size == 0:
        raise ValueError("in_scores is empty")
    allowed = min(math.floor(fpr * values.size * (1.0 + _RATE_SLACK)), values.size - 1)
    descending = np.sort(values)[::-1]
    return float(descending[allowed])


def _best_roc_threshold(scores, labels, objective) -> float:
    values, truth = _as_scored_labels(scores, labels)
    n_in, n_ood = _require_both_classes(truth)
    fps, tps, thresholds = _roc_counts(values, truth)
    best = int(np.argmax(objective(fps, tps, n_in, n_ood)))  # ties: the first, i.e. the highest threshold
    return float(thresholds[best])


def threshold_max_f1(scores, labels) -> float:
    """The threshold (flag `score > t`) maximising F1 for the OOD class over all distinct thresholds.
    The result is a score value (the highest score left unflagged), or -inf when flagging every read is best;
    ties go to the highest threshold."""
    return _best_roc_threshold(scores, labels, lambda fps, tps, n_in, n_ood: 2 * tps / (tps + fps + n_ood))


def threshold_youden(scores, labels) -> float:
    """The threshold (flag `score > t`) maximising Youden's J = TPR - FPR over all distinct thresholds.
    The result is a score value (the highest score left unflagged); ties go to the highest threshold."""
    return _best_roc_threshold(scores, labels, lambda fps, tps, n_in, n_ood: tps / n_ood - fps / n_in)


def threshold_percentile(scores, p: float) -> float:
    """alibi-detect's rule: `LLR.infer_threshold(X, threshold_perc=p)` sets `threshold = np.percentile(s, p)`
    where s = instance scores (-LLR) of whatever batch X it is given (assumed mostly normal; p = percentage of
    X considered normal), and `predict` flags `score > threshold`. Reproduced exactly: numpy's default
    'linear' interpolation between order statistics. Labels play no part."""
    if not 0.0 <= p <= 100.0:
        raise ValueError(f"percentile must be in [0, 100], got {p}")
    values = finite_scores(scores)
    if values.size == 0:
        raise ValueError("scores is empty")
    return float(np.percentile(values, p))


def summarize(scores, labels, threshold: float | None = None) -> dict[str, float | int]:
    """The evaluation report as plain Python numbers (JSON-ready): auroc, auprc, fpr_at_tpr80, fpr_at_tpr95,
    n_in, n_ood; with `threshold`, also threshold, precision, recall, f1, fpr and tpr at it."""
    values, truth = _as_scored_labels(scores, labels)
    n_in, n_ood = _require_both_classes(truth)
    report: dict[str, float | int] = {
        "auroc": auroc(values, truth),
        "auprc": auprc(values, truth),
        "fpr_at_tpr80": fpr_at_tpr(values, truth, 0.8),
        "fpr_at_tpr95": fpr_at_tpr(values, truth, 0.95),
        "n_in": n_in,
        "n_ood": n_ood,
    }
    if threshold is not None:
        report["threshold"] = float(threshold)
        report.update(confusion_at(values, truth, threshold))
    return report


def pearson(x, y) -> float:
    """Pearson correlation coefficient of two equal-length arrays (e.g. scores against GC content)."""
    a = finite_scores(x, "x")
    b = finite_scores(y, "y")
    if a.shape != b.shape:
        raise ValueError(f"x and y differ in length: {a.size} vs {b.size}")
    if a.size < 2:
        raise ValueError("pearson needs at least 2 values")
    da = a - a.mean()
    db = b - b.mean()
    denominator = math.sqrt(float(np.dot(da, da)) * float(np.dot(db, db)))
    if denominator == 0.0:
        raise ValueError("pearson is undefined when x or y is constant")
    return float(np.dot(da, db) / denominator)
