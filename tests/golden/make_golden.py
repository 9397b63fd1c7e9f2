"""The golden outputs: what `score` and `screen` write for the small inputs in this folder, with a k-mer model of the
example data trained and calibrated on the spot. tests/test_golden.py runs the same commands and compares every file
with expected/ byte for byte.

After a change that is meant to move bytes, regenerate them from the repository root and review the diff:
    python tests/golden/make_golden.py
"""

from __future__ import annotations

import contextlib
import gzip
import shutil
import sys
from pathlib import Path

from click.testing import CliRunner

from gooddetect.cli import main

HERE = Path(__file__).resolve().parent
DATA = HERE.parents[1] / "data"
INPUTS = {"reads.fq": (DATA / "reads.fq.gz", 100), "pairs_R1.fq": (DATA / "pairs_R1.fq.gz", 50),
          "pairs_R2.fq": (DATA / "pairs_R2.fq.gz", 50)}  # the first records of the example files


def gooddetect(*args) -> None:
    result = CliRunner().invoke(main, [str(a) for a in args])
    if result.exit_code != 0:
        raise RuntimeError(f"gooddetect {' '.join(map(str, args))}: exit {result.exit_code}: {result.output}")


def model(work: Path) -> Path:
    """The k-mer model of the example training windows, calibrated on the example validation windows."""
    path = work / "model.gdm"
    gooddetect("train", "--arch", "kmer", "--hash-bits", "16", "--threads", "1", "-o", path,
               *sorted((DATA / "train").glob("*.fa.gz")))
    gooddetect("calibrate", path, "--in-dist", DATA / "val_in.fa.gz", "--ood", DATA / "val_ood.fa.gz",
               "--threads", "1")
    return path


def write_outputs(model_path: Path, out: Path) -> list[str]:
    """Every golden output of `model_path` into `out`; returns their names. Inputs are named relative to this
    folder (reports and summaries record them as given), so the outputs do not depend on where the checkout is."""
    out.mkdir(parents=True, exist_ok=True)
    with contextlib.chdir(HERE):
        _run(model_path.resolve(), out.resolve())
    return sorted(p.name for p in out.iterdir())


def _run(model_path: Path, out: Path) -> None:
    reads, r1, r2 = INPUTS
    chimera = Path("..", "..", "data", "chimera.fa.gz")
    gooddetect("score", model_path, reads, "-o", out / "score.tsv", "--threads", "1",
               "--novel-out", out / "novel.fq", "--ood-out", out / "foreign.fq", "--in-out", out / "in.fq",
               "--report", out / "score_report.tsv", "--multiqc", out / "score_mqc.json", "--bed", out / "score.bed")
    # the example's training windows hold little of these strains: calibration turned foreign calls off
    gooddetect("score", model_path, reads, "-o", out / "score_foreign.tsv", "--threads", "1", "--min-support", "0.15")
    gooddetect("score", model_path, r1, r2, "--paired", "-o", out / "pairs.tsv", "--threads", "1",
               "--in-out", out / "pairs_in#.fq", "--ood-out", out / "pairs_ood#.fq", "--summary",
               out / "pairs_summary.json")
    gooddetect("screen", model_path, chimera, "-o", out / "screen.tsv", "--threads", "1",
               "--bed", out / "screen.bed", "--bedgraph", out / "screen.bedgraph", "--clean-out", out / "clean.fa",
               "--foreign-out", out / "foreign.fa", "--multiqc", out / "screen_mqc.json")


def write_inputs() -> None:
    """The small inputs: the first records of the example files, unchanged."""
    for name, (source, records) in INPUTS.items():
        with gzip.open(source, "rt") as handle:
            lines = handle.read().splitlines(keepends=True)
        (HERE / name).write_text("".join(lines[:4 * records]))


def main_() -> int:
    write_inputs()
    work = HERE / "work"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    try:
        expected = HERE / "expected"
        shutil.rmtree(expected, ignore_errors=True)
        names = write_outputs(model(work), expected)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"wrote {len(names)} golden outputs to {expected}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main_())
