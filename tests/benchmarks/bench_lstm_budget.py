"""The LSTM pair's validation AUROC against training time: `gooddetect train` with the defaults and with
`--time-budget MINUTES`, on gdbench-v1's training windows (`train.fa.gz`) or, with `--genomes`, on the whole `train`
genomes of ../shared/genomes (`train --genomes`: fresh windows every epoch).

Each model is trained by a `gooddetect train` subprocess (wall time measured here) and scored on validation only,
`val_strains_in` (other strains of the training species) against `val_ood`: LLR and foreground-likelihood AUROC,
next to the steps and epochs the model file records. Never the test set: `bench_accuracy.py --model` reports a
chosen model on test once.

Run from the repository root, e.g.
    python tests/benchmarks/bench_lstm_budget.py --budgets default,10,20 --out bench_lstm_budget
    python tests/benchmarks/bench_lstm_budget.py --genomes --budgets 50 --out bench_lstm_genomes
    python tests/benchmarks/bench_lstm_budget.py --budgets 20 --train-options "--train-strands forward" --out fwd
Writes OUT/budget.md and OUT/budget.json (and keeps the models).
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import time
from pathlib import Path

from gooddetect.detector import read_model_file

SHARED = Path(__file__).resolve().parents[3] / "shared"
BENCH, GENOMES = SHARED / "benchmark", SHARED / "genomes"


def train_genomes() -> list[Path]:
    with open(GENOMES / "splits.tsv") as handle:
        return [GENOMES / row["file"] for row in csv.DictReader(handle, delimiter="\t") if row["role"] == "train"]


def run_budget(budget: str, genomes: bool, out: Path, threads: int, options: list[str]) -> dict:
    model = out / f"model_{budget}.gdm"
    inputs = [*map(str, train_genomes()), "--genomes"] if genomes else [str(BENCH / "train.fa.gz")]
    extra = [] if budget == "default" else ["--time-budget", budget]
    started = time.perf_counter()
    subprocess.run(["gooddetect", "-q", "train", *inputs, "-o", str(model), "--threads", str(threads), *extra,
                    *options], check=True)
    minutes = (time.perf_counter() - started) / 60
    report = out / f"evaluate_{budget}.json"
    subprocess.run(["gooddetect", "-q", "evaluate", str(model), "--in-dist", str(BENCH / "val_strains_in.fa.gz"),
                    "--ood", str(BENCH / "val_ood.fa.gz"), "--threads", str(threads), "--json", str(report)],
                   check=True, stdout=subprocess.DEVNULL)
    scores = json.loads(report.read_text())["scores"]
    validation = read_model_file(model)[0]["training"]["validation"]["foreground"]
    return {"budget": budget, "train_minutes": round(minutes, 1), "steps": validation["steps"],
            "epochs": round(validation["epochs"], 2), "val_llr_auroc": round(scores["llr"]["auroc"], 4),
            "val_likelihood_auroc": round(scores["likelihood"]["auroc"], 4)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--budgets", default="default,10,20", help="comma-separated: default or minutes")
    parser.add_argument("--genomes", action="store_true", help="train on the whole train genomes (train --genomes)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--train-options", default="", help="more `train` options, e.g. '--train-strands forward'")
    parser.add_argument("--out", default="bench_lstm_budget")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = [run_budget(budget, args.genomes, out, args.threads, args.train_options.split())
            for budget in args.budgets.split(",")]
    (out / "budget.json").write_text(json.dumps(rows, indent=1) + "\n")
    source = "whole train genomes, train --genomes" if args.genomes else "gdbench train.fa.gz"
    lines = [f"LSTM pair on {source} {args.train_options}, {args.threads} threads; validation AUROC "
             "(val_strains_in vs val_ood)", "",
             "| --time-budget | training min | steps | epochs | LLR AUROC | likelihood AUROC |",
             "|---|---|---|---|---|---|"]
    lines += [f"| {r['budget']} | {r['train_minutes']} | {r['steps']} | {r['epochs']} | {r['val_llr_auroc']} | "
              f"{r['val_likelihood_auroc']} |" for r in rows]
    (out / "budget.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
