"""SIGINT, SIGTERM and SIGKILL while the CLI works: `score` exits 130/143 leaving no partial output (a previous
output file intact, no temp file); `train` writes its checkpoint and no model, and `--resume` then gives the model
an uninterrupted run would have given, also after a SIGKILL that only a periodic checkpoint survives.

None of these depends on the machine's speed: `score` reads a FIFO the test holds open, so it is provably
mid-stream when signalled; a training run is frozen with SIGSTOP at a known step before the signal is queued."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

from fixtures import CLI_ENV, PREVIOUS, gooddetect_command, make_bad


EXIT_STATUS = {signal.SIGINT: 130, signal.SIGTERM: 143}
TRAIN_ARGS = ["--hidden", "8", "--kmer-input", "3", "--steps", "300", "--train-batch-size", "10", "--threads", "1",
              "--max-windows", "500", "--seed", "3"]


def command(*args) -> list[str]:
    return [*gooddetect_command(), *map(str, args)]


def _default_sigint() -> None:
    """A job started in the background by a non-interactive shell (as a CI runner may start pytest) inherits SIGINT
    ignored, and Python then keeps ignoring it: give the CLI the disposition a terminal would."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start(args: list[str], stderr) -> subprocess.Popen:
    return subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=stderr, env=CLI_ENV,
                            preexec_fn=_default_sigint)


