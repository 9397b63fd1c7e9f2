"""PNG figures of an evaluation: score histograms for in-distribution vs OOD reads, and ROC curves.

Needs matplotlib (the optional `plots` extra); it is imported only when plots are asked for, and figures are
drawn with the Agg renderer without touching pyplot's global state.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .errors import UsageError
from .files import atomic_output
from .metrics import auroc, finite_scores, roc_curve

IN_COLOR = "tab:blue"
OOD_COLOR = "tab:orange"
DPI = 130
# Histograms show the central part of the pooled scores so that a few extreme reads do not squash them.
SHOWN_PERCENTILES = (0.5, 99.5)
N_BINS = 60


def _figure_class():
    try:
        from matplotlib.figure import Figure
    except ImportError as error:
        raise UsageError("plots need matplotlib: pip install 'gooddetect[plots]'") from error
    return Figure


def write_plots(outdir: str | os.PathLike, *, llr_in, llr_ood, loglik_in, loglik_ood) -> list[Path]:
    """Write three PNGs into `outdir` (created if missing) and return their paths:
    loglik_hist.png (foreground log-likelihood histograms), llr_hist.png (LLR histograms) and roc.png (ROC curves
    of -log-likelihood and -LLR as OOD scores, AUROC in the legend). All inputs are per-read, per-base means in
    nats/base; they must be finite (drop reads without a score first)."""
    Figure = _figure_class()
    llr_in, llr_ood = finite_scores(llr_in, "llr_in"), finite_scores(llr_ood, "llr_ood")
    loglik_in, loglik_ood = finite_scores(loglik_in, "loglik_in"), finite_scores(loglik_ood, "loglik_ood")
    if min(llr_in.size, loglik_in.size) == 0 or min(llr_ood.size, loglik_ood.size) == 0:
        raise ValueError("plots need both in-distribution and OOD reads")
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    figures = {
        "loglik_hist.png": _histogram_figure(
            Figure,
            loglik_in,
            loglik_ood,
            title="Foreground model log-likelihood",
            xlabel="foreground log-likelihood (nats/base)",
        ),
        "llr_hist.png": _histogram_figure(
            Figure,
            llr_in,
            llr_ood,
            title="Likelihood ratio: foreground minus background",
            xlabel="LLR (nats/base)   lower = more OOD-like",
        ),
        "roc.png": _roc_figure(Figure, llr_in, llr_ood, loglik_in, loglik_ood),
    }
    paths = []
    for name, figure in figures.items():
        path = outdir / name
        with atomic_output(path, "wb") as handle:
            figure.savefig(handle, format="png", dpi=DPI)
        paths.append(path)
    return paths


def _histogram_figure(Figure, in_values: np.ndarray, ood_values: np.ndarray, *, title: str, xlabel: str):
    pooled = np.concatenate([in_values, ood_values])
    # Actual scores at or beyond the percentiles: with fewer than 200 reads that is the whole range.
    low = np.percentile(pooled, SHOWN_PERCENTILES[0], method="lower")
    high = np.percentile(pooled, SHOWN_PERCENTILES[1], method="higher")
    if high <= low:
        low, high = low - 0.5, high + 0.5
    bins = np.linspace(low, high, N_BINS + 1)
    figure = Figure(figsize=(7.5, 4.5), layout="constrained")
    axes = figure.add_subplot()
    for values, name, color in ((in_values, "in-distribution", IN_COLOR), (ood_values, "OOD", OOD_COLOR)):
        median = float(np.median(values))
        # Density over all reads of the class, so that reads outside the range shown keep their share.
        weights = np.full(values.size, 1.0 / (values.size * (bins[1] - bins[0])))
        heights, _, _ = axes.hist(values, bins=bins, weights=weights, histtype="stepfilled", color=color,
                                  alpha=0.3)
        axes.hist(values, bins=bins, weights=weights, histtype="step", color=color, linewidth=1.6,
                  label=f"{name}: n={values.size:,}, median {median:.3f} (dashed)")
        axes.vlines(median, 0, heights.max(), colors=color, linestyles="--", linewidth=1.0)
    hidden = int(np.sum((pooled < low) | (pooled > high)))
    note = f"{hidden:,} reads outside the range shown" if hidden else None
    axes.set_xlim(low, high)
    axes.set_ylim(0, axes.get_ylim()[1] * 1.3)  # headroom for the legend
    axes.set_title(title)
    axes.set_xlabel(xlabel)
    axes.set_ylabel("density (fraction of reads per nat/base)")
    axes.legend(loc="best", title=note, title_fontsize=8)
    axes.grid(alpha=0.25)
    return figure


def _roc_figure(Figure, llr_in, llr_ood, loglik_in, loglik_ood):
    figure = Figure(figsize=(5.8, 5.8), layout="constrained")
    axes = figure.add_subplot()
    axes.plot([0, 1], [0, 1], color="gray", linestyle=":", linewidth=1.0, label="chance (AUROC 0.500)")
    curves = (
        ("likelihood ratio, score = −LLR", llr_in, llr_ood, "tab:green"),
        ("likelihood, score = −log-likelihood", loglik_in, loglik_ood, "tab:purple"),
    )
    for name, in_values, ood_values, color in curves:
        scores = -np.concatenate([in_values, ood_values])
        labels = np.concatenate([np.zeros(in_values.size, bool), np.ones(ood_values.size, bool)])
        fpr, tpr, _ = roc_curve(scores, labels)
        axes.plot(fpr, tpr, color=color, linewidth=1.8, label=f"{name} (AUROC {auroc(scores, labels):.3f})")
    axes.set_xlim(-0.01, 1.01)
    axes.set_ylim(-0.01, 1.01)
    axes.set_aspect("equal")
    axes.set_title("ROC, OOD reads as positives")
    axes.set_xlabel("false positive rate (in-distribution reads flagged)")
    axes.set_ylabel("true positive rate (OOD reads flagged)")
    axes.legend(loc="lower right", fontsize=9)
    axes.grid(alpha=0.25)
    return figure
