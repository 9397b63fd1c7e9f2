"""The "kmer" kind's `train` options beyond the chain's own (models.configs.KmerConfig): the background's mutation
rate (also `count`'s), how the model scores, and whether the inputs are count files."""

from __future__ import annotations

from dataclasses import dataclass

from ...options import Spec, describe, option
from .. import STRANDS
from ..configs import DEFAULT_MAX_HASH_BITS, KmerConfig


@dataclass(frozen=True)
class KmerCounting:
    """What `count` and `train --arch kmer` share beyond KmerConfig: the background's mutation rate (chosen on
    validation)."""

    mutation_rate: float = option(0.3, "Background: probability of substituting each base.", min=0, max=1)


@dataclass(frozen=True)
class KmerTraining:
    """How the model scores (chosen on validation), and whether the inputs are count files (`gooddetect count`) to
    merge instead of sequences."""

    score_strands: str = option("forward", "How the model scores a window.", choices=STRANDS)
    from_counts: bool = option(False, "kmer: IN... are count files of `gooddetect count` (parts of a reference, in "
                               "order): the model is the one of all their sequences at once, byte for byte.")


describe(KmerConfig,
         max_order=Spec("kmer: highest Markov order."),
         hash_bits=Spec("kmer: size the hashed tables at 2^N buckets of 8 entries.",
                        default_text=f"counted in 2^{DEFAULT_MAX_HASH_BITS}, then halved while at most 65% full"))
