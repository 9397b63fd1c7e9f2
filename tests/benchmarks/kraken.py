"""Kraken2 beside gooddetect in the benchmarks: a database built from the same training sequence (one taxid per
species, a hand-made taxonomy under the root) and its per-read output. Needs Debian's `kraken2` package."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

from gooddetect.seqio import read_sequences


def build_database(db: Path, train_files: list[str], classes: dict[str, str], threads: int) -> tuple[dict, float]:
    """Build the database at `db` from the records of `train_files` (record id -> class in `classes`); returns
    (taxid -> class, build seconds)."""
    if not shutil.which("kraken2-build"):
        sys.exit("Kraken2 rows need the Debian package kraken2 (apt-get install kraken2)")
    names = sorted(set(classes.values()))
    taxid = {c: 100 + i for i, c in enumerate(names)}
    shutil.rmtree(db, ignore_errors=True)
    (db / "taxonomy").mkdir(parents=True)
    with open(db / "taxonomy" / "nodes.dmp", "w") as nodes, open(db / "taxonomy" / "names.dmp", "w") as dmp:
        nodes.write("1\t|\t1\t|\tno rank\t|\n")
        dmp.write("1\t|\troot\t|\t\t|\tscientific name\t|\n")
        for c, t in taxid.items():
            nodes.write(f"{t}\t|\t1\t|\tspecies\t|\n")
            dmp.write(f"{t}\t|\t{c.replace('_', ' ')}\t|\t\t|\tscientific name\t|\n")
    library = db.parent / f"{db.name}_library.fa"
    with open(library, "w") as handle:
        for path in train_files:
            for name, seq in read_sequences(path):
                handle.write(f">{name}|kraken:taxid|{taxid[classes[name]]}\n{seq}\n")
    started = time.perf_counter()
    for args in (["--add-to-library", str(library)], ["--build", "--threads", str(threads)]):
        subprocess.run(["kraken2-build", "--db", str(db), *args], check=True, capture_output=True)
    library.unlink()
    return {t: c for c, t in taxid.items()}, time.perf_counter() - started


def classify(db: Path, query: Path, output: Path, threads: int) -> float:
    """Run kraken2 on `query` (its per-read lines to `output`); returns the wall seconds, loading included."""
    started = time.perf_counter()
    subprocess.run(["kraken2", "--db", str(db), "--threads", str(threads), "--output", str(output), str(query)],
                   check=True, capture_output=True)
    return time.perf_counter() - started


def read_output(path: Path) -> dict[str, tuple[bool, int, float]]:
    """read id -> (classified, taxid, fraction of its k-mers found in the database)."""
    result = {}
    with open(path) as handle:
        for line in handle:
            status, read_id, call, _, kmers = line.rstrip("\n").split("\t")
            hits = total = 0
            for item in kmers.split():
                tax, count = item.split(":")
                if tax == "|":
                    continue
                total += int(count)
                hits += int(count) if tax not in ("0", "A") else 0
            result[read_id] = (status == "C", int(call), hits / total if total else 0.0)
    return result
