"""Snakemake script: one row per sample, from the `gooddetect score --summary` JSON of each of its runs (shards of a
sample are added up). Columns as in `score --report`, with the sample name instead of the input path."""

import json
from pathlib import Path

COLUMNS = ("sample", "reads", "scored_reads", "ood_reads", "ood_fraction", "unscored_reads", "threshold")


def summary_row(sample: str, summaries: list[str]) -> tuple:
    counts = [json.loads(Path(path).read_text()) for path in summaries]
    reads, scored = (sum(c[key] for c in counts) for key in ("reads", "scored_reads"))
    threshold = counts[0]["threshold"]
    if threshold is None:  # uncalibrated model: no OOD calls
        return sample, reads, scored, "NA", "NA", reads - scored, "NA"
    ood = sum(c["ood"] for c in counts)
    return sample, reads, scored, ood, f"{ood / scored:.6f}" if scored else "NA", reads - scored, f"{threshold:.6f}"


def main(runs: dict[str, list[str]], output: str, log: str) -> None:
    with open(output, "w") as out, open(log, "w") as log_file:
        out.write("\t".join(COLUMNS) + "\n")
        for sample, summaries in runs.items():
            row = summary_row(sample, summaries)
            out.write("\t".join(map(str, row)) + "\n")
            print(f"{sample}: {len(summaries)} run(s), {row[1]} reads, OOD fraction {row[4]}", file=log_file)


main(snakemake.params.runs, snakemake.output[0], snakemake.log[0])  # noqa: F821 (given by snakemake)
