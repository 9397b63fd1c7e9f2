"""What the LSTM pair trains on, epoch by epoch.

`FixedWindows`: the same windows every epoch in a fresh order (the paper's training on gdbench-style windows).
`GenomeWindows`: fresh random windows every epoch, drawn from genome stretches (windows.split_genomes), so that a
long training run never sees the same window twice. Both hand the loop an epoch as `batch(first, last)` → codes of
the epoch's windows first..last-1, drawn from a generator the loop keys by (seed, phase, epoch).
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from ..alphabet import mask_padding, reverse_complement
from .checkpoints import data_digest

Batches = Callable[[int, int], np.ndarray]  # (first, last) → codes [last - first, width] of one epoch's windows


class FixedWindows:
    """Windows given as codes [N, W] and lengths [N]; windows shorter than two bases (nothing to score) are dropped
    and bases past each length masked."""

    def __init__(self, codes: np.ndarray, lengths: np.ndarray):
        lengths = np.asarray(lengths, np.int64)
        trainable = lengths >= 2
        self.codes, self.lengths = mask_padding(codes, lengths)[trainable], lengths[trainable]

    def __len__(self) -> int:
        return len(self.codes)

    def digest(self) -> list[int]:
        return data_digest(self.codes, self.lengths)

    def epoch(self, rng: np.random.Generator) -> Batches:
        order = rng.permutation(len(self.codes))

        def batch(first: int, last: int) -> np.ndarray:
            rows = order[first:last]
            return self.codes[rows, : int(self.lengths[rows].max())]

        return batch


class GenomeWindows:
    """Windows of `length` bases at uniformly random positions of the stretches (codes `sequence`, stretch i at
    `starts[i]` with `lengths[i]` bases, each at least `length` long), each on the forward or the reverse strand with
    probability 1/2. An epoch has as many windows as tile the stretches once."""

    def __init__(self, sequence: np.ndarray, starts: np.ndarray, lengths: np.ndarray, length: int):
        self.sequence, self.length = sequence, length
        self.starts, self.lengths = np.asarray(starts, np.int64), np.asarray(lengths, np.int64)
        if len(self.lengths) == 0 or (self.lengths < length).any():
            raise ValueError(f"every stretch must hold a window of {length} bases")
        self.positions = np.cumsum(self.lengths - length + 1)  # window starts up to and including stretch i

    def __len__(self) -> int:
        return max(1, int(self.lengths.sum()) // self.length)

    def digest(self) -> list[int]:
        return data_digest(self.sequence, np.concatenate([self.starts, self.lengths, [self.length]]))

    def windows(self, picks: np.ndarray, reverse: np.ndarray) -> np.ndarray:
        """Codes of the windows at flat start positions `picks` (0 ≤ pick < positions[-1]), reversed where asked."""
        stretch = np.searchsorted(self.positions, picks, side="right")
        offset = picks - (self.positions[stretch] - (self.lengths[stretch] - self.length + 1))
        codes = self.sequence[(self.starts[stretch] + offset)[:, None] + np.arange(self.length)]
        codes[reverse] = reverse_complement(codes[reverse])
        return codes

    def epoch(self, rng: np.random.Generator) -> Batches:
        picks = rng.integers(0, self.positions[-1], len(self))
        reverse = rng.random(len(self)) < 0.5

        def batch(first: int, last: int) -> np.ndarray:
            return self.windows(picks[first:last], reverse[first:last])

        return batch
