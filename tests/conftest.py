"""Shared test helpers: writing small input files and running the installed CLI as a real subprocess."""

from __future__ import annotations

import gzip
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import settings

# No per-example deadline anywhere: a property test must not fail because the CI machine is busy (a test may still
# set its own number of examples).
settings.register_profile("no-deadline", deadline=None)
settings.load_profile("no-deadline")


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


@pytest.fixture
def run_cli():
    """`run_cli(*args, input=None)`: run `gooddetect args...` in a subprocess; stdin gets `input` (bytes or text)."""
    command = gooddetect_command()

    def run(*args, input: bytes | str | None = None) -> subprocess.CompletedProcess:
        data = input.encode() if isinstance(input, str) else input
        stdin = {"input": data} if data is not None else {"stdin": subprocess.DEVNULL}
        return subprocess.run([*command, *map(str, args)], capture_output=True, timeout=120, **stdin)

    return run


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    """The session's one tiny LSTM model (hidden 16, 10 steps on the example data, ~5 s), trained on first use."""
    from fixtures import tiny_model_path

    return tiny_model_path(tmp_path_factory)


@pytest.fixture(scope="session")
def kmer_model(tmp_path_factory) -> Path:
    """The session's small k-mer model of the example species (2^16 hashed buckets), calibrated at 5 % FPR on the
    example validation windows."""
    from fixtures import TRAIN, VAL_IN, VAL_OOD, gd

    path = tmp_path_factory.mktemp("kmer") / "k.gdm"
    gd("train", *TRAIN, "-o", path, "--arch", "kmer", "--hash-bits", "16", "--threads", "1")
    gd("calibrate", path, "--in-dist", VAL_IN, "--ood", VAL_OOD, "--threads", "1")
    return path


@pytest.fixture(scope="module")
def one_thread():
    """Tiny models run fastest, and undisturbed by other processes, on one thread (torch imported only here)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


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
    from gooddetect.models.lstm import check_bf16

    try:
        check_bf16(torch.device("cpu"))
    except UsageError:
        return False
    return True
