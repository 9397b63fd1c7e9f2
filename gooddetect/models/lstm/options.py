"""The "lstm" kind's `train` options (plain data, no torch): the training windows and checkpoint (LstmData) and
the pair's optimisation (TrainConfig); the network's own settings are models.configs.LSTMConfig."""

from __future__ import annotations

from dataclasses import dataclass

from ...options import Spec, describe, option
from .. import STRANDS
from ..configs import MAX_KMER_INPUT, LSTMConfig

# Fixed windows of at least LARGE_SET_BASES train on both strands by default (see training.sized_defaults).
LARGE_SET_BASES = 10_000_000
# The two timed runs of --time-budget: their difference is the time of 100 steps alone, past the first steps of
# warm-up (with (5, 25), steps came out twice as slow as training then ran on gdbench).
PROBE_STEPS = (40, 140)
LR_SCHEDULES = ("constant", "cosine")
# Steps and epochs `train` gives a training set when neither is given (training.sized_defaults).
MIN_STEPS, MAX_EPOCHS = 200, 10
# Fields that may change between an interrupted run and its resumption.
RESUMABLE_CHANGES = ("device", "checkpoint_every", "eval_batch_size")


@dataclass
class TrainConfig:
    """Optimisation settings (from the paper: Adam, batch 100, mutation 0.1, L2 1e-4; lr 2e-3 where the paper has
    5e-4, chosen on validation with the k-mer input, see docs/method.md).

    `steps`, when set, is the number of optimizer steps and overrides `epochs`. Validation runs every `eval_every`
    steps, at each epoch end and at the last step; training stops early after `patience` validations in a row
    without improvement (None: never). `bf16` runs the training forward pass under bfloat16 autocast (about twice
    as fast on CPUs with AMX/AVX512-BF16 and on GPUs); validation and scoring stay float32. `checkpoint_every`:
    seconds of training between checkpoints."""

    lr: float = option(2e-3, "lstm: Adam learning rate (paper 5e-4).", min=0, min_open=True)
    lr_schedule: str = option("cosine", "lstm: constant (the paper's) or cosine: 2% linear warm-up, then cosine decay "
                              "to 0.", choices=LR_SCHEDULES)
    batch_size: int = option(100, "lstm: windows per step (paper 100).", flag="--train-batch-size", min=1)
    epochs: int | None = option(1, "lstm: passes over the training windows.", min=1,
                                default_text=f"enough for {MIN_STEPS} optimizer steps, 1 to {MAX_EPOCHS}")
    steps: int | None = option(None, "lstm: optimizer steps per model (overrides --epochs).", min=1)
    eval_every: int | None = 1000
    patience: int | None = option(None, "lstm: stop after this many validations without improvement (best weights "
                                  "are kept).", min=1)
    mutation_rate: float = option(0.1, "Background: probability of substituting each base (lstm: the paper's; kmer: "
                                  "chosen on validation).", min=0, max=1)
    background_l2: float = option(1e-4, "lstm: background L2 weight on non-bias weights, added to the loss (the "
                                  "paper's).", min=0)
    grad_clip: float | None = None
    seed: int = 0
    device: str = option("auto", "lstm: auto, cpu, cuda or cuda:N.")
    checkpoint_every: float = option(300.0, "lstm: seconds of training between checkpoints (also written on "
                                     "SIGINT/SIGTERM).", min=0, min_open=True, metavar="SECONDS")
    eval_batch_size: int = 512
    bf16: bool = option(False, "lstm: bfloat16 autocast for the training forward pass (CPUs with AMX/AVX512-BF16, "
                        "and GPUs).")

    def __post_init__(self) -> None:
        if self.steps is None and self.epochs is None:
            raise ValueError("set epochs or steps")
        for name in ("batch_size", "epochs", "steps", "eval_every", "patience", "eval_batch_size"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"{name} must be >= 1, got {value}")
        if self.seed < 0 or self.lr <= 0 or self.background_l2 < 0 or self.checkpoint_every <= 0:
            raise ValueError("seed must be >= 0, lr > 0, background_l2 >= 0 and checkpoint_every > 0")
        if self.lr_schedule not in LR_SCHEDULES:
            raise ValueError(f"lr_schedule must be one of {', '.join(LR_SCHEDULES)}, got {self.lr_schedule!r}")
        if not 0.0 <= self.mutation_rate <= 1.0:
            raise ValueError(f"mutation_rate must be in [0, 1], got {self.mutation_rate}")


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


describe(LSTMConfig,
         hidden=Spec("lstm: hidden size (paper 2000)."),
         layers=Spec("lstm: layers."),
         dropout=Spec("lstm: dropout (paper 0.1)."),
         embedding=Spec("lstm: learned input embedding size (0 = one-hot input, as in the paper)."),
         kmer_input=Spec("lstm: also input a learned embedding of the last K bases (0 = the paper's input only).",
                         default_text="by training bases: 6 below 3 Mb, 7 below 6 Mb, 8 below 10 Mb, 9 below 15 Mb, "
                         "else 10"),
         kmer_embedding=Spec("lstm: width of that embedding."))
