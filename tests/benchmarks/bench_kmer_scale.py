"""k-mer training at reference scale: time, peak memory and validation AUROC as the references grow to >= 2 Gb, in
one `train` or counted in parts (`--shards N`: N `gooddetect count` runs, one after the other here as on N machines,
merged by `train --arch kmer --from-counts`).

The references are the `train` genomes of ../shared/genomes plus synthetic relatives: copies of them with every base
substituted at a random rate of 2-15 % per copy (new strains, whose long k-mers are mostly new), written as plain
FASTA until each size is reached. For each size (and each --hash-bits value given; default: gooddetect's sizing)
`gooddetect train REFS... --arch kmer` runs as a subprocess (wall time and peak RSS from the kernel), and the model
is scored on gdbench-v1's `val_strains_in` vs `val_ood` (LLR AUROC, OOD positive), next to its hashed tables' fill
and the fraction of full buckets (from `gooddetect info`). Memory is bounded by the table sizes; accuracy drifts as
the tables fill with the other sequences' k-mers.

Run from the repository root, e.g.
    python tests/benchmarks/bench_kmer_scale.py --sizes 0.25,1 --hash-bits default,26 --out bench_scale
    python tests/benchmarks/bench_kmer_scale.py --sizes 2 --shards 4 --hash-bits default,26 --out bench_scale
Writes OUT/scale.md and OUT/scale.json (the synthetic FASTA files are deleted at the end).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from gooddetect import api, metrics
from gooddetect.seqio import read_sequences

SHARED = Path(__file__).resolve().parents[3] / "shared"
BENCH, GENOMES = SHARED / "benchmark", SHARED / "genomes"
BASES = np.frombuffer(b"ACGT", dtype=np.uint8)


def train_genomes() -> list[Path]:
    with open(GENOMES / "splits.tsv") as handle:
        return [GENOMES / r["file"] for r in csv.DictReader(handle, delimiter="\t") if r["role"] == "train"]


def substituted(seq: np.ndarray, rate: float, rng: np.random.Generator) -> np.ndarray:
    """A copy of `seq` (ASCII bytes) with each known base replaced, with probability `rate`, by one of the three
    others."""
    seq = seq.copy()
    hit = (rng.random(len(seq)) < rate) & np.isin(seq, BASES)
    shift = rng.integers(1, 4, int(hit.sum()))
    seq[hit] = BASES[(np.searchsorted(BASES, seq[hit]) + shift) % 4]
    return seq


def write_references(out: Path, total_bases: float, seed: int = 0) -> tuple[list[Path], int]:
    """The train genomes, then mutated copies of them, as plain FASTA files, until `total_bases`."""
    rng = np.random.default_rng(seed)
    genomes = [[np.frombuffer(s.upper().encode(), dtype=np.uint8) for _, s in read_sequences(str(p))]
               for p in train_genomes()]
    paths, written, copy = [], 0, 0
    while written < total_bases:
        genome = genomes[copy % len(genomes)]
        rate = 0.0 if copy < len(genomes) else rng.uniform(0.02, 0.15)
        path = out / f"ref_{copy:04d}.fa"
        with open(path, "wb") as handle:
            for i, seq in enumerate(genome):
                seq = substituted(seq, rate, rng)
                handle.write(b">c%d_%d mutated %.3f\n" % (copy, i, rate) + seq.tobytes() + b"\n")
                written += len(seq)
        paths.append(path)
        copy += 1
    return paths, written


def run(command: list[str]) -> dict:
    """Wall seconds and peak RSS (MB) of one `gooddetect` subprocess."""
    command = [sys.executable, "-m", "gooddetect", "-q", *command]
    started = time.perf_counter()
    process = subprocess.Popen(command)
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"failed: {' '.join(command)}")
    return {"seconds": seconds, "peak_rss_mb": usage.ru_maxrss / 1024}


def train(refs: list[Path], model: Path, hash_bits: str, threads: int, shards: int) -> dict:
    """`train --arch kmer` on the references at once, or counted in `shards` parts and merged: the runs' seconds
    and peak RSS."""
    extra = [] if hash_bits == "default" else ["--hash-bits", hash_bits]
    if shards == 1:
        return {"train": run(["train", *map(str, refs), "--arch", "kmer", "-o", str(model), "--threads", str(threads),
                              *extra])}
    parts = [refs[i * len(refs) // shards:(i + 1) * len(refs) // shards] for i in range(shards)]
    counts = [model.with_suffix(f".{i}.gdc") for i in range(shards)]
    result = {"counts": [run(["count", *map(str, part), "-o", str(path), *extra]) for part, path in zip(parts, counts)]}
    result["count_file_mb"] = [path.stat().st_size / 1e6 for path in counts]
    result["merge"] = run(["train", "--arch", "kmer", "--from-counts", *map(str, counts), "-o", str(model),
                           "--threads", str(threads)])
    for path in counts:
        path.unlink()
    return result


def validation_auroc(model: Path, threads: int) -> float:
    detector = api.load_detector(str(model), api.Runtime(threads=threads))
    in_scores = api.score_sample(detector, [str(BENCH / "val_strains_in.fa.gz")]).arrays()["score"]
    ood_scores = api.score_sample(detector, [str(BENCH / "val_ood.fa.gz")]).arrays()["score"]
    return metrics.auroc(np.r_[in_scores, ood_scores], np.repeat([False, True], [len(in_scores), len(ood_scores)]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="0.25,1", help="reference sizes in Gb, comma-separated")
    parser.add_argument("--hash-bits", default="default", help="comma-separated: 'default' and/or numbers")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--shards", type=int, default=1, help="count the references in this many parts and merge")
    parser.add_argument("--out", default="bench_scale_out")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for size in (float(s) for s in args.sizes.split(",")):
        refs_dir = out / "refs"
        shutil.rmtree(refs_dir, ignore_errors=True)
        refs_dir.mkdir()
        refs, bases = write_references(refs_dir, size * 1e9)
        for bits in args.hash_bits.split(","):
            model = out / "model.gdm"
            row = {"reference_bases": bases, "files": len(refs), "hash_bits_option": bits, "shards": args.shards,
                   **train(refs, model, bits, args.threads, args.shards)}
            counting = api.info(str(model))["training"]["counting"]["foreground"]
            row |= {"hash_bits": counting["hash_bits"], "hashed_fill": counting["hashed_fill"],
                    "full_buckets": counting["hashed_full_buckets"], "model_mb": model.stat().st_size / 1e6,
                    "val_auroc": validation_auroc(model, args.threads)}
            rows.append(row)
            print(json.dumps(row), file=sys.stderr, flush=True)
        shutil.rmtree(refs_dir)
    lines = ["# k-mer training at reference scale", "",
             "| references | parts | --hash-bits | table bits | fill | full buckets | count s per part (peak RSS MB) "
             "| train or merge s (peak RSS MB) | model MB | val AUROC |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        parts = ", ".join(f"{c['seconds']:.0f} ({c['peak_rss_mb']:.0f})" for c in r.get("counts", [])) or "—"
        final = r.get("merge") or r["train"]
        lines.append(f"| {r['reference_bases'] / 1e9:.2f} Gb ({r['files']} files) | {r['shards']} | "
                     f"{r['hash_bits_option']} | {r['hash_bits']} | {r['hashed_fill']} | {r['full_buckets']} | {parts} | "
                     f"{final['seconds']:.0f} ({final['peak_rss_mb']:.0f}) | {r['model_mb']:.1f} | {r['val_auroc']:.4f} |")
    (out / "scale.md").write_text("\n".join(lines) + "\n")
    (out / "scale.json").write_text(json.dumps(rows, indent=1) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
