"""What `gooddetect train` does: read the training data, train each part of the model file, write the Detector.

The LSTM pair trains on windows (a validation split holds out source windows, each with its reverse complement
when both strands are used); the k-mer pair counts every k-mer of every input record in one streaming pass.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import time
from dataclasses import asdict, replace

import numpy as np

from . import __version__
from .alphabet import gc_fraction
from .detector import STRANDS, Detector
from .errors import InputError, UsageError
from .labels import read_classes
from .runtime import check_output_paths, is_main_process, resolve_device, set_threads
from .outputs import SEQUENCE_SUFFIXES
from .seqio import display_name, read_chunks
from .windows import Windows, WindowCounts, collect_windows, sample_genome_windows, sequence_slices, \
    with_reverse_complements

log = logging.getLogger("gooddetect")

DEFAULT_MUTATION_RATE = {"lstm": 0.1, "kmer": 0.3}  # lstm: the paper's; kmer: chosen on validation
DEFAULT_SCORE_STRANDS = {"lstm": "both", "kmer": "forward"}  # chosen on validation (see the README)
LSTM_OPTIONS = ("hidden", "layers", "dropout", "embedding", "kmer_input", "kmer_embedding")
OPTIMISER_OPTIONS = {"lr": "lr", "lr_schedule": "lr_schedule", "train_batch_size": "batch_size", "epochs": "epochs",
                     "steps": "steps", "patience": "patience", "bf16": "bf16", "checkpoint_every": "checkpoint_every"}
# Options that only one model kind uses; giving one to the other kind is a usage error.
KIND_OPTIONS = {
    "lstm": {*LSTM_OPTIONS, *OPTIMISER_OPTIONS, "val_fraction", "background_l2", "background_kmer_input", "checkpoint",
             "resume", "stride",
             "max_windows", "both_strands", "device"},
    "kmer": {"max_order", "hash_bits"},
}
DEFAULT_CLASSIFIER = "kmer"  # chosen on validation (see the README); "convnet" is the paper's
CONVNET_OPTIONS = {"classifier_filters": "filters", "classifier_width": "width", "classifier_hidden": "hidden"}
CONVNET_TRAINING = {"classifier_lr": "lr", "classifier_batch_size": "batch_size", "classifier_epochs": "epochs"}
KMER_CLASSIFIER_OPTIONS = {"classifier_order": "order"}
# Options of each classifier kind; giving one to the other kind is a usage error.
CLASSIFIER_KIND_OPTIONS = {"convnet": {*CONVNET_OPTIONS, *CONVNET_TRAINING}, "kmer": set(KMER_CLASSIFIER_OPTIONS)}
SLICE_BASES = 1 << 16  # k-mer training counts long records in slices of this many bases
DEFAULT_VAL_FRACTION = 0.05
DEFAULT_BACKGROUND_KMER_INPUT = 0  # chosen on validation (see the README): no k-mer table in the background
# The foreground's default k-mer input by training bases (upper bound, exclusive), and the default epochs.
KMER_INPUT_BY_BASES = ((3_000_000, 6), (6_000_000, 7), (10_000_000, 8), (15_000_000, 9), (math.inf, 10))
MIN_STEPS, MAX_EPOCHS = 200, 10


class ClassLabels:
    """The class of every training read: from a TSV (read_id, class; a header naming a `class` column allowed), from
    the input file each read comes from, or from each read's header (`class=NAME`, as TFRecord inputs have it).
    Checked once the inputs are read: every read labeled, every label used, every class with windows, two classes
    or more."""

    def __init__(self, inputs: list[str], path: str | None = None, per_file: bool = False, per_record: bool = False):
        if sum(map(bool, (path, per_file, per_record))) > 1:
            raise UsageError("give one of --classes, --class-per-file, --record-classes")
        self.path, self.per_file, self.per_record = path, per_file, per_record
        self.source = path or ("--class-per-file" if per_file else "--record-classes")
        if per_file:
            self.file_class = [SEQUENCE_SUFFIXES.sub("", os.path.basename(display_name(p))) for p in inputs]
            self.names = sorted(set(self.file_class))
        elif path:
            self.class_of = read_classes(path)
            self.names = sorted(set(self.class_of.values()))
        else:
            self.names = []
        self.index = {name: i for i, name in enumerate(self.names)}
        self.seen: set[str] = set()
        self.unlabeled: list[str] = []

    def __call__(self, file_index: int, headers: list[str]) -> np.ndarray:
        if self.per_file:
            return np.full(len(headers), self.index[self.file_class[file_index]], dtype=np.int64)
        ids = [h.split(None, 1)[0] for h in headers]
        if self.per_record:
            names = [next((w[6:] for w in h.split()[1:] if w.startswith("class=")), None) for h in headers]
            for name in filter(None, names):
                self.index.setdefault(name, len(self.index))
        else:
            self.seen.update(ids)
            names = [self.class_of.get(i) for i in ids]
        labels = np.array([self.index.get(name, -1) if name else -1 for name in names], dtype=np.int64)
        if (labels < 0).any():
            self.unlabeled += [i for i, label in zip(ids, labels.tolist()) if label < 0]
        return labels

    def check(self, windows: Windows) -> Windows:
        """The windows, their labels renumbered by sorted class name; raises for the problems listed above."""
        if self.unlabeled:
            raise InputError(f"{self.source}: {len(self.unlabeled)} training reads have no class (first: "
                             f"{self.unlabeled[0]})")
        if self.path:
            unused = [i for i in self.class_of if i not in self.seen]
            if unused:
                raise InputError(f"{self.source}: names {len(unused)} reads that are not in the inputs (first: "
                                 f"{unused[0]})")
        if self.per_record:  # classes met while reading: number them by name
            self.names = sorted(self.index)
            order = np.array([self.names.index(name) for name in self.index], dtype=np.int64)
            windows = Windows(windows.codes, windows.lengths, order[windows.labels])
        if len(self.names) < 2:
            raise InputError(f"{self.source}: a classifier needs two classes or more; found {len(self.names)}")
        per_class = np.bincount(windows.labels, minlength=len(self.names))
        empty = [name for name, n in zip(self.names, per_class.tolist()) if n == 0]
        if empty:
            raise InputError(f"{self.source}: class {empty[0]} has no training window")
        return windows


def split_validation(windows: Windows, fraction: float, seed: int) -> tuple[Windows, Windows]:
    """A seeded random split of source windows into (training, validation)."""
    order = np.random.default_rng([seed, 1]).permutation(len(windows))
    n_val = max(1, int(round(fraction * len(windows)))) if fraction > 0 else 0
    if n_val >= len(windows):
        raise UsageError(f"only {len(windows)} training windows: too few to hold out a validation set")
    return windows.take(np.sort(order[n_val:])), windows.take(np.sort(order[:n_val]))


def check_kind_options(kind: str, options: dict) -> None:
    """Refuse options given (not None, not False) that the model kind does not use."""
    if kind not in KIND_OPTIONS:
        raise UsageError(f"unknown --arch {kind!r} (known: {', '.join(KIND_OPTIONS)})")
    foreign = sorted(name for name, value in options.items() if value not in (None, False)
                     and name not in KIND_OPTIONS[kind] and any(name in names for names in KIND_OPTIONS.values()))
    if foreign:
        flags = ", ".join("--" + name.replace("_", "-") for name in foreign)
        raise UsageError(f"{flags}: not used by --arch {kind}")


def train(inputs: list[str], output: str, *, kind: str = "lstm", length: int = 250, min_length: int = 50,
          windows_per_file: int | None = None, mutation_rate: float | None = None, score_strands: str | None = None,
          seed: int = 0, threads: int | None = None, classes: str | None = None, class_per_file: bool = False,
          record_classes: bool = False, classifier: str | None = None, **options) -> Detector:
    """`gooddetect train`: the foreground + background pair of `kind` from `inputs`, written to `output`.

    `score_strands` ("forward" or "both", default DEFAULT_SCORE_STRANDS) is recorded in the model file: how score,
    calibrate and evaluate score each window. `options` holds the kind's own settings (see KIND_OPTIONS; None means
    the default). With classes, `classifier` ("kmer" or "convnet", default DEFAULT_CLASSIFIER) is trained too."""
    check_kind_options(kind, options)
    check_output_paths(output)
    wants_classes = classes or class_per_file or record_classes
    labels = ClassLabels(inputs, classes, class_per_file, record_classes) if wants_classes else None
    classifier = classifier or DEFAULT_CLASSIFIER
    _check_classifier_options(classifier, options, bool(labels))
    if record_classes and windows_per_file:
        raise UsageError("--record-classes reads each read's class from its header: not with --windows-per-file")
    set_threads(threads)
    mutation_rate = DEFAULT_MUTATION_RATE[kind] if mutation_rate is None else mutation_rate
    score_strands = score_strands or DEFAULT_SCORE_STRANDS[kind]
    if score_strands not in STRANDS:
        raise UsageError(f"--score-strands must be one of {', '.join(STRANDS)}, got {score_strands!r}")
    started = time.perf_counter()
    counts = WindowCounts()
    options = {k: v for k, v in options.items() if v is not None}
    training = {"inputs": [os.path.basename(display_name(f)) for f in inputs], "windows_per_file": windows_per_file,
                "mutation_rate": mutation_rate, "seed": seed, "versions": _versions(kind)}
    windows = None
    if kind == "lstm" or labels:
        windows = collect_windows(inputs, counts, length=length, stride=options.get("stride"), min_length=min_length,
                                  windows_per_file=windows_per_file, max_windows=options.get("max_windows"), seed=seed,
                                  classes=labels)
        training["windows_sha256"] = _digest(windows.codes, windows.lengths)
    if kind == "lstm":
        foreground, background = _train_lstm(windows, output, training, options, mutation_rate=mutation_rate,
                                             seed=seed)
    else:
        foreground, background = _train_kmer(inputs, training, options, length=length, min_length=min_length,
                                             windows_per_file=windows_per_file, mutation_rate=mutation_rate, seed=seed)
    classifier = _train_classifier(classifier, windows, labels, training, options, seed=seed) if labels else None
    if windows is not None:
        training["window_counts"] = counts.as_dict()
    detector = Detector(foreground, background, {"window_length": length, "min_length": min_length,
                                                 "strands": score_strands, "training": training, "threshold": None},
                        classifier=classifier)
    if is_main_process():
        detector.save(output)
        log.info("train: %s model from %d input(s) in %.1f s; written to %s", kind, len(inputs),
                 time.perf_counter() - started, output)
    return detector


def _train_lstm(windows: Windows, output: str, training: dict, options: dict, *, mutation_rate: float, seed: int):
    from .models.lstm import LSTMConfig
    from .train import TrainConfig, train_lstm_pair

    checkpoint = options.get("checkpoint") or f"{output}.ckpt"
    val_fraction = options.get("val_fraction", DEFAULT_VAL_FRACTION)
    train_windows, val_windows = split_validation(windows, val_fraction, seed)
    train_codes, train_lengths, val_codes, val_lengths = (*_arrays(train_windows), *_arrays(val_windows))
    source_bases = int(train_lengths.sum())
    if options.get("both_strands"):
        train_codes, train_lengths = with_reverse_complements(train_codes, train_lengths)
        val_codes, val_lengths = with_reverse_complements(val_codes, val_lengths)
    sized = {k: v for k, v in sized_defaults(source_bases, len(train_codes),
                                             options.get("train_batch_size", 100)).items()
             if k not in options and not (k == "epochs" and "steps" in options)}
    options = {**sized, **options}
    model_config = LSTMConfig(**{k: options[k] for k in LSTM_OPTIONS if k in options})
    background_config = replace(model_config, kmer_input=options.get("background_kmer_input",
                                                                     DEFAULT_BACKGROUND_KMER_INPUT))
    optimiser = {OPTIMISER_OPTIONS[k]: options[k] for k in OPTIMISER_OPTIONS if k in options}
    if "steps" in optimiser and "epochs" not in optimiser:
        optimiser["epochs"] = None
    config = TrainConfig(mutation_rate=mutation_rate, background_l2=options.get("background_l2", 1e-4), seed=seed,
                         device=resolve_device(options.get("device", "auto")), **optimiser)
    training |= {"n_train_windows": int(len(train_codes)), "n_val_windows": int(len(val_codes)),
                 "max_windows": options.get("max_windows"), "both_strands": bool(options.get("both_strands")),
                 "val_fraction": val_fraction, "gc_train": float(np.nanmean(gc_fraction(train_codes))),
                 "sized_defaults": sized,
                 "optimiser": {k: v for k, v in asdict(config).items() if k not in ("device", "checkpoint_every")}}
    foreground, background, stats = train_lstm_pair(train_codes, train_lengths, val_codes, val_lengths, model_config,
                                                    config, checkpoint=checkpoint, resume=options.get("resume", False),
                                                    background_config=background_config)
    training["validation"] = {role: {k: v for k, v in s.items() if k != "seconds"} for role, s in stats.items()}
    if is_main_process() and os.path.exists(checkpoint):
        os.unlink(checkpoint)
    return foreground, background


def sized_defaults(train_bases: int, train_windows: int, batch_size: int) -> dict:
    """The LSTM defaults that depend on the size of the training set (chosen on validation, see the README): the
    foreground's k-mer input K (a 4^K-row table needs many bases per row, or it memorises the training windows) and
    the epochs (at least MIN_STEPS optimizer steps, at most MAX_EPOCHS passes)."""
    kmer_input = next(k for bases, k in KMER_INPUT_BY_BASES if train_bases < bases)
    steps_per_epoch = max(1, math.ceil(train_windows / batch_size))
    return {"kmer_input": kmer_input, "epochs": min(MAX_EPOCHS, max(1, math.ceil(MIN_STEPS / steps_per_epoch)))}


def _arrays(windows: Windows) -> tuple[np.ndarray, np.ndarray]:
    return windows.codes, windows.lengths


def _check_classifier_options(classifier: str, options: dict, has_labels: bool) -> None:
    if classifier not in CLASSIFIER_KIND_OPTIONS:
        raise UsageError(f"unknown --classifier {classifier!r} (known: {', '.join(CLASSIFIER_KIND_OPTIONS)})")
    given = [k for names in CLASSIFIER_KIND_OPTIONS.values() for k in sorted(names) if options.get(k) is not None]
    if given and not has_labels:
        raise UsageError(f"--{given[0].replace('_', '-')}: a classifier is trained only with --classes, "
                         "--class-per-file or --record-classes")
    foreign = [k for k in given if k not in CLASSIFIER_KIND_OPTIONS[classifier]]
    if foreign:
        raise UsageError(f"--{foreign[0].replace('_', '-')}: not used by --classifier {classifier}")


def _train_classifier(kind: str, windows: Windows, labels: ClassLabels, training: dict, options: dict, *, seed: int):
    """The classifier of `kind` on the labeled windows, a validation split held out for its statistics."""
    windows = labels.check(windows)
    train_windows, val_windows = split_validation(windows, DEFAULT_VAL_FRACTION, seed)
    data = (*_arrays(train_windows), train_windows.labels, *_arrays(val_windows), val_windows.labels)
    started = time.perf_counter()
    if kind == "kmer":
        from .models.kmer_classifier import KmerClassifierConfig, train_kmer_classifier

        config = KmerClassifierConfig(classes=labels.names, **{KMER_CLASSIFIER_OPTIONS[k]: options[k]
                                                               for k in KMER_CLASSIFIER_OPTIONS if k in options})
        classifier = train_kmer_classifier(*data, config)
        settings = {}
    else:
        from .models.classifier import ClassifierConfig, ClassifierTraining, train_classifier

        config = ClassifierConfig(classes=labels.names, **{CONVNET_OPTIONS[k]: options[k] for k in CONVNET_OPTIONS
                                                           if k in options})
        schedule = ClassifierTraining(seed=seed, **{CONVNET_TRAINING[k]: options[k] for k in CONVNET_TRAINING
                                                    if k in options})
        classifier = train_classifier(*data, config, schedule)
        settings = asdict(schedule)
    training["classifier"] = {"classes_from": labels.source, **settings, **classifier.stats}
    log.info("train: %s classifier of %d classes in %.1f s, validation accuracy %.4f", kind, len(labels.names),
             time.perf_counter() - started, classifier.stats["val_accuracy"])
    return classifier


def _train_kmer(inputs, training: dict, options: dict, *, length: int, min_length: int,
                windows_per_file: int | None, mutation_rate: float, seed: int):
    from .models.kmer import DEFAULT_MAX_HASH_BITS, KmerConfig, KmerModel

    config = KmerConfig(**{k: options[k] for k in ("max_order", "hash_bits") if k in options})
    digest = hashlib.sha256()
    counts = WindowCounts()

    def batches():
        rng = np.random.default_rng(seed)
        for path in inputs:
            counts.files.append(display_name(path))
            if windows_per_file:
                rows = [codes for _, _, codes in sample_genome_windows(path, windows_per_file, rng, counts, length,
                                                                       min_length)]
                batch = (np.stack(rows), np.full(len(rows), length), np.zeros(len(rows), np.int64))
                digest.update(batch[0].tobytes())
                yield batch
                continue
            for chunk in read_chunks(path):
                counts.reads += len(chunk)
                codes, lengths, skip = sequence_slices(chunk.seqs, SLICE_BASES, config.max_order)
                digest.update(codes.tobytes())
                yield codes, lengths, skip

    foreground, background = KmerModel.fit_pair(
        batches(), config=config, background=config.background(), mutation_rate=mutation_rate, seed=seed,
        max_hash_bits=None if "hash_bits" in options else DEFAULT_MAX_HASH_BITS)
    training |= {"sequences_sha256": digest.hexdigest(), "background_config": "KmerConfig.background()",
                 "counting": {"records": counts.reads, "windows_sampled": counts.windows,
                              "foreground": foreground.stats, "background": background.stats}}
    log.info("train: counted %d positions; hashed tables %s full at 2^%d buckets (%d entries dropped from full "
             "buckets)", foreground.stats["positions"], foreground.stats["hashed_fill"], foreground.config.hash_bits,
             foreground.stats["hashed_dropped_full_bucket"])
    return foreground, background


def _digest(codes: np.ndarray, lengths: np.ndarray) -> str:
    digest = hashlib.sha256(np.ascontiguousarray(codes).tobytes())
    digest.update(np.ascontiguousarray(lengths, dtype=np.int64).tobytes())
    return digest.hexdigest()


def _versions(kind: str) -> dict:
    from importlib.metadata import version

    found = {"gooddetect": __version__, "numpy": np.__version__}
    found.update({"torch": version("torch")} if kind == "lstm" else {"numba": version("numba")})
    return found
