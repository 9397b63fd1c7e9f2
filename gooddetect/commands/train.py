"""`gooddetect train`: read the training data, train each part of the model file, write the Detector.

The options are typed: `TrainInputs` (every kind), `LstmData`, LSTMConfig and TrainConfig (`--arch lstm`),
`KmerTraining` and KmerConfig (`--arch kmer`), and the classifier's configs; each field's default is the one place
it is set. The LSTM pair trains on windows (a validation split holds out source windows, each with its reverse
complement when both strands are used) or, with `--genomes`, on fresh windows of whole genomes every epoch
(validation from held-out blocks); the k-mer pair counts every k-mer of every input record in one streaming
pass.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import time
from dataclasses import asdict, dataclass, replace

import numpy as np

from .. import __version__, options
from ..alphabet import gc_fraction
from ..detector import STRANDS, Detector
from ..errors import InputError, UsageError
from ..labels import read_classes
from ..models.configs import (DEFAULT_MAX_HASH_BITS, MAX_KMER_INPUT, ClassifierConfig, ClassifierTraining,
                              KmerClassifierConfig, KmerConfig, LSTMConfig)
from ..options import option
from ..outputs import SEQUENCE_SUFFIXES
from ..runtime import Runtime, check_output_paths, is_main_process
from ..seqio import display_name
from ..support import SupportTable, minimizer_keys, sequences_of
from ..training.config import MAX_EPOCHS, MIN_STEPS, TrainConfig
from ..windows import MIN_LENGTH, WINDOW_LENGTH, GenomeSplit, Windows, WindowCounts, collect_windows, \
    sample_genome_windows, split_genomes, with_reverse_complements

log = logging.getLogger("gooddetect")

# The foreground's default k-mer input by training bases (upper bound, exclusive), chosen on validation.
KMER_INPUT_BY_BASES = ((3_000_000, 6), (6_000_000, 7), (10_000_000, 8), (15_000_000, 9), (math.inf, 10))
# Fixed windows of at least LARGE_SET_BASES: both strands, LARGE_SET_EPOCHS epochs but at most LARGE_SET_STEPS steps
# (gdbench: 19,000 steps, 20-25 minutes on 2 cores; validation 0.820 -> 0.868, docs/method.md).
LARGE_SET_BASES, LARGE_SET_EPOCHS, LARGE_SET_STEPS = 10_000_000, 5, 20_000
# The two timed runs of --time-budget: their difference is the time of 100 steps alone, past the first steps of
# warm-up (with (5, 25), steps came out twice as slow as training then ran on gdbench).
PROBE_STEPS = (40, 140)
BUDGET_SHARE = 0.9  # of --time-budget for the steps: the rest for validation, loading and writing


@dataclass(frozen=True)
class TrainInputs:
    """What every model kind shares: the kind, the windows, and the optional classifier's classes."""

    arch: str = option("lstm", "Model kind of the foreground/background pair.", choices=("lstm", "kmer"))
    length: int = option(WINDOW_LENGTH, "Window length (bp) the model scores.", min=2)
    min_length: int = option(MIN_LENGTH, "Fewest known bases of a window that is scored (or trained on).", min=2)
    windows_per_file: int | None = option(None, "Treat inputs as genomes: sample this many random windows from each "
                                          "(indexed FASTA).", min=1)
    classes: str | None = option(None, "Also train a classifier: TSV read_id<TAB>class for every training read (or "
                                 "a header naming a `class` column).")
    class_per_file: bool = option(False, "Also train a classifier: each input file is one class, named after the "
                                  "file.")
    record_classes: bool = option(False, "Also train a classifier: each read's class is the `class=NAME` word of its "
                                  "header (TFRecord inputs have their `y`/`label` there).")
    classifier: str = option("kmer", "With classes: kmer (one k-mer Markov chain per class; chosen on validation) or "
                             "convnet (the paper's ConvNet, with its ODIN and Mahalanobis scores).",
                             choices=("kmer", "convnet"))
    no_support: bool = option(False, "Leave out the support table (the references' 20-mer minimizers): reads are "
                              "then called by the LLR alone, as in the paper, and none is called foreign.")


