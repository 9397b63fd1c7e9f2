"""The LSTM pair's optimisation settings (plain data, no torch: the command line builds its options from them)."""

from __future__ import annotations

from dataclasses import dataclass

from ..options import option

LR_SCHEDULES = ("constant", "cosine")
# Steps and epochs `train` gives a training set when neither is given (commands.train.sized_defaults).
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
