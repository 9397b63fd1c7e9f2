"""`gooddetect evaluate`: the paper's metrics of every score side by side, class accuracy, plots."""

from __future__ import annotations

import gzip
import os
from dataclasses import dataclass

import numpy as np

from .. import calibration, metrics
from ..detector import load_detector
from ..errors import UsageError
from ..labels import read_classes
from ..options import option
from ..runtime import Runtime
from ..samples import labeled_scores
from ..scoring import DEFAULT_BATCH_SIZE
from ..support import foreign


@dataclass(frozen=True)
class EvaluateOptions:
    """What `evaluate` writes besides its table, and the classes for the classifier's accuracy."""

    plots: str | None = option(None, "Write PNG histograms and ROC curves into this directory.")
    classes: str | None = option(None, "TSV read_id<TAB>class of the in-distribution reads, for the classifier's "
                                 "accuracy (a `class` column of --labels serves too).")
    json: str | None = option(None, "Also write the metrics as JSON.")


def evaluate(model: str, *, in_dist: list[str] = (), ood: list[str] = (), reads: list[str] = (),
             labels: str | None = None, classes: str | None = None, plots: str | None = None,
             batch_size: int = DEFAULT_BATCH_SIZE, runtime: Runtime = Runtime()) -> dict:
    """`gooddetect evaluate`: the paper's metrics (OOD positive) for every score side by side: the foreground
    likelihood, the LLR, with a support table 1 - support and, with a classifier, its OOD scores; class accuracy on
    the in-distribution reads when `classes` (or a `class` column of `labels`) names them."""
    detector = load_detector(model, runtime)
    has_classifier = detector.classifier is not None
    odin = has_classifier and detector.classifier.has_odin
    scored, is_ood, _ = labeled_scores(detector, in_dist=in_dist, ood=ood, reads=reads, labels=labels,
                                       batch_size=batch_size, odin=odin)
    if not is_ood.any() or is_ood.all():
        raise UsageError("evaluate needs both in-distribution and OOD reads")
    named = {"likelihood": -scored["loglik_fg"], "llr": scored["score"]}
    if "support" in scored:  # reads too short for a minimizer count as half supported
        named["support"] = np.nan_to_num(1 - scored["support"], nan=0.5)
    if has_classifier:
        named |= {name: scored[name] for name in (*detector.classifier.score_names, *(("odin",) if odin else ()))}
    result = {"scores": {name: metrics.summarize(values, is_ood) for name, values in named.items()},
              "n_in": int((~is_ood).sum()), "n_ood": int(is_ood.sum())}
    thresholds = calibration.resolve(detector.calibration)
    if thresholds is not None:  # the calls score makes: each read against its own threshold, foreign ones OOD
        margin = scored["score"] - thresholds.for_fragments(scored["n_scored"])
        if "support" in scored:
            called = foreign(scored["support_hits"], scored["support_lookups"],
                             calibration.min_support(detector.calibration))
            margin = np.where(called, np.maximum(margin, 1.0), margin)
        result["at_thresholds"] = {"thresholds": thresholds.code(), **metrics.confusion_at(margin, is_ood, 0.0)}
    class_table = classes or (labels if labels and _has_class_column(labels) else None)
    if has_classifier and class_table:

        truth = read_classes(class_table)
        names = detector.classifier.classes
        rows = [i for i, (rid, o) in enumerate(zip(scored["read_id"], is_ood.tolist())) if not o and rid in truth]
        if rows:
            result["class_accuracy"] = float(np.mean([names[scored["class"][i]] == truth[scored["read_id"][i]]
                                                      for i in rows]))
            result["class_accuracy_reads"] = len(rows)
    if plots:
        from ..plots import write_plots

        os.makedirs(plots, exist_ok=True)
        llr = -scored["score"]
        result["plots"] = [str(p) for p in write_plots(
            plots, llr_in=llr[~is_ood], llr_ood=llr[is_ood],
            loglik_in=scored["loglik_fg"][~is_ood], loglik_ood=scored["loglik_fg"][is_ood])]
    return result


def _has_class_column(path: str) -> bool:
    with (gzip.open if path.endswith(".gz") else open)(path, "rt") as handle:
        return "class" in handle.readline().rstrip("\r\n").split("\t")
