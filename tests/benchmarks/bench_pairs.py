"""How much a read pair scored as one fragment gains over its mates scored alone (2 x 150 bp Illumina pairs).

Simulates paired-end reads with ART (Debian package `art-nextgen-simulation-tools`: `art_illumina -ss HS25 -p -l 150
-m 400 -s 50`, its empirical error and quality model) from the `test_in` and `test_ood` genomes of
../shared/genomes (an equal number of pairs per genome), shuffles them, and scores them with `gooddetect score` three
ways: `R1 R2 --paired` (one score per fragment: the base-weighted LLR over both mates' windows), R1 alone, R2 alone.
Reports AUROC (OOD positive) of each, for every model given.

Run from the repository root with models trained on gdbench-v1 (e.g. by bench_accuracy.py):
    python tests/benchmarks/bench_pairs.py --out bench_pairs bench_kmer/model_kmer.gdm bench_lstm/model_lstm.gdm
Writes OUT/pairs.md and OUT/pairs.json.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

from gooddetect import metrics
from gooddetect.seqio import read_sequences

GENOMES = Path(__file__).resolve().parents[3] / "shared" / "genomes"
READ_LENGTH, FRAGMENT_MEAN, FRAGMENT_SD = 150, 400, 50


def genomes_by_role() -> dict[str, list[str]]:
    with open(GENOMES / "splits.tsv") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    return {role: [r["file"] for r in rows if r["role"] == role] for role in ("test_in", "test_ood")}


def fastq_records(path: Path) -> list[tuple[str, str, str]]:
    lines = path.read_text().splitlines()
    return [(lines[i + 1], lines[i + 3], lines[i][1:]) for i in range(0, len(lines) - 3, 4)]


def simulate(genome: str, pairs: int, seed: int, work: Path) -> list[tuple[tuple[str, str], tuple[str, str]]]:
    """`pairs` random pairs ((seq1, qual1), (seq2, qual2)) of one genome, simulated by ART."""
    records = [(name, seq) for name, seq in read_sequences(str(GENOMES / genome)) if len(seq) >= 2 * FRAGMENT_MEAN]
    reference = work / "reference.fa"
    reference.write_text("".join(f">r{i}\n{seq}\n" for i, (_, seq) in enumerate(records)))
    bases = sum(len(seq) for _, seq in records)
    coverage = 3 * pairs * 2 * READ_LENGTH / bases  # three times what is kept, then a random subset
    prefix = work / "art_"
    subprocess.run(["art_illumina", "-ss", "HS25", "-p", "-l", str(READ_LENGTH), "-m", str(FRAGMENT_MEAN),
                    "-s", str(FRAGMENT_SD), "-f", f"{coverage:.6f}", "-rs", str(seed), "-na", "-q",
                    "-i", str(reference), "-o", str(prefix)], check=True, stdout=subprocess.DEVNULL)
    first, second = fastq_records(Path(f"{prefix}1.fq")), fastq_records(Path(f"{prefix}2.fq"))
    assert len(first) == len(second) >= pairs, (genome, len(first), pairs)
    keep = np.random.default_rng(seed).choice(len(first), pairs, replace=False)
    return [((first[i][0], first[i][1]), (second[i][0], second[i][1])) for i in keep]


def make_pairs(out: Path, pairs_per_genome: int) -> tuple[Path, Path, dict[str, bool]]:
    fragments, is_ood = [], {}
    work = out / "art"
    work.mkdir(parents=True, exist_ok=True)
    for role, genomes in genomes_by_role().items():
        for g, genome in enumerate(genomes):
            for n, pair in enumerate(simulate(genome, pairs_per_genome, 1000 + len(fragments), work)):
                name = f"{role}_{g}_{n}"
                fragments.append((name, pair))
                is_ood[name] = role == "test_ood"
    shutil.rmtree(work)
    order = np.random.default_rng(0).permutation(len(fragments))
    paths = out / "pairs_R1.fq.gz", out / "pairs_R2.fq.gz"
    for mate, path in enumerate(paths):
        with gzip.open(path, "wt", compresslevel=1) as handle:
            for i in order:
                name, pair = fragments[i]
                seq, qual = pair[mate]
                handle.write(f"@{name}/{mate + 1}\n{seq}\n+\n{qual}\n")
    return paths[0], paths[1], is_ood


def score(model: str, inputs: list[Path], extra: list[str], out: Path, threads: int) -> dict[str, float]:
    subprocess.run([sys.executable, "-m", "gooddetect", "score", model, *map(str, inputs), *extra, "-o", str(out),
                    "--threads", str(threads)], check=True, stderr=subprocess.DEVNULL)
    with open(out) as handle:
        return {fragment_name(row["read_id"]): float(row["score"]) for row in csv.DictReader(handle, delimiter="\t")
                if row["score"] != "NA"}


def fragment_name(read_id: str) -> str:
    """A mate scored alone keeps its /1 or /2; the fragment's name is without it."""
    return read_id[:-2] if read_id.endswith(("/1", "/2")) else read_id


def auroc(scores: dict[str, float], is_ood: dict[str, bool]) -> float:
    names = [name for name in scores if name in is_ood]
    return metrics.auroc(np.array([scores[n] for n in names]), np.array([is_ood[n] for n in names]))  # high = OOD


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", nargs="+")
    parser.add_argument("--out", default="bench_pairs_out")
    parser.add_argument("--pairs-per-genome", type=int, default=500)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    first, second, is_ood = make_pairs(out, args.pairs_per_genome)
    result = {"pairs": len(is_ood), "ood_pairs": int(sum(is_ood.values())), "models": {}}
    for model in args.models:
        runs = {"fragment (R1 + R2 --paired)": ([first, second], ["--paired"]), "R1 alone": ([first], []),
                "R2 alone": ([second], [])}
        result["models"][model] = {name: auroc(score(model, inputs, extra, out / "scores.tsv", args.threads), is_ood)
                                   for name, (inputs, extra) in runs.items()}
        print(model, result["models"][model], file=sys.stderr)
    lines = [f"# Read pairs: fragment vs single mates ({result['pairs']} simulated 2 x {READ_LENGTH} bp pairs, "
             f"{result['ood_pairs']} OOD)", "", "| model | " + " | ".join(runs) + " |", "|---|---|---|---|"]
    lines += [f"| {m} | " + " | ".join(f"{v:.4f}" for v in r.values()) + " |" for m, r in result["models"].items()]
    (out / "pairs.md").write_text("\n".join(lines) + "\n")
    (out / "pairs.json").write_text(json.dumps(result, indent=1) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
