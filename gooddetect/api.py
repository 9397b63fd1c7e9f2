"""The Python API behind each command: what `gooddetect <command>` does, callable from a notebook or a workflow."""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
import os
import time
from dataclasses import asdict
from typing import Iterable, Iterator

import numpy as np

from . import __version__, metrics
from .detector import STRANDS, Detector, read_model_file
from .errors import InputError, UsageError
from .runtime import atomic_output, check_output_paths, is_main_process, progress, resolve_device, set_threads
from .score import DEFAULT_BATCH_SIZE, ScoreCounts, score_chunks, write_header, write_rows
from .seqio import CHUNK_RECORDS, DuplicateCounter, RecordChunk, display_name, read_chunks, read_records
from .windows import WindowCounts, collect_windows, decode, gc_fraction, read_windows, sample_genome_windows

log = logging.getLogger("gooddetect")


def counted_chunks(paths: Iterable[str], duplicates: DuplicateCounter,
                   max_records: int = CHUNK_RECORDS) -> Iterator[RecordChunk]:
    """Record chunks of every file in turn, each id registered with `duplicates`."""
    for path in paths:
        for chunk in read_chunks(path, max_records):
            duplicates.add(chunk.names)
            yield chunk


class _Shard:
    """Keeps records i, i+n, i+2n, ... of shard (i, n), 1-based and counted across all the chunks it is given."""

    def __init__(self, shard: tuple[int, int]):
        (self.which, self.n), self.seen = shard, 0

    def __call__(self, chunks: Iterable[RecordChunk]) -> Iterator[RecordChunk]:
        for chunk in chunks:
            first = (self.which - 1 - self.seen) % self.n
            self.seen += len(chunk)
            yield RecordChunk(chunk.names[first::self.n], chunk.seqs[first::self.n])


def check_readable(paths: Iterable[str]) -> None:
    """Fail before any output is written when an input path cannot be opened (stdin `-` is always accepted)."""
    for path in paths:
        if path != "-" and (os.path.isfile(path) or not os.path.exists(path)):  # never consume a pipe twice
            next(iter(read_records(path)), None)  # opens, sniffs and parses the first record only


def write_windows(inputs: list[str], output: str, *, length: int = 250, stride: int | None = None,
                  min_length: int = 50, sample: int | None = None, both_strands: bool = False,
                  seed: int = 0) -> WindowCounts:
    """Write the windows of `inputs` as FASTA (`gooddetect windows`); returns what was done and skipped."""
    counts = WindowCounts(files=[display_name(p) for p in inputs])
    duplicates = DuplicateCounter()
    rng = np.random.default_rng(seed)
    with atomic_output(output) as out:
        if sample:
            streams = [sample_genome_windows(p, sample, rng, counts, length, both_strands) for p in inputs]
        else:
            records = (record for chunk in counted_chunks(inputs, duplicates) for record in chunk.records())
            streams = [read_windows(records, counts, length, stride, min_length, both_strands)]
        for stream in streams:
            for window in stream:
                out.write(f">{window.label}\n{decode(window.codes)}\n")
    counts.duplicate_ids = duplicates.count()
    log.info("windows: %d written from %d reads; skipped %d reads shorter than %d bp, %d windows with unknown "
             "bases; %d duplicate read ids", counts.windows, counts.reads, counts.reads_too_short, min_length,
             counts.windows_with_unknown, counts.duplicate_ids)
    return counts


# -- scoring ------------------------------------------------------------------------------------------------------


def load_detector(model: str, *, device: str = "cpu", threads: int | None = None, bf16: bool = False) -> Detector:
    """Load a model file and place it on `device` (`auto` picks CUDA when present); `bf16` scores an LSTM model
    under bfloat16 autocast."""
    set_threads(threads)
    detector = Detector.load(model)
    if bf16 and detector.kind != "lstm":
        raise UsageError(f"--bf16 applies to lstm models; {model} is a {detector.kind} model")
    for part in (detector.foreground, detector.background):
        if hasattr(part, "threads") and threads:
            part.threads = threads
        if bf16:
            part.bf16 = True
    if detector.kind == "lstm" or device != "auto":
        detector.to(resolve_device(device))
    return detector


