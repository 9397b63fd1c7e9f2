"""Rebuild the example data set in this folder from ../shared/genomes (run from the repository root:
`python data/make_example.py`). Deterministic: the same genomes and seed give the same files."""

from __future__ import annotations

import gzip
import sys
from pathlib import Path

import numpy as np

from gooddetect.windows import WindowCounts, decode, sample_genome_windows

GENOMES = Path(__file__).resolve().parents[2] / "shared" / "genomes"
OUT = Path(__file__).resolve().parent
SEED = 2019
# Five in-distribution species: one strain each for training, another strain of the same species for validation.
TRAIN_IN = ["Escherichia_coli_W3110", "Helicobacter_pylori_Gambia94_24", "Staphylococcus_aureus_JKD6008",
            "Vibrio_cholerae_O1_Inaba", "Klebsiella_pneumoniae_1084"]
VAL_IN = ["Escherichia_coli_MIIJ01000039_contig", "Helicobacter_pylori_NCTC11637", "Staphylococcus_aureus_NCTC8325",
          "Vibrio_cholerae_O1_Inaba", "Klebsiella_pneumoniae_1084"]
VAL_OOD = ["Clavibacter_michiganensis_CFBP6885", "Blochmannia_chromaiodes_640", "Methanobacterium_sp_MB1",
           "Virus_EBV_sLCL-T12.18", "Streptococcus_pyogenes_MGAS8232"]
TRAIN_PER_GENOME, VAL_PER_GENOME, READS_PER_GENOME, READ_LENGTH, ERROR_RATE = 1200, 100, 100, 150, 0.002


def windows(names: list[str], n: int, length: int, rng: np.random.Generator):
    for name in names:
        for window in sample_genome_windows(str(GENOMES / f"{name}.fna.gz"), n, rng, WindowCounts(), length):
            yield name, window


def write_fasta(path: Path, prefix: str, items, labels: list | None = None, label: str = "") -> None:
    with gzip.GzipFile(path, "wb", mtime=0) as out:
        for i, (name, window) in enumerate(items):
            read_id = f"{prefix}_{i:05d}"
            out.write(f">{read_id} {name} {window.label}\n{decode(window.codes)}\n".encode())
            if labels is not None:
                labels.append((read_id, label, name))


def write_reads(path: Path, items, rng: np.random.Generator, labels: list) -> None:
    """150 bp single-end reads with substitution errors at ERROR_RATE and a flat quality string, shuffled."""
    reads = []
    for name, window, label in items:
        codes = window.codes.copy()
        hit = rng.random(codes.size) < ERROR_RATE
        codes[hit] = (codes[hit] + rng.integers(1, 4, hit.sum())) % 4
        reads.append((name, decode(codes), label))
    order = rng.permutation(len(reads))
    with gzip.GzipFile(path, "wb", mtime=0) as out:
        for i, j in enumerate(order):
            name, seq, label = reads[j]
            out.write(f"@read_{i:05d} {name}\n{seq}\n+\n{'I' * len(seq)}\n".encode())
            labels.append((f"read_{i:05d}", label, name))


def main() -> int:
    rng = np.random.default_rng(SEED)
    write_fasta(OUT / "train_in.fa.gz", "train", windows(TRAIN_IN, TRAIN_PER_GENOME, 250, rng))
    val_labels: list = []
    write_fasta(OUT / "val_in.fa.gz", "val_in", windows(VAL_IN, VAL_PER_GENOME, 250, rng), val_labels, "in")
    write_fasta(OUT / "val_ood.fa.gz", "val_ood", windows(VAL_OOD, VAL_PER_GENOME, 250, rng), val_labels, "ood")
    read_labels: list = []
    items = [(n, w, "in") for n, w in windows(VAL_IN, READS_PER_GENOME, READ_LENGTH, rng)]
    items += [(n, w, "ood") for n, w in windows(VAL_OOD, READS_PER_GENOME, READ_LENGTH, rng)]
    write_reads(OUT / "reads.fq.gz", items, rng, read_labels)
    for path, rows in ((OUT / "val_labels.tsv", val_labels), (OUT / "reads_labels.tsv", read_labels)):
        path.write_text("read_id\tlabel\tgenome\n" + "".join("\t".join(r) + "\n" for r in rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
