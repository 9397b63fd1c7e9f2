"""Detection quality on gdbench-v1 (../shared/benchmark), through gooddetect's own API.

Protocol (the benchmark's README, as in Ren et al.): train on train.fa.gz; early-stop and calibrate on val_in +
val_ood only; report test_in vs test_ood once (OOD = positive): AUROC, AUPRC, FPR at 80 % TPR for the foreground
likelihood and for the LLR, AUROC per OOD genome, Pearson correlation of each score with GC content, training time
and scoring reads/s; plus the same metrics on the simulated reads test_reads.fq.gz. With --kraken2, Kraken2 2.1.2
(Debian package `kraken2`) with a custom database built from the same train.fa.gz windows and a hand-written
10-species taxonomy is measured in the same run (score = 1 − fraction of a read's k-mers found in the database).

Run from the repository root, e.g.
    python tests/benchmarks/bench_accuracy.py --arch kmer --out bench_kmer            # ~3 min on 2 cores
    python tests/benchmarks/bench_accuracy.py --arch lstm --out bench_lstm            # default LSTM, ~30 min
    python tests/benchmarks/bench_accuracy.py --arch kmer --kraken2 --out bench_kmer  # + Kraken2 (~10 min more)
Extra `gooddetect train` options pass through after `--`, e.g. `-- --hidden 512 --epochs 2`.
Writes OUT/accuracy.md and OUT/accuracy.json.
"""

from __future__ import annotations

import argparse
import gzip
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from gooddetect import api, metrics
from gooddetect.detector import Detector
from gooddetect.seqio import read_records
from gooddetect.windows import encode, gc_fraction

BENCH = Path(__file__).resolve().parents[3] / "shared" / "benchmark"


def labels_by_read(path: Path) -> dict[str, dict]:
    with gzip.open(path, "rt") as handle:
        header = handle.readline().rstrip("\n").split("\t")
        return {row[0]: dict(zip(header, row)) for row in (line.rstrip("\n").split("\t") for line in handle)}


def gc_of(paths: list[Path]) -> dict[str, float]:
    return {r.name: float(gc_fraction(encode(r.seq))) for p in paths for r in read_records(str(p))}


def evaluate_scores(name: str, scores: dict[str, np.ndarray], is_ood: np.ndarray, genomes: np.ndarray,
                    gc: np.ndarray, threshold: float | None = None) -> dict:
    """Metrics of each score (higher = more OOD) in `scores`, per OOD genome AUROC and correlation with GC."""
    out = {}
    for score_name, values in scores.items():
        row = metrics.summarize(values, is_ood, threshold if score_name == "llr" else None)
        row["pearson_gc"] = metrics.pearson(values, gc)
        row["auroc_per_ood_genome"] = {
            g: metrics.auroc(np.concatenate([values[~is_ood], values[genomes == g]]),
                             np.concatenate([np.zeros((~is_ood).sum(), bool), np.ones((genomes == g).sum(), bool)]))
            for g in sorted(set(genomes[is_ood]))}
        out[score_name] = row
    return {name: out}


def score_split(detector: Detector, files: list[Path], label_of: dict[str, dict]) -> tuple[dict, float]:
    started = time.perf_counter()
    scored = api.score_arrays(detector, [str(f) for f in files])
    seconds = time.perf_counter() - started
    ids = scored["read_id"]
    is_ood = np.array([label_of[i]["label"] == "ood" for i in ids])
    genomes = np.array([label_of[i]["genome"] for i in ids])
    return {"ids": ids, "llr": scored["score"], "likelihood": -scored["loglik_fg"], "is_ood": is_ood,
            "genomes": genomes, "reads_per_s": len(ids) / seconds}, seconds