def wait_for(condition, what: str, process: subprocess.Popen, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert process.poll() is None, f"the process ended (status {process.returncode}) before {what}"
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


def interrupt(process: subprocess.Popen, signum: int) -> int:
    process.send_signal(signum)
    try:
        return process.wait(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()


# -- score -------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("threads", [1, 2], ids=["sequential", "reader-and-worker-threads"])
@pytest.mark.parametrize(("signum", "previous"), [(signal.SIGINT, PREVIOUS), (signal.SIGTERM, None)],
                         ids=["SIGINT-previous-output", "SIGTERM-no-previous-output"])
def test_signal_during_score_leaves_no_partial_output(signum, previous, threads, tiny_model, tmp_path):
    out, fifo = tmp_path / "out.tsv", tmp_path / "reads.fifo"
    if previous is not None:
        out.write_text(previous)
    os.mkfifo(fifo)
    reads = make_bad.write_many_reads(tmp_path / "reads.fa", 6000).read_bytes()  # a first chunk, and more
    with open(tmp_path / "stderr", "w+") as stderr:
        process = start(command("score", tiny_model, fifo, "-o", out, "--summary", tmp_path / "s.json",
                                "--threads", threads), stderr)
        writer = open(fifo, "wb")  # held open: the input never ends while the test waits

        def feed():
            try:
                writer.write(reads)
                writer.flush()
            except BrokenPipeError:  # the process ended, interrupted, before reading everything
                pass

        feeding = threading.Thread(target=feed, daemon=True)
        feeding.start()
        try:
            wait_for(lambda: any(p.stat().st_size > 0 for p in tmp_path.glob(".out.tsv.*.tmp")), "rows are written",
                     process)
            status = interrupt(process, signum)
        finally:
            feeding.join(timeout=60)
            try:
                writer.close()
            except BrokenPipeError:
                pass
        stderr.seek(0)
        message = stderr.read()
    assert status == EXIT_STATUS[signum], message
    assert "Traceback" not in message
    assert message.splitlines() == ["gooddetect: interrupted; no partial output was kept"
                                    if signum == signal.SIGINT else
                                    "gooddetect: terminated (SIGTERM); no partial output was kept"]
    assert (out.read_text() == previous) if previous is not None else not out.exists()
    names = ["reads.fa", "reads.fifo", "stderr"] + (["out.tsv"] if previous else [])
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(names)

def test_interrupt_while_the_reader_thread_waits_on_stdin(tiny_model, tmp_path):
    """`... | gooddetect score -` with reader and worker threads, interrupted while the reader thread is blocked on a
    pipe that stays open: exit 130 with the usual message, not Python's fatal error over stdin's lock at shutdown."""
    reads = make_bad.write_many_reads(tmp_path / "reads.fa", 6000).read_bytes()
    with open(tmp_path / "stderr", "w+") as stderr:
        process = subprocess.Popen(command("score", tiny_model, "-", "-o", tmp_path / "out.tsv", "--threads", 2),
                                   stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=stderr, env=CLI_ENV,
                                   preexec_fn=_default_sigint)
        try:
            process.stdin.write(reads)
            process.stdin.flush()
            wait_for(lambda: any(p.stat().st_size > 0 for p in tmp_path.glob(".out.tsv.*.tmp")), "rows are written",
                     process)
            status = interrupt(process, signal.SIGINT)
        finally:
            process.stdin.close()
        stderr.seek(0)
        message = stderr.read()
    assert status == 130, message
    assert message.splitlines() == ["gooddetect: interrupted; no partial output was kept"]
    assert not (tmp_path / "out.tsv").exists()


# -- train -------------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def uninterrupted_model(tmp_path_factory) -> Path:
    model = tmp_path_factory.mktemp("uninterrupted") / "m.gdm"
    result = subprocess.run(command("--quiet", "train", make_bad.TRAIN_READS, "-o", model, *TRAIN_ARGS),
                            capture_output=True, text=True, timeout=600, env=CLI_ENV)
    assert result.returncode == 0, result.stderr
    return model


def resume_and_compare(train: list[str], model: Path, checkpoint: Path, reference: Path) -> None:
    resumed = subprocess.run([*train, "--resume"], capture_output=True, text=True, timeout=600, env=CLI_ENV)
    assert resumed.returncode == 0, resumed.stderr
    assert model.is_file() and not checkpoint.exists()
    assert model.read_bytes() == reference.read_bytes()


@pytest.mark.parametrize(("signum", "phase"), [(signal.SIGINT, "foreground"), (signal.SIGTERM, "background")],
                         ids=["SIGINT-in-foreground", "SIGTERM-in-background"])
def test_signal_during_train_then_resume(signum, phase, uninterrupted_model, tmp_path):
    model, checkpoint = tmp_path / "m.gdm", tmp_path / "ck.pt"
    train = command("train", make_bad.TRAIN_READS, "-o", model, *TRAIN_ARGS, "--checkpoint", checkpoint,
                    "--checkpoint-every", 3600)
    log = tmp_path / "stderr"
    with open(log, "w+") as stderr:
        process = start(train, stderr)
        # validation is logged at each epoch end (48 steps of the 300 here)
        wait_for(lambda: f"{phase} step " in log.read_text(), f"{phase} training", process)
        process.send_signal(signal.SIGSTOP)  # frozen within the phase; the signal below waits for it
        process.send_signal(signum)
        process.send_signal(signal.SIGCONT)
        status = process.wait(timeout=120)
    message = log.read_text()
    assert status == EXIT_STATUS[signum] and "Traceback" not in message, message
    last = message.splitlines()[-1]
    assert f"checkpoint {checkpoint}" in last and "--resume" in last
    assert f"{phase} done" not in message, "the signal came too late to interrupt this phase"
    assert checkpoint.is_file() and not model.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ck.pt", "stderr"]  # no temp files
    resume_and_compare(train, model, checkpoint, uninterrupted_model)


def test_sigkill_after_a_periodic_checkpoint_then_resume(uninterrupted_model, tmp_path):
    """A scheduler's SIGKILL (or the out-of-memory killer) gives no chance to write anything: the periodic
    checkpoint is what survives, and resuming from it gives the uninterrupted run's model."""
    model, checkpoint = tmp_path / "m.gdm", tmp_path / "ck.pt"
    train = command("train", make_bad.TRAIN_READS, "-o", model, *TRAIN_ARGS, "--checkpoint", checkpoint,
                    "--checkpoint-every", 0.2)
    with open(tmp_path / "stderr", "w") as stderr:
        process = start(train, stderr)
        wait_for(checkpoint.is_file, "the first periodic checkpoint", process)
        process.send_signal(signal.SIGSTOP)
        process.kill()
        process.wait(timeout=60)
    assert not model.exists() and checkpoint.is_file()
    for leftover in tmp_path.glob(".ck.pt.*.tmp"):  # killed while writing a later checkpoint: never renamed
        leftover.unlink()
    resume_and_compare(train, model, checkpoint, uninterrupted_model)
