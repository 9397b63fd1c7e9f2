"""The "kmer" model kind (see models.registry.ModelKind): an interpolated Markov chain pair counted from every
k-mer of every training record. model.py is the chain, counts.py the count files of `gooddetect count`,
training.py how `train` builds the pair. No torch."""

from __future__ import annotations

from ..configs import KmerConfig
from .options import KmerCounting, KmerTraining

NAME = "kmer"
USES_TORCH = False
OPTION_GROUPS = (KmerCounting, KmerTraining, KmerConfig)


def model_class():
    from .model import KmerModel

    return KmerModel


def check(settings) -> None:
    for group in OPTION_GROUPS:
        settings.part(group)


def window_options(settings) -> None:
    return None  # it counts every k-mer of the inputs itself


def train(inputs, windows, training, settings, *, output, seed, runtime):
    from .training import train_pair

    return train_pair(inputs, training, settings, seed=seed)