def score(model: str, reads: list[str], output: str | None = "-", *, batch_size: int = DEFAULT_BATCH_SIZE,
          stride: int | None = None, device: str = "auto", threads: int | None = None,
          summary: str | None = None, report: str | None = None, shard: tuple[int, int] | None = None,
          bf16: bool = False) -> dict:
    """`gooddetect score`: write one TSV row per read of `reads` (in input order) to `output`, atomically.

    `shard=(i, n)` scores only reads i, i+n, i+2n, ... (1-based, counted across all inputs), so n shards can run
    in parallel and `merge_shards` restores the input order. `report` writes a per-input table of OOD fractions."""
    check_output_paths(output, summary, report)
    check_readable(reads)
    detector = load_detector(model, device=device, threads=threads, bf16=bf16)
    threshold = detector.threshold
    duplicates = DuplicateCounter()
    per_input: dict[str, ScoreCounts] = {}
    with atomic_output(output) as out, progress(unit="read", desc="scoring") as bar:
        write_header(out)
        sharded = _Shard(shard) if shard else None
        for path in reads:
            counts = per_input.setdefault(display_name(path), ScoreCounts())
            chunks = counted_chunks([path], duplicates, batch_size)
            if sharded:
                chunks = sharded(chunks)
            rows = score_chunks(detector, chunks, batch_size=batch_size, stride=stride, counts=counts)
            write_rows(_ticking(rows, bar), out, threshold, counts)
    totals = sum(per_input.values(), ScoreCounts())
    result = totals.as_dict(threshold) | {"duplicate_ids": duplicates.count(), "inputs": list(per_input),
                                          "shard": f"{shard[0]}/{shard[1]}" if shard else None}
    if summary:
        with atomic_output(summary) as handle:
            json.dump(result, handle, indent=2, sort_keys=True)
            handle.write("\n")
    if report:
        with atomic_output(report) as handle:
            write_report(handle, per_input, threshold)
    log.info("score: %s", describe_counts(result))
    return result


def write_report(out, per_input: dict[str, ScoreCounts], threshold: float | None) -> None:
    """A Kraken2-style one-glance table: per input, reads, scored reads, OOD reads and their fraction."""
    out.write("input\treads\tscored_reads\tood_reads\tood_fraction\tunscored_reads\tthreshold\n")
    for name, c in per_input.items():
        d = c.as_dict(threshold)
        fraction = "NA" if d["ood_fraction"] is None else f"{d['ood_fraction']:.6f}"
        ood = "NA" if d["ood"] is None else str(d["ood"])
        limit = "NA" if threshold is None else f"{threshold:.6f}"
        out.write(f"{name}\t{c.reads}\t{c.scored_reads}\t{ood}\t{fraction}\t{sum(c.skipped.values())}\t{limit}\n")


def merge_shards(shards: list[str], output: str) -> int:
    """Interleave the TSVs of `score --shard i/n` (given in order 1..n) back into input order; returns rows."""
    handles = [open(p, encoding="utf-8") for p in shards]
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


def _ticking(rows: Iterable, bar) -> Iterator:
    for row in rows:
        bar.update(1)
        yield row


def describe_counts(report: dict) -> str:
    """The closing summary line of `score`."""
    ood = ("uncalibrated (no threshold; is_ood = NA)" if report["threshold"] is None else
           f"{report['ood']} OOD ({100 * (report['ood_fraction'] or 0):.2f}% of scored reads, "
           f"threshold {report['threshold']:.4f})")
    skipped = ", ".join(f"{n} {reason}" for reason, n in report["skipped"].items()) or "none"
    return (f"{report['reads']} reads, {report['windows']} windows; {ood}; reads without score: {skipped}; "
            f"{report['duplicate_ids']} duplicate ids")


def score_arrays(detector: Detector, paths: list[str], *,
                 batch_size: int = DEFAULT_BATCH_SIZE) -> dict[str, np.ndarray]:
    """Per-read arrays (read_id, score = −LLR, loglik_fg) of the scored reads of `paths`, for calibration and
    evaluation; reads without a score are left out and counted in `n_unscored`."""
    counts = ScoreCounts()
    ids, scores, logliks = [], [], []
    for read in score_chunks(detector, counted_chunks(paths, DuplicateCounter(), batch_size), batch_size=batch_size,
                              counts=counts):
        if read.n_scored:
            ids.append(read.read_id)
            scores.append(read.score)
            logliks.append(read.loglik_fg)
    if counts.skipped:
        log.warning("%s: %d reads without a score left out (%s)", ", ".join(map(display_name, paths)),
                    sum(counts.skipped.values()), dict(counts.skipped))
    return {"read_id": np.array(ids, dtype=object), "score": np.array(scores), "loglik_fg": np.array(logliks),
            "n_unscored": sum(counts.skipped.values())}


