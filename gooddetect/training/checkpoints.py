"""Training checkpoints: the finished models and the latest saved state of every model in training, in one file
(torch.save of tensors and plain data, read back with weights_only=True: no code is unpickled).

A checkpoint is written every `checkpoint_every` seconds and when a signal stops the run; a resumed run refuses a
checkpoint of other settings or data (its fingerprint) or of another format.
"""

from __future__ import annotations

import logging
import threading
import zlib
from pathlib import Path

import numpy as np
import torch

from ..errors import UsageError
from ..files import atomic_output

log = logging.getLogger("gooddetect")

FORMAT = "gooddetect-train-checkpoint-5"  # 5: the optimizers' learning rates


class Checkpoints:
    """The run's checkpoint at `path` (None: kept in memory only). Models training side by side save in turn, each
    file holding the others' latest states too; so with `side_by_side` a saved state is a copy (its model trains
    on while the other one writes the file). Only the main process (`writes`) writes."""

    def __init__(self, path: Path | None, fingerprint: dict, saved: dict | None, side_by_side: bool, writes: bool):
        self.path, self.fingerprint, self.side_by_side, self.writes = path, fingerprint, side_by_side, writes
        self.finished: dict[str, dict] = dict(saved["finished"]) if saved else {}
        self.running: dict[str, dict] = dict(saved["running"]) if saved else {}
        self.lock = threading.Lock()

    def save(self, phase: str, state: dict) -> None:
        """Record `state` (model, optimizer and table states, counters, best weights) as phase's latest and write
        the file."""
        if not self.writes or self.path is None:
            return
        if self.side_by_side:
            state = _cloned(state)
        with self.lock:
            self.running[phase] = state
            payload = {"format": FORMAT, "fingerprint": self.fingerprint, "finished": self.finished,
                       "running": self.running}
            with atomic_output(self.path, "wb") as handle:
                torch.save(payload, handle)
        log.debug("checkpoint written to %s at %s step %d", self.path, phase, state["counters"]["step"])

    def finish(self, phase: str, result: dict) -> None:
        with self.lock:
            self.finished[phase] = result
            self.running.pop(phase, None)


def load(path: Path | None, fingerprint: dict) -> dict:
    """The checkpoint at `path`, if it was written by this format with this `fingerprint`; else a UsageError."""
    if path is None:
        raise UsageError("resume asked for without a checkpoint path")
    if not path.is_file():
        raise UsageError(f"{path}: no checkpoint to resume from")
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises many types for a damaged file
        raise UsageError(f"{path}: not a readable training checkpoint ({error})") from None
    kind = saved.get("format") if isinstance(saved, dict) else None
    if isinstance(kind, str) and kind.startswith("gooddetect-train-checkpoint") and kind != FORMAT:
        raise UsageError(f"{path}: a checkpoint of another gooddetect version ({kind}; this one reads "
                         f"{FORMAT}): train again without --resume")
    if kind != FORMAT:
        raise UsageError(f"{path}: not a gooddetect training checkpoint")
    differing = [key for key in fingerprint if saved["fingerprint"].get(key) != fingerprint[key]]
    if differing:
        raise UsageError(f"{path}: checkpoint was written with different {', '.join(differing)}; cannot resume")
    return saved


def data_digest(codes: np.ndarray, lengths: np.ndarray) -> list[int]:
    """A cheap identity of a data set, to refuse resuming on other data."""
    return [len(codes), zlib.crc32(np.ascontiguousarray(codes).data), zlib.crc32(np.ascontiguousarray(lengths).data)]


def _cloned(state):
    """A copy of `state` (nested dicts, lists and tensors) that later training steps do not change."""
    if isinstance(state, torch.Tensor):
        return state.detach().clone()
    if isinstance(state, dict):
        return {key: _cloned(value) for key, value in state.items()}
    if isinstance(state, (list, tuple)):
        return type(state)(_cloned(value) for value in state)
    return state
