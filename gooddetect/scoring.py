"""Streaming scoring: fragments → windows → batched likelihoods → per-fragment scores, in input order.

A fragment is one read, or the two mates of a pair; a window never spans mates. Unknown bases are *masked* when
scoring (not scored, and fed to the model as 'no information'); a window is dropped only when fewer than
`min_length` of its bases are known. Per-fragment values are base-weighted means over the fragment's windows:
loglik = Σ window log-likelihood sums / Σ scored bases, so every scored base counts once. Windows are scored in
batches of `batch_size` whatever the read lengths, so memory stays flat for a contig of any length.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from functools import cached_property
from typing import Iterable, Iterator

import numpy as np

from .detector import Detector
from .options import option
from .runtime import pipelined
from .seqio import RecordChunk
from .support import MIN_SUPPORT, foreign, support_fraction
from .windows import ChunkWindows, cut_reads

DEFAULT_BATCH_SIZE = 4096  # windows per model call: large enough to amortise the k-mer model's thread hand-offs
PIPELINE_DEPTH = 2  # chunks scored ahead of the consumer
TOO_SHORT = "too_short"
TOO_MANY_UNKNOWN = "too_many_unknown"
REASONS = (None, TOO_SHORT, TOO_MANY_UNKNOWN)  # by ScoredChunk.reason_codes
CALLS = ("in", "novel", "foreign")  # by call_codes; len(CALLS) stands for no call


@dataclass(frozen=True)
class Batching:
    """How many windows go to the models at once (`score`, `calibrate`, `evaluate`)."""

    batch_size: int = option(DEFAULT_BATCH_SIZE, "Windows per model call (memory vs speed; results do not depend on "
                             "it).", min=1)


@dataclass
class ScoredChunk:
    """The scores of one chunk of fragments (arrays over its fragments, and over its windows in fragment order).
    Sums are natural-log likelihoods over the scored bases; `llr` and the logliks are per scored base (each worked
    out once, when first read)."""

    chunk: RecordChunk
    read_lengths: np.ndarray  # int64 [fragments, mates]
    n_windows: np.ndarray  # int64 [fragments]
    n_scored: np.ndarray  # int64 [fragments]
    fg_sum: np.ndarray  # float64 [fragments]
    bg_sum: np.ndarray  # float64 [fragments]
    window_llr: np.ndarray  # float64 [windows]: per-base LLR of each window
    window_fragment: np.ndarray  # int64 [windows]
    window_record: np.ndarray  # int64 [windows]: index into chunk.records
    window_start: np.ndarray  # int64 [windows]: 0-based on its read
    window_end: np.ndarray
    window_scored: np.ndarray  # int64 [windows]
    min_length: int
    class_probs: np.ndarray | None = None  # float64 [fragments, classes]: the classifier's, base-weighted
    classifier_scores: dict[str, np.ndarray] = field(default_factory=dict)  # name -> float64 [fragments]
    support_hits: np.ndarray | None = None  # int64 [fragments]: minimizers the support table holds (with one)
    support_lookups: np.ndarray | None = None  # int64 [fragments]: minimizers looked up

    def __len__(self) -> int:
        return len(self.n_windows)

    @cached_property
    def scored(self) -> np.ndarray:
        return self.n_scored > 0

    def _per_base(self, sums: np.ndarray) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.scored, sums / np.maximum(self.n_scored, 1), np.nan)

    @cached_property
    def loglik_fg(self) -> np.ndarray:
        return self._per_base(self.fg_sum)

    @cached_property
    def loglik_bg(self) -> np.ndarray:
        return self._per_base(self.bg_sum)

    @cached_property
    def llr(self) -> np.ndarray:
        return self.loglik_fg - self.loglik_bg

    @cached_property
    def score(self) -> np.ndarray:
        """The OOD score: −LLR, higher = more out of distribution (as alibi-detect reports it); NaN if unscored."""
        return -self.llr

    @cached_property
    def support(self) -> np.ndarray | None:
        """The fraction of each fragment's minimizers the references hold (NaN: none looked up); None without a
        support table."""
        return None if self.support_hits is None else support_fraction(self.support_hits, self.support_lookups)

    def foreign(self, min_support: float = MIN_SUPPORT) -> np.ndarray | None:
        """Which fragments the support calls foreign (see support.foreign); None without a support table."""
        return None if self.support_hits is None else foreign(self.support_hits, self.support_lookups, min_support)

    @cached_property
    def reason_codes(self) -> np.ndarray:
        """Why each fragment has no score, as an index into REASONS (0: it has one)."""
        too_short = (self.read_lengths < self.min_length).all(axis=1)
        return np.where(self.scored, 0, np.where(too_short, 1, 2))


def call_codes(scored: np.ndarray, llr_ood: np.ndarray | None, foreign: np.ndarray | None) -> np.ndarray:
    """Each fragment's call as an index into CALLS (len(CALLS): none, for unscored fragments or without a
    threshold): foreign where `foreign` says so (the references share almost none of its k-mers; see
    support.foreign), else novel when its LLR is out of distribution, else in. Without a support table (`foreign`
    None) the LLR alone decides between in and novel."""
    none = len(CALLS)
    if llr_ood is None:
        return np.full(len(scored), none, dtype=np.int64)
    codes = np.where(llr_ood, 1, 0)
    if foreign is not None:
        codes = np.where(foreign, 2, codes)
    return np.where(scored, codes, none)


@dataclass
class ScoreCounts:
    """Totals for the closing summary; every fragment without a score is counted under its reason, every called
    one under its call."""

    reads: int = 0
    scored_reads: int = 0
    windows: int = 0
    calls: Counter = field(default_factory=Counter)
    skipped: Counter = field(default_factory=Counter)

    @property
    def ood(self) -> int:
        return self.calls["novel"] + self.calls["foreign"]

    def add(self, scored: ScoredChunk, calls: np.ndarray) -> None:
        """`calls`: call_codes of the chunk."""
        self.reads += len(scored)
        self.scored_reads += int(scored.scored.sum())
        self.windows += int(scored.n_windows.sum())
        called = np.bincount(calls, minlength=len(CALLS) + 1)
        self.calls.update({call: int(n) for call, n in zip(CALLS, called) if n})
        counts = np.bincount(scored.reason_codes, minlength=len(REASONS))
        self.skipped.update({reason: int(n) for reason, n in zip(REASONS[1:], counts[1:]) if n})

    def __add__(self, other: ScoreCounts) -> ScoreCounts:
        return ScoreCounts(self.reads + other.reads, self.scored_reads + other.scored_reads,
                           self.windows + other.windows, self.calls + other.calls, self.skipped + other.skipped)

    def as_dict(self, calibrated: bool) -> dict:
        def fraction(n: int) -> float | None:
            return (n / self.scored_reads if self.scored_reads else None) if calibrated else None

        return {"reads": self.reads, "scored_reads": self.scored_reads, "windows": self.windows,
                "ood": self.ood if calibrated else None, "ood_fraction": fraction(self.ood),
                **{f"{call}_reads": self.calls[call] if calibrated else None for call in CALLS},
                "foreign_fraction": fraction(self.calls["foreign"]),
                "unscored_reads": sum(self.skipped.values()),
                "skipped": dict(sorted(self.skipped.items()))}


def score_chunks(detector: Detector, chunks: Iterable[RecordChunk], *, batch_size: int = DEFAULT_BATCH_SIZE,
                 stride: int | None = None, odin: bool = False) -> Iterator[ScoredChunk]:
    """Score every fragment of every chunk, one ScoredChunk per chunk, in input order. A fragment's scores depend
    only on the fragment and the model: not on batch size, neighbours, or thread count. With a classifier in the
    model, its class probabilities and OOD scores come too (`odin`: also ODIN's, which needs gradients).

    Unless the detector is limited to one thread, chunks are read and cut into windows on a reader thread and
    scored on worker threads, up to PIPELINE_DEPTH ahead of the caller: reading, the models' compiled loops and the
    caller's writing overlap. With models that allow it (Detector.chunks_in_flight; not with ODIN, which uses torch),
    two workers score two chunks at once, so that one chunk's loops run while the other is summed up."""

    def cut(chunk: RecordChunk) -> tuple[RecordChunk, ChunkWindows]:
        return chunk, cut_reads(chunk.seqs, detector.window_length, stride, detector.min_length)

    def score(item: tuple[RecordChunk, ChunkWindows]) -> ScoredChunk:
        chunk, windows = item
        return _aggregate(detector, chunk, windows, _score_windows(detector, windows, batch_size, odin))

    cut_chunks = map(cut, chunks)
    if detector.threads == 1:
        return map(score, cut_chunks)
    return pipelined(score, cut_chunks, PIPELINE_DEPTH, 1 if odin else detector.chunks_in_flight)


@dataclass
class _WindowScores:
    fg: np.ndarray
    bg: np.ndarray
    n_scored: np.ndarray
    class_probs: np.ndarray | None = None
    classifier_scores: dict[str, np.ndarray] = field(default_factory=dict)
    support_hits: np.ndarray | None = None
    support_lookups: np.ndarray | None = None


def _score_windows(detector: Detector, cut: ChunkWindows, batch_size: int, odin: bool) -> _WindowScores:
    """The models' outputs for every window of `cut`, batch_size windows at a time."""
    n = len(cut)
    out = _WindowScores(np.zeros(n), np.zeros(n), np.zeros(n, dtype=np.int64))
    classifier = detector.classifier
    if classifier is not None:
        out.class_probs = np.zeros((n, len(classifier.classes)))
        out.classifier_scores = {name: np.zeros(n) for name in (*classifier.score_names, *(("odin",) if odin else ()))}
    if detector.support is not None:
        out.support_hits, out.support_lookups = np.zeros(n, dtype=np.int64), np.zeros(n, dtype=np.int64)
    for first in range(0, n, batch_size):
        last = min(first + batch_size, n)
        windows = cut.padded(first, last)
        out.fg[first:last], out.bg[first:last], out.n_scored[first:last] = detector.loglik(*windows)
        if detector.support is not None:
            out.support_hits[first:last], out.support_lookups[first:last] = detector.support.lookup(
                *windows, detector.threads or 1)
        if classifier is not None:
            probs, scores = classifier.predict(*windows)
            out.class_probs[first:last] = probs
            for name, values in scores.items():
                out.classifier_scores[name][first:last] = values
            if odin:
                out.classifier_scores["odin"][first:last] = classifier.odin(*windows)
    return out


def _aggregate(detector: Detector, chunk: RecordChunk, cut: ChunkWindows, windows: _WindowScores) -> ScoredChunk:
    """Per-fragment sums over each fragment's windows (in window order, so the sums do not depend on batching);
    the classifier's outputs are means over the windows weighted by their scored bases."""
    n = len(chunk)
    fragment = cut.reads // chunk.mates
    starts, ends = cut.spans()
    n_scored = np.bincount(fragment, weights=windows.n_scored, minlength=n)

    def weighted_mean(values: np.ndarray) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.bincount(fragment, weights=values * windows.n_scored, minlength=n) / n_scored

    with np.errstate(invalid="ignore", divide="ignore"):
        window_llr = (windows.fg - windows.bg) / windows.n_scored
    support = {}
    if windows.support_hits is not None:
        support = {name: np.bincount(fragment, weights=values, minlength=n).astype(np.int64)
                   for name, values in (("support_hits", windows.support_hits),
                                        ("support_lookups", windows.support_lookups))}
    class_probs = None
    if windows.class_probs is not None:
        class_probs = np.stack([weighted_mean(column) for column in windows.class_probs.T], axis=1) if n else \
            np.zeros((0, windows.class_probs.shape[1]))
    return ScoredChunk(
        chunk=chunk, read_lengths=cut.read_lengths.reshape(n, chunk.mates),
        n_windows=np.bincount(fragment, minlength=n).astype(np.int64), n_scored=n_scored.astype(np.int64),
        fg_sum=np.bincount(fragment, weights=windows.fg, minlength=n),
        bg_sum=np.bincount(fragment, weights=windows.bg, minlength=n),
        window_llr=window_llr, window_fragment=fragment, window_record=cut.reads, window_start=starts,
        window_end=ends, window_scored=windows.n_scored, min_length=detector.min_length, class_probs=class_probs,
        classifier_scores={name: weighted_mean(values) for name, values in windows.classifier_scores.items()},
        **support)