# -- calibration and evaluation ------------------------------------------------------------------------------------

THRESHOLD_RULES = ("target_fpr", "max_f1", "youden", "percentile")


def labeled_scores(detector: Detector, *, in_dist: list[str] = (), ood: list[str] = (), reads: list[str] = (),
                   labels: str | None = None, batch_size: int = DEFAULT_BATCH_SIZE) -> tuple[dict, np.ndarray]:
    """Scores of a labeled sample and its labels (True = OOD): from separate in/OOD files, or from `reads` with a
    `labels` TSV (read_id, label in {in, ood}; a header line is allowed)."""
    parts, truth = [], []
    if labels:
        label_of = read_labels(labels)
        scored = score_arrays(detector, list(reads), batch_size=batch_size)
        known = np.array([rid in label_of for rid in scored["read_id"]], dtype=bool)
        if not known.all():
            log.warning("%d scored reads have no label in %s and are left out", int((~known).sum()), labels)
        scored = {k: v[known] if isinstance(v, np.ndarray) else v for k, v in scored.items()}
        parts.append(scored)
        truth.append(np.array([label_of[rid] for rid in scored["read_id"]], dtype=bool))
    for paths, is_ood in ((in_dist, False), (ood, True)):
        if paths:
            scored = score_arrays(detector, list(paths), batch_size=batch_size)
            parts.append(scored)
            truth.append(np.full(scored["score"].size, is_ood))
    if not parts:
        raise UsageError("give a labeled sample: --in-dist (and --ood), or READS with --labels")
    merged = {key: np.concatenate([p[key] for p in parts]) for key in ("read_id", "score", "loglik_fg")}
    return merged, np.concatenate(truth)


def read_labels(path: str) -> dict[str, bool]:
    """read_id → True for OOD, from a TSV with columns read_id and label (`in`/`ood`)."""
    label_of: dict[str, bool] = {}
    column = 1
    opener = gzip.open if path.endswith(".gz") else open
    try:
        with opener(path, "rt") as handle:
            for line_no, line in enumerate(handle, start=1):
                fields = line.rstrip("\r\n").split("\t")
                if line_no == 1 and fields[0] == "read_id":
                    column = fields.index("label") if "label" in fields else 1
                    continue
                if not line.strip():
                    continue
                if len(fields) <= column or fields[column] not in ("in", "ood"):
                    raise InputError(f"{path}: line {line_no}: expected read_id<TAB>label with label 'in' or 'ood'")
                label_of[fields[0]] = fields[column] == "ood"
    except OSError as exc:
        raise InputError(f"{path}: cannot read labels ({exc.strerror or exc})") from None
    return label_of


def choose_threshold(rule: str, value: float | None, scores: np.ndarray, is_ood: np.ndarray) -> float:
    """The threshold on the OOD score (flag when score > threshold) chosen by `rule`."""
    if rule == "target_fpr":
        return metrics.threshold_target_fpr(scores[~is_ood], value)
    if rule == "percentile":
        return metrics.threshold_percentile(scores, value)
    if not is_ood.any() or is_ood.all():
        raise UsageError(f"--{rule.replace('_', '-')} needs both in-distribution and OOD reads")
    if rule == "max_f1":
        threshold = metrics.threshold_max_f1(scores, is_ood)
        # -inf means "flag every read"; keep a finite value with that effect on this sample.
        return threshold if np.isfinite(threshold) else float(np.min(scores)) - 1e-6
    if rule == "youden":
        return metrics.threshold_youden(scores, is_ood)
    raise UsageError(f"unknown threshold rule {rule!r}")


