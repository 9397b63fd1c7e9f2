"""The Python API behind each command: what `gooddetect <command>` does, callable from a notebook or a workflow."""

from __future__ import annotations

import gzip
import json
import logging
import os
from collections import deque
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Iterable, Iterator

import numpy as np

from . import __version__, calibration, metrics
from .alphabet import decode
from .build import train

__all__ = ["write_windows", "train", "score", "merge_shards", "calibrate", "evaluate", "info", "load_detector",
           "score_sample", "labeled_scores", "ReadOutputs"]
from .detector import Detector, read_model_file
from .errors import InputError, UsageError
from .formatting import describe_counts
from .labels import read_classes, read_labels
from .outputs import ReadSplitter, bed_rows, classifier_columns, classifier_fields, columns, multiqc_content, \
    multiqc_sample, tsv_rows, write_multiqc, write_report
from .runtime import atomic_output, check_output_paths, progress, resolve_device, set_threads
from .score import DEFAULT_BATCH_SIZE, ScoreCounts, score_chunks
from .seqio import CHUNK_RECORDS, MATES, DuplicateCounter, RecordChunk, check_layout, display_name, read_chunks, \
    read_fragments
from .windows import WindowCounts, cut_reads, sample_genome_windows, window_label, with_reverse_complements

log = logging.getLogger("gooddetect")


def write_windows(inputs: list[str], output: str, *, length: int = 250, stride: int | None = None,
                  min_length: int = 50, sample: int | None = None, both_strands: bool = False,
                  seed: int = 0) -> WindowCounts:
    """Write the windows of `inputs` as FASTA (`gooddetect windows`); returns what was done and skipped."""
    counts = WindowCounts(files=[display_name(p) for p in inputs])
    duplicates = DuplicateCounter()
    rng = np.random.default_rng(seed)
    with atomic_output(output) as out:
        for path in inputs:
            for labels, codes, lengths in _labeled_windows(path, counts, duplicates, rng, length=length,
                                                           stride=stride, min_length=min_length, sample=sample):
                records = [(f"{label}(+)", row, n) for label, row, n in zip(labels, codes, lengths.tolist())]
                if both_strands:  # each window followed by its reverse complement
                    both, _ = with_reverse_complements(codes, lengths)
                    minus = [(f"{label}(-)", row, n) for label, row, n in zip(labels, both[1::2], lengths.tolist())]
                    records = [r for pair in zip(records, minus) for r in pair]
                    counts.windows += len(labels)
                out.write("".join(f">{name}\n{decode(row[:n])}\n" for name, row, n in records))
    counts.duplicate_ids = duplicates.count()
    log.info("windows: %d written from %d reads; skipped %d reads shorter than %d bp and %d windows with fewer than "
             "%d known bases; %d duplicate read ids", counts.windows, counts.reads, counts.reads_too_short,
             min_length, counts.windows_too_many_unknown, min_length, counts.duplicate_ids)
    return counts


def _labeled_windows(path: str, counts: WindowCounts, duplicates: DuplicateCounter, rng: np.random.Generator, *,
                     length: int, stride: int | None, min_length: int,
                     sample: int | None) -> Iterator[tuple[list[str], np.ndarray, np.ndarray]]:
    """(labels without strand, codes [B, W], lengths [B]) of the windows of one input, a chunk at a time."""
    if sample:
        for name, start, codes in sample_genome_windows(path, sample, rng, counts, length, min_length):
            yield [window_label(name, start, start + length)], codes[None], np.array([codes.size])
        return
    for chunk in read_chunks(path):
        duplicates.add(chunk.ids)
        cut = cut_reads(chunk.seqs, length, stride, min_length)
        counts.add(cut, min_length)
        if not len(cut):
            continue
        starts, ends = cut.spans()
        labels = [window_label(chunk.ids[r], s, e) for r, s, e in
                  zip(cut.reads.tolist(), starts.tolist(), ends.tolist())]
        yield (labels, *cut.padded(0, len(cut)))


# -- scoring ------------------------------------------------------------------------------------------------------


def load_detector(model: str, *, device: str = "cpu", threads: int | None = None, bf16: bool = False) -> Detector:
    """Load a model file and set its run-time options (`auto` picks CUDA for an LSTM when present); `bf16` scores
    an LSTM model under bfloat16 autocast."""
    set_threads(threads)
    detector = Detector.load(model, threads or 1)
    if device == "auto":
        device = resolve_device(device) if detector.kind == "lstm" else "cpu"
    elif detector.kind == "lstm":
        device = resolve_device(device)
    return detector.configure(threads=threads, device=device, bf16=bf16)


