"""The default in-distribution classifier: one interpolated Markov chain (models.kmer, exact counts of both strands)
per class, and Bayes' rule over them, as Phymm classifies reads with one chain per genome.

A window's class probabilities are softmax(ln p_c(window) / temperature) over the classes c (equal priors): a chain
that read the window's k-mers in training gives it a far higher likelihood than one that did not. The likelihoods
of ~250 bases are much more confident than they are right (their terms are not independent), so they are tempered;
temperature, order and smoothing were chosen on the benchmark's validation sets (see README). OOD scores, "higher =
more out of distribution": msp (1 − the largest class probability) and entropy (of the class probabilities).

The chains are scored together: one float32 table of ln p_c(x | context) for every word of every order, the
classes side by side (4^(order+1) x 5.3 bytes per class), so that a position reads one row for all the classes
(hundreds of classes cost one memory read per base, not hundreds). The model file holds each class's counts, in one
byte where that is smaller, deflated (about 0.8 MB per class at order 10 on gdbench). No torch: compiled loops.
"""

from __future__ import annotations

import functools
from typing import ClassVar

import numpy as np

from ..runtime import in_thread_shares, row_blocks, run_tasks
from .._core.kmer import class_loglik_rows, into_columns
from . import ArraySpec
from .configs import KmerClassifierConfig
from .kmer.model import SCORE_ROWS, Counter, DirectCounts, direct_probabilities, expected_direct_arrays

CLASS_GROUP = 16  # classes whose probabilities are built before they are written into the table (64-byte rows)


