"""Malformed and edge-case sequence files for the robustness tests.

`python tests/data/bad/make_bad.py` rewrites the small committed cases in this folder (deterministic content).
The large cases (a long single-line record, many reads, pickles carrying code) are written by the tests
themselves into a temporary folder, through the functions below, and never committed.
"""

from __future__ import annotations

import gzip
import io
import pickle
import sys
import zipfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
TRAIN_READS = HERE.parents[2] / "data" / "train" / "Escherichia_coli.fa.gz"
BASES = np.frombuffer(b"ACGT", dtype=np.uint8)
LENGTH_SERIES = (1, 30, 31, 249, 250, 251)


def random_bases(n: int, seed: int) -> bytes:
    """`n` uniformly random upper-case bases."""
    return BASES[np.random.default_rng(seed).integers(0, 4, n)].tobytes()


def fastq(name: str, seq: bytes, qual: bytes | None = None) -> bytes:
    return b"@" + name.encode() + b"\n" + seq + b"\n+\n" + (qual if qual is not None else b"I" * len(seq)) + b"\n"


def fasta(name: str, seq: bytes) -> bytes:
    return b">" + name.encode() + b"\n" + seq + b"\n"


def _gzip(data: bytes) -> bytes:
    return gzip.compress(data, mtime=0)


def small_cases() -> dict[str, bytes]:
    """File name → content of every committed case."""
    good_fq = fastq("r1", random_bases(60, 1))
    lengths = b"".join(fasta(f"len{n}", random_bases(n, 100 + n)) for n in LENGTH_SERIES)
    unknown = (
        fasta("iupac", random_bases(100, 2) + b"RYKMSWBDHVN" + random_bases(139, 3))  # 250 bp
        + fasta("n_run", random_bases(100, 4) + b"N" * 400 + random_bases(100, 5))  # 600 bp
        + fasta("all_n", b"N" * 300)
    )
    reads_gz = _gzip(b"".join(fastq(f"r{i}", random_bases(150, 10 + i)) for i in range(40)))
    return {
        "empty.fa": b"",
        "qual_length_mismatch.fq": good_fq + fastq("r2", random_bases(60, 6), b"I" * 59) + good_fq,
        "truncated_last_record.fq": good_fq + fastq("r2", random_bases(60, 7)) + b"@r3\n" + random_bases(60, 8)[:30],
        "missing_plus.fq": good_fq + b"@r2\n" + random_bases(60, 9) + b"\n" + b"I" * 60 + b"\n" + good_fq,
        "header_without_sequence.fa": fasta("r1", random_bases(80, 11)) + b">r2 no sequence\n"
                                      + fasta("r3", random_bases(80, 12)),
        "binary_sequence.fa": b">r1\n" + bytes(range(0, 32)) + b"\n",
        "truncated.fq.gz": reads_gz[: len(reads_gz) // 2],
        "junk.gz": _gzip(np.random.default_rng(13).integers(0, 256, 2000, dtype=np.uint8).tobytes()),
        "lengths.fa": lengths,
        "unknown_bases.fa": unknown,
        "duplicate_ids.fa": fasta("dup", random_bases(120, 14)) + fasta("other", random_bases(120, 15))
                            + fasta("dup", random_bases(120, 16)),
        "non_utf8_header.fa": b">read\xff\xfe7 description \xe9\xe8\n" + random_bases(120, 17) + b"\n",
    }


def write_small_cases(directory: Path = HERE) -> None:
    for name, content in small_cases().items():
        (directory / name).write_bytes(content)


def write_single_line_record(path: Path, n_bases: int, seed: int = 0) -> Path:
    """One FASTA record of `n_bases` random bases on a single line (written in 8 Mb pieces)."""
    rng = np.random.default_rng(seed)
    with open(path, "wb") as out:
        out.write(b">long_record\n")
        for start in range(0, n_bases, 8_000_000):
            out.write(BASES[rng.integers(0, 4, min(8_000_000, n_bases - start))].tobytes())
        out.write(b"\n")
    return path


def write_many_reads(path: Path, n_reads: int, length: int = 150, seed: int = 0, tail: bytes = b"") -> Path:
    """`n_reads` random FASTA reads of `length` bp, then the raw bytes `tail` (e.g. a broken record)."""
    seqs = BASES[np.random.default_rng(seed).integers(0, 4, (n_reads, length))]
    with open(path, "wb") as out:
        out.write(b"".join(b">r%d\n%s\n" % (i, seqs[i].tobytes()) for i in range(n_reads)))
        out.write(tail)
    return path


class CreatesFile:
    """Unpickling this object calls open(marker, 'w'), i.e. creates the file `marker`: proof that code ran."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def write_code_pickle(path: Path, marker: Path) -> Path:
    """A plain pickle whose loading would create `marker`."""
    path.write_bytes(pickle.dumps({"weights": CreatesFile(marker)}))
    return path


def write_code_torch_save(path: Path, marker: Path) -> Path:
    """A torch.save() zip file whose (non weights-only) loading would create `marker`."""
    import torch

    torch.save({"hook": CreatesFile(marker), "state_dict": {"w": [0.0, 0.0]}}, path)
    return path


def load_unsafely(path: str | Path) -> None:
    """Unpickle a pickle, or the data.pkl of a torch.save() zip, the unsafe way (torch storages ignored): the
    control showing that the payloads above are live. Never do this with a model file."""
    data = Path(path).read_bytes()
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            data = archive.read(next(name for name in archive.namelist() if name.endswith("data.pkl")))

    class Unpickler(pickle.Unpickler):
        def persistent_load(self, pid):
            return None

    Unpickler(io.BytesIO(data)).load()


if __name__ == "__main__":
    write_small_cases(Path(sys.argv[1]) if len(sys.argv) > 1 else HERE)
