"""SIGINT and SIGTERM while the CLI works: `score` exits 130/143 leaving no partial output (a previous output file
intact, no temp file); `train` writes its checkpoint and no model, and `--resume` then gives the model an
uninterrupted run would have given."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from gooddetect.detector import Detector

BAD = Path(__file__).resolve().parent / "data" / "bad"
sys.path.insert(0, str(BAD))
import make_bad  # noqa: E402

PREVIOUS = "previous output, must survive\n"
# one thread: torch's default two crawl on a busy 2-core machine; no GOODDETECT_MODEL from the caller's shell
CLI_ENV = {k: v for k, v in os.environ.items() if k != "GOODDETECT_MODEL"} | {"OMP_NUM_THREADS": "1"}
EXIT_STATUS = {signal.SIGINT: 130, signal.SIGTERM: 143}
TRAIN_ARGS = ["--hidden", "16", "--kmer-input", "3", "--steps", "40", "--threads", "1", "--max-windows", "500", "--seed", "3"]


def command(*args) -> list[str]:
    script = Path(sys.executable).with_name("gooddetect")
    return [*([str(script)] if script.is_file() else [sys.executable, "-m", "gooddetect.cli"]), *map(str, args)]


def start(args: list[str], stderr) -> subprocess.Popen:
    return subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=stderr, env=CLI_ENV)


def wait_for(condition, what: str, process: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert process.poll() is None, f"the process ended (status {process.returncode}) before {what}"
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def interrupt(process: subprocess.Popen, signum: int) -> int:
    process.send_signal(signum)
    try:
        return process.wait(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    return make_bad.tiny_model(tmp_path_factory.getbasetemp() / "tiny_model")


@pytest.fixture(scope="module")
def many_reads(tmp_path_factory) -> Path:
    """200k reads of 150 bp (30 MB): scoring them takes far longer than the tests wait."""
    return make_bad.write_many_reads(tmp_path_factory.mktemp("reads") / "reads.fa", 200_000)


# -- score -------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("signum", "previous"), [(signal.SIGINT, PREVIOUS), (signal.SIGTERM, None)],
                         ids=["SIGINT-previous-output", "SIGTERM-no-previous-output"])
def test_signal_during_score_leaves_no_partial_output(signum, previous, tiny_model, many_reads, tmp_path):
    out = tmp_path / "out.tsv"
    if previous is not None:
        out.write_text(previous)
    with open(tmp_path / "stderr", "w+") as stderr:
        # Small batches: rows reach the temp file early and the run lasts far longer than the test waits.
        process = start(command("score", tiny_model, many_reads, "-o", out, "--summary", tmp_path / "s.json",
                                "--threads", 1, "--batch-size", 16), stderr)
        # working: rows have reached the temp file beside the output
        wait_for(lambda: any(p.stat().st_size > 0 for p in tmp_path.glob(".out.tsv.*.tmp")), "rows are written",
                 process)
        status = interrupt(process, signum)
        stderr.seek(0)
        message = stderr.read()
    assert status == EXIT_STATUS[signum], message
    assert "Traceback" not in message
    assert message.splitlines() == ["gooddetect: interrupted; no partial output was kept"
                                    if signum == signal.SIGINT else
                                    "gooddetect: terminated (SIGTERM); no partial output was kept"]
    assert (out.read_text() == previous) if previous is not None else not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["stderr"] + (["out.tsv"] if previous else []))


# -- train -------------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def uninterrupted_model(tmp_path_factory) -> Path:
    model = tmp_path_factory.mktemp("uninterrupted") / "m.gdm"
    result = subprocess.run(command("--quiet", "train", make_bad.TRAIN_READS, "-o", model, *TRAIN_ARGS),
                            capture_output=True, text=True, timeout=300, env=CLI_ENV)
    assert result.returncode == 0, result.stderr
    return model


def _weights(model: Path) -> dict[str, np.ndarray]:
    detector = Detector.load(model)
    return {f"{role}.{name}": array for role in ("foreground", "background")
            for name, array in getattr(detector, role).state_arrays().items()}


@pytest.mark.parametrize(("signum", "phase"), [(signal.SIGINT, "foreground"), (signal.SIGTERM, "background")],
                         ids=["SIGINT-in-foreground", "SIGTERM-in-background"])
def test_signal_during_train_then_resume(signum, phase, uninterrupted_model, tmp_path):
    model, checkpoint = tmp_path / "m.gdm", tmp_path / "ck.pt"
    train = command("train", make_bad.TRAIN_READS, "-o", model, *TRAIN_ARGS, "--checkpoint", checkpoint)
    log = tmp_path / "stderr"
    with open(log, "w+") as stderr:
        process = start(train, stderr)
        wait_for(lambda: f"{phase} step 10 (" in log.read_text(), f"{phase} step 10", process)
        status = interrupt(process, signum)
    message = log.read_text()
    assert status == EXIT_STATUS[signum] and "Traceback" not in message, message
    assert f"checkpoint {checkpoint}" in message.splitlines()[-1] and "--resume" in message.splitlines()[-1]
    assert f"{phase} done" not in message, "the signal came too late to interrupt this phase"
    assert checkpoint.is_file() and not model.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ck.pt", "stderr"]  # no temp files

    resumed = subprocess.run([*train, "--resume"], capture_output=True, text=True, timeout=300, env=CLI_ENV)
    assert resumed.returncode == 0, resumed.stderr
    assert model.is_file() and not checkpoint.exists()
    reference, weights = _weights(uninterrupted_model), _weights(model)
    assert reference.keys() == weights.keys()
    assert all(np.array_equal(reference[k], weights[k]) for k in reference), "resumed weights differ"
    assert model.read_bytes() == uninterrupted_model.read_bytes()
