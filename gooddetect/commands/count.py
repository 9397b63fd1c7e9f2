"""`gooddetect count`: the k-mer counts of some genomes, to a count file that `train --arch kmer --from-counts` merges
with the counts of the other parts of a reference (each part counted on its own machine)."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from ..files import check_output_paths
from ..models.configs import KmerConfig
from ..models.kmer.options import KmerCounting
from ..models.kmer.training import count_kmers
from ..options import build, option

log = logging.getLogger("gooddetect")


@dataclass(frozen=True)
class CountOutput:
    output: str | None = option(None, "Count file to write.", short="-o", required=True)


OPTION_GROUPS = (("", CountOutput), ("kmer", KmerConfig), ("", KmerCounting))


def count(inputs: list[str], output: str, *, seed: int = 0, **given):
    """Count every k-mer of every record of `inputs` into the count file `output` (returns its KmerCounts), as
    `train --arch kmer` counts them; `given` holds the k-mer options as the command line names them (max_order,
    hash_bits, mutation_rate)."""
    check_output_paths(output)
    started = time.perf_counter()
    counts = count_kmers(inputs, build(KmerConfig, given, given.__contains__),
                         build(KmerCounting, given, given.__contains__).mutation_rate, seed,
                         hash_bits_given="hash_bits" in given)
    counts.save(output)
    log.info("count: %d records, %d positions of %d input(s) in %.1f s; written to %s", counts.records,
             counts.foreground.positions, len(inputs), time.perf_counter() - started, output)
    return counts