@dataclass(frozen=True)
class LstmData:
    """`--arch lstm`: the training windows, how the model scores, and the run's checkpoint."""

    score_strands: str = option("both", "How the model scores a window: as given (the paper) or both (mean over the "
                                "window and its reverse complement; twice the scoring time). Recorded in the model "
                                "file.", choices=STRANDS)
    stride: int | None = option(None, "lstm: step between training windows of a read.", min=1,
                                default_text="the window length")
    max_windows: int | None = option(None, "lstm: keep a uniform random subset of at most this many training "
                                     "windows.", min=1)
    train_strands: str | None = option(None, "lstm: train on the windows as given (forward, the paper) or on each "
                                       "window and its reverse complement (both: an epoch is twice as long; kmer "
                                       "counts both strands anyway).", choices=STRANDS,
                                       default_text=f"both from {LARGE_SET_BASES // 1_000_000} Mb of training bases, "
                                       "else forward")
    genomes: bool = option(False, "lstm: the inputs are genomes: every epoch draws fresh random windows (either "
                           "strand) from them, none across records or assembly gaps; validation windows come from "
                           "held-out blocks of about 10 kb (--val-fraction of them). An epoch covers the genomes "
                           "once.")
    val_fraction: float = option(0.05, "lstm: source windows held out for validation loss / early stopping.", min=0,
                                 max=0.5, min_open=True, max_open=True)
    background_kmer_input: int = option(0, "lstm: the background model's --kmer-input (chosen on validation).",
                                        min=0, max=MAX_KMER_INPUT)
    checkpoint: str | None = option(None, "lstm: checkpoint file.", default_text="OUTPUT.ckpt")
    resume: bool = option(False, "lstm: continue an interrupted run from its checkpoint.")
    time_budget: float | None = option(None, "lstm: train for about this many minutes on this machine: two timed "
                                       f"runs of the pair ({PROBE_STEPS[0]} and {PROBE_STEPS[1]} steps) set the "
                                       "number of steps up front (recorded in the model file; --steps N then gives "
                                       "the same model again).", min=0, min_open=True, metavar="MINUTES")


@dataclass(frozen=True)
class KmerTraining:
    """`--arch kmer`: the background's mutation rate and how the model scores (chosen on validation), and whether
    the inputs are count files (`gooddetect count`) to merge instead of sequences."""

    mutation_rate: float = option(0.3, "Background: probability of substituting each base.", min=0, max=1)
    score_strands: str = option("forward", "How the model scores a window.", choices=STRANDS)
    from_counts: bool = option(False, "kmer: IN... are count files of `gooddetect count` (parts of a reference, in "
                               "order): the model is the one of all their sequences at once, byte for byte.")


# The option groups of `train`, labelled by the model kind (or classifier) they belong to.
KIND_GROUPS = {"lstm": (LstmData, LSTMConfig, TrainConfig), "kmer": (KmerTraining, KmerConfig)}
CLASSIFIER_GROUPS = {"kmer": (KmerClassifierConfig,), "convnet": (ClassifierConfig, ClassifierTraining)}
OPTION_GROUPS = (("", TrainInputs), *((kind, g) for kind, groups in KIND_GROUPS.items() for g in groups),
                 *((f"{kind} classifier", g) for kind, groups in CLASSIFIER_GROUPS.items() for g in groups))


def option_names(groups) -> set[str]:
    """The parameter names of the options of `groups` (dataclasses)."""
    return {options.param_name(f, spec) for cls in groups for f, spec in options.specs(cls)}


KIND_OPTIONS = {kind: option_names(groups) for kind, groups in KIND_GROUPS.items()}
CLASSIFIER_OPTIONS = {kind: option_names(groups) for kind, groups in CLASSIFIER_GROUPS.items()}


