"""Snakemake script: one row per sample, from the `gooddetect score --summary` JSON of each of its runs (shards of a
sample are added up), as a TSV (columns as in `score --report`, with the sample name instead of the input path) and
as MultiQC custom content."""

import json
from pathlib import Path

from gooddetect.outputs.score import multiqc_content

COLUMNS = ("sample", "reads", "scored_reads", "ood_reads", "ood_fraction", "unscored_reads", "thresholds",
           "novel_reads", "foreign_reads")


def sample_counts(summaries: list[str]) -> tuple[dict, str]:
    """The sample's counts (as ScoreCounts.as_dict) and its thresholds (fixed:T, fpr:F or NA)."""
    runs = [json.loads(Path(path).read_text()) for path in summaries]
    counts = {key: sum(run[key] for run in runs) for key in ("reads", "scored_reads", "unscored_reads")}
    thresholds = runs[0]["thresholds"]
    for key in ("ood", "novel_reads", "foreign_reads"):
        counts[key] = sum(run[key] for run in runs) if thresholds else None
    if not thresholds:
        return counts, "NA"
    code = f"fpr:{thresholds['fpr']:g}" if thresholds["mode"] == "length_aware" else f"fixed:{thresholds['threshold']:.6f}"
    return counts, code


def main(runs: dict[str, list[str]], table: str, multiqc: str, log: str) -> None:
    rows, codes = {}, set()
    with open(table, "w") as out, open(log, "w") as log_file:
        out.write("\t".join(COLUMNS) + "\n")
        for sample, summaries in runs.items():
            counts, code = sample_counts(summaries)
            rows[sample] = counts
            codes.add(code)
            fraction = "NA" if counts["ood"] is None or not counts["scored_reads"] else \
                f"{counts['ood'] / counts['scored_reads']:.6f}"
            ood, novel, foreign = ("NA" if counts[key] is None else counts[key]
                                   for key in ("ood", "novel_reads", "foreign_reads"))
            out.write(f"{sample}\t{counts['reads']}\t{counts['scored_reads']}\t{ood}\t{fraction}\t"
                      f"{counts['unscored_reads']}\t{code}\t{novel}\t{foreign}\n")
            print(f"{sample}: {len(summaries)} run(s), {counts['reads']} reads, OOD fraction {fraction}", file=log_file)
    with open(multiqc, "w") as handle:
        json.dump(multiqc_content(rows, ", ".join(sorted(codes))), handle, indent=2, sort_keys=True)
        handle.write("\n")


main(snakemake.params.runs, snakemake.output.table, snakemake.output.multiqc, snakemake.log[0])  # noqa: F821
