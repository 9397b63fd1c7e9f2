"""The default in-distribution classifier: one interpolated Markov chain (models.kmer, exact counts of both strands)
per class, and Bayes' rule over them, as Phymm classifies reads with one chain per genome.

A window's class probabilities are softmax(ln p_c(window) / temperature) over the classes c (equal priors): a chain
that read the window's k-mers in training gives it a far higher likelihood than one that did not. The likelihoods
of ~250 bases are much more confident than they are right (their terms are not independent), so they are tempered;
temperature, order and smoothing were chosen on the benchmark's validation sets (see README). OOD scores, "higher =
more out of distribution": msp (1 − the largest class probability) and entropy (of the class probabilities).
No torch: the chains run in the k-mer kind's compiled loops.
"""

from __future__ import annotations

import functools
from typing import ClassVar

import numpy as np

from ..runtime import run_tasks
from . import ArraySpec
from .configs import KmerClassifierConfig
from .kmer import Counter, KmerModel


class KmerClassifier:
    """Class probabilities and OOD scores per window from one k-mer chain per class."""

    kind: ClassVar[str] = "kmer"
    score_names: ClassVar[tuple[str, ...]] = ("msp", "entropy")  # what `predict` returns besides the probabilities
    has_odin: ClassVar[bool] = False

    def __init__(self, config: KmerClassifierConfig, chains: list[KmerModel], stats: dict | None = None):
        self.config, self.chains = config, chains
        self.stats = stats or {}

    @property
    def classes(self) -> list[str]:
        return self.config.classes

    # -- the model file -------------------------------------------------------------------------------------------

    def configure(self, *, threads: int | None = None, device: str = "cpu", bf16: bool = False) -> None:
        """Threads only: the chains run on the CPU whatever device the generative models use."""
        for chain in self.chains:
            chain.threads = threads or 1

    def config_dict(self) -> dict:
        return self.config.to_dict()

    def state_arrays(self) -> dict[str, np.ndarray]:
        return {f"class_{i}.{name}": array for i, chain in enumerate(self.chains)
                for name, array in chain.state_arrays().items()}

    @classmethod
    def expected_arrays(cls, config: dict) -> dict[str, ArraySpec]:
        c = KmerClassifierConfig.from_model_file(config, "k-mer classifier")
        chain = KmerModel.expected_arrays(c.chain().to_dict())
        return {f"class_{i}.{name}": spec for i in range(len(c.classes)) for name, spec in chain.items()}

    @classmethod
    def from_state(cls, config: dict, arrays: dict[str, np.ndarray], threads: int = 1) -> KmerClassifier:
        """The chains are rebuilt side by side on `threads` threads (the table rebuilds release the GIL)."""
        c = KmerClassifierConfig.from_dict(config)
        chain = c.chain().to_dict()

        def build(i: int) -> KmerModel:
            prefix = f"class_{i}."
            return KmerModel.from_state(chain, {k[len(prefix):]: v for k, v in arrays.items() if k.startswith(prefix)})

        return cls(c, run_tasks([functools.partial(build, i) for i in range(len(c.classes))], threads))

    # -- prediction -----------------------------------------------------------------------------------------------

    def loglik(self, codes: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        """ln p_c(window) of every window under every class's chain, float64 [B, C]."""
        return np.stack([chain.loglik(codes, lengths)[0] for chain in self.chains], axis=1)

    def predict(self, codes: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """(class probabilities [B, C], {name: [B]} for each of score_names) of windows codes [B, L] holding
        lengths [B]."""
        z = self.loglik(np.ascontiguousarray(codes), lengths) / self.config.temperature
        probs = np.exp(z - z.max(axis=1, keepdims=True))
        probs /= probs.sum(axis=1, keepdims=True)
        entropy = -(probs * np.log(np.maximum(probs, 1e-300))).sum(axis=1)
        return probs, {"msp": 1.0 - probs.max(axis=1), "entropy": entropy}


def train_kmer_classifier(codes: np.ndarray, lengths: np.ndarray, labels: np.ndarray, val_codes: np.ndarray,
                          val_lengths: np.ndarray, val_labels: np.ndarray,
                          config: KmerClassifierConfig) -> KmerClassifier:
    """Count each class's chain on its windows, score the validation windows with it, then count the validation
    windows in as well (the statistics describe the chains before they were). One class at a time, so memory holds
    the finished chains plus one class's counts."""
    chain = config.chain()
    lengths, val_lengths = np.asarray(lengths, dtype=np.int64), np.asarray(val_lengths, dtype=np.int64)
    val_codes = np.ascontiguousarray(val_codes)
    chains, val_logliks = [], []
    for label in range(len(config.classes)):
        counter = Counter(chain, chain.hash_bits)
        _count(counter, codes, lengths, labels == label)
        val_logliks.append(counter.model(fold=False).loglik(val_codes, val_lengths)[0])
        _count(counter, val_codes, val_lengths, val_labels == label)
        chains.append(counter.model(fold=False))
    accuracy = float((np.argmax(np.stack(val_logliks, axis=1), axis=1) == val_labels).mean())
    return KmerClassifier(config, chains, {
        "val_accuracy": accuracy, "windows": int(len(codes)), "val_windows": int(len(val_codes)),
        "windows_per_class": np.bincount(labels, minlength=len(config.classes)).tolist()})


def _count(counter: Counter, codes: np.ndarray, lengths: np.ndarray, selected: np.ndarray) -> None:
    rows = np.flatnonzero(selected)
    if len(rows):
        counter.add(np.ascontiguousarray(codes[rows]), lengths[rows], np.zeros(len(rows), np.int64))