@dataclass(frozen=True)
class TrainSettings:
    """Everything `train` was asked for: the shared inputs, typed, and the options given ({parameter name: value}),
    from which `part` builds any other settings dataclass (the options not given keep its defaults)."""

    inputs: TrainInputs
    given: dict

    def part(self, cls, **fixed):
        return options.build(cls, self.given, self.given.__contains__, **fixed)

    @classmethod
    def from_options(cls, given: dict) -> TrainSettings:
        """The settings of the options `given` ({parameter name: value}); unknown options and options of another
        model kind or classifier are usage errors."""
        known = option_names(cls_ for _, cls_ in OPTION_GROUPS)
        unknown = sorted(set(given) - known)
        if unknown:
            raise UsageError(f"unknown train option(s): {', '.join(unknown)}")
        was_given = given.__contains__
        inputs = options.build(TrainInputs, given, was_given)  # checks --arch and --classifier
        foreign = sorted(name for name in given if name not in KIND_OPTIONS[inputs.arch]
                         and any(name in names for names in KIND_OPTIONS.values()))
        if foreign:
            raise UsageError(f"{', '.join(_flag(n) for n in foreign)}: not used by --arch {inputs.arch}")
        classifier_given = sorted(n for names in CLASSIFIER_OPTIONS.values() for n in names if n in given)
        if classifier_given and not (inputs.classes or inputs.class_per_file or inputs.record_classes):
            raise UsageError(f"{_flag(classifier_given[0])}: a classifier is trained only with --classes, "
                             "--class-per-file or --record-classes")
        foreign = [n for n in classifier_given if n not in CLASSIFIER_OPTIONS[inputs.classifier]]
        if foreign:
            raise UsageError(f"{_flag(foreign[0])}: not used by --classifier {inputs.classifier}")
        if inputs.record_classes and inputs.windows_per_file:
            raise UsageError("--record-classes reads each read's class from its header: not with --windows-per-file")
        if given.get("genomes"):
            clash = [n for n in ("windows_per_file", "stride", "max_windows", "train_strands", "classes",
                                 "class_per_file", "record_classes") if given.get(n)]
            if clash:
                raise UsageError(f"{_flag(clash[0])}: not with --genomes (which draws windows of both strands from "
                                 "whole genomes)")
        settings = cls(inputs, dict(given))
        try:  # the kind's settings are checked before any work
            for part in KIND_GROUPS[inputs.arch]:
                settings.part(part)
        except ValueError as error:
            raise UsageError(str(error)) from None
        return settings


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


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


def train(inputs: list[str], output: str, *, seed: int = 0, runtime: Runtime | None = None, **given) -> Detector:
    """`gooddetect train`: the foreground + background pair from `inputs`, written to `output`.

    `given` holds the options as the command line names them (`arch`, `max_order`, `hidden`, `train_batch_size`,
    ...; see TrainInputs and KIND_GROUPS): every option not given keeps its dataclass's default. The model file
    records how each window is scored (`score_strands`) and, with classes, the classifier."""
    settings = TrainSettings.from_options(given)
    runtime = runtime or Runtime()
    inputs_ = settings.inputs
    check_output_paths(output)
    labels = ClassLabels(inputs, inputs_.classes, inputs_.class_per_file, inputs_.record_classes) \
        if inputs_.classes or inputs_.class_per_file or inputs_.record_classes else None
    started = time.perf_counter()
    counts = WindowCounts()
    kind = inputs_.arch
    mutation_rate = settings.part(TrainConfig if kind == "lstm" else KmerTraining).mutation_rate
    score_strands = settings.part(LstmData if kind == "lstm" else KmerTraining).score_strands
    training = {"inputs": [os.path.basename(display_name(f)) for f in inputs],
                "windows_per_file": inputs_.windows_per_file, "mutation_rate": mutation_rate, "seed": seed,
                "versions": _versions(kind)}
    windows = genomes = support_keys = None
    if kind == "lstm" and settings.part(LstmData).genomes:
        genomes = split_genomes(inputs, length=inputs_.length, min_length=inputs_.min_length,
                                val_fraction=settings.part(LstmData).val_fraction, seed=seed)
        training |= {"sequences_sha256": _digest(genomes.sequence, genomes.starts), "genomes": genomes.stats}
    elif kind == "lstm" or labels:
        data = settings.part(LstmData)
        windows = collect_windows(inputs, counts, length=inputs_.length, stride=data.stride,
                                  min_length=inputs_.min_length, windows_per_file=inputs_.windows_per_file,
                                  max_windows=data.max_windows, seed=seed, classes=labels)
        training["windows_sha256"] = _digest(windows.codes, windows.lengths)
    if kind == "lstm":
        foreground, background = _train_lstm(genomes or windows, output, training, settings, seed=seed,
                                             runtime=runtime)
    else:
        foreground, background, support_keys = _train_kmer(inputs, training, settings, seed=seed, runtime=runtime)
    classifier = _train_classifier(windows, labels, training, settings, seed=seed) if labels else None
    if windows is not None:
        training["window_counts"] = counts.as_dict()
    support = None if inputs_.no_support else SupportTable.from_keys(
        minimizer_keys(sequences_of(inputs)) if support_keys is None else support_keys)
    detector = Detector(foreground, background, {"window_length": inputs_.length, "min_length": inputs_.min_length,
                                                 "strands": score_strands, "training": training, "threshold": None},
                        classifier=classifier, support=support)
    if is_main_process():
        detector.save(output)
        log.info("train: %s model from %d input(s) in %.1f s; written to %s", kind, len(inputs),
                 time.perf_counter() - started, output)
    return detector