class KmerClassifier:
    """Class probabilities and OOD scores per window from one k-mer chain per class."""

    kind: ClassVar[str] = "kmer"
    uses_torch: ClassVar[bool] = False
    stored_deflated: ClassVar[bool] = True  # one class's order-10 counts: 2.1 MB in one byte, 0.8 MB deflated
    chunks_in_flight: ClassVar[int] = 2  # its loop is C, releases the GIL and keeps no state
    score_names: ClassVar[tuple[str, ...]] = ("msp", "entropy")  # what `predict` returns besides the probabilities
    has_odin: ClassVar[bool] = False

    def __init__(self, config: KmerClassifierConfig, counts: list[DirectCounts], stats: dict | None = None,
                 threads: int = 1):
        """counts: each class's direct counts as its chain (a KmerModel of config.chain()) holds them. The table
        of log-probabilities is built on `threads` threads, which also score until `configure` says otherwise."""
        self.config, self.counts = config, counts
        self.stats = stats or {}
        self.threads = threads
        self._logp, self._offsets = _class_table(config, counts, threads)

    @property
    def classes(self) -> list[str]:
        return self.config.classes

    # -- the model file -------------------------------------------------------------------------------------------

    def configure(self, *, threads: int | None = None, device: str = "cpu", bf16: bool = False) -> None:
        """Threads only: the chains run on the CPU whatever device the generative models use."""
        self.threads = threads or 1

    def config_dict(self) -> dict:
        return self.config.to_dict()

    def state_arrays(self) -> dict[str, np.ndarray]:
        return {f"class_{i}.{name}": array for i, counts in enumerate(self.counts)
                for name, array in counts.arrays().items()}

    @classmethod
    def expected_arrays(cls, config: dict) -> dict[str, ArraySpec]:
        c = KmerClassifierConfig.from_model_file(config, "k-mer classifier")
        chain = expected_direct_arrays(c.chain())
        return {f"class_{i}.{name}": spec for i in range(len(c.classes)) for name, spec in chain.items()}

    @classmethod
    def from_state(cls, config: dict, arrays: dict[str, np.ndarray], threads: int = 1) -> KmerClassifier:
        c = KmerClassifierConfig.from_dict(config)
        counts = []
        for i in range(len(c.classes)):
            prefix = f"class_{i}."
            counts.append(DirectCounts.from_arrays({k[len(prefix):]: v for k, v in arrays.items()
                                                    if k.startswith(prefix)}))
        return cls(c, counts, threads=threads)

    # -- prediction -----------------------------------------------------------------------------------------------

    def loglik(self, codes: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        """ln p_c(window) of every window under every class's chain, float64 [B, C] (row blocks on `threads`
        threads)."""
        codes = np.ascontiguousarray(codes)
        lengths = np.minimum(np.asarray(lengths, dtype=np.int64), codes.shape[1])
        out = np.zeros((len(codes), len(self.classes)), dtype=np.float64)
        chain = self.config.chain()

        def score(first: int, last: int) -> None:
            class_loglik_rows(codes, lengths, first, last, self._logp, self._offsets, chain.top_direct_order,
                              chain.width, out)

        run_tasks(row_blocks(score, len(codes), SCORE_ROWS), self.threads)
        return out

    def predict(self, codes: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """(class probabilities [B, C], {name: [B]} for each of score_names) of windows codes [B, L] holding
        lengths [B]."""
        z = self.loglik(codes, lengths) / self.config.temperature
        probs = np.exp(z - z.max(axis=1, keepdims=True))
        probs /= probs.sum(axis=1, keepdims=True)
        entropy = -(probs * np.log(np.maximum(probs, 1e-300))).sum(axis=1)
        return probs, {"msp": 1.0 - probs.max(axis=1), "entropy": entropy}


def _class_table(config: KmerClassifierConfig, counts: list[DirectCounts],
                 threads: int) -> tuple[np.ndarray, np.ndarray]:
    """(ln p_c [rows, C] float32, the offset of each order's rows): every class's chain's probabilities of every
    order (models.kmer.model.direct_probabilities), one class per column; built CLASS_GROUP classes at a time (one per
    thread), then written into their columns row by row."""
    chain = config.chain()

    def log_probabilities(c: int) -> tuple[np.ndarray, np.ndarray]:
        probs, offsets = direct_probabilities(chain, counts[c])
        return np.log(probs, out=probs), offsets

    logp = offsets = None
    for first in range(0, len(counts), CLASS_GROUP):
        group = run_tasks([functools.partial(log_probabilities, c)
                           for c in range(first, min(first + CLASS_GROUP, len(counts)))], threads)
        group_logp, offsets = np.stack([values for values, _ in group]), group[0][1]
        if logp is None:
            logp = np.empty((group_logp.shape[1], len(counts)), dtype=np.float32)
        in_thread_shares(lambda a, b: into_columns(group_logp, logp, first, a, b), len(logp), threads)
    return logp, offsets


def train_kmer_classifier(codes: np.ndarray, lengths: np.ndarray, labels: np.ndarray, val_codes: np.ndarray,
                          val_lengths: np.ndarray, val_labels: np.ndarray,
                          config: KmerClassifierConfig) -> KmerClassifier:
    """Count each class's chain on its windows, then the validation windows in as well; the validation accuracy is
    that of the chains before (the statistics describe what did not see the windows). One class's counter at a
    time."""
    chain = config.chain()
    lengths, val_lengths = np.asarray(lengths, dtype=np.int64), np.asarray(val_lengths, dtype=np.int64)
    before, after = [], []
    for label in range(len(config.classes)):
        counter = Counter(chain, chain.hash_bits)
        _count(counter, codes, lengths, labels == label)
        before.append(DirectCounts.of(counter.direct_counts()))
        _count(counter, val_codes, val_lengths, val_labels == label)
        after.append(DirectCounts.of(counter.direct_counts()))
    predicted = np.argmax(KmerClassifier(config, before).loglik(val_codes, val_lengths), axis=1)
    return KmerClassifier(config, after, {
        "val_accuracy": float((predicted == val_labels).mean()), "windows": int(len(codes)),
        "val_windows": int(len(val_codes)),
        "windows_per_class": np.bincount(labels, minlength=len(config.classes)).tolist()})


def _count(counter: Counter, codes: np.ndarray, lengths: np.ndarray, selected: np.ndarray) -> None:
    rows = np.flatnonzero(selected)
    if len(rows):
        counter.add(np.ascontiguousarray(codes[rows]), lengths[rows], np.zeros(len(rows), np.int64))
