"""How `train --arch kmer` builds the pair: the k-mer counts of every input record (or of count files, or of
--windows-per-file random genome windows), then the foreground and mutated-background chains from them."""

from __future__ import annotations

import hashlib
import logging

import numpy as np

from ...errors import UsageError
from ...seqio import display_name
from ...windows import WindowCounts, sample_genome_windows
from ..configs import DEFAULT_MAX_HASH_BITS, KmerConfig
from .options import KmerCounting, KmerTraining

log = logging.getLogger("gooddetect")

# The options a count file fixes: `train --from-counts` takes them from the files.
COUNTING_OPTIONS = ("max_order", "hash_bits", "mutation_rate", "seed", "windows_per_file", "classes",
                    "class_per_file", "record_classes")


def train_pair(inputs: list[str], training: dict, settings, *, seed: int):
    """The pair and the minimizer hashes of the inputs (None when the windows were sampled: not counted)."""
    if settings.part(KmerTraining).from_counts:
        counts = merged_counts(inputs, settings)
    elif settings.inputs.windows_per_file:
        return *_train_on_sampled_windows(inputs, training, settings, seed=seed), None
    else:
        counts = count_kmers(inputs, settings.part(KmerConfig), settings.part(KmerCounting).mutation_rate, seed,
                             hash_bits_given="hash_bits" in settings.given)
    foreground, background = counts.models()
    training |= counts.provenance(foreground, background) | {"inputs": counts.inputs, "seed": counts.settings["seed"],
                                                             "mutation_rate": counts.settings["mutation_rate"]}
    _log_counts(foreground)
    return foreground, background, counts.support_keys


def count_kmers(inputs: list[str], config: KmerConfig, mutation_rate: float, seed: int, *, hash_bits_given: bool):
    """The k-mer counts of every record of `inputs` (what `gooddetect count` writes): without a given --hash-bits,
    counted in 2^DEFAULT_MAX_HASH_BITS buckets, then folded."""
    from .counts import KmerCounts

    return KmerCounts.count(inputs, config, mutation_rate=mutation_rate, seed=seed,
                            hash_bits=config.hash_bits if hash_bits_given else DEFAULT_MAX_HASH_BITS,
                            fold=not hash_bits_given)


def merged_counts(paths: list[str], settings):
    """The counts of the count files `paths`, merged in order."""
    from .counts import KmerCounts

    given = sorted(name for name in COUNTING_OPTIONS if name in settings.given)
    if given:
        raise UsageError(f"--{given[0].replace('_', '-')}: with --from-counts, the counting settings come from the "
                         "count files")
    counts = KmerCounts.load(paths[0])
    for path in paths[1:]:
        counts.merge(KmerCounts.load(path), path)
    return counts


def _log_counts(foreground) -> None:
    log.info("train: counted %d positions; hashed tables %s full at 2^%d buckets (%s of the buckets full)",
             foreground.stats["positions"], foreground.stats["hashed_fill"], foreground.config.hash_bits,
             foreground.stats["hashed_full_buckets"])


def _train_on_sampled_windows(inputs: list[str], training: dict, settings, *, seed: int):
    """The pair counted on --windows-per-file random windows of each genome."""
    from .model import KmerModel

    config = settings.part(KmerConfig)
    length, min_length = settings.inputs.length, settings.inputs.min_length
    digest = hashlib.sha256()
    counts = WindowCounts()

    def batches():
        rng = np.random.default_rng(seed)
        for path in inputs:
            counts.files.append(display_name(path))
            rows = [codes for _, _, codes in sample_genome_windows(path, settings.inputs.windows_per_file, rng, counts,
                                                                   length, min_length)]
            batch = (np.stack(rows), np.full(len(rows), length), np.zeros(len(rows), np.int64))
            digest.update(batch[0].tobytes())
            yield batch

    foreground, background = KmerModel.fit_pair(
        batches(), config=config, background=config.background(),
        mutation_rate=settings.part(KmerCounting).mutation_rate, seed=seed,
        max_hash_bits=None if "hash_bits" in settings.given else DEFAULT_MAX_HASH_BITS)
    training |= {"sequences_sha256": digest.hexdigest(), "background_config": "KmerConfig.background()",
                 "counting": {"records": counts.reads, "windows_sampled": counts.windows,
                              "foreground": foreground.stats, "background": background.stats}}
    _log_counts(foreground)
    return foreground, background
