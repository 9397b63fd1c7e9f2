"""Detection quality on gdbench-v1 (../shared/benchmark), through gooddetect's own API and CLI.

Protocol (the benchmark's README, as in Ren et al.): train on the training sequence only; choose and calibrate on
validation only (`val_strains_in`, other strains of the training species, with `val_ood`); report test once
(`test_in` vs `test_ood`, OOD = positive): AUROC, AUPRC, FPR at 80 % TPR of every score (foreground likelihood, LLR
and, with --classes, the classifier's), AUROC per OOD genome, Pearson r with GC, and the same on the simulated reads
`test_reads.fq.gz`; then the calls at the thresholds calibrated at 5 % FPR (FPR and TPR on test windows and reads).

--train windows (default) trains on train.fa.gz; --train p90 / genomes on the `train` genomes of ../shared/genomes
(the first 90 % of each record / whole records). --kraken2 builds a Kraken2 2.1 database (Debian package `kraken2`)
from the same training sequence and a 10-species taxonomy in the same run (score = 1 - fraction of a read's k-mers
found), and times Kraken2 and `gooddetect score` the same way: each command end to end on a file (model or database
loading included), and without loading (minus the time of the same command on a one-read file). --classes also
trains the classifier and reports class accuracy on test_in next to Kraken2's species calls. --lengths reports the
flagged fraction of in-distribution reads by read length (pieces of test_in genomes) at one fixed threshold and at
the length-aware thresholds (with --calibrate-genomes also calibrated on the whole extra_in genomes). --model scores a
model trained earlier on the same --train input instead of training one.

Run from the repository root, e.g.
    python tests/benchmarks/bench_accuracy.py --arch kmer --kraken2 --classes --lengths --out bench_kmer
    python tests/benchmarks/bench_accuracy.py --arch kmer --train genomes --kraken2 --out bench_genomes
    python tests/benchmarks/bench_accuracy.py --arch lstm --lengths --out bench_lstm
Extra `gooddetect train` options pass through after `--`, e.g. `-- --hidden 64 --epochs 2`.
Writes OUT/accuracy.md and OUT/accuracy.json.
"""

from __future__ import annotations

import argparse
import gzip
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from gooddetect import api, calibration, metrics
from gooddetect.alphabet import encode, gc_fraction
from gooddetect.seqio import read_sequences

sys.path.insert(0, str(Path(__file__).resolve().parent))
import kraken  # noqa: E402

SHARED = Path(__file__).resolve().parents[3] / "shared"
BENCH, GENOMES = SHARED / "benchmark", SHARED / "genomes"
PIECE_LENGTHS = (100, 150, 200, 250, 500, 1000, 10_000)
PIECES_PER_LENGTH = 2000


def table(path: Path) -> list[dict]:
    with (gzip.open if path.suffix == ".gz" else open)(path, "rt") as handle:
        header = handle.readline().rstrip("\n").split("\t")
        return [dict(zip(header, line.rstrip("\n").split("\t"))) for line in handle]


def labels_by_read(path: Path) -> dict[str, dict]:
    return {row["read_id"]: row for row in table(path)}


def splits() -> dict[str, list[dict]]:
    rows = table(GENOMES / "splits.tsv")
    return {role: [r for r in rows if r["role"] == role] for role in {r["role"] for r in rows}}


def gc_of(paths: list[Path]) -> dict[str, float]:
    return {name: float(gc_fraction(encode(seq))) for p in paths for name, seq in read_sequences(str(p))}


# -- training sequence -----------------------------------------------------------------------------------------------


def training_input(kind: str, out: Path) -> tuple[list[str], dict[str, str]]:
    """(files to train on, read/record id -> class) for --train windows | p90 | genomes."""
    if kind == "windows":
        classes = {rid: row["class"] for rid, row in labels_by_read(BENCH / "labels.tsv.gz").items()
                   if row["split"] == "train"}
        return [str(BENCH / "train.fa.gz")], classes
    path, classes = out / f"train_{kind}.fa", {}
    with open(path, "w") as handle:
        for genome in splits()["train"]:
            for name, seq in read_sequences(str(GENOMES / genome["file"])):
                kept = seq[: int(0.9 * len(seq))] if kind == "p90" else seq
                record = f"{genome['file'].split('.')[0]}__{name}"
                handle.write(f">{record}\n{kept}\n")
                classes[record] = genome["class"]
    return [str(path)], classes