def _train_lstm(source: Windows | GenomeSplit, output: str, training: dict, settings: TrainSettings, *, seed: int,
                runtime: Runtime):
    """The LSTM pair on fixed windows (a validation split held out) or on fresh windows of genomes."""
    from ..training.data import FixedWindows, GenomeWindows
    from ..training.loop import train_lstm_pair

    runtime.torch()
    data = settings.part(LstmData)
    checkpoint = data.checkpoint or f"{output}.ckpt"
    given = settings.given
    if data.time_budget is not None and ("steps" in given or "epochs" in given):
        raise UsageError("--time-budget sets the number of steps: not with --steps or --epochs")
    requested = settings.part(TrainConfig)  # the options as given; the schedule is set below
    if isinstance(source, GenomeSplit):
        train_set = GenomeWindows(source.sequence, source.starts, source.lengths, settings.inputs.length)
        val_codes, val_lengths = with_reverse_complements(source.val.codes, source.val.lengths)
        source_bases, gc_train = int(source.lengths.sum()), float(gc_fraction(source.sequence))
        sized = sized_defaults(source_bases, len(train_set), requested.batch_size, genomes=True)
        strands = "both"
    else:
        train_windows, val_windows = split_validation(source, data.val_fraction, seed)
        train_codes, train_lengths = train_windows.codes, train_windows.lengths
        val_codes, val_lengths = val_windows.codes, val_windows.lengths
        source_bases = int(train_lengths.sum())
        sized = sized_defaults(source_bases, len(train_codes), requested.batch_size, data.train_strands)
        strands = sized["train_strands"]  # the one given, else the sized default
        if strands == "both":
            train_codes, train_lengths = with_reverse_complements(train_codes, train_lengths)
            val_codes, val_lengths = with_reverse_complements(val_codes, val_lengths)
        train_set = FixedWindows(train_codes, train_lengths)
        gc_train = float(np.nanmean(gc_fraction(train_set.codes)))
    sized = {k: v for k, v in sized.items() if k not in given and not (k == "epochs" and (
        "steps" in given or data.time_budget is not None))}
    model_config = settings.part(LSTMConfig, **{k: v for k, v in sized.items() if k == "kmer_input"})
    background_config = replace(model_config, kmer_input=data.background_kmer_input)
    schedule = {"epochs": sized["epochs"]} if "epochs" in sized else \
        {"epochs": None} if "steps" in given and "epochs" not in given else {}
    if data.time_budget is not None:
        probe = replace(requested, seed=seed, epochs=None, steps=1, eval_every=None)
        budget = budget_steps(data.time_budget, (train_set, val_codes, val_lengths), model_config,
                              background_config, probe, runtime, requested.eval_every)
        schedule = {"epochs": None, "steps": budget["steps"]}
        training["time_budget"] = budget
    config = replace(requested, seed=seed, **schedule)
    training |= {"n_train_windows": len(train_set), "n_val_windows": int(len(val_codes)),
                 "max_windows": data.max_windows, "both_strands": strands == "both",
                 "val_fraction": data.val_fraction, "gc_train": gc_train,
                 "sized_defaults": sized,
                 "optimiser": {k: v for k, v in asdict(config).items() if k not in ("device", "checkpoint_every")}}
    foreground, background, stats = train_lstm_pair(train_set, val_codes, val_lengths, model_config,
                                                    config, checkpoint=checkpoint, resume=data.resume,
                                                    background_config=background_config, runtime=runtime)
    training["validation"] = {role: {k: v for k, v in s.items() if k != "seconds"} for role, s in stats.items()}
    if is_main_process() and os.path.exists(checkpoint):
        os.unlink(checkpoint)
    return foreground, background


probe_clock = time.perf_counter  # what times the probes (a test replaces it)


