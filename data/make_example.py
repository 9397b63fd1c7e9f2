"""Rebuild the example data set in this folder from ../shared/genomes (run from the repository root:
`python data/make_example.py`). Deterministic: the same genomes and seed give the same files."""

from __future__ import annotations

import gzip
import sys
from pathlib import Path

import numpy as np

from gooddetect.alphabet import decode, reverse_complement
from gooddetect.windows import WindowCounts, sample_genome_windows
from gooddetect.seqio import read_sequences

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
PAIRS_PER_GENOME, FRAGMENT_MEAN, FRAGMENT_SD = 50, 350, 30
CHIMERA = ("Escherichia_coli_MIIJ01000039_contig", 300_000, 20_000, "Virus_EBV_sLCL-T12.18", 100_000, 5_000)


def species(genome: str) -> str:
    """The class of a genome: its species, the first two words of the file name."""
    return "_".join(genome.split("_")[:2])


def windows(names: list[str], n: int, length: int, rng: np.random.Generator):
    """(genome, label, codes) of `n` windows per genome without unknown bases, each on a random strand."""
    for name in names:
        for record, start, codes in sample_genome_windows(str(GENOMES / f"{name}.fna.gz"), n, rng, WindowCounts(),
                                                          length, min_length=length):
            minus = bool(rng.integers(0, 2))
            label = f"{record}:{start + 1}-{start + length}({'-' if minus else '+'})"
            yield name, label, reverse_complement(codes) if minus else codes


def write_fasta(path: Path, prefix: str, items, labels: list | None = None, label: str = "") -> None:
    with gzip.GzipFile(path, "wb", mtime=0) as out:
        for i, (name, where, codes) in enumerate(items):
            read_id = f"{prefix}_{i:05d}"
            out.write(f">{read_id} {name} {where}\n{decode(codes)}\n".encode())
            if labels is not None:
                labels.append((read_id, label, name))


def with_errors(codes: np.ndarray, rng: np.random.Generator) -> str:
    codes = codes.copy()
    hit = rng.random(codes.size) < ERROR_RATE
    codes[hit] = (codes[hit] + rng.integers(1, 4, hit.sum())) % 4
    return decode(codes)


def write_reads(path: Path, items, rng: np.random.Generator, labels: list) -> None:
    """150 bp single-end reads with substitution errors at ERROR_RATE and a flat quality string, shuffled."""
    reads = [(name, with_errors(codes, rng), label) for name, codes, label in items]
    with gzip.GzipFile(path, "wb", mtime=0) as out:
        for i, j in enumerate(rng.permutation(len(reads))):
            name, seq, label = reads[j]
            out.write(f"@read_{i:05d} {name}\n{seq}\n+\n{'I' * len(seq)}\n".encode())
            labels.append((f"read_{i:05d}", label, name, species(name) if label == "in" else "NA"))


def write_pairs(paths: tuple[Path, Path], items, rng: np.random.Generator, labels: list) -> None:
    """2 x 150 bp pairs of fragments of about FRAGMENT_MEAN bp: R1 reads the fragment's start, R2 the reverse
    complement of its end; shuffled; ids pair_N/1 and pair_N/2."""
    pairs = [(name, with_errors(codes[:READ_LENGTH], rng), with_errors(reverse_complement(codes)[:READ_LENGTH], rng),
              label) for name, codes, label in items]
    with gzip.GzipFile(paths[0], "wb", mtime=0) as r1, gzip.GzipFile(paths[1], "wb", mtime=0) as r2:
        for i, j in enumerate(rng.permutation(len(pairs))):
            name, first, second, label = pairs[j]
            r1.write(f"@pair_{i:05d}/1 {name}\n{first}\n+\n{'I' * len(first)}\n".encode())
            r2.write(f"@pair_{i:05d}/2 {name}\n{second}\n+\n{'I' * len(second)}\n".encode())
            labels.append((f"pair_{i:05d}", label, name, species(name) if label == "in" else "NA"))


def fragments(names: list[str], n: int, rng: np.random.Generator, label: str):
    for name in names:
        for length in rng.normal(FRAGMENT_MEAN, FRAGMENT_SD, n).astype(int).tolist():
            _, _, codes = next(windows([name], 1, length, rng))
            yield name, codes, label


def write_chimera(path: Path) -> None:
    """A 25 kb contig: 10 kb of an in-distribution genome, 5 kb of an OOD genome, the host's next 10 kb."""
    host, host_start, host_bases, insert, insert_start, insert_bases = CHIMERA
    host_seq = next(read_sequences(str(GENOMES / f"{host}.fna.gz")))[1][host_start:host_start + host_bases]
    insert_seq = next(read_sequences(str(GENOMES / f"{insert}.fna.gz")))[1][insert_start:insert_start + insert_bases]
    middle = host_bases // 2
    parts = [f"{host}:{host_start + 1}-{host_start + middle}", f"{insert}:{insert_start + 1}-{insert_start + insert_bases}",
             f"{host}:{host_start + middle + 1}-{host_start + host_bases}"]
    with gzip.GzipFile(path, "wb", mtime=0) as out:
        out.write(f">chimera {' '.join(parts)}\n{host_seq[:middle]}{insert_seq}{host_seq[middle:]}\n".encode())


def main() -> int:
    rng = np.random.default_rng(SEED)
    (OUT / "train").mkdir(exist_ok=True)
    for genome in TRAIN_IN:
        write_fasta(OUT / "train" / f"{species(genome)}.fa.gz", f"train_{species(genome)}",
                    windows([genome], TRAIN_PER_GENOME, 250, rng))
    val_labels: list = []
    write_fasta(OUT / "val_in.fa.gz", "val_in", windows(VAL_IN, VAL_PER_GENOME, 250, rng), val_labels, "in")
    write_fasta(OUT / "val_ood.fa.gz", "val_ood", windows(VAL_OOD, VAL_PER_GENOME, 250, rng), val_labels, "ood")
    read_labels: list = []
    items = [(name, codes, "in") for name, _, codes in windows(VAL_IN, READS_PER_GENOME, READ_LENGTH, rng)]
    items += [(name, codes, "ood") for name, _, codes in windows(VAL_OOD, READS_PER_GENOME, READ_LENGTH, rng)]
    write_reads(OUT / "reads.fq.gz", items, rng, read_labels)
    pair_labels: list = []
    pairs = [*fragments(VAL_IN, PAIRS_PER_GENOME, rng, "in"), *fragments(VAL_OOD, PAIRS_PER_GENOME, rng, "ood")]
    write_pairs((OUT / "pairs_R1.fq.gz", OUT / "pairs_R2.fq.gz"), pairs, rng, pair_labels)
    write_chimera(OUT / "chimera.fa.gz")
    (OUT / "val_labels.tsv").write_text("read_id\tlabel\tgenome\n" + "".join("\t".join(r) + "\n" for r in val_labels))
    for path, rows in ((OUT / "reads_labels.tsv", read_labels), (OUT / "pairs_labels.tsv", pair_labels)):
        path.write_text("read_id\tlabel\tgenome\tclass\n" + "".join("\t".join(r) + "\n" for r in rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