def write_classes(classes: dict[str, str], path: Path) -> Path:
    path.write_text("read_id\tclass\n" + "".join(f"{r}\t{c}\n" for r, c in classes.items()))
    return path


# -- scoring and metrics ---------------------------------------------------------------------------------------------


def scored(detector, files: list[Path], label_of: dict[str, dict]) -> dict:
    data = api.score_sample(detector, [str(f) for f in files]).arrays()
    data["is_ood"] = np.array([label_of[i]["label"] == "ood" for i in data["read_id"]])
    data["genome"] = np.array([label_of[i]["genome"] for i in data["read_id"]])
    return data


def score_columns(data: dict) -> dict[str, np.ndarray]:
    """Every OOD score (higher = more OOD) of a sample."""
    columns = {"likelihood": -data["loglik_fg"], "llr": data["score"]}
    columns.update({name: data[name] for name in ("msp", "entropy", "mahalanobis", "rel_mahalanobis") if name in data})
    return columns


def evaluate(columns: dict[str, np.ndarray], is_ood: np.ndarray, genomes: np.ndarray, gc: np.ndarray) -> dict:
    out = {}
    for name, values in columns.items():
        row = metrics.summarize(values, is_ood)
        row["pearson_gc"] = metrics.pearson(values, gc)
        row["auroc_per_ood_genome"] = {
            g: metrics.auroc(np.concatenate([values[~is_ood], values[genomes == g]]),
                             np.concatenate([np.zeros((~is_ood).sum(), bool), np.ones((genomes == g).sum(), bool)]))
            for g in sorted(set(genomes[is_ood]))}
        out[name] = row
    return out


def calls(data: dict, thresholds: calibration.Thresholds) -> dict:
    flagged = data["score"] > thresholds.for_fragments(data["n_scored"])
    return {"fpr": float(flagged[~data["is_ood"]].mean()), "tpr": float(flagged[data["is_ood"]].mean())}


def class_accuracy(detector, data: dict, label_of: dict[str, dict]) -> float:
    names = detector.classifier.classes
    inside = ~data["is_ood"]
    truth = np.array([label_of[i]["class"] for i in data["read_id"][inside]])
    return float(np.mean(np.array(names)[data["class"][inside]] == truth))


# -- read lengths ----------------------------------------------------------------------------------------------------


def pieces(genomes: list[dict], length: int, rng: np.random.Generator) -> list[str]:
    """PIECES_PER_LENGTH pieces of `length` bp at random positions of the genomes (equal share each), no N."""
    out = []
    for genome in genomes:
        seqs = [s for _, s in read_sequences(str(GENOMES / genome["file"])) if len(s) > length]
        sizes = np.array([len(s) - length for s in seqs], dtype=float)
        made = 0
        while made < PIECES_PER_LENGTH // len(genomes):
            which = int(rng.choice(len(seqs), p=sizes / sizes.sum()))
            start = int(rng.integers(0, len(seqs[which]) - length))
            piece = seqs[which][start:start + length]
            if "N" not in piece.upper():
                out.append(piece)
                made += 1
    return out


def length_study(detector, out: Path, calibrated: Path, model: Path, threads: int, on_genomes: bool) -> dict:
    """Flagged fraction of in-distribution pieces of test_in genomes by length, at the calibration's one threshold,
    at its length-aware thresholds (both from 5 % FPR on the 250 bp val_strains_in windows), and with `on_genomes`
    at length-aware thresholds calibrated on the whole extra_in genomes (the other strains val_strains_in was drawn
    from)."""
    rng = np.random.default_rng(7)
    calibration_doc = api.info(str(calibrated))["threshold"]
    rules = {"fixed": calibration.Thresholds(fixed=calibration_doc["value"]),
             "length_aware": calibration.resolve(calibration_doc)}
    result = {"target_fpr": 0.05, "calibrated_lengths": calibration_doc["table"]["n_scored"]}
    if on_genomes:
        genomes = api.calibrate(str(model), str(out / "model_genome_calibrated.gdm"), rule="target_fpr", value=0.05,
                                in_dist=[str(GENOMES / g["file"]) for g in splits()["extra_in"]], threads=threads,
                                device="cpu")
        rules["length_aware_genomes"] = calibration.Thresholds(
            table=calibration.LengthTable.from_dict(genomes["table"]), fpr=0.05)
        result["calibrated_lengths_genomes"] = genomes["table"]["n_scored"]
    rows = []
    for length in PIECE_LENGTHS:
        path = out / f"pieces_{length}.fa"
        path.write_text("".join(f">p{i}\n{s}\n" for i, s in enumerate(pieces(splits()["test_in"], length, rng))))
        data = api.score_sample(detector, [str(path)]).arrays()
        rows.append({"length": length, "n": int(len(data["score"])),
                     **{name: float((data["score"] > thresholds.for_fragments(data["n_scored"])).mean())
                        for name, thresholds in rules.items()}})
        path.unlink()
        print(f"  length {length}: " + ", ".join(f"{name} {rows[-1][name]:.4f}" for name in rules), file=sys.stderr)
    return result | {"rows": rows}


