"""The background perturbation of Ren et al. 2019: substitute each base with probability `rate`."""

import numpy as np

from .alphabet import UNKNOWN


def mutate(codes: np.ndarray, rate: float, rng: np.random.Generator) -> np.ndarray:
    """Return a copy of `codes` where each known base (code < 4) is replaced, with probability `rate`,
    by one of the three other bases chosen uniformly. Unknown/padding codes (>= 4) are left as they are."""
    if not 0.0 <= rate <= 1.0:
        raise ValueError(f"mutation rate must be in [0, 1], got {rate}")
    out = codes.copy()
    if rate == 0.0:
        return out
    hit = (rng.random(codes.shape) < rate) & (codes < UNKNOWN)
    shift = rng.integers(1, 4, size=codes.shape, dtype=np.uint8)
    out[hit] = (codes[hit] + shift[hit]) % 4
    return out
