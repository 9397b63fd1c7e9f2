"""Signals during training: SIGINT/SIGTERM become a flag that training polls after each step (it then writes its
checkpoint and raises TrainingInterrupted); a second signal interrupts at once."""

from __future__ import annotations

import signal
import threading
from dataclasses import dataclass, field
from pathlib import Path


class TrainingInterrupted(KeyboardInterrupt):
    """Training stopped by SIGINT/SIGTERM after writing its checkpoint; `signum` says which signal."""

    def __init__(self, signum: int, checkpoint: Path | None):
        where = f"; checkpoint {checkpoint}" if checkpoint else ""
        super().__init__(f"training interrupted by signal {signum}{where}")
        self.signum = signum
        self.checkpoint = checkpoint


@dataclass
class StopRequest:
    """Turns SIGINT/SIGTERM into a flag that training polls after each step; a second signal interrupts at once."""

    signum: int | None = None
    previous: dict = field(default_factory=dict)

    def __enter__(self) -> StopRequest:
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGINT, signal.SIGTERM):
                self.previous[signum] = signal.signal(signum, self._handle)
        return self

    def _handle(self, signum: int, frame) -> None:
        if self.signum is not None:
            raise KeyboardInterrupt
        self.signum = signum

    def request(self, signum: int) -> None:
        """Ask the training to stop as if `signum` had arrived (no-op when a signal came already)."""
        if self.signum is None:
            self.signum = signum

    def __exit__(self, *exc) -> None:
        for signum, handler in self.previous.items():
            signal.signal(signum, handler)