def calibrate(model: str, output: str | None = None, *, rule: str = "target_fpr", value: float | None = 0.05,
              in_dist: list[str] = (), ood: list[str] = (), reads: list[str] = (), labels: str | None = None,
              batch_size: int = DEFAULT_BATCH_SIZE, device: str = "auto", threads: int | None = None) -> dict:
    """`gooddetect calibrate`: choose a threshold on a labeled sample and store it, with the rule and the
    calibration metrics, in the model file (written atomically to `output`, default: in place)."""
    detector = load_detector(model, device=device, threads=threads)
    scored, is_ood = labeled_scores(detector, in_dist=in_dist, ood=ood, reads=reads, labels=labels,
                                    batch_size=batch_size)
    if not (~is_ood).any() and rule == "target_fpr":
        raise UsageError("--target-fpr needs in-distribution reads (--in-dist, or 'in' labels)")
    threshold = choose_threshold(rule, value, scored["score"], is_ood)
    report: dict = {"value": threshold, "rule": rule, "rule_value": value, "score": "score = -llr (per-base mean)",
                    "n_in": int((~is_ood).sum()), "n_ood": int(is_ood.sum())}
    in_scores = scored["score"][~is_ood]
    report["in_dist_flagged"] = float((in_scores > threshold).mean()) if in_scores.size else None
    if is_ood.any() and (~is_ood).any():
        report["metrics"] = metrics.summarize(scored["score"], is_ood, threshold)
    report = _finite_or_none(report)
    detector.meta["threshold"] = report
    detector.save(output or model)
    return report


def _finite_or_none(value):
    """The same data with non-finite floats (±inf, NaN) replaced by None, so it is valid JSON."""
    if isinstance(value, dict):
        return {k: _finite_or_none(v) for k, v in value.items()}
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


def evaluate(model: str, *, in_dist: list[str] = (), ood: list[str] = (), reads: list[str] = (),
             labels: str | None = None, plots: str | None = None, batch_size: int = DEFAULT_BATCH_SIZE,
             device: str = "auto", threads: int | None = None) -> dict:
    """`gooddetect evaluate`: the paper's metrics for the LLR and, side by side, the foreground likelihood."""
    detector = load_detector(model, device=device, threads=threads)
    scored, is_ood = labeled_scores(detector, in_dist=in_dist, ood=ood, reads=reads, labels=labels,
                                    batch_size=batch_size)
    if not is_ood.any() or is_ood.all():
        raise UsageError("evaluate needs both in-distribution and OOD reads")
    llr = -scored["score"]
    result = {"llr": metrics.summarize(scored["score"], is_ood, detector.threshold),
              "likelihood": metrics.summarize(-scored["loglik_fg"], is_ood)}
    if plots:
        from .plots import write_plots

        os.makedirs(plots, exist_ok=True)
        result["plots"] = [str(p) for p in write_plots(
            plots, llr_in=llr[~is_ood], llr_ood=llr[is_ood],
            loglik_in=scored["loglik_fg"][~is_ood], loglik_ood=scored["loglik_fg"][is_ood])]
    return result


def format_metrics_table(result: dict) -> str:
    """A small aligned text table of evaluate's metrics."""
    names = [("auroc", "AUROC"), ("auprc", "AUPRC"), ("fpr_at_tpr80", "FPR@80%TPR"), ("fpr_at_tpr95", "FPR@95%TPR")]
    lines = ["score\t" + "\t".join(label for _, label in names)]
    for score_name, label in (("likelihood", "likelihood (-loglik_fg)"), ("llr", "LLR (-llr)")):
        lines.append(label + "\t" + "\t".join(f"{result[score_name][key]:.4f}" for key, _ in names))
    return "\n".join(lines) + "\n"


# -- model information ------------------------------------------------------------------------------------------


def info(model: str) -> dict:
    """Everything a model file records (no weights), as plain JSON-ready data."""
    document, tensors = read_model_file(model)
    document = dict(document)
    document["parameters"] = {role: int(sum(t.size for n, t in tensors.items() if n.startswith(role + ".")))
                              for role in ("foreground", "background")}
    document["file_bytes"] = os.path.getsize(model)
    return document


def format_info(document: dict) -> str:
    """`gooddetect info` as aligned `key: value` lines (nested keys joined with dots)."""
    lines = []

    def walk(prefix: str, value) -> None:
        if isinstance(value, dict) and value:
            for key in sorted(value):
                walk(f"{prefix}.{key}" if prefix else key, value[key])
        else:
            lines.append((prefix, "none" if value is None else json.dumps(value) if isinstance(value, (list, dict))
                          else str(value)))

    walk("", document)
    width = max(len(k) for k, _ in lines)
    return "\n".join(f"{k.ljust(width)}  {v}" for k, v in lines)