def budget_steps(minutes: float, data: tuple, model_config, background_config, probe, runtime: Runtime,
                 eval_every: int | None) -> dict:
    """The steps that fill `minutes` on this machine: two runs of the pair (PROBE_STEPS, nothing written, each
    ending with one validation) give the seconds per step (their difference) and the seconds of a validation (what
    the shorter run took beyond its steps, start-up included); BUDGET_SHARE of the budget goes to the steps and to
    the validations they bring (every `eval_every` steps and at each epoch end). Returns what the model file
    records: {"minutes", "seconds_per_step", "seconds_per_validation", "steps"}."""
    from ..training.loop import train_lstm_pair

    elapsed = []
    for steps in PROBE_STEPS:
        started = probe_clock()
        train_lstm_pair(*data, model_config, replace(probe, steps=steps), background_config=background_config,
                        runtime=Runtime(threads=runtime.threads, device=runtime.device, progress=False))
        elapsed.append(probe_clock() - started)
    per_step = max((elapsed[1] - elapsed[0]) / (PROBE_STEPS[1] - PROBE_STEPS[0]), 1e-6)
    per_validation = max(elapsed[0] - PROBE_STEPS[0] * per_step, 0.0)
    steps_per_epoch = math.ceil(len(data[0]) / probe.batch_size)
    validations_per_step = 1 / steps_per_epoch + (1 / eval_every if eval_every else 0)
    steps = max(1, int(BUDGET_SHARE * minutes * 60 / (per_step + per_validation * validations_per_step)))
    log.info("train: %.3f s per step of the pair and %.1f s per validation on this machine: %d steps for %g minutes",
             per_step, per_validation, steps, minutes)
    return {"minutes": minutes, "seconds_per_step": round(per_step, 6),
            "seconds_per_validation": round(per_validation, 3), "steps": steps}


