"""The scores of labeled samples (in-distribution and OOD reads), for `calibrate` and `evaluate`."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np

from .detector import Detector
from .errors import UsageError
from .labels import read_labels
from .options import option
from .scoring import DEFAULT_BATCH_SIZE, score_chunks
from .seqio import CHUNK_RECORDS, display_name, read_chunks

log = logging.getLogger("gooddetect")


@dataclass(frozen=True)
class LabeledSample:
    """Where a labeled sample's reads are (`calibrate`, `evaluate`): in-distribution and OOD files, or the READS
    arguments with a label table."""

    in_dist: tuple[str, ...] = option((), "In-distribution reads (repeatable).", multiple=True)
    ood: tuple[str, ...] = option((), "Out-of-distribution reads (repeatable).", multiple=True)
    labels: str | None = option(None, "TSV read_id<TAB>label (in|ood) for the READS arguments.")


@dataclass
class SampleScores:
    """Per-read values of the scored reads of a sample (unscored reads are left out and counted): read_id, score,
    loglik_fg, n_scored, with a support table support, support_hits and support_lookups and, with a classifier,
    class (index), class_prob and its OOD scores."""

    columns: dict[str, list] = field(default_factory=dict)
    sequences: list[str] = field(default_factory=list)  # kept only when asked for (length calibration)
    n_unscored: int = 0

    def add(self, name: str, values) -> None:
        self.columns.setdefault(name, []).append(values)

    def arrays(self) -> dict[str, np.ndarray]:
        return {name: np.concatenate(parts) for name, parts in self.columns.items()}


def score_sample(detector: Detector, paths: list[str], *, batch_size: int = DEFAULT_BATCH_SIZE,
                 keep_sequences: bool = False, odin: bool = False) -> SampleScores:
    """The scores of every scored read of `paths` (for calibration and evaluation)."""
    sample = SampleScores()
    chunks = (chunk for path in paths for chunk in read_chunks(path, min(batch_size, CHUNK_RECORDS)))
    for scored in score_chunks(detector, chunks, batch_size=batch_size, odin=odin):
        keep = scored.scored
        sample.add("read_id", np.array(scored.chunk.ids, dtype=object)[keep])
        for name in ("score", "loglik_fg", "n_scored"):
            sample.add(name, getattr(scored, name)[keep])
        if scored.support is not None:
            for name in ("support", "support_hits", "support_lookups"):
                sample.add(name, getattr(scored, name)[keep])
        if scored.class_probs is not None:
            sample.add("class", scored.class_probs.argmax(axis=1)[keep] if len(scored) else np.zeros(0, np.int64))
            sample.add("class_prob", scored.class_probs.max(axis=1, initial=0)[keep])
            for name, values in scored.classifier_scores.items():
                sample.add(name, values[keep])
        if keep_sequences:
            sample.sequences += [s for s, k in zip(scored.chunk.seqs, keep.tolist()) if k]
        sample.n_unscored += int((~keep).sum())
    if sample.n_unscored:
        log.warning("%s: %d reads without a score left out", ", ".join(map(display_name, paths)), sample.n_unscored)
    return sample


def labeled_scores(detector: Detector, *, in_dist: list[str] = (), ood: list[str] = (), reads: list[str] = (),
                   labels: str | None = None, batch_size: int = DEFAULT_BATCH_SIZE, keep_sequences: bool = False,
                   odin: bool = False) -> tuple[dict, np.ndarray, list[str]]:
    """(scores of a labeled sample, labels (True = OOD), in-distribution sequences if `keep_sequences`): from
    separate in/OOD files, or from `reads` with a `labels` TSV (read_id, label in {in, ood}; a header allowed)."""
    parts, truth, in_sequences = [], [], []
    if labels:
        label_of = read_labels(labels)
        sample = score_sample(detector, list(reads), batch_size=batch_size, keep_sequences=keep_sequences, odin=odin)
        scored = sample.arrays()
        known = np.array([rid in label_of for rid in scored["read_id"]], dtype=bool)
        if not known.all():
            log.warning("%d scored reads have no label in %s and are left out", int((~known).sum()), labels)
        scored = {k: v[known] for k, v in scored.items()}
        is_ood = np.array([label_of[rid] for rid in scored["read_id"]], dtype=bool)
        parts.append(scored)
        truth.append(is_ood)
        if keep_sequences:
            kept = [s for s, k in zip(sample.sequences, known.tolist()) if k]
            in_sequences += [s for s, o in zip(kept, is_ood.tolist()) if not o]
    for paths, is_ood in ((in_dist, False), (ood, True)):
        if paths:
            sample = score_sample(detector, list(paths), batch_size=batch_size,
                                  keep_sequences=keep_sequences and not is_ood, odin=odin)
            parts.append(sample.arrays())
            truth.append(np.full(len(parts[-1]["score"]), is_ood))
            in_sequences += sample.sequences
    if not parts:
        raise UsageError("give a labeled sample: --in-dist (and --ood), or READS with --labels")
    merged = {key: np.concatenate([p[key] for p in parts]) for key in parts[0]}
    return merged, np.concatenate(truth), in_sequences
