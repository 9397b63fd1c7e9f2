"""Shared test helpers: writing small input files and running the installed CLI as a real subprocess."""

from __future__ import annotations

import gzip
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[2] / "shared"


def write_file(directory: Path, name: str, content: bytes | str, gz: bool = False) -> Path:
    """Write `content` (text is UTF-8 encoded) to `directory/name`, gzip-compressed when `gz`; return the path."""
    data = content.encode() if isinstance(content, str) else content
    path = Path(directory) / name
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


def _cli_command() -> list[str]:
    script = Path(sys.executable).with_name("gooddetect")
    if script.is_file():
        return [str(script)]
    found = shutil.which("gooddetect")
    return [found] if found else [sys.executable, "-c", "from gooddetect.cli import main; main()"]


@pytest.fixture
def run_cli():
    """`run_cli(*args, input=None)`: run `gooddetect args...` in a subprocess; stdin gets `input` (bytes or text)."""
    command = _cli_command()

    def run(*args, input: bytes | str | None = None) -> subprocess.CompletedProcess:
        data = input.encode() if isinstance(input, str) else input
        stdin = {"input": data} if data is not None else {"stdin": subprocess.DEVNULL}
        return subprocess.run([*command, *map(str, args)], capture_output=True, timeout=120, **stdin)

    return run


@pytest.fixture(scope="module")
def one_thread():
    """Tiny models run fastest, and undisturbed by other processes, on one thread (torch imported only here)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
