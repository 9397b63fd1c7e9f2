"""The registry of model kinds and classifier kinds: the one place a new kind is added.

A model kind is a package gooddetect/models/<kind>/ providing what ModelKind lists: its `train` options, how it
trains, its model class. A classifier kind is its class, its trainer and their option dataclasses. A kind is
imported only when used: the k-mer kind needs no torch."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Protocol

from ..errors import ModelFileError
from ..options import Spec, describe
from .configs import ClassifierConfig, ClassifierTraining, KmerClassifierConfig

if TYPE_CHECKING:
    import numpy as np

    from ..runtime import Runtime
    from ..windows import Windows
    from . import GenerativeModel, InDistributionClassifier

KINDS = {"lstm": "gooddetect.models.lstm", "kmer": "gooddetect.models.kmer"}


class Settings(Protocol):
    """What `train` was asked for (commands.train.TrainSettings): `part(cls)` builds any option dataclass."""

    def part(self, cls, **fixed): ...


class ModelKind(Protocol):
    """The package of a model kind (light to import: its model and training load on first use)."""

    NAME: str
    USES_TORCH: bool  # its models (and the versions the model file records) need torch
    OPTION_GROUPS: tuple[type, ...]  # the dataclasses of its `train` options; among them `score_strands` (how its
    # model scores a window) and `mutation_rate` (its background's), with the kind's own defaults

    def model_class(self) -> type[GenerativeModel]: ...

    def check(self, settings: Settings) -> None:
        """Raise UsageError for options of this kind that cannot go together, before any work."""

    def window_options(self, settings: Settings) -> dict | None:
        """collect_windows' stride and max_windows when the kind trains on windows of the reads (a classifier
        trained beside it takes the same windows); None when it reads the inputs itself."""

    def train(self, inputs: list[str], windows: Windows | None, training: dict, settings: Settings, *, output: str,
              seed: int, runtime: Runtime) -> tuple[GenerativeModel, GenerativeModel, np.ndarray | None]:
        """(foreground, background, the inputs' minimizer keys if it computed them, else None); what the model
        file records of the training goes into `training`."""


@dataclass(frozen=True)
class ClassifierKind:
    """A classifier kind: "module:name" of its class and of its trainer (the labeled training and validation
    windows, the config and the schedule if any -> the classifier), and the dataclasses of their options."""

    model: str
    trainer: str
    config: type
    schedule: type | None = None


CLASSIFIERS = {
    "kmer": ClassifierKind("gooddetect.models.kmer_classifier:KmerClassifier",
                           "gooddetect.models.kmer_classifier:train_kmer_classifier", KmerClassifierConfig),
    "convnet": ClassifierKind("gooddetect.models.classifier:Classifier",
                              "gooddetect.training.classifier:train_classifier", ClassifierConfig, ClassifierTraining)}

describe(KmerClassifierConfig,
         order=Spec("kmer classifier: Markov order of each class's chain (memory 4^(order+1) x 7.3 bytes per class, "
                    "table and counts: 31 MB at 10, 1.9 MB at 8).", flag="--classifier-order"))
describe(ClassifierConfig,
         filters=Spec("convnet classifier: convolution filters (the paper: 1000).", flag="--classifier-filters"),
         width=Spec("convnet classifier: filter width (bases).", flag="--classifier-width"),
         hidden=Spec("convnet classifier: dense units.", flag="--classifier-hidden"))


def model_kind(kind: str) -> ModelKind:
    """The package of model kind `kind`."""
    if kind not in KINDS:
        raise ModelFileError(f"unknown model kind {kind!r} (known: {', '.join(KINDS)})")
    return importlib.import_module(KINDS[kind])


def model_class(kind: str) -> type[GenerativeModel]:
    """The class implementing model kind `kind`."""
    return model_kind(kind).model_class()


def classifier_class(kind: str) -> type[InDistributionClassifier]:
    """The class implementing classifier kind `kind`."""
    return _imported(_classifier(kind).model)


def classifier_trainer(kind: str) -> Callable:
    return _imported(_classifier(kind).trainer)


def _classifier(kind: str) -> ClassifierKind:
    if kind not in CLASSIFIERS:
        raise ModelFileError(f"unknown classifier kind {kind!r} (known: {', '.join(CLASSIFIERS)})")
    return CLASSIFIERS[kind]


def _imported(target: str):
    module, name = target.split(":")
    return getattr(importlib.import_module(module), name)