# -- Kraken2 and timing ----------------------------------------------------------------------------------------------


def run_seconds(command: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def timing(command: list[str], reads: Path, one_read: Path, n: int) -> dict:
    """Reads/s of `command + [file]` on `reads` (n reads) with loading, and without (minus a one-read run; NaN when
    the difference is under a tenth of the whole run, too small to measure)."""
    run_seconds(command + [str(one_read)])  # warm the page cache
    whole = min(run_seconds(command + [str(reads)]) for _ in range(2))
    load = min(run_seconds(command + [str(one_read)]) for _ in range(2))
    return {"reads": n, "seconds": round(whole, 3), "load_seconds": round(load, 3),
            "reads_per_s_with_load": n / whole,
            "reads_per_s": n / (whole - load) if whole - load > 0.1 * whole else float("nan")}


def kraken2(out: Path, train_files: list[str], classes: dict[str, str], threads: int,
            queries: dict[str, Path]) -> dict:
    """Build a Kraken2 database from the training sequence (one taxid per species) and classify each query:
    per-read score 1 - fraction of its k-mers found, and its species call."""
    db = out / "kraken2_db"
    species, build_seconds = kraken.build_database(db, train_files, classes, threads)
    result = {"build_seconds": build_seconds, "scores": {}, "calls": {}}
    for name, path in queries.items():
        report = out / f"{name}.kraken"
        kraken.classify(db, path, report, threads)
        lines = kraken.read_output(report)
        result["scores"][name] = {read_id: 1 - found for read_id, (_, _, found) in lines.items()}
        result["calls"][name] = {read_id: species.get(call) if classified else None
                                 for read_id, (classified, call, _) in lines.items()}
    result["db"] = str(db)
    return result


# -- report ----------------------------------------------------------------------------------------------------------


def markdown(result: dict) -> str:
    lines = [f"# gdbench-v1 accuracy — `{result['command']}`", "",
             (f"training {result['train_seconds']:.0f} s" if result["train_seconds"] is not None else
              "model given with --model") + f" on {result['threads']} threads ({result['train']}); model file "
             f"{result['model_bytes'] / 1e6:.1f} MB", "",
             "| split | score | AUROC | AUPRC | FPR@80%TPR | Pearson r with GC |", "|---|---|---|---|---|---|"]
    for split, scores in result["metrics"].items():
        for name, row in scores.items():
            lines.append(f"| {split} | {name} | {row['auroc']:.3f} | {row['auprc']:.3f} | {row['fpr_at_tpr80']:.3f} | "
                         f"{row['pearson_gc']:+.3f} |")
    if "llr" in result["metrics"].get("test", {}):
        lines += ["", "AUROC of the LLR per OOD test genome:", "", "| genome | AUROC |", "|---|---|"]
        lines += [f"| {g} | {a:.3f} |" for g, a in result["metrics"]["test"]["llr"]["auroc_per_ood_genome"].items()]
    c = result["calibration"]
    lines += ["", f"Calibrated on val_strains_in + val_ood at 5 % FPR (threshold {c['value']:.4f} at 250 bp):", "",
              "| sample | thresholds | FPR | TPR |", "|---|---|---|---|"]
    for sample, modes in c["calls"].items():
        for mode, row in modes.items():
            lines.append(f"| {sample} | {mode} | {row['fpr']:.4f} | {row['tpr']:.4f} |")
    if "lengths" in result:
        names = [name for name in result["lengths"]["rows"][0] if name not in ("length", "n")]
        lines += ["", "Flagged fraction of in-distribution pieces of test_in genomes (target 5 %; calibrated on the "
                  "250 bp val_strains_in windows, or length-aware on the whole extra_in genomes):", "",
                  "| length | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
        lines += [f"| {r['length']} | " + " | ".join(f"{r[name]:.4f}" for name in names) + " |"
                  for r in result["lengths"]["rows"]]
    if "class_accuracy" in result:
        accuracy = result["class_accuracy"]
        parts = [f"gooddetect ({accuracy['classifier']} classifier) {accuracy['gooddetect']:.4f} (validation, "
                 f"val_strains_in: {accuracy['gooddetect_val_strains']:.4f})"] if "gooddetect" in accuracy else []
        if "kraken2" in accuracy:
            k = accuracy["kraken2"]
            parts.append(f"Kraken2 {k['correct_of_all']:.4f} of all windows ({k['unclassified']:.4f} unclassified, "
                         f"{k['correct_of_called']:.4f} of its calls right)")
        lines += ["", "Class accuracy on test_in windows: " + "; ".join(parts)]
    if "timing" in result:
        lines += ["", "Scoring time, same file, same threads (with loading; without: minus a one-read run):", "",
                  "| tool | file | reads | reads/s with loading | reads/s without | loading s |",
                  "|---|---|---|---|---|---|"]
        for tool, rows in result["timing"].items():
            for name, row in rows.items():
                lines.append(f"| {tool} | {name} | {row['reads']} | {row['reads_per_s_with_load']:,.0f} | "
                             f"{row['reads_per_s']:,.0f} | {row['load_seconds']:.2f} |")
    return "\n".join(lines) + "\n"


def parse_train_args(items: list[str]) -> dict:
    """`--hidden 512 --lr 2e-3 --both-strands` → {"hidden": 512, "lr": 0.002, "both_strands": True}."""
    options, key = {}, None
    for item in items:
        if item.startswith("--"):
            key = item[2:].replace("-", "_")
            options[key] = True
        elif key is not None:
            options[key] = _number_or_text(item)
            key = None
    return options


def _number_or_text(item: str):
    for kind in (int, float):
        try:
            return kind(item)
        except ValueError:
            pass
    return item


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--arch", choices=["lstm", "kmer"], default="lstm")
    parser.add_argument("--train", choices=["windows", "p90", "genomes"], default="windows")
    parser.add_argument("--out", default="bench_accuracy_out")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--kraken2", action="store_true", help="also measure Kraken2 in the same run")
    parser.add_argument("--classes", action="store_true", help="also train and evaluate the classifier")
    parser.add_argument("--lengths", action="store_true", help="flagged fractions by read length (test_in genomes)")
    parser.add_argument("--calibrate-genomes", action="store_true",
                        help="with --lengths: also calibrate on the whole extra_in genomes (slow for the LSTM)")
    parser.add_argument("--model", help="score this model file (trained on the same --train input, e.g. by an earlier "
                                        "run of this script) instead of training one")
    parser.add_argument("train_args", nargs="*", help="extra `gooddetect train` options after --")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    options = parse_train_args(args.train_args)
    label_of = labels_by_read(BENCH / "labels.tsv.gz") | labels_by_read(BENCH / "val_strains_labels.tsv.gz")
    reads_label_of = labels_by_read(BENCH / "test_reads_labels.tsv.gz")
    train_files, classes = training_input(args.train, out)
    if args.classes:
        options["classes"] = str(write_classes(classes, out / "train_classes.tsv"))

    model = out / f"model_{args.arch}.gdm"
    started = time.perf_counter()
    if args.model:
        shutil.copyfile(args.model, model)
    else:
        api.train(train_files, str(model), arch=args.arch, runtime=api.Runtime(threads=args.threads), **options)
    train_seconds = None if args.model else time.perf_counter() - started
    detector = api.load_detector(str(model), api.Runtime(threads=args.threads, device="cpu"))
    if detector.kind != args.arch:
        raise SystemExit(f"{args.model}: a {detector.kind} model, not --arch {args.arch}")
    result = {"command": " ".join(sys.argv[1:]), "arch": args.arch, "train": args.train, "threads": args.threads,
              "train_seconds": train_seconds, "model_bytes": model.stat().st_size, "metrics": {}}

    gc = gc_of([BENCH / f for f in ("val_strains_in.fa.gz", "val_ood.fa.gz", "test_in.fa.gz", "test_ood.fa.gz")])
    samples = {"val": [BENCH / "val_strains_in.fa.gz", BENCH / "val_ood.fa.gz"],
               "test": [BENCH / "test_in.fa.gz", BENCH / "test_ood.fa.gz"]}
    data = {split: scored(detector, files, label_of) for split, files in samples.items()}
    data["test_reads"] = scored(detector, [BENCH / "test_reads.fq.gz"], reads_label_of)
    reads_gc = gc_of([BENCH / "test_reads.fq.gz"])
    for split, d in data.items():
        gcs = np.array([(reads_gc if split == "test_reads" else gc)[i] for i in d["read_id"]])
        result["metrics"][split] = evaluate(score_columns(d), d["is_ood"], d["genome"], gcs)

    calibrated = out / f"model_{args.arch}_calibrated.gdm"
    report = api.calibrate(str(model), str(calibrated), rule="target_fpr", value=0.05,
                           in_dist=[str(BENCH / "val_strains_in.fa.gz")], ood=[str(BENCH / "val_ood.fa.gz")],
                           runtime=api.Runtime(threads=args.threads, device="cpu"))
    fixed = calibration.Thresholds(fixed=report["value"])
    aware = calibration.Thresholds(table=calibration.LengthTable.from_dict(report["table"]), fpr=0.05)
    result["calibration"] = {"value": report["value"], "table_lengths": report["table"]["n_scored"], "calls": {
        sample: {"fixed": calls(data[sample], fixed), "length-aware": calls(data[sample], aware)}
        for sample in ("test", "test_reads")}}
    if args.lengths:
        result["lengths"] = length_study(detector, out, calibrated, model, args.threads, args.calibrate_genomes)
    if args.classes:
        result["class_accuracy"] = {"gooddetect": class_accuracy(detector, data["test"], label_of),
                                    "gooddetect_val_strains": class_accuracy(detector, data["val"], label_of),
                                    "classifier": detector.classifier.kind}

    if args.kraken2:
        queries = {"test": out / "test.fa", "test_reads": out / "test_reads.fq"}
        with open(queries["test"], "w") as handle:
            for f in samples["test"]:
                handle.writelines(f">{n}\n{s}\n" for n, s in read_sequences(str(f)))
        queries["test_reads"].write_bytes(gzip.decompress((BENCH / "test_reads.fq.gz").read_bytes()))
        kraken = kraken2(out, train_files, classes, args.threads, queries)
        result["kraken2_build_seconds"] = kraken["build_seconds"]
        for split in ("test", "test_reads"):
            d = data[split]
            values = np.array([kraken["scores"][split][i] for i in d["read_id"]])
            gcs = np.array([(reads_gc if split == "test_reads" else gc)[i] for i in d["read_id"]])
            result["metrics"][split] |= evaluate({"kraken2": values}, d["is_ood"], d["genome"], gcs)
        inside = [i for i in data["test"]["read_id"] if label_of[i]["label"] == "in"]
        called = [kraken["calls"]["test"][i] for i in inside]
        right = sum(c == label_of[i]["class"] for i, c in zip(inside, called))
        result.setdefault("class_accuracy", {})["kraken2"] = {
            "correct_of_all": right / len(inside), "unclassified": called.count(None) / len(inside),
            "correct_of_called": right / max(1, len(called) - called.count(None))}
        one_read = out / "one_read.fq"
        one_read.write_text("\n".join(queries["test_reads"].read_text().splitlines()[:4]) + "\n")
        big = out / "test_reads_x10.fq"
        big.write_bytes(queries["test_reads"].read_bytes() * 10)
        gooddetect = [sys.executable, "-m", "gooddetect", "-q", "score", "--threads", str(args.threads),
                      "-o", str(out / "timing.tsv"), str(calibrated)]
        kraken_cmd = ["kraken2", "--db", kraken["db"], "--threads", str(args.threads), "--output",
                      str(out / "timing.kraken")]
        result["timing"] = {tool: {"test_reads (20k)": timing(command, queries["test_reads"], one_read, 20_000),
                                   "test_reads x10 (200k)": timing(command, big, one_read, 200_000)}
                            for tool, command in (("gooddetect", gooddetect), ("kraken2", kraken_cmd))}
    (out / "accuracy.json").write_text(json.dumps(result, indent=2, sort_keys=True, default=float) + "\n")
    (out / "accuracy.md").write_text(markdown(result))
    print(markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