def format_calibration(report: dict, model: str) -> str:
    """The human-readable calibration summary printed by `gooddetect calibrate` (on stderr)."""
    rule = report["rule"] + (f" {report['rule_value']}" if report["rule_value"] is not None else "")
    lines = [f"calibrated {model}: threshold {report['value']:.6f} on score = -llr ({rule}; "
             f"{report['n_in']} in-distribution, {report['n_ood']} OOD reads)"]
    if report.get("in_dist_flagged") is not None:
        lines.append(f"  in-distribution reads flagged: {100 * report['in_dist_flagged']:.2f}%")
    m = report.get("metrics")
    if m:
        lines.append(f"  AUROC {m['auroc']:.4f}  AUPRC {m['auprc']:.4f}  FPR@80%TPR {m['fpr_at_tpr80']:.4f}  "
                     f"FPR@95%TPR {m['fpr_at_tpr95']:.4f}")
        lines.append(f"  at the threshold: precision {m['precision']:.4f}  recall {m['recall']:.4f}  F1 {m['f1']:.4f}")
    return "\n".join(lines)


# -- training -----------------------------------------------------------------------------------------------------

DEFAULT_MUTATION_RATE = {"lstm": 0.1, "kmer": 0.3}  # lstm: the paper's; kmer: chosen on validation
DEFAULT_SCORE_STRANDS = {"lstm": "both", "kmer": "forward"}  # chosen on validation (see the README)
LSTM_OPTIONS = ("hidden", "layers", "dropout", "embedding", "kmer_input", "kmer_embedding")
OPTIMISER_OPTIONS = {"lr": "lr", "lr_schedule": "lr_schedule", "train_batch_size": "batch_size", "epochs": "epochs",
                     "steps": "steps", "patience": "patience", "bf16": "bf16"}


def split_validation(codes: np.ndarray, lengths: np.ndarray, fraction: float, seed: int):
    """A seeded random split into (train codes, train lengths, validation codes, validation lengths)."""
    order = np.random.default_rng([seed, 1]).permutation(len(codes))
    n_val = max(1, int(round(fraction * len(codes)))) if fraction > 0 else 0
    if n_val >= len(codes):
        raise UsageError(f"only {len(codes)} training windows: too few to hold out a validation set")
    val, train = np.sort(order[:n_val]), np.sort(order[n_val:])
    return codes[train], lengths[train], codes[val], lengths[val]


def train(inputs: list[str], output: str, *, kind: str = "lstm", length: int = 250, stride: int | None = None,
          min_length: int = 50, windows_per_file: int | None = None, max_windows: int | None = None,
          both_strands: bool = False, val_fraction: float = 0.05, mutation_rate: float | None = None,
          background_l2: float = 1e-4, score_strands: str | None = None, seed: int = 0, device: str = "auto",
          threads: int | None = None, checkpoint: str | None = None, resume: bool = False, **hyper) -> Detector:
    """`gooddetect train`: windows of `inputs` → foreground + mutated-background pair → model file `output`.

    `score_strands` ("forward" or "both", default DEFAULT_SCORE_STRANDS) is recorded in the model file: how
    score, calibrate and evaluate will score each window. `hyper` holds the kind's own settings (lstm: hidden,
    layers, dropout, embedding, kmer_input, kmer_embedding, lr, lr_schedule, train_batch_size, epochs, steps,
    patience, bf16; kmer: max_order); None means the default."""
    check_output_paths(output)
    set_threads(threads)
    if kind not in DEFAULT_MUTATION_RATE:
        raise UsageError(f"unknown --arch {kind!r}")
    if mutation_rate is None:
        mutation_rate = DEFAULT_MUTATION_RATE[kind]
    score_strands = score_strands or DEFAULT_SCORE_STRANDS[kind]
    if score_strands not in STRANDS:
        raise UsageError(f"--score-strands must be one of {', '.join(STRANDS)}, got {score_strands!r}")
    checkpoint = checkpoint or f"{output}.ckpt"
    started = time.perf_counter()
    counts = WindowCounts()
    codes, lengths = collect_windows(inputs, counts, length=length, stride=stride, min_length=min_length,
                                     windows_per_file=windows_per_file, max_windows=max_windows,
                                     both_strands=both_strands, seed=seed)
    train_codes, train_lengths, val_codes, val_lengths = split_validation(codes, lengths, val_fraction, seed)
    hyper = {k: v for k, v in hyper.items() if v is not None}
    training = {"inputs": [os.path.basename(f) for f in counts.files], "windows_sha256": _windows_digest(codes, lengths),
                "n_train_windows": int(len(train_codes)), "n_val_windows": int(len(val_codes)),
                "window_counts": counts.as_dict(), "windows_per_file": windows_per_file, "max_windows": max_windows,
                "both_strands": both_strands, "val_fraction": val_fraction, "mutation_rate": mutation_rate,
                "seed": seed, "gc_train": float(np.nanmean(gc_fraction(train_codes))),
                "versions": _versions(kind)}
    if kind == "lstm":
        foreground, background, stats = _train_lstm(
            train_codes, train_lengths, val_codes, val_lengths, hyper, mutation_rate=mutation_rate,
            background_l2=background_l2, seed=seed, device=device,
            checkpoint=checkpoint, resume=resume, training=training)
    else:
        foreground, background, stats = _train_kmer(train_codes, train_lengths, val_codes, val_lengths, hyper,
                                                    mutation_rate=mutation_rate, seed=seed, training=training)
    training["validation"] = stats
    detector = Detector(foreground, background, {"window_length": length, "min_length": min_length,
                                                 "strands": score_strands, "training": training, "threshold": None})
    if is_main_process():
        detector.save(output)
        if kind == "lstm" and os.path.exists(checkpoint):
            os.unlink(checkpoint)
        log.info("train: %d windows (%d for validation) from %d input(s); skipped %d reads shorter than %d bp and "
                 "%d windows with unknown bases; validation loss foreground %.4f, background %.4f nats/base; "
                 "%.1f s; model written to %s", len(codes), len(val_codes), len(counts.files), counts.reads_too_short,
                 min_length, counts.windows_with_unknown, stats["foreground"]["val_loss"],
                 stats["background"]["val_loss"], time.perf_counter() - started, output)
    return detector


