"""Builders and paths the test modules share (no test module imports another): the example data, the session's
tiny LSTM model, `gooddetect` runners (in this process, or in its own), readers of the TSVs and FASTA/FASTQ the CLI
writes, a fake detector with a hand-computable likelihood, sequence builders, and the table of malformed inputs."""

from __future__ import annotations

import gzip
import importlib
import logging
import os
import random
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np

from gooddetect.alphabet import decode, encode, reverse_complement
from gooddetect.detector import Detector

DATA = Path(__file__).resolve().parents[1] / "data"
TRAIN = sorted((DATA / "train").glob("*.fa.gz"))
VAL_IN, VAL_OOD = DATA / "val_in.fa.gz", DATA / "val_ood.fa.gz"
READS, READS_LABELS = DATA / "reads.fq.gz", DATA / "reads_labels.tsv"
PAIRS, PAIRS_LABELS = (DATA / "pairs_R1.fq.gz", DATA / "pairs_R2.fq.gz"), DATA / "pairs_labels.tsv"
BAD = Path(__file__).resolve().parent / "data" / "bad"
sys.path.insert(0, str(BAD))
make_bad = importlib.import_module("make_bad")  # tests/data/bad/make_bad.py: the builders of malformed inputs

PREVIOUS = "previous output, must survive\n"
# one thread: torch's default two crawl on a busy 2-core machine; no GOODDETECT_MODEL from the caller's shell
CLI_ENV = {k: v for k, v in os.environ.items() if k != "GOODDETECT_MODEL"} | {"OMP_NUM_THREADS": "1"}
TINY = ("--hidden", "16", "--kmer-input", "3", "--steps", "10", "--threads", "1", "--max-windows", "600", "--seed", "0")


def write_file(directory: Path, name: str, content: bytes | str, gz: bool = False) -> Path:
    """Write `content` (text is UTF-8 encoded) to `directory/name`, gzip-compressed when `gz`; return the path."""
    data = content.encode() if isinstance(content, str) else content
    path = Path(directory) / name
    path.write_bytes(gzip.compress(data) if gz else data)
    return path

def gooddetect_command() -> list[str]:
    """The installed `gooddetect` script beside this Python, else `python -m gooddetect`."""
    script = Path(sys.executable).with_name("gooddetect")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "gooddetect"]

def pad_batch(windows: list, width: int | None = None):
    """Stack variable-length code arrays into (codes [B, width] padded with UNKNOWN, lengths [B])."""
    from gooddetect.alphabet import UNKNOWN

    lengths = np.array([w.size for w in windows], dtype=np.int64)
    width = width or (int(lengths.max()) if len(windows) else 0)
    codes = np.full((len(windows), width), UNKNOWN, dtype=np.uint8)
    for row, window in enumerate(windows):
        codes[row, : window.size] = window
    return codes, lengths

def cpu_runs_bf16() -> bool:
    """Whether torch has a bfloat16 LSTM kernel on this CPU (AVX512-BF16 or AMX)."""
    import torch

    from gooddetect.errors import UsageError
    from gooddetect.models.lstm.model import check_bf16

    try:
        check_bf16(torch.device("cpu"))
    except UsageError:
        return False
    return True


def gd(*args, input: bytes | None = None, check: bool = True) -> subprocess.CompletedProcess:
    """Run `gooddetect args...` in this process (click's CliRunner; the SIGTERM handler, logging and torch's threads
    it sets are restored after), as a CompletedProcess; with `check`, fail the test (showing stderr) unless it exits
    0. Tests of what needs a real process (signals, the exit path, stdin pipes) run `gooddetect_command()`."""
    from click.testing import CliRunner

    from gooddetect.cli import main

    root, sigterm = logging.getLogger(), signal.getsignal(signal.SIGTERM)
    handlers, level = root.handlers[:], root.level
    torch = sys.modules.get("torch")
    threads = torch.get_num_threads() if torch else None
    try:
        result = CliRunner().invoke(main, [str(a) for a in args], input=input, prog_name="gooddetect",
                                    catch_exceptions=False)
    finally:
        signal.signal(signal.SIGTERM, sigterm)
        root.handlers[:], root.level = handlers, level
        if threads:
            torch.set_num_threads(threads)
    done = subprocess.CompletedProcess(args, result.exit_code, result.stdout_bytes, result.stderr_bytes)
    if check:
        assert done.returncode == 0, done.stderr.decode(errors="replace")
    return done



def train_tiny(output: Path) -> Path:
    gd("train", *TRAIN, "-o", output, *TINY)
    return output


def tiny_model_path(tmp_path_factory) -> Path:
    """The session's one tiny model, trained on first use (shared with test_api.py through the file)."""
    path = tmp_path_factory.getbasetemp() / "tiny-model" / "m.gdm"
    if not path.exists():
        path.parent.mkdir(exist_ok=True)
        train_tiny(path)
    return path


def read_tsv(text: str) -> list[dict[str, str]]:
    lines = text.splitlines()
    header = lines[0].split("\t")
    return [dict(zip(header, line.split("\t"))) for line in lines[1:]]


def fastx_ids(path: Path) -> list[str]:
    with gzip.open(path, "rt") as handle:
        lines = handle.read().splitlines()
    if lines[0].startswith("@"):
        return [lines[i][1:].split()[0] for i in range(0, len(lines), 4)]
    return [line[1:].split()[0] for line in lines if line.startswith(">")]


def temp_leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(".tmp"))



FG_PROBS = (0.1, 0.2, 0.3, 0.4)
BG_PROBS = (0.25, 0.25, 0.25, 0.25)


