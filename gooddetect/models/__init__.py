"""The model contract every generative model kind and classifier implements (the registry of kinds is
models.registry)."""

from __future__ import annotations

from dataclasses import asdict, fields
from typing import ClassVar, Protocol

import numpy as np

from ..errors import ModelFileError

STRANDS = ("forward", "both")  # a window scored as given (the paper), or the mean over it and its reverse complement
ArraySpec = tuple[tuple[int, ...], str | tuple[str, ...]]  # (shape, numpy dtype name or the names allowed) of an array


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

    @classmethod
    def from_model_file(cls, values: dict, what: str):
        """`from_dict` of a config read from a model file: an invalid one is a ModelFileError ("bad {what}
        configuration: ...")."""
        try:
            return cls.from_dict(values)
        except (TypeError, ValueError) as error:
            raise ModelFileError(f"bad {what} configuration: {error}") from None


def check_classes(classes: list[str]) -> None:
    """A classifier's classes: two or more distinct names."""
    if len(classes) < 2 or len(set(classes)) != len(classes):
        raise ValueError("a classifier needs two or more distinct classes")


class GenerativeModel(Protocol):
    """An autoregressive model over A, C, G, T scoring padded windows; the file format needs the rest."""

    kind: ClassVar[str]
    uses_torch: ClassVar[bool]  # the runtime sets torch up (threads, device) before it scores
    stored_deflated: ClassVar[bool]  # whether the model file stores its arrays deflated (small files over fast loads)
    chunks_in_flight: ClassVar[int]  # chunks `score` may score at once: 2 when its calls release the GIL and share no
    # state, so that the next chunk's loops run while one is summed up; 1 for torch models (their own threads)
    context: int | None  # bases before a row's first scored base it reads as context: `screen` then scores a
    # sequence in long rows carrying that many across; None: in rows of the window length, as it was trained

    def loglik(self, codes: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(Σ ln p(base t | bases 0..t-1) float64 [B], scored positions int64 [B]) of windows codes [B, L] uint8
        holding lengths [B] bases: positions 1..length-1 whose base is known are scored, unknown bases (4) in the
        context carry no information."""

    @classmethod
    def pair_loglik(cls, foreground: GenerativeModel, background: GenerativeModel, codes: np.ndarray,
                    lengths: np.ndarray) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
        """(foreground.loglik(...), background.loglik(...)), possibly computed side by side."""

    def binned_loglik(self, codes: np.ndarray, lengths: np.ndarray, skip: np.ndarray,
                      bin_size: int) -> tuple[np.ndarray, np.ndarray]:
        """loglik in bins along each row: (sums float64 [B, bins], scored positions int64 [B, bins]), bin b
        holding positions skip[i] + b·bin_size ... + bin_size - 1 of row i (the first skip[i] positions are context
        only, never scored). Summed over bins (skip 0), a row's values are loglik's."""

    @classmethod
    def pair_binned_loglik(cls, foreground: GenerativeModel, background: GenerativeModel, codes: np.ndarray,
                           lengths: np.ndarray, skip: np.ndarray, bin_size: int):
        """(foreground.binned_loglik(...), background.binned_loglik(...)), possibly computed side by side."""

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
    def from_state(cls, config: dict, arrays: dict[str, np.ndarray], threads: int = 1) -> GenerativeModel:
        """The model from a config and arrays already checked against `expected_arrays`, rebuilt on up to
        `threads` threads where its kind can use them."""


class InDistributionClassifier(Protocol):
    """A classifier over the in-distribution classes, scoring padded windows; the file format needs the rest (as
    for GenerativeModel)."""

    kind: ClassVar[str]
    uses_torch: ClassVar[bool]  # as GenerativeModel.uses_torch
    stored_deflated: ClassVar[bool]  # whether the model file stores its arrays deflated (small files over fast loads)
    chunks_in_flight: ClassVar[int]  # as GenerativeModel.chunks_in_flight
    score_names: ClassVar[tuple[str, ...]]  # the OOD scores `predict` returns ("higher = more OOD")
    has_odin: ClassVar[bool]  # whether `odin(codes, lengths)` gives ODIN's score (it needs a gradient)
    classes: list[str]
    stats: dict

    def predict(self, codes: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """(class probabilities float64 [B, C], {name: float64 [B]} for each of score_names)."""

    def configure(self, *, threads: int | None, device: str, bf16: bool) -> None: ...

    def config_dict(self) -> dict: ...

    def state_arrays(self) -> dict[str, np.ndarray]: ...

    @classmethod
    def expected_arrays(cls, config: dict) -> dict[str, ArraySpec]: ...

    @classmethod
    def from_state(cls, config: dict, arrays: dict[str, np.ndarray], threads: int = 1) -> InDistributionClassifier:
        ...


def bin_positions(values: np.ndarray, scored: np.ndarray, skip: np.ndarray,
                  bin_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-position values [B, W] (counted where `scored`) summed in bins of `bin_size` positions from skip[i] on:
    (sums [B, bins], counts [B, bins])."""
    width = values.shape[1]
    bins = max(1, -(-width // bin_size))
    position = np.arange(width)[None, :] - skip[:, None]
    keep = scored & (position >= 0)
    index = np.where(keep, np.arange(len(values))[:, None] * bins + position // bin_size, 0)
    sums = np.bincount(index[keep], weights=values[keep], minlength=len(values) * bins)
    counts = np.bincount(index[keep], minlength=len(values) * bins)
    return sums.reshape(-1, bins), counts.reshape(-1, bins).astype(np.int64)