class _Shard:
    """Keeps fragments i, i+n, i+2n, ... of shard (i, n), 1-based and counted across all the chunks it is given."""

    def __init__(self, shard: tuple[int, int]):
        (self.which, self.n), self.seen = shard, 0

    def __call__(self, chunk: RecordChunk) -> RecordChunk:
        first = (self.which - 1 - self.seen) % self.n
        self.seen += len(chunk)
        return chunk.every(first, self.n)


def check_readable(paths: Iterable[str]) -> None:
    """Fail before any output is written when an input path cannot be opened (stdin `-` is always accepted)."""
    for path in paths:
        if path != "-" and (os.path.isfile(path) or not os.path.exists(path)):  # never consume a pipe twice
            next(read_chunks(path, 1), None)  # opens, sniffs and parses the first record only


@dataclass
class ReadOutputs:
    """Where `score` writes the reads themselves, by call; a '#' becomes _1/_2 for two mates."""

    in_out: str | None = None
    ood_out: str | None = None
    unscored_out: str | None = None

    def paths(self) -> dict[str, str | None]:
        return {"in": self.in_out, "ood": self.ood_out, "unscored": self.unscored_out}

    def __bool__(self) -> bool:
        return any(self.paths().values())


def score(model: str, reads: list[str], output: str | None = "-", *, layout: str = "single",
          batch_size: int = DEFAULT_BATCH_SIZE, stride: int | None = None, device: str = "auto",
          threads: int | None = None, summary: str | None = None, report: str | None = None,
          shard: tuple[int, int] | None = None, bf16: bool = False, threshold: float | None = None,
          fpr: float | None = None, read_outputs: ReadOutputs = ReadOutputs(), bed: str | None = None,
          multiqc: str | None = None, sample_name: str | None = None) -> dict:
    """`gooddetect score`: one TSV row per fragment of `reads` (in input order) to `output`, atomically.

    `layout`: "single" reads, "paired" (two files, R1 and R2, mates in the same order) or "interleaved". `shard=(i,
    n)` scores only fragments i, i+n, i+2n, ... (1-based, counted across all inputs), so n shards can run in
    parallel and `merge_shards` restores the input order. `threshold` (fixed) or `fpr` (from the calibration
    table, by read length) override the model's thresholds. `read_outputs` writes the records by call, `bed` a
    track of per-window LLRs, `report` a per-input table, `multiqc` the same as MultiQC custom content."""
    check_layout(reads, layout)
    mates = MATES[layout]
    read_files = ReadSplitter.output_files(read_outputs.paths(), mates)
    outputs = [o for o in (output, summary, report, bed, multiqc, *read_files) if o not in (None, "-")]
    _check_distinct(outputs)
    check_output_paths(*outputs)
    splitter = ReadSplitter(read_outputs.paths(), mates, layout) if read_outputs else None
    detector = load_detector(model, device=device, threads=threads, bf16=bf16)
    thresholds = calibration.resolve(detector.calibration, threshold, fpr)
    if splitter and thresholds is None:
        raise UsageError("writing reads by call needs a threshold: calibrate the model, or give --threshold")
    check_readable(reads)
    duplicates = DuplicateCounter()
    per_input: dict[str, ScoreCounts] = {}
    sharded = _Shard(shard) if shard else None
    classifier = detector.classifier
    with ExitStack() as stack:
        out = stack.enter_context(atomic_output(output))
        bed_out = stack.enter_context(atomic_output(bed)) if bed else None
        if splitter:
            splitter.open(stack)
        bar = stack.enter_context(progress(unit="read", desc="scoring"))
        out.write("\t".join(columns(mates, classifier_columns(classifier))) + "\n")
        labels: deque[str] = deque()  # the input of each chunk on its way through the scoring pipeline

        def fragments() -> Iterator[RecordChunk]:
            for label, chunk in read_fragments(reads, layout, min(batch_size, CHUNK_RECORDS)):
                labels.append(label)
                duplicates.add(chunk.ids)
                yield sharded(chunk) if sharded else chunk

        for scored in score_chunks(detector, fragments(), batch_size=batch_size, stride=stride):
            counts = per_input.setdefault(labels.popleft(), ScoreCounts())
            limits = thresholds.for_fragments(scored.n_scored) if thresholds else None
            is_ood = (scored.score > limits) & scored.scored if thresholds else None
            counts.add(scored, is_ood)
            out.write(tsv_rows(scored, limits, classifier_fields(scored, classifier) if classifier else {}))
            if bed_out:
                bed_out.write(bed_rows(scored, thresholds.for_fragments(scored.window_scored)
                                       if thresholds else None))
            if splitter:
                splitter.write(scored, is_ood)
            bar.update(len(scored))
    calibrated = thresholds is not None
    totals = sum(per_input.values(), ScoreCounts())
    result = totals.as_dict(calibrated) | {
        "duplicate_ids": duplicates.count(), "inputs": list(per_input), "layout": layout,
        "shard": f"{shard[0]}/{shard[1]}" if shard else None,
        "thresholds": thresholds.summary() if calibrated else None}
    threshold_text = thresholds.describe() if calibrated else "NA"
    if summary:
        with atomic_output(summary) as handle:
            json.dump(result, handle, indent=2, sort_keys=True)
            handle.write("\n")
    if report:
        with atomic_output(report) as handle:
            write_report(handle, per_input, thresholds.code() if calibrated else "NA")
    if multiqc:
        samples = {sample_name: totals} if sample_name else {multiqc_sample(label): c for label, c in per_input.items()}
        write_multiqc(multiqc, multiqc_content({name: c.as_dict(calibrated) for name, c in samples.items()},
                                               threshold_text))
    log.info("score: %s", describe_counts(result | {"thresholds_text": threshold_text}))
    return result


