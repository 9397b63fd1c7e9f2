"""`gooddetect train`: read the training data, let the model kind train its pair, train the classifier if asked,
and write the Detector.

The options are typed: `TrainInputs` (every kind), each model kind's option groups (models.registry: the kind's
package) and each classifier's; each field's default is the one place it is set. A kind that trains on windows of
the reads (lstm) gets them from here, as does a classifier; one that reads its inputs itself (kmer) gets none.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import asdict, dataclass, fields

import numpy as np

from .. import __version__, options
from ..detector import Detector
from ..errors import UsageError
from ..files import check_output_paths
from ..labels import ClassLabels
from ..models.registry import CLASSIFIERS, KINDS, classifier_trainer, model_kind
from ..options import option
from ..runtime import Runtime, is_main_process
from ..seqio import display_name
from ..support import SupportTable, minimizer_keys, sequences_of
from ..windows import MIN_LENGTH, WINDOW_LENGTH, WindowCounts, Windows, collect_windows, digest, split_validation

log = logging.getLogger("gooddetect")
CLASSIFIER_VAL_FRACTION = 0.05  # the classifier's validation split of the labeled windows


@dataclass(frozen=True)
class TrainOutput:
    output: str | None = option(None, "Model file to write (safetensors).", short="-o", required=True)


@dataclass(frozen=True)
class TrainInputs:
    """What every model kind shares: the kind, the windows, and the optional classifier's classes."""

    arch: str = option("lstm", "Model kind of the foreground/background pair.", choices=tuple(KINDS))
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
                             choices=tuple(CLASSIFIERS))
    no_support: bool = option(False, "Leave out the support table (the references' 20-mer minimizers): reads are "
                              "then called by the LLR alone, as in the paper, and none is called foreign.")


# The option groups of `train`, labelled by the model kind (or classifier) they belong to.
KIND_GROUPS = {kind: model_kind(kind).OPTION_GROUPS for kind in KINDS}
CLASSIFIER_GROUPS = {kind: (entry.config,) + ((entry.schedule,) if entry.schedule else ())
                     for kind, entry in CLASSIFIERS.items()}
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
        settings = cls(inputs, dict(given))
        try:  # the kind's settings are checked before any work
            model_kind(inputs.arch).check(settings)
        except ValueError as error:
            raise UsageError(str(error)) from None
        return settings


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def train(inputs: list[str], output: str, *, seed: int = 0, runtime: Runtime | None = None, **given) -> Detector:
    """`gooddetect train`: the foreground + background pair from `inputs`, written to `output`.

    `given` holds the options as the command line names them (`arch`, `max_order`, `hidden`, `train_batch_size`,
    ...; see TrainInputs and KIND_GROUPS): every option not given keeps its dataclass's default. The model file
    records how each window is scored (`score_strands`) and, with classes, the classifier."""
    settings = TrainSettings.from_options(given)
    runtime = runtime or Runtime()
    inputs_ = settings.inputs
    kind = model_kind(inputs_.arch)
    check_output_paths(output)
    labels = ClassLabels(inputs, inputs_.classes, inputs_.class_per_file, inputs_.record_classes) \
        if inputs_.classes or inputs_.class_per_file or inputs_.record_classes else None
    started = time.perf_counter()
    counts = WindowCounts()
    training = {"inputs": [os.path.basename(display_name(f)) for f in inputs],
                "windows_per_file": inputs_.windows_per_file,
                "mutation_rate": _kind_setting(settings, kind, "mutation_rate"), "seed": seed,
                "versions": _versions(kind.USES_TORCH)}
    window_options = kind.window_options(settings)
    windows = None
    if window_options is not None or labels:
        windows = collect_windows(inputs, counts, length=inputs_.length, min_length=inputs_.min_length,
                                  windows_per_file=inputs_.windows_per_file, seed=seed, classes=labels,
                                  **(window_options or {}))
        training["windows_sha256"] = digest(windows.codes, windows.lengths)
    foreground, background, support_keys = kind.train(inputs, windows, training, settings, output=output, seed=seed,
                                                      runtime=runtime)
    classifier = _train_classifier(windows, labels, training, settings, seed=seed) if labels else None
    if windows is not None:
        training["window_counts"] = counts.as_dict()
    support = None if inputs_.no_support else SupportTable.from_keys(
        minimizer_keys(sequences_of(inputs)) if support_keys is None else support_keys)
    detector = Detector(foreground, background, {"window_length": inputs_.length, "min_length": inputs_.min_length,
                                                 "strands": _kind_setting(settings, kind, "score_strands"),
                                                 "training": training, "threshold": None},
                        classifier=classifier, support=support)
    if is_main_process():
        detector.save(output)
        log.info("train: %s model from %d input(s) in %.1f s; written to %s", kind.NAME, len(inputs),
                 time.perf_counter() - started, output)
    return detector


def _kind_setting(settings: TrainSettings, kind, name: str):
    """A setting every kind declares in one of its option groups, with its own default (models.registry)."""
    group = next(g for g in kind.OPTION_GROUPS if name in {f.name for f in fields(g)})
    return getattr(settings.part(group), name)


def _train_classifier(windows: Windows, labels: ClassLabels, training: dict, settings: TrainSettings, *, seed: int):
    """The classifier of `--classifier` on the labeled windows, a validation split held out for its statistics."""
    kind = settings.inputs.classifier
    entry = CLASSIFIERS[kind]
    windows = labels.check(windows)
    train_windows, val_windows = split_validation(windows, CLASSIFIER_VAL_FRACTION, seed)
    started = time.perf_counter()
    schedule = () if entry.schedule is None else (settings.part(entry.schedule, seed=seed),)
    classifier = classifier_trainer(kind)(
        train_windows.codes, train_windows.lengths, train_windows.labels, val_windows.codes, val_windows.lengths,
        val_windows.labels, settings.part(entry.config, classes=labels.names), *schedule)
    training["classifier"] = {"classes_from": labels.source, **{k: v for s in schedule for k, v in asdict(s).items()},
                              **classifier.stats}
    log.info("train: %s classifier of %d classes in %.1f s, validation accuracy %.4f", kind, len(labels.names),
             time.perf_counter() - started, classifier.stats["val_accuracy"])
    return classifier


def _versions(uses_torch: bool) -> dict:
    from importlib.metadata import version

    found = {"gooddetect": __version__, "numpy": np.__version__}
    return (found | {"torch": version("torch")}) if uses_torch else found  # the k-mer loops are our own C
