"""The k-mer classifier with hundreds of classes: model file size, training time and memory, scoring speed and
class accuracy as the number of classes grows.

Each class is a species-like group of simulated strains: a 500 kb slice of one of the `train` genomes of
../shared/genomes, substituted at 10-20 % (the class's own species), then two strains of it at 0.5-2 % more: one
to train on (one FASTA file per class, `train --class-per-file`), one held out, from which the test reads come
(150 bases, either strand, 0.2 % substitution errors). For each class count `gooddetect train --arch kmer` and
`gooddetect score` run as subprocesses (wall time and peak RSS from the kernel); accuracy is the share of reads
whose `class` column names the class they came from.

Run from the repository root, e.g.
    python tests/benchmarks/bench_classes.py --classes 10,200 --reads 200000 --classifier-order 9 --out bench_cls
Writes OUT/classes.md and OUT/classes.json (and keeps each model and its test reads).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
from pathlib import Path

import numpy as np

from gooddetect.seqio import read_sequences

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_kmer_scale import BASES, run, substituted, train_genomes  # noqa: E402

SLICE = 500_000
READ_LENGTH = 150


def make_classes(out: Path, n_classes: int, n_reads: int, seed: int = 0) -> tuple[list[Path], Path, list[str]]:
    """One training FASTA per class and the test reads (FASTQ) of the held-out strains, with their classes."""
    rng = np.random.default_rng(seed)
    genomes = [np.frombuffer(max((s for _, s in read_sequences(str(p))), key=len).upper().encode(), dtype=np.uint8)
               for p in train_genomes()]  # the longest record of each
    paths, held_out, names = [], [], []
    for c in range(n_classes):
        genome = genomes[c % len(genomes)]
        start = int(rng.integers(0, max(len(genome) - SLICE, 1)))
        species = substituted(genome[start:start + SLICE], rng.uniform(0.10, 0.20), rng)
        train, test = (substituted(species, rng.uniform(0.005, 0.02), rng) for _ in range(2))
        name = f"species_{c:03d}"
        path = out / f"{name}.fa"
        path.write_bytes(b">" + name.encode() + b"_train\n" + train.tobytes() + b"\n")
        paths.append(path)
        held_out.append(test)
        names.append(name)
    reads = out / "reads.fq"
    truth = []
    complement = np.full(256, ord("N"), dtype=np.uint8)
    complement[BASES] = BASES[::-1]
    with open(reads, "wb") as handle:
        for i in range(n_reads):
            c = int(rng.integers(n_classes))
            seq = held_out[c]
            start = int(rng.integers(0, len(seq) - READ_LENGTH))
            read = substituted(seq[start:start + READ_LENGTH], 0.002, rng)
            if rng.random() < 0.5:
                read = complement[read[::-1]]
            handle.write(b"@r%d\n%s\n+\n%s\n" % (i, read.tobytes(), b"I" * READ_LENGTH))
            truth.append(names[c])
    return paths, reads, truth


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--classes", default="10,200", help="class counts, comma-separated")
    parser.add_argument("--reads", type=int, default=200_000)
    parser.add_argument("--classifier-order", type=int, default=9)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    rows = []
    for n_classes in [int(n) for n in args.classes.split(",")]:
        work = args.out / f"classes_{n_classes}"
        work.mkdir(exist_ok=True)
        paths, reads, truth = make_classes(work, n_classes, args.reads)
        model, scores = work / "model.gdm", work / "scores.tsv"
        trained = run(["train", "--arch", "kmer", *map(str, paths), "--class-per-file", "--classifier-order",
                       str(args.classifier_order), "--threads", str(args.threads), "-o", str(model)])
        scored = run(["score", str(model), str(reads), "-o", str(scores), "--threads", str(args.threads)])
        one = work / "one.fq"
        one.write_text("@r\n" + "A" * READ_LENGTH + "\n+\n" + "I" * READ_LENGTH + "\n")
        load_s = run(["score", str(model), str(one), "-o", os.devnull, "--threads", str(args.threads)])["seconds"]
        train_s, train_mb, score_s, score_mb = (trained["seconds"], trained["peak_rss_mb"], scored["seconds"],
                                                scored["peak_rss_mb"])
        with open(scores) as handle:
            called = [r["class"] for r in csv.DictReader(handle, delimiter="\t")]
        accuracy = float(np.mean([a == b for a, b in zip(called, truth)]))
        rows.append({"classes": n_classes, "order": args.classifier_order, "train_s": round(train_s, 1),
                     "train_rss_mb": round(train_mb), "model_mb": round(model.stat().st_size / 1e6, 1),
                     "score_s": round(score_s, 2), "one_read_s": round(load_s, 2),
                     "reads_per_s": round(args.reads / score_s), "reads_per_s_after_load": round(
                         args.reads / max(score_s - load_s, 1e-9)), "score_rss_mb": round(score_mb),
                     "accuracy": round(accuracy, 4)})
        print(json.dumps(rows[-1]), flush=True)
        for path in paths:
            path.unlink()
    (args.out / "classes.json").write_text(json.dumps(rows, indent=1))
    header = list(rows[0])
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(r[k]) for k in header) + " |" for r in rows]
    (args.out / "classes.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