def _check_distinct(paths: list[str]) -> None:
    seen: dict[str, str] = {}
    for path in paths:
        key = os.path.realpath(path)
        if key in seen:
            raise UsageError(f"two outputs name the same file: {seen[key]} and {path}")
        seen[key] = path


def merge_shards(shards: list[str], output: str) -> int:
    """Interleave the TSVs of `score --shard i/n` (given in order 1..n) back into input order; returns rows."""
    handles = [(gzip.open if p.endswith(".gz") else open)(p, "rt", encoding="utf-8") for p in shards]
    try:
        headers = {h.readline() for h in handles}
        if len(headers) != 1 or not next(iter(headers)).startswith("read_id\t"):
            raise InputError(f"{', '.join(shards)}: not score TSVs with the same header")
        rows = 0
        with atomic_output(output) as out:
            out.write(headers.pop())
            while True:
                lines = [h.readline() for h in handles]
                present = [bool(line) for line in lines]
                k = present.index(False) if False in present else len(lines)
                # Shard i holds reads i, i+n, ...: a round is full, or a prefix of shards then none at all.
                if any(present[k:]) or (k < len(lines) and any(h.readline() for h in handles[:k])):
                    raise InputError(f"{', '.join(shards)}: inconsistent row counts; give all shards of one run, "
                                     f"in order 1..n")
                out.writelines(lines[:k])
                rows += k
                if k < len(lines):
                    break
        return rows
    finally:
        for handle in handles:
            handle.close()


# -- calibration and evaluation ------------------------------------------------------------------------------------


@dataclass
class SampleScores:
    """Per-read values of the scored reads of a sample (unscored reads are left out and counted): read_id, score,
    loglik_fg, n_scored and, with a classifier, class (index), class_prob and its OOD scores."""

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


def length_table(detector: Detector, sequences: list[str], *, batch_size: int = DEFAULT_BATCH_SIZE,
                 seed: int = 0) -> calibration.LengthTable:
    """The table of in-distribution score quantiles by length, from pieces of `sequences` (see calibration)."""
    lengths = np.fromiter(map(len, sequences), dtype=np.int64, count=len(sequences))
    groups, n_scored = {}, {}
    for length, (which, starts) in calibration.piece_spans(lengths, np.random.default_rng([seed, 3])).items():
        pieces = [sequences[i][s:s + length] for i, s in zip(which.tolist(), starts.tolist())]
        sample_chunks = (RecordChunk([], [str(i) for i in range(a, min(a + CHUNK_RECORDS, len(pieces)))],
                                     pieces[a:a + CHUNK_RECORDS]) for a in range(0, len(pieces), CHUNK_RECORDS))
        scores, scored_bases = [], []
        for scored in score_chunks(detector, sample_chunks, batch_size=batch_size):
            scores.append(scored.score[scored.scored])
            scored_bases.append(scored.n_scored[scored.scored])
        groups[length], n_scored[length] = np.concatenate(scores), np.concatenate(scored_bases)
    return calibration.LengthTable.fit(groups, n_scored)


