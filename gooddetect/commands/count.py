"""`gooddetect count`: the k-mer counts of some genomes, to a count file that `train --arch kmer --from-counts` merges
with the counts of the other parts of a reference (each part counted on its own machine)."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from ..models.configs import DEFAULT_MAX_HASH_BITS, KmerConfig
from ..options import build, option
from ..runtime import check_output_paths
from .train import KmerTraining

log = logging.getLogger("gooddetect")


@dataclass(frozen=True)
class CountOptions:
    """The background's mutation rate (as `train --arch kmer` counts it)."""

    mutation_rate: float = option(KmerTraining.mutation_rate, "Background: probability of substituting each base.",
                                  min=0, max=1)


def count(inputs: list[str], output: str, *, seed: int = 0, **given):
    """Count every k-mer of every record of `inputs` into the count file `output` (returns its KmerCounts); `given`
    holds the k-mer options as the command line names them (max_order, hash_bits, mutation_rate)."""
    from ..kmer_counts import KmerCounts

    check_output_paths(output)
    started = time.perf_counter()
    config = build(KmerConfig, given, given.__contains__)
    fold = "hash_bits" not in given
    counts = KmerCounts.count(inputs, config, mutation_rate=build(CountOptions, given, given.__contains__).mutation_rate,
                              seed=seed, hash_bits=DEFAULT_MAX_HASH_BITS if fold else config.hash_bits, fold=fold)
    counts.save(output)
    log.info("count: %d records, %d positions of %d input(s) in %.1f s; written to %s", counts.records,
             counts.foreground.positions, len(inputs), time.perf_counter() - started, output)
    return counts