class BaseFrequencyModel:
    """A position-independent model: log p(base t | context) = log probs[base t]. Follows the model contract
    (first base and unknown bases are not scored); the sum is Σ_b count_b · log p_b, exact whatever the batch."""

    kind = "fake"
    uses_torch = False
    context = None
    stored_deflated = False
    chunks_in_flight = 2  # stateless numpy: two chunks may be scored at once

    def __init__(self, probs):
        self.logp = np.log(np.asarray(probs, dtype=np.float64))

    def config_dict(self) -> dict:
        return {"probs": np.exp(self.logp).tolist()}

    def state_arrays(self) -> dict[str, np.ndarray]:
        return {"logp": self.logp.copy()}

    @classmethod
    def from_state(cls, config, arrays, threads=1):
        return cls(np.exp(arrays["logp"]))

    @classmethod
    def pair_loglik(cls, foreground, background, codes, lengths):
        return foreground.loglik(codes, lengths), background.loglik(codes, lengths)

    def configure(self, *, threads=None, device="cpu", bf16=False):
        pass

    def loglik(self, codes, lengths):
        codes, lengths = np.asarray(codes), np.asarray(lengths)
        scored = (np.arange(codes.shape[1])[None, :] < lengths[:, None]) & (codes < 4)
        scored[:, :1] = False
        counts = np.stack([(scored & (codes == b)).sum(axis=1) for b in range(4)], axis=1)
        return counts @ self.logp, scored.sum(axis=1).astype(np.int64)


def fake_detector(window_length: int = 10, min_length: int = 4, threshold: float | None = None,
                  strands: str = "forward") -> Detector:
    meta = {"window_length": window_length, "min_length": min_length, "strands": strands,
            "threshold": None if threshold is None else {"value": threshold, "rule": "test"}}
    return Detector(BaseFrequencyModel(FG_PROBS), BaseFrequencyModel(BG_PROBS), meta)



def random_bases(rng: np.random.Generator, n: int) -> str:
    return "".join(rng.choice(list("ACGTacgt"), n))


def fasta_text(records: dict[str, str], width: int = 60) -> str:
    return "".join(f">{name}\n" + "".join(seq[i:i + width] + "\n" for i in range(0, len(seq), width))
                   for name, seq in records.items())


def revcomp_text(seq: str) -> str:
    return decode(reverse_complement(encode(seq)))



JUNK = b"\x00" + random.Random(7).randbytes(3000)  # binary that starts with neither '>' nor '@'
FASTA = ">read1 first read\nACGTACGTAC\nGGTTAA\n>read2\nacgtnRYacgt\n>read3 x y z\nA-C.G*T\n"
# Malformed inputs: (file name, content, the pattern of the one-line error they must give).
BAD_INPUTS = {
    "empty": ("empty.fa", b"", r"empty file"),
    "empty_gzip": ("empty.fa.gz", gzip.compress(b""), r"empty file"),
    "blank_lines_only": ("blank.fa", b"\n \n\n", r"blank"),
    "fastq_length_mismatch": ("mismatch.fq", b"@q1\nACGT\n+\nIIII\n@q2\nACGT\n+\nIII\n", r"record 2 \(q2\).*(?i:length)"),
    "fastq_missing_quality": ("noqual.fq", b"@q1\nACGT\n+\nIIII\n@q2\nACGT\n+\n", r"record 2 \(q2\)"),
    "fastq_missing_plus_and_quality": ("noplus.fq", b"@q1\nACGT\n+\nIIII\n@q2\nACGT\n", r"record 2 \(q2\)"),
    "fastq_missing_plus_line": ("noplus2.fq", b"@q1\nACGT\nIIII\n@q2\nACGT\n+\nIIII\n", r"record 1 \(q1\)"),
    "fastq_blank_line_between_records": ("gap.fq", b"@q1\nAC\n+\nII\n\n@q2\nAC\n+\nII\n", r"record 2\b"),
    "fasta_header_only_last": ("hdr.fa", b">r1\nACGT\n>r2 desc\n", r"record 2 \(r2\).*no sequence"),
    "fasta_header_only_middle": ("hdr2.fa", b">r1\nACGT\n>r2\n>r3\nAC\n", r"record 2 \(r2\).*no sequence"),
    "fasta_empty_header": ("nohdr.fa", b">r1\nACGT\n>\nACGT\n", r"record 2\b.*header"),
    "invalid_sequence_character": ("digits.fa", b">r1\nACGT\n>r2\nAC1GT\n", r"record 2 \(r2\).*'1'.*position 3"),
    "non_ascii_sequence": ("bytes.fa", b">r1\nAC\xffGT\n", r"record 1\b.*non-ASCII.*sequence"),
    "non_ascii_fastq_sequence": ("s.fq", b"@q\xe9\nA\xffC\n+\nIII\n", r"record 1\b.*non-ASCII.*sequence"),
    "non_ascii_fastq_quality": ("q.fq", b"@q1\nAC\n+\nII\n@q2\nAC\n+\nI\xff\n", r"record 2\b.*non-ASCII.*qualities"),
    "binary_junk": ("junk.fa", JUNK, r"not FASTA, FASTQ or TFRecord"),
    "gzip_of_junk": ("junk.fa.gz", gzip.compress(JUNK), r"not FASTA, FASTQ or TFRecord"),
    "truncated_gzip": ("cut.fa.gz", gzip.compress(FASTA.encode() * 50)[:-40], r"truncated gzip"),
    # 0x07 opens a deflate block of the reserved type 3, which zlib rejects
    "corrupt_gzip": ("bad.fa.gz", gzip.compress(b"")[:10] + b"\x07" * 40, r"corrupt gzip"),
}
