"""Output files: checked before any work, written atomically (a temp file beside the target, renamed when
complete), gzip-compressed for a `.gz` name, and failures named by the file they concern."""

from __future__ import annotations

import contextlib
import errno
import io
import os
import sys
import tempfile
from pathlib import Path
from typing import IO, Iterator

from .errors import UsageError

GZIP_LEVEL = 1  # fastest; as dnaio and cutadapt write by default


def check_output_paths(*paths: str | os.PathLike | None) -> None:
    """Fail early (before any long work) when an output could not be written: its directory is missing."""
    for path in paths:
        if path is None or str(path) == "-" or os.path.exists(path):
            continue
        parent = Path(os.path.realpath(path)).parent
        if not parent.is_dir():
            raise UsageError(f"{path}: output directory {parent} does not exist")


def check_distinct_outputs(paths: list[str]) -> None:
    """Fail when two outputs name the same file."""
    seen: dict[str, str] = {}
    for path in paths:
        key = os.path.realpath(path)
        if key in seen:
            raise UsageError(f"two outputs name the same file: {seen[key]} and {path}")
        seen[key] = path


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike | None, mode: str = "w") -> Iterator[IO]:
    """Open `path` for writing so that it appears only complete: write a temp file beside it, rename on success.
    A name ending in `.gz` is gzip-compressed (deterministic: no time stamp, no name in the header). `None` or "-"
    writes to stdout. On any error (or KeyboardInterrupt) the temp file is removed and a previous file at `path` is
    left untouched."""
    if path is None or str(path) == "-":
        stream = sys.stdout.buffer if "b" in mode else sys.stdout
        try:
            yield stream
            stream.flush()
        except OSError as exc:
            if _is_unnamed_write_failure(exc):
                raise OSError(exc.errno, exc.strerror, "<stdout>") from exc
            raise
        return
    if os.path.exists(path) and not os.path.isfile(path):  # /dev/stdout, a FIFO, /dev/fd/N from >(...)
        with open(path, "wb") as raw, _encoded(raw, str(path), mode) as handle:
            yield handle
        return
    target = Path(os.path.realpath(path))
    if not target.parent.is_dir():
        raise UsageError(f"{target}: output directory {target.parent} does not exist")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    except OSError as exc:  # e.g. a read-only directory: name the output, not the temp file
        raise OSError(exc.errno, exc.strerror, str(path)) from exc
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    try:
        with os.fdopen(fd, "wb") as raw:
            with _encoded(raw, str(path), mode) as handle:
                yield handle
            raw.flush()
            os.fsync(raw.fileno())
        os.replace(tmp, target)
    except BaseException as exc:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if isinstance(exc, OSError) and _is_unnamed_write_failure(exc):
            raise OSError(exc.errno, exc.strerror, str(path)) from exc
        raise


@contextlib.contextmanager
def _encoded(raw: IO[bytes], name: str, mode: str) -> Iterator[IO]:
    """`raw` as the caller asked for it: gzip-compressed when `name` ends in .gz, text unless `mode` has 'b'."""
    stack = contextlib.ExitStack()
    with stack:
        stream = raw
        if name.endswith(".gz"):
            from isal.igzip import IGzipFile

            stream = stack.enter_context(IGzipFile(fileobj=raw, mode="wb", compresslevel=GZIP_LEVEL, mtime=0))
        if "b" not in mode:
            stream = io.TextIOWrapper(stream, encoding="utf-8", newline="\n", write_through=True)
            stack.callback(stream.detach)  # flushes; the binary streams are closed by their own owners
        yield stream
        stream.flush()


def _is_unnamed_write_failure(exc: OSError) -> bool:
    """Disk full, quota or file too large, reported without a file name: re-raised naming the output. Other
    errors inside the `with` block are left alone (they may come from reading an input)."""
    return exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG) and not exc.filename
