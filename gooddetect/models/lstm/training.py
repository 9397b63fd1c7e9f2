"""How `train --arch lstm` trains the pair: on fixed windows of the reads (a validation split of source windows
held out, each with its reverse complement when both strands are used) or, with `--genomes`, on fresh windows of
whole genomes every epoch (validation from held-out blocks); the defaults that depend on the training set's size;
and `--time-budget`'s timed probes."""

from __future__ import annotations

import logging
import math
import os
import time
from dataclasses import asdict, replace

import numpy as np

from ...alphabet import gc_fraction
from ...errors import UsageError
from ...runtime import Runtime, is_main_process
from ...windows import GenomeSplit, Windows, digest, split_genomes, split_validation, with_reverse_complements
from ..configs import LSTMConfig
from .options import LARGE_SET_BASES, MAX_EPOCHS, MIN_STEPS, PROBE_STEPS, LstmData, TrainConfig

log = logging.getLogger("gooddetect")

# The foreground's default k-mer input by training bases (upper bound, exclusive), chosen on validation.
KMER_INPUT_BY_BASES = ((3_000_000, 6), (6_000_000, 7), (10_000_000, 8), (15_000_000, 9), (math.inf, 10))
# Fixed windows of at least LARGE_SET_BASES: both strands, LARGE_SET_EPOCHS epochs but at most LARGE_SET_STEPS steps
# (gdbench: 19,000 steps, 20-25 minutes on 2 cores; validation 0.820 -> 0.868, docs/method.md).
LARGE_SET_EPOCHS, LARGE_SET_STEPS = 5, 20_000
BUDGET_SHARE = 0.9  # of --time-budget for the steps: the rest for validation, loading and writing


def train_pair(inputs: list[str], windows: Windows | None, training: dict, settings, *, output: str, seed: int,
               runtime: Runtime):
    """The pair on `windows`, or with --genomes on the genomes `inputs` (their digest and statistics recorded)."""
    data = settings.part(LstmData)
    if data.genomes:
        windows = split_genomes(inputs, length=settings.inputs.length, min_length=settings.inputs.min_length,
                                val_fraction=data.val_fraction, seed=seed)
        training |= {"sequences_sha256": digest(windows.sequence, windows.starts), "genomes": windows.stats}
    return *_train_lstm(windows, output, training, settings, seed=seed, runtime=runtime), None


def _train_lstm(source: Windows | GenomeSplit, output: str, training: dict, settings, *, seed: int,
                runtime: Runtime):
    """The LSTM pair on fixed windows (a validation split held out) or on fresh windows of genomes."""
    from ...training.data import FixedWindows, GenomeWindows
    from ...training.loop import train_lstm_pair

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
    from ...training.loop import train_lstm_pair

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