def sized_defaults(train_bases: int, train_windows: int, batch_size: int, strands: str | None = None,
                   genomes: bool = False) -> dict:
    """The LSTM defaults that depend on the size of the training set (chosen on validation, see docs/method.md):
    the foreground's k-mer input K (a 4^K-row table needs many bases per row, or it memorises the training windows),
    the strands fixed windows train on (unless `strands` is given) and the epochs: at least MIN_STEPS optimizer
    steps and at most MAX_EPOCHS passes, or for fixed windows of at least LARGE_SET_BASES, both strands for
    LARGE_SET_EPOCHS passes (fewer if they pass LARGE_SET_STEPS steps). `train_windows`: the windows of one strand
    (of an epoch, with `genomes`)."""
    kmer_input = next(k for bases, k in KMER_INPUT_BY_BASES if train_bases < bases)
    large = train_bases >= LARGE_SET_BASES and not genomes
    strands = strands or ("both" if large else "forward")
    steps_per_epoch = max(1, math.ceil(train_windows * (2 if strands == "both" and not genomes else 1) / batch_size))
    if large:
        epochs = max(1, min(LARGE_SET_EPOCHS, LARGE_SET_STEPS // steps_per_epoch))
    else:
        epochs = min(MAX_EPOCHS, max(1, math.ceil(MIN_STEPS / steps_per_epoch)))
    return {"kmer_input": kmer_input, **({} if genomes else {"train_strands": strands}), "epochs": epochs}


def _train_classifier(windows: Windows, labels: ClassLabels, training: dict, settings: TrainSettings, *, seed: int):
    """The classifier of `--classifier` on the labeled windows, a validation split held out for its statistics."""
    kind = settings.inputs.classifier
    windows = labels.check(windows)
    train_windows, val_windows = split_validation(windows, LstmData.val_fraction, seed)
    data = (train_windows.codes, train_windows.lengths, train_windows.labels, val_windows.codes,
            val_windows.lengths, val_windows.labels)
    started = time.perf_counter()
    if kind == "kmer":
        from ..models.kmer_classifier import train_kmer_classifier

        classifier = train_kmer_classifier(*data, settings.part(KmerClassifierConfig, classes=labels.names))
        schedule = {}
    else:
        from ..models.classifier import train_classifier

        schedule = settings.part(ClassifierTraining, seed=seed)
        classifier = train_classifier(*data, settings.part(ClassifierConfig, classes=labels.names), schedule)
        schedule = asdict(schedule)
    training["classifier"] = {"classes_from": labels.source, **schedule, **classifier.stats}
    log.info("train: %s classifier of %d classes in %.1f s, validation accuracy %.4f", kind, len(labels.names),
             time.perf_counter() - started, classifier.stats["val_accuracy"])
    return classifier


def _train_kmer(inputs: list[str], training: dict, settings: TrainSettings, *, seed: int, runtime: Runtime):
    """The pair and the minimizer hashes of the inputs (None when the windows were sampled: not counted)."""
    if settings.part(KmerTraining).from_counts:
        counts = merged_counts(inputs, settings)
    elif settings.inputs.windows_per_file:
        return *_train_kmer_on_sampled_windows(inputs, training, settings, seed=seed), None
    else:
        counts = count_kmers(inputs, settings, seed)
    foreground, background = counts.models()
    training |= counts.provenance(foreground, background) | {"inputs": counts.inputs, "seed": counts.settings["seed"],
                                                             "mutation_rate": counts.settings["mutation_rate"]}
    _log_counts(foreground)
    return foreground, background, counts.support_keys


# The options a count file fixes: `train --from-counts` takes them from the files.
COUNTING_OPTIONS = ("max_order", "hash_bits", "mutation_rate", "seed", "windows_per_file", "classes",
                    "class_per_file", "record_classes")


def count_kmers(inputs: list[str], settings: TrainSettings, seed: int):
    """The k-mer counts of every record of `inputs` (what `gooddetect count` writes)."""
    from ..kmer_counts import KmerCounts

    fold = "hash_bits" not in settings.given
    return KmerCounts.count(inputs, settings.part(KmerConfig), mutation_rate=settings.part(KmerTraining).mutation_rate,
                            seed=seed, hash_bits=DEFAULT_MAX_HASH_BITS if fold else settings.part(KmerConfig).hash_bits,
                            fold=fold)


def merged_counts(paths: list[str], settings: TrainSettings):
    """The counts of the count files `paths`, merged in order."""
    from ..kmer_counts import KmerCounts

    given = sorted(name for name in COUNTING_OPTIONS if name in settings.given)
    if given:
        raise UsageError(f"--{given[0].replace('_', '-')}: with --from-counts, the counting settings come from the "
                         "count files")
    counts = KmerCounts.load(paths[0])
    for path in paths[1:]:
        counts.merge(KmerCounts.load(path), path)
    return counts


def _log_counts(foreground) -> None:
    log.info("train: counted %d positions; hashed tables %s full at 2^%d buckets (%s of the buckets full)",
             foreground.stats["positions"], foreground.stats["hashed_fill"], foreground.config.hash_bits,
             foreground.stats["hashed_full_buckets"])


def _train_kmer_on_sampled_windows(inputs: list[str], training: dict, settings: TrainSettings, *, seed: int):
    """The pair counted on --windows-per-file random windows of each genome."""
    from ..models.kmer import KmerModel

    config = settings.part(KmerConfig)
    length, min_length = settings.inputs.length, settings.inputs.min_length
    digest = hashlib.sha256()
    counts = WindowCounts()

    def batches():
        rng = np.random.default_rng(seed)
        for path in inputs:
            counts.files.append(display_name(path))
            rows = [codes for _, _, codes in sample_genome_windows(path, settings.inputs.windows_per_file, rng, counts,
                                                                   length, min_length)]
            batch = (np.stack(rows), np.full(len(rows), length), np.zeros(len(rows), np.int64))
            digest.update(batch[0].tobytes())
            yield batch

    foreground, background = KmerModel.fit_pair(
        batches(), config=config, background=config.background(), mutation_rate=settings.part(KmerTraining).mutation_rate,
        seed=seed, max_hash_bits=None if "hash_bits" in settings.given else DEFAULT_MAX_HASH_BITS)
    training |= {"sequences_sha256": digest.hexdigest(), "background_config": "KmerConfig.background()",
                 "counting": {"records": counts.reads, "windows_sampled": counts.windows,
                              "foreground": foreground.stats, "background": background.stats}}
    _log_counts(foreground)
    return foreground, background


def _digest(codes: np.ndarray, lengths: np.ndarray) -> str:
    digest = hashlib.sha256(np.ascontiguousarray(codes).tobytes())
    digest.update(np.ascontiguousarray(lengths, dtype=np.int64).tobytes())
    return digest.hexdigest()


def _versions(kind: str) -> dict:
    from importlib.metadata import version

    found = {"gooddetect": __version__, "numpy": np.__version__}
    return (found | {"torch": version("torch")}) if kind == "lstm" else found  # the k-mer loops are our own C
