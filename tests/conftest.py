"""pytest set-up: the hypothesis profile and the session's fixtures (models, the CLI runner); the helpers they use
live in fixtures.py, which every test module imports (none imports another, nor this file)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from hypothesis import settings

from fixtures import TRAIN, VAL_IN, VAL_OOD, gd, tiny_model_path

# No per-example deadline anywhere: a property test must not fail because the CI machine is busy (a test may still
# set its own number of examples).
settings.register_profile("no-deadline", deadline=None)
settings.load_profile("no-deadline")




@pytest.fixture
def run_cli():
    """`run_cli(*args, input=None)`: run `gooddetect args...` (in this process, fixtures.gd) without failing on a
    non-zero exit; stdin gets `input` (bytes or text)."""

    def run(*args, input: bytes | str | None = None) -> subprocess.CompletedProcess:
        return gd(*args, input=input.encode() if isinstance(input, str) else input, check=False)

    return run


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    """The session's one tiny LSTM model (hidden 16, 10 steps on the example data, ~5 s), trained on first use."""
    return tiny_model_path(tmp_path_factory)


@pytest.fixture(scope="session")
def kmer_model(tmp_path_factory) -> Path:
    """The session's small k-mer model of the example species (2^16 hashed buckets), calibrated at 5 % FPR on the
    example validation windows."""
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