def calibrate(model: str, output: str | None = None, *, rule: str = "target_fpr", value: float | None = 0.05,
              in_dist: list[str] = (), ood: list[str] = (), reads: list[str] = (), labels: str | None = None,
              length_aware: bool | None = None, batch_size: int = DEFAULT_BATCH_SIZE, device: str = "auto",
              threads: int | None = None) -> dict:
    """`gooddetect calibrate`: choose a threshold on a labeled sample by `rule`, store it with the calibration
    metrics, the FPR/TPR trade-off and the table of in-distribution score quantiles by read length in the model file
    (written atomically to `output`, default: in place). `length_aware` (default: for the target_fpr rule) makes
    `score` flag each read by the table at its length instead of by the one threshold."""
    if rule not in calibration.RULES:
        raise UsageError(f"unknown threshold rule {rule!r}")
    check_output_paths(output)
    detector = load_detector(model, device=device, threads=threads)
    scored, is_ood, in_sequences = labeled_scores(detector, in_dist=in_dist, ood=ood, reads=reads, labels=labels,
                                                  batch_size=batch_size, keep_sequences=True)
    if not (~is_ood).any():
        raise UsageError("calibration needs in-distribution reads (--in-dist, or 'in' labels)")
    threshold = calibration.choose_threshold(rule, value, scored["score"], is_ood)
    in_scores = scored["score"][~is_ood]
    flagged = float((in_scores > threshold).mean())
    table = length_table(detector, in_sequences, batch_size=batch_size)
    length_aware = rule == "target_fpr" if length_aware is None else length_aware
    report: dict = {"value": threshold, "rule": rule, "rule_value": value, "score": "score = -llr (per-base mean)",
                    "n_in": int((~is_ood).sum()), "n_ood": int(is_ood.sum()), "in_dist_flagged": flagged,
                    "fpr": value if rule == "target_fpr" else flagged, "length_aware": length_aware,
                    "table": table.to_dict(), "trade_off": calibration.trade_off(scored["score"], is_ood),
                    "gooddetect_version": __version__}
    if is_ood.any():
        report["metrics"] = metrics.summarize(scored["score"], is_ood, threshold)
    report = _finite_or_none(report)
    detector.meta["threshold"] = report
    detector.save(output or model)
    return report


def _finite_or_none(value):
    """The same data with non-finite floats (±inf, NaN) replaced by None, so it is valid JSON."""
    if isinstance(value, dict):
        return {k: _finite_or_none(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite_or_none(v) for v in value]
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


def evaluate(model: str, *, in_dist: list[str] = (), ood: list[str] = (), reads: list[str] = (),
             labels: str | None = None, classes: str | None = None, plots: str | None = None,
             batch_size: int = DEFAULT_BATCH_SIZE, device: str = "auto", threads: int | None = None) -> dict:
    """`gooddetect evaluate`: the paper's metrics (OOD positive) for every score side by side: the foreground
    likelihood, the LLR and, with a classifier, its OOD scores; class accuracy on the in-distribution reads when
    `classes` (or a `class` column of `labels`) names them."""
    detector = load_detector(model, device=device, threads=threads)
    has_classifier = detector.classifier is not None
    odin = has_classifier and detector.classifier.has_odin
    scored, is_ood, _ = labeled_scores(detector, in_dist=in_dist, ood=ood, reads=reads, labels=labels,
                                       batch_size=batch_size, odin=odin)
    if not is_ood.any() or is_ood.all():
        raise UsageError("evaluate needs both in-distribution and OOD reads")
    named = {"likelihood": -scored["loglik_fg"], "llr": scored["score"]}
    if has_classifier:
        named |= {name: scored[name] for name in (*detector.classifier.score_names, *(("odin",) if odin else ()))}
    result = {"scores": {name: metrics.summarize(values, is_ood) for name, values in named.items()},
              "n_in": int((~is_ood).sum()), "n_ood": int(is_ood.sum())}
    thresholds = calibration.resolve(detector.calibration)
    if thresholds is not None:  # the calls score makes: each read against its own threshold
        margin = scored["score"] - thresholds.for_fragments(scored["n_scored"])
        result["at_thresholds"] = {"thresholds": thresholds.code(), **metrics.confusion_at(margin, is_ood, 0.0)}
    class_table = classes or (labels if labels and _has_class_column(labels) else None)
    if has_classifier and class_table:

        truth = read_classes(class_table)
        names = detector.classifier.classes
        rows = [i for i, (rid, o) in enumerate(zip(scored["read_id"], is_ood.tolist())) if not o and rid in truth]
        if rows:
            result["class_accuracy"] = float(np.mean([names[scored["class"][i]] == truth[scored["read_id"][i]]
                                                      for i in rows]))
            result["class_accuracy_reads"] = len(rows)
    if plots:
        from .plots import write_plots

        os.makedirs(plots, exist_ok=True)
        llr = -scored["score"]
        result["plots"] = [str(p) for p in write_plots(
            plots, llr_in=llr[~is_ood], llr_ood=llr[is_ood],
            loglik_in=scored["loglik_fg"][~is_ood], loglik_ood=scored["loglik_fg"][is_ood])]
    return result


def _has_class_column(path: str) -> bool:
    with (gzip.open if path.endswith(".gz") else open)(path, "rt") as handle:
        return "class" in handle.readline().rstrip("\r\n").split("\t")


# -- model information ------------------------------------------------------------------------------------------


def info(model: str) -> dict:
    """Everything a model file records (no weights), as plain JSON-ready data."""
    document, tensors = read_model_file(model)
    document = dict(document)
    document["parameters"] = {role: int(sum(t.size for n, t in tensors.items() if n.startswith(role + ".")))
                              for role in document["models"]}
    document["file_bytes"] = os.path.getsize(model)
    return document