def kraken2_scores(workdir: Path, threads: int, queries: dict[str, Path]) -> tuple[dict[str, dict], float, dict]:
    """Build a Kraken2 database from train.fa.gz (one taxid per species) and score each query file."""
    if not shutil.which("kraken2-build"):
        sys.exit("--kraken2 needs the Debian package kraken2 (apt-get install kraken2)")
    label_of = labels_by_read(BENCH / "labels.tsv.gz")
    classes = sorted({row["class"] for row in label_of.values() if row["split"] == "train"})
    taxid = {c: 100 + i for i, c in enumerate(classes)}
    db = workdir / "kraken2_db"
    (db / "taxonomy").mkdir(parents=True)
    with open(db / "taxonomy" / "nodes.dmp", "w") as nodes, open(db / "taxonomy" / "names.dmp", "w") as names:
        nodes.write("1\t|\t1\t|\tno rank\t|\n")
        names.write("1\t|\troot\t|\t\t|\tscientific name\t|\n")
        for c, t in taxid.items():
            nodes.write(f"{t}\t|\t1\t|\tspecies\t|\n")
            names.write(f"{t}\t|\t{c.replace('_', ' ')}\t|\t\t|\tscientific name\t|\n")
    library = workdir / "library.fa"
    with open(library, "w") as out:
        for record in read_records(str(BENCH / "train.fa.gz")):
            out.write(f">{record.name}|kraken:taxid|{taxid[label_of[record.name]['class']]}\n{record.seq}\n")
    started = time.perf_counter()
    for args in (["--add-to-library", str(library)], ["--build", "--threads", str(threads)]):
        subprocess.run(["kraken2-build", "--db", str(db), *args], check=True, capture_output=True)
    build_seconds = time.perf_counter() - started
    results, speeds = {}, {}
    for name, path in queries.items():
        report = workdir / f"{name}.kraken"
        started = time.perf_counter()
        subprocess.run(["kraken2", "--db", str(db), "--threads", str(threads), "--output", str(report), str(path)],
                       check=True, capture_output=True)
        elapsed = time.perf_counter() - started
        scores = {}
        with open(report) as handle:
            for line in handle:
                _, read_id, _, _, kmers = line.rstrip("\n").split("\t")
                hits = total = 0
                for item in kmers.split():
                    tax, count = item.split(":")
                    if tax == "|":
                        continue
                    total += int(count)
                    hits += int(count) if tax not in ("0", "A") else 0
                scores[read_id] = 1 - hits / total if total else 1.0
        results[name] = scores
        speeds[name] = len(scores) / elapsed
    return results, build_seconds, speeds


