"""Process-level concerns shared by the commands: the Runtime (threads, device, progress bars), thread pools for
compiled loops, and the read → score → write pipeline. Output files are gooddetect.files."""

from __future__ import annotations

import contextlib
import functools
import os
import sys
import threading
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass
from queue import Full, Queue
from typing import Callable, Iterable, Iterator, TypeVar

from .errors import UsageError

T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True)
class Runtime:
    """How a command runs, not what it computes: CPU threads for the models (None: torch's own choice; the compiled
    k-mer loops then use one), the torch device (auto, cpu, cuda, cuda:N), and whether progress bars may be shown
    (they are only ever drawn on a terminal). Results never depend on it, except through torch's float arithmetic
    on another thread count or device."""

    threads: int | None = None
    device: str = "auto"
    progress: bool = True

    @property
    def workers(self) -> int:
        """Threads for the compiled loops and the thread pools."""
        return self.threads or 1

    def torch(self):
        """torch, imported on first use (`--help` and the k-mer models never load it), its threads capped."""
        import torch

        if self.threads:
            torch.set_num_threads(self.threads)
            with contextlib.suppress(RuntimeError):  # only settable before the first parallel op
                torch.set_num_interop_threads(self.threads)
        return torch

    def torch_device(self) -> str:
        """`device` as a torch device string, failing clearly when CUDA is asked for but absent."""
        return resolve_device(self.device)

    def bar(self, **kwargs):
        """A tqdm progress bar on stderr when progress is on and stderr is a terminal, else one that draws nothing
        (tqdm, a start-up cost, is then not imported). Used as a context manager, with update, set_postfix, close."""
        if not (self.progress and sys.stderr.isatty()):
            return SilentBar()
        from tqdm import tqdm

        return tqdm(file=sys.stderr, dynamic_ncols=True, **kwargs)


class SilentBar:
    """The progress bar off a terminal: it takes what a tqdm bar takes and draws nothing."""

    def __enter__(self) -> SilentBar:
        return self

    def __exit__(self, *exc) -> None:
        pass

    def update(self, n: int = 1) -> None:
        pass

    def set_postfix(self, *args, **kwargs) -> None:
        pass

    def close(self) -> None:
        pass


def in_row_blocks(task: Callable[[int, int], None], n_rows: int, block: int, threads: int) -> None:
    """task(first, last) over rows [0, n_rows) in blocks of `block` rows, on up to `threads` threads (for compiled
    kernels that release the GIL and write disjoint rows of their outputs)."""
    run_tasks(row_blocks(task, n_rows, block), threads)


def in_thread_shares(task: Callable[[int, int], None], n_rows: int, threads: int) -> None:
    """task(first, last) over rows [0, n_rows) cut into one block per thread, on `threads` threads (see
    in_row_blocks)."""
    in_row_blocks(task, n_rows, max(-(-n_rows // threads), 1), threads)


def row_blocks(task: Callable[[int, int], None], n_rows: int, block: int) -> list[Callable[[], None]]:
    """task(first, last) for each block of `block` rows of [0, n_rows), as tasks for run_tasks."""
    return [functools.partial(task, first, min(first + block, n_rows)) for first in range(0, n_rows, block)]


TASK_THREAD = "gooddetect-task"
_task_pools: dict[int, ThreadPoolExecutor] = {}
_task_pools_lock = threading.Lock()


def run_tasks(tasks: list[Callable[[], R]], threads: int) -> list[R]:
    """Every task's result, in order, once all have run; the tasks run on up to `threads` threads taking them in
    order (tasks that release the GIL and write disjoint outputs). The first exception is raised. The threads are
    kept for the next call (scoring calls this once per batch); tasks that run tasks of their own get a pool of
    their own, so that none waits on a thread its caller holds."""
    if threads <= 1 or len(tasks) <= 1:
        return [task() for task in tasks]
    if threading.current_thread().name.startswith(TASK_THREAD):
        with ThreadPoolExecutor(min(threads, len(tasks)), thread_name_prefix=TASK_THREAD) as pool:
            return _run_on(pool, tasks)
    with _task_pools_lock:
        pool = _task_pools.get(threads) or _task_pools.setdefault(
            threads, ThreadPoolExecutor(threads, thread_name_prefix=TASK_THREAD))
    return _run_on(pool, tasks)


def _run_on(pool: ThreadPoolExecutor, tasks: list[Callable[[], R]]) -> list[R]:
    futures = [pool.submit(task) for task in tasks]
    wait(futures)
    return [future.result() for future in futures]


def pipelined(function: Callable[[T], R], items: Iterable[T], depth: int, workers: int = 1) -> Iterator[R]:
    """function(item) for every item, in order. Items are drawn on a reader thread and computed on `workers`
    threads (as many items at once), up to `depth` ahead of the consumer, so that reading, computing and consuming
    overlap (where they release the GIL), and a result is handed over as soon as it is ready, even while the next
    item is awaited (a slow pipe). An exception from reading or computing is raised in the consumer at its place in
    the order. Leaving early stops the reader after its current item."""
    done = object()
    queue: Queue = Queue(depth)
    stop = threading.Event()
    pool = ThreadPoolExecutor(workers, thread_name_prefix="gooddetect-compute")

    def offer(entry) -> bool:
        while not stop.is_set():
            try:
                queue.put(entry, timeout=0.1)
                return True
            except Full:
                pass
        return False

    def read() -> None:
        iterator = iter(items)
        try:
            for item in iterator:
                if not offer(pool.submit(function, item)):
                    return
            offer(done)
        except BaseException as exc:  # handed to the consumer, which raises it
            offer(exc)
        finally:
            getattr(iterator, "close", lambda: None)()

    # A daemon: a reader blocked on a pipe that never ends must not keep the process alive.
    threading.Thread(target=read, name="gooddetect-read", daemon=True).start()
    try:
        while (entry := queue.get()) is not done:
            if isinstance(entry, BaseException):
                raise entry
            yield entry.result()
    finally:
        stop.set()
        pool.shutdown(wait=False, cancel_futures=True)


def is_main_process() -> bool:
    """True except on the ranks > 0 of a torchrun launch (valid before, during and after training)."""
    return int(os.environ.get("RANK", "0")) == 0


def resolve_device(name: str) -> str:
    """Map `auto|cpu|cuda[:N]` to a torch device string, failing clearly when CUDA is asked for but absent."""
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UsageError(f"--device {name} asked for, but torch sees no CUDA device")
    if name != "cpu" and not name.startswith("cuda"):
        raise UsageError(f"--device must be auto, cpu or cuda[:N], got {name!r}")
    return name
