"""The model contract every generative model kind implements, and the registry of kinds.

A kind is imported only when used: the k-mer kind needs no torch."""

from __future__ import annotations

import importlib
from dataclasses import asdict, fields
from typing import ClassVar, Protocol

import numpy as np

from ..errors import ModelFileError

KINDS = {"lstm": "gooddetect.models.lstm:LSTMModel", "kmer": "gooddetect.models.kmer:KmerModel"}
CLASSIFIER_SCORES = ("msp", "entropy", "mahalanobis", "rel_mahalanobis")  # the classifier's OOD scores in `score`
ArraySpec = tuple[tuple[int, ...], str]  # (shape, numpy dtype name) of one stored array


class ConfigDict:
    """`to_dict` / `from_dict` of a model config dataclass; `from_dict` refuses unknown keys, naming them as
    "unknown {SETTINGS}"."""

    SETTINGS: ClassVar[str]

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict):
        unknown = set(values) - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f"unknown {cls.SETTINGS}: {sorted(unknown)}")
        return cls(**values)


class GenerativeModel(Protocol):
    """An autoregressive model over A, C, G, T scoring padded windows; the file format needs the rest."""

    kind: ClassVar[str]

    def loglik(self, codes: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(Σ ln p(base t | bases 0..t-1) float64 [B], scored positions int64 [B]) of windows codes [B, L] uint8
        holding lengths [B] bases: positions 1..length-1 whose base is known are scored, unknown bases (4) in the
        context carry no information."""

    @classmethod
    def pair_loglik(cls, foreground: GenerativeModel, background: GenerativeModel, codes: np.ndarray,
                    lengths: np.ndarray) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
        """(foreground.loglik(...), background.loglik(...)), possibly computed side by side."""

    def configure(self, *, threads: int | None, device: str, bf16: bool) -> None:
        """Run-time settings (not stored): CPU threads, torch device, bfloat16 scoring."""

    def config_dict(self) -> dict: ...

    def state_arrays(self) -> dict[str, np.ndarray]:
        """The arrays the model file stores."""

    @classmethod
    def expected_arrays(cls, config: dict) -> dict[str, ArraySpec]:
        """The arrays (shape, dtype) a model of `config` stores, computed without allocating any of them; raises
        ModelFileError for an invalid config."""

    @classmethod
    def from_state(cls, config: dict, arrays: dict[str, np.ndarray]) -> GenerativeModel:
        """The model from a config and arrays already checked against `expected_arrays`."""


def model_class(kind: str) -> type[GenerativeModel]:
    """The class implementing model kind `kind`."""
    try:
        module, name = KINDS[kind].split(":")
    except KeyError:
        raise ModelFileError(f"unknown model kind {kind!r} (known: {', '.join(KINDS)})") from None
    return getattr(importlib.import_module(module), name)