def markdown(result: dict) -> str:
    lines = [f"# gdbench-v1 accuracy — `{result['command']}`", "",
             f"training {result['train_seconds']:.0f} s; scoring {result['scoring_reads_per_s']:.0f} reads/s "
             f"(250 bp windows, both models, {result['threads']} threads)", "",
             "| split | method | AUROC | AUPRC | FPR@80%TPR | Pearson r with GC |", "|---|---|---|---|---|---|"]
    for split, methods in result["metrics"].items():
        for method, row in methods.items():
            lines.append(f"| {split} | {method} | {row['auroc']:.3f} | {row['auprc']:.3f} | "
                         f"{row['fpr_at_tpr80']:.3f} | {row['pearson_gc']:+.3f} |")
    test = result["metrics"].get("test", {})
    if "llr" in test:
        lines += ["", "AUROC of the LLR per OOD test genome:", "", "| genome | AUROC |", "|---|---|"]
        lines += [f"| {g} | {a:.3f} |" for g, a in test["llr"]["auroc_per_ood_genome"].items()]
    if "calibration" in result:
        c = result["calibration"]
        lines += ["", f"threshold (target FPR 5 % on val_in): {c['value']:.4f}; on test: "
                  f"FPR {c['test']['fpr']:.3f}, TPR {c['test']['tpr']:.3f}, F1 {c['test']['f1']:.3f}"]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--arch", choices=["lstm", "kmer"], default="lstm")
    parser.add_argument("--out", default="bench_accuracy_out")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--kraken2", action="store_true", help="also measure Kraken2 in the same run")
    parser.add_argument("train_args", nargs="*", help="extra `gooddetect train` options after --")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    hyper = parse_train_args(args.train_args)
    label_of = labels_by_read(BENCH / "labels.tsv.gz")
    reads_label_of = labels_by_read(BENCH / "test_reads_labels.tsv.gz")

    model = out / f"model_{args.arch}.gdm"
    started = time.perf_counter()
    api.train([str(BENCH / "train.fa.gz")], str(model), kind=args.arch, threads=args.threads, **hyper)
    train_seconds = time.perf_counter() - started
    detector = api.load_detector(str(model), threads=args.threads)

    result = {"command": " ".join(sys.argv[1:]), "arch": args.arch, "threads": args.threads,
              "train_seconds": train_seconds, "metrics": {}}
    gc = gc_of([BENCH / f for f in ("val_in.fa.gz", "val_ood.fa.gz", "test_in.fa.gz", "test_ood.fa.gz")])
    splits = {}
    for split in ("val", "test"):
        data, _ = score_split(detector, [BENCH / f"{split}_in.fa.gz", BENCH / f"{split}_ood.fa.gz"], label_of)
        splits[split] = data
    result["scoring_reads_per_s"] = splits["test"]["reads_per_s"]
    val = splits["val"]
    threshold = metrics.threshold_target_fpr(val["llr"][~val["is_ood"]], 0.05)
    for split, data in splits.items():
        gcs = np.array([gc[i] for i in data["ids"]])
        result["metrics"].update(evaluate_scores(split, {k: data[k] for k in ("likelihood", "llr")},
                                                 data["is_ood"], data["genomes"], gcs, threshold))
    test = splits["test"]
    result["calibration"] = {"rule": "target_fpr 0.05 on val_in", "value": threshold,
                             "test": metrics.confusion_at(test["llr"], test["is_ood"], threshold)}
    reads, _ = score_split(detector, [BENCH / "test_reads.fq.gz"], reads_label_of)
    reads_gc = gc_of([BENCH / "test_reads.fq.gz"])
    result["metrics"].update(evaluate_scores("test_reads", {k: reads[k] for k in ("likelihood", "llr")},
                                             reads["is_ood"], reads["genomes"],
                                             np.array([reads_gc[i] for i in reads["ids"]])))
    if args.kraken2:
        with tempfile.TemporaryDirectory() as tmp:
            queries = {"test": Path(tmp) / "test.fa", "test_reads": BENCH / "test_reads.fq.gz"}
            with open(queries["test"], "w") as handle:
                for f in ("test_in.fa.gz", "test_ood.fa.gz"):
                    for r in read_records(str(BENCH / f)):
                        handle.write(f">{r.name}\n{r.seq}\n")
            kraken, build_seconds, speeds = kraken2_scores(Path(tmp), args.threads, queries)
        result["kraken2"] = {"build_seconds": build_seconds, "reads_per_s": speeds}
        for split, data, split_gc in (("test", test, gc), ("test_reads", reads, reads_gc)):
            values = np.array([kraken[split][i] for i in data["ids"]])
            gcs = np.array([split_gc[i] for i in data["ids"]])
            row = evaluate_scores(split, {"kraken2": values}, data["is_ood"], data["genomes"], gcs)[split]
            result["metrics"][split].update(row)
    (out / "accuracy.json").write_text(json.dumps(result, indent=2, sort_keys=True, default=float) + "\n")
    (out / "accuracy.md").write_text(markdown(result))
    print(markdown(result))
    return 0


def parse_train_args(items: list[str]) -> dict:
    """`--hidden 512 --lr 2e-3 --lr-schedule cosine --both-strands` → {"hidden": 512, "lr": 0.002,
    "lr_schedule": "cosine", "both_strands": True}."""
    hyper, key = {}, None
    for item in items:
        if item.startswith("--"):
            key = item[2:].replace("-", "_")
            hyper[key] = True
        elif key is not None:
            hyper[key] = _number_or_text(item)
            key = None
    return hyper


def _number_or_text(item: str) -> int | float | str:
    for kind in (int, float):
        try:
            return kind(item)
        except ValueError:
            pass
    return item


if __name__ == "__main__":
    sys.exit(main())