def _train_lstm(train_codes, train_lengths, val_codes, val_lengths, hyper: dict, *, mutation_rate: float,
                background_l2: float, seed: int, device: str, checkpoint: str, resume: bool, training: dict):
    from .models.lstm import LSTMConfig
    from .train import TrainConfig, train_lstm_pair

    unknown = set(hyper) - set(LSTM_OPTIONS) - set(OPTIMISER_OPTIONS)
    if unknown:
        raise UsageError(f"options not used by --arch lstm: {', '.join(sorted(unknown))}")
    model_config = LSTMConfig(**{k: hyper[k] for k in LSTM_OPTIONS if k in hyper})
    optimiser = {OPTIMISER_OPTIONS[k]: hyper[k] for k in OPTIMISER_OPTIONS if k in hyper}
    if "steps" in optimiser and "epochs" not in optimiser:
        optimiser["epochs"] = None
    config = TrainConfig(mutation_rate=mutation_rate, background_l2=background_l2, seed=seed,
                         device=resolve_device(device), **optimiser)
    training["optimiser"] = {k: v for k, v in asdict(config).items() if k not in ("device",)}
    foreground, background, stats = train_lstm_pair(train_codes, train_lengths, val_codes, val_lengths,
                                                    model_config, config, checkpoint=checkpoint, resume=resume)
    return foreground, background, {role: {k: v for k, v in s.items() if k != "seconds"} for role, s in stats.items()}


def _train_kmer(train_codes, train_lengths, val_codes, val_lengths, hyper: dict, *, mutation_rate: float,
                seed: int, training: dict):
    from .models.kmer import KmerConfig, KmerModel

    config = KmerConfig(**hyper)
    rng = np.random.default_rng([seed, 2])
    foreground = KmerModel.fit(train_codes, train_lengths, config=config, mutation_rate=0.0, rng=rng)
    # A low-order background (exact tables only) keeps the foreground's long k-mer matches (validated: see README).
    background = KmerModel.fit(train_codes, train_lengths, config=config.background(), mutation_rate=mutation_rate,
                               rng=rng)
    training["background_config"] = "KmerConfig.background() of the foreground config"
    stats = {}
    for role, model in (("foreground", foreground), ("background", background)):
        total, n = model.loglik(val_codes, val_lengths)
        stats[role] = {"val_loss": float(-total.sum() / max(n.sum(), 1))}
    return foreground, background, stats


def _windows_digest(codes: np.ndarray, lengths: np.ndarray) -> str:
    digest = hashlib.sha256(np.ascontiguousarray(codes).tobytes())
    digest.update(np.ascontiguousarray(lengths, dtype=np.int64).tobytes())
    return digest.hexdigest()


def _versions(kind: str) -> dict:
    from importlib.metadata import version

    found = {"gooddetect": __version__, "numpy": np.__version__}
    if kind == "lstm":
        found["torch"] = version("torch")
    return found
