"""Text for people: the closing summary of `score`, and what `info`, `calibrate` and `evaluate` print."""

from __future__ import annotations

import json

METRIC_NAMES = (("auroc", "AUROC"), ("auprc", "AUPRC"), ("fpr_at_tpr80", "FPR@80%TPR"), ("fpr_at_tpr95", "FPR@95%TPR"))


def describe_counts(summary: dict) -> str:
    """The closing summary line of `score`."""
    ood = ("uncalibrated (no threshold; is_ood = NA)" if summary["thresholds"] is None else
           f"{summary['ood']} OOD ({100 * (summary['ood_fraction'] or 0):.2f}% of scored reads, "
           f"{summary['thresholds_text']}: {summary['novel_reads']} novel, {summary['foreign_reads']} foreign)")
    skipped = ", ".join(f"{n} {reason}" for reason, n in summary["skipped"].items()) or "none"
    return (f"{summary['reads']} {'fragments' if summary['layout'] != 'single' else 'reads'}, {summary['windows']} "
            f"windows; {ood}; reads without score: {skipped}; {summary['duplicate_ids']} duplicate ids")


def format_info(document: dict) -> str:
    """`gooddetect info` as aligned `key: value` lines (nested keys joined with dots)."""
    lines = []

    def walk(prefix: str, value) -> None:
        if isinstance(value, dict) and value:
            for key in sorted(value):
                walk(f"{prefix}.{key}" if prefix else key, value[key])
        else:
            lines.append((prefix, "none" if value is None else json.dumps(value) if isinstance(value, (list, dict))
                          else str(value)))

    walk("", document)
    width = max(len(k) for k, _ in lines)
    return "\n".join(f"{k.ljust(width)}  {v}" for k, v in lines)


def format_calibration(report: dict, model: str) -> str:
    """The human-readable calibration summary printed by `gooddetect calibrate` (on stderr)."""
    rule = report["rule"] + (f" {report['rule_value']}" if report["rule_value"] is not None else "")
    lines = [f"calibrated {model}: threshold {report['value']:.6f} on score = -llr ({rule}; "
             f"{report['n_in']} in-distribution, {report['n_ood']} OOD reads)"]
    if report.get("in_dist_flagged") is not None:
        lines.append(f"  in-distribution reads flagged: {100 * report['in_dist_flagged']:.2f}%")
    m = report.get("metrics")
    if m:
        lines.append(f"  AUROC {m['auroc']:.4f}  AUPRC {m['auprc']:.4f}  FPR@80%TPR {m['fpr_at_tpr80']:.4f}  "
                     f"FPR@95%TPR {m['fpr_at_tpr95']:.4f}")
        lines.append(f"  at the threshold: precision {m['precision']:.4f}  recall {m['recall']:.4f}  F1 {m['f1']:.4f}")
    lines.append("  target FPR  threshold   FPR      TPR   (on this sample; score --fpr F picks another)")
    for row in report["trade_off"]:
        tpr = "   NA" if row["tpr"] is None else f"{row['tpr']:.4f}"
        lines.append(f"  {row['target_fpr']:>9.0%}  {row['threshold']:>9.5f}  {row['fpr']:.4f}  {tpr}")
    table = report.get("table")
    if table:
        lengths = ", ".join(f"{n:.0f}" for n in table["n_scored"])
        mode = "used by default" if report.get("length_aware") else "used with score --fpr"
        lines.append(f"  thresholds by length ({mode}) calibrated at {lengths} scored bases")
    for sample, calls in report.get("calls", {}).items():
        shares = "  ".join(f"{call} {100 * share:.2f}%" for call, share in calls.items())
        lines.append(f"  calls of the {sample.replace('_', '-')} reads (foreign below support "
                     f"{report['min_support']:g}): {shares}")
    return "\n".join(lines)


def format_metrics_table(result: dict) -> str:
    """A small aligned text table of evaluate's metrics, one row per score."""
    lines = ["score\t" + "\t".join(label for _, label in METRIC_NAMES)]
    for name, metrics in result["scores"].items():
        lines.append(name + "\t" + "\t".join(f"{metrics[key]:.4f}" for key, _ in METRIC_NAMES))
    if "class_accuracy" in result:
        lines.append(f"class accuracy on in-distribution reads: {result['class_accuracy']:.4f}")
    return "\n".join(lines) + "\n"
