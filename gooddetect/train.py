"""Training the foreground/background LSTM pair of Ren et al. 2019.

The foreground model is trained on the windows as they are; the background model on the same windows with every
base mutated with probability `mutation_rate` (fresh mutations each time a window is used) and with an L2 penalty on
its non-bias weights. Both keep the weights of their best validation loss (nats per scored base): the foreground is
validated on the clean validation windows, the background on the validation windows mutated once with a fixed seed,
which is the task it is trained for. On a CPU with two or more torch threads the two train side by side, half of
the threads each (one small model's per-step products cannot keep two cores busy; two independent ones can), each
ending with the weights of training it alone on its share; otherwise (one thread, a GPU, torchrun) the foreground
trains first.

Randomness is keyed by counters, not carried in generator states: the window order of an epoch, the mutations and
the dropout masks of a batch each come from a generator seeded with (seed, purpose, phase, epoch, batch). A run is
therefore bit-identical for a given seed, device and number of threads, a resumed run is bit-identical to an
uninterrupted one, and a checkpoint only needs the finished models and, per model in training, weights, optimizer
state and counters. A checkpoint is written every `checkpoint_every` seconds and on SIGINT/SIGTERM, so a job killed
by its scheduler loses at most that much work.

The k-mer input table (4^K + 1 rows) is updated only on the rows a batch uses (lazy Adam: the other rows keep their
weights and moments), and the background's L2 covers the rows in use, so a step costs the same whatever the table
size.

Under torchrun (WORLD_SIZE > 1) each step's batches are sharded by rank: rank r of W trains on batches r, r+W, ...
of the epoch's global batch order, so a step sees W batches; validation is sharded and summed over all ranks.
Only rank 0 writes checkpoints, shows progress and logs.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import signal
import threading
import time
import zlib
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from .alphabet import UNKNOWN, mask_padding
from .errors import UsageError
from .models.lstm import KMER_TABLE, LSTMConfig, LSTMModel, LSTMNet, check_bf16, next_base_nll
from .mutate import mutate
from .optim import Adam, KmerTableAdam
from .runtime import atomic_output, progress, resolve_device

log = logging.getLogger("gooddetect")

CHECKPOINT_FORMAT = "gooddetect-train-checkpoint-5"  # 5: the optimizers' learning rates
PHASE_NAMES = {"fg": "foreground", "bg": "background"}
# Purposes of the counter-keyed random streams.
_INIT, _ORDER, _MUTATION, _DROPOUT, _VAL_MUTATION = range(5)
DEFAULT_CHECKPOINT_SECONDS = 300.0
# TrainConfig fields that may change between an interrupted run and its resumption.
_RESUMABLE_CHANGES = ("device", "checkpoint_every", "eval_batch_size")
_BAR_EVERY = 20  # steps between progress-bar loss updates (each costs a device sync)
LR_SCHEDULES = ("constant", "cosine")
WARMUP_FRACTION = 0.02
_GLOBAL_RNG = threading.Lock()  # held while a model is initialised from torch's global generator


@dataclass
class TrainConfig:
    """Optimisation settings (from the paper: Adam, batch 100, mutation 0.1, L2 1e-4; lr 2e-3 where the paper has
    5e-4, chosen on validation with the k-mer input, see the README).

    `steps`, when set, is the number of optimizer steps and overrides `epochs`. Validation runs every `eval_every`
    steps, at each epoch end and at the last step; training stops early after `patience` validations in a row
    without improvement (None: never). `bf16` runs the training forward pass under bfloat16 autocast (about twice
    as fast on CPUs with AMX/AVX512-BF16 and on GPUs); validation and scoring stay float32. `checkpoint_every`:
    seconds of training between checkpoints."""

    lr: float = 2e-3
    lr_schedule: str = "cosine"
    batch_size: int = 100
    epochs: int | None = 1
    steps: int | None = None
    eval_every: int | None = 1000
    patience: int | None = None
    mutation_rate: float = 0.1
    background_l2: float = 1e-4
    grad_clip: float | None = None
    seed: int = 0
    device: str = "cpu"
    checkpoint_every: float = DEFAULT_CHECKPOINT_SECONDS
    eval_batch_size: int = 512
    bf16: bool = False

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
class Phase:
    """What distinguishes the training of one model of the pair."""

    name: str  # "fg" or "bg"
    index: int
    mutation_rate: float
    l2: float


def training_phases(config: TrainConfig) -> list[Phase]:
    """The phases in training order: the foreground (clean windows, no L2), then the background."""
    return [Phase("fg", 0, 0.0, 0.0), Phase("bg", 1, config.mutation_rate, config.background_l2)]


def training_loss(model: torch.nn.Module, net: LSTMNet, codes: torch.Tensor, l2: float,
                  table: KmerTableAdam | None = None) -> torch.Tensor:
    """Mean next-base cross-entropy of a batch (through `model`, the net or its DDP wrapper) plus
    l2 * (sum of squares of the net's weight matrices, i.e. every parameter but the biases; of the k-mer input
    table, the rows this batch uses). With `table`, the k-mer rows come from (and their gradients go to) it."""
    nll = next_base_nll(model, codes, table.lookup if table is not None else None)
    loss = nll.sum() / (codes[:, 1:] < UNKNOWN).sum().clamp(min=1)
    if l2:
        loss = loss + l2 * sum(p.square().sum() for name, p in net.named_parameters()
                               if p.ndim > 1 and (table is None or name != KMER_TABLE))
        if table is not None:
            loss = loss + l2 * table.rows_in_use.square().sum()
    return loss


def learning_rate(config: TrainConfig, step: int, total_steps: int) -> float:
    """The learning rate of optimizer step `step` (0-based): `config.lr` throughout ("constant", the paper's), or
    ("cosine") a linear warm-up over the first 2 % of the steps, then a cosine decay from `config.lr` to 0."""
    if config.lr_schedule == "constant":
        return config.lr
    warmup = max(1, round(WARMUP_FRACTION * total_steps))
    if step < warmup:
        return config.lr * (step + 1) / warmup
    progress_done = (step - warmup) / max(1, total_steps - warmup)
    return config.lr * 0.5 * (1.0 + math.cos(math.pi * min(progress_done, 1.0)))


class TrainingInterrupted(KeyboardInterrupt):
    """Training stopped by SIGINT/SIGTERM after writing its checkpoint; `signum` says which signal."""

    def __init__(self, signum: int, checkpoint: Path | None):
        where = f"; checkpoint {checkpoint}" if checkpoint else ""
        super().__init__(f"training interrupted by signal {signum}{where}")
        self.signum = signum
        self.checkpoint = checkpoint


@dataclass
class _Run:
    """What every phase of one training run shares."""

    train_codes: np.ndarray
    train_lengths: np.ndarray
    val_codes: np.ndarray
    val_lengths: np.ndarray
    model_configs: dict[str, LSTMConfig]  # by phase name
    config: TrainConfig
    ddp: _Distributed
    stop: _StopRequest
    checkpoint: Path | None
    fingerprint: dict
    on_step: Callable[[str, int], None] | None

    @property
    def steps_per_epoch(self) -> int:
        """Full steps of `world` batches in an epoch (a few tail batches are dropped when world > 1)."""
        return math.ceil(len(self.train_codes) / self.config.batch_size) // self.ddp.world


def train_lstm_pair(
    train_codes: np.ndarray,
    train_lengths: np.ndarray,
    val_codes: np.ndarray,
    val_lengths: np.ndarray,
    model_config: LSTMConfig,
    config: TrainConfig,
    checkpoint: str | Path | None = None,
    resume: bool = False,
    on_step: Callable[[str, int], None] | None = None,
    background_config: LSTMConfig | None = None,
) -> tuple[LSTMModel, LSTMModel, dict]:
    """Train the foreground, then the background model (`background_config`, default `model_config`); return both
    (best weights, eval mode, on CPU) and stats {"foreground"|"background": {"val_loss", "steps", "epochs",
    "windows_seen", "seconds"}}.

    `checkpoint` is written every `config.checkpoint_every` seconds and when SIGINT/SIGTERM arrives (then
    TrainingInterrupted is raised); it is left in place after success, for the caller to delete. `resume=True`
    continues from it. `on_step(phase, step)` is called after every optimizer step."""
    train_lengths, val_lengths = np.asarray(train_lengths, np.int64), np.asarray(val_lengths, np.int64)
    trainable = train_lengths >= 2  # a window needs two bases to score one
    train_codes, train_lengths = mask_padding(train_codes, train_lengths)[trainable], train_lengths[trainable]
    val_codes = mask_padding(val_codes, val_lengths)
    if len(val_codes) == 0 or not (val_codes[:, 1:] < UNKNOWN).any():
        raise UsageError("the validation set has no scorable bases")
    checkpoint = Path(checkpoint) if checkpoint is not None else None
    model_configs = {"fg": model_config, "bg": background_config or model_config}
    fingerprint = {
        "model_configs": {name: c.to_dict() for name, c in model_configs.items()},
        "train_config": {k: v for k, v in asdict(config).items() if k not in _RESUMABLE_CHANGES},
        "train_data": _digest(train_codes, train_lengths),
        "val_data": _digest(val_codes, val_lengths),
    }
    saved = _load_checkpoint(checkpoint, fingerprint) if resume else None
    device = resolve_device(config.device)
    if config.bf16:
        check_bf16(torch.device(device))
    with _distributed(device) as ddp, _deterministic(), _StopRequest() as stop:
        run = _Run(train_codes, train_lengths, val_codes, val_lengths, model_configs, config, ddp, stop, checkpoint,
                   fingerprint, on_step)
        if run.steps_per_epoch == 0:
            raise UsageError(f"{len(train_codes)} training windows make no full step of {ddp.world} batches")
        pending = [phase for phase in training_phases(config) if not saved or phase.name not in saved["finished"]]
        together = bool(pending) and side_by_side(run)
        checkpoints = _Checkpoints(run, saved, together)
        if together:
            _train_side_by_side(run, pending, checkpoints)
        else:
            for phase in pending:
                train_phase(run, phase, checkpoints)
        finished = checkpoints.finished
    models = [LSTMModel.from_weights(model_configs[p], _to_numpy(finished[p]["state"])) for p in ("fg", "bg")]
    stats = {PHASE_NAMES[p]: finished[p]["stats"] for p in ("fg", "bg")}
    return models[0], models[1], stats


@dataclass
class _Counters:
    """Where a phase stands; saved in checkpoints."""

    step: int = 0  # optimizer steps taken
    epoch: int = 0  # epochs completed
    batch: int = 0  # steps taken in the current epoch
    windows_seen: int = 0
    best_val: float = math.inf
    bad_evals: int = 0  # validations in a row without improvement
    seconds: float = 0.0


def side_by_side(run: _Run) -> bool:
    """Whether the two models train side by side: on the CPU, with two or more torch threads, in one process, and
    without dropout between LSTM layers (nn.LSTM draws it from torch's global generator)."""
    return (torch.get_num_threads() >= 2 and run.ddp.device.type == "cpu" and run.ddp.world == 1
            and not any(c.layers > 1 and c.dropout > 0 for c in run.model_configs.values()))


def _train_side_by_side(run: _Run, phases: list[Phase], checkpoints: _Checkpoints) -> None:
    """Train the phases at once, one thread each with its share of torch's threads (each model's weights are those
    of training it alone with that many threads; a resumed run with one model left keeps that model's share). When
    one fails or a signal arrives, the others stop at their next step (writing their checkpoint); a signal's
    TrainingInterrupted is raised when all have stopped, an error before it."""
    saved_threads = torch.get_num_threads()
    shares = [saved_threads - saved_threads // 2, saved_threads // 2]
    pool = ThreadPoolExecutor(len(phases), thread_name_prefix="gooddetect-train")
    try:
        futures = [pool.submit(train_phase, run, phase, checkpoints, shares[phase.index]) for phase in phases]
        done, _ = wait(futures, return_when=FIRST_EXCEPTION)
        if any(future.exception() for future in done):
            run.stop.request(signal.SIGTERM)
        wait(futures)
    except BaseException:  # a second signal in the main thread: stop the phases, do not wait for them
        run.stop.request(signal.SIGINT)
        raise
    finally:
        pool.shutdown(wait=False)
        torch.set_num_threads(saved_threads)
    errors = [future.exception() for future in futures if future.exception() is not None]
    if errors:
        raise next((e for e in errors if not isinstance(e, TrainingInterrupted)), errors[0])


def train_phase(run: _Run, phase: Phase, checkpoints: _Checkpoints, threads: int | None = None) -> None:
    """Train one model of the pair (with `threads` torch threads on this thread, if given) and record it as finished
    in `checkpoints`: {"state": best weights (CPU tensors), "stats": ...}."""
    if threads is not None:
        torch.set_num_threads(threads)
    config, ddp = run.config, run.ddp
    resumed = checkpoints.running.get(phase.name)
    with _GLOBAL_RNG:
        torch.manual_seed(_seed(config.seed, _INIT, phase.index))
        net = LSTMNet(run.model_configs[phase.name]).to(ddp.device)
    net.generator = torch.Generator(ddp.device)
    optimizer = Adam([p for name, p in net.named_parameters() if name != KMER_TABLE], lr=config.lr)
    table = KmerTableAdam(net.kmer_embed.weight, config.lr) if net.kmer_embed is not None else None
    counters, best_state = _Counters(), None
    if resumed:
        net.load_state_dict(resumed["model"])
        optimizer.load_state_dict(resumed["optimizer"])
        if table is not None:
            table.load_state_dict(resumed["table"])
        counters, best_state = _Counters(**resumed["counters"]), resumed["best_state"]
    if ddp.world > 1:
        DistributedDataParallel._set_params_and_buffers_to_ignore_for_model(net, [KMER_TABLE])
    model = DistributedDataParallel(net, broadcast_buffers=False) if ddp.world > 1 else net
    val_codes = run.val_codes
    if phase.mutation_rate:
        val_codes = mutate(val_codes, phase.mutation_rate, _rng(config.seed, _VAL_MUTATION, phase.index))
    evaluator = LSTMModel(run.model_configs[phase.name], net, ddp.device, config.eval_batch_size)
    total_steps = config.steps or config.epochs * run.steps_per_epoch
    bar = progress(total=total_steps, initial=counters.step, desc=PHASE_NAMES[phase.name], unit="step",
                   position=phase.index) if ddp.is_main else None
    started = last_checkpoint = time.monotonic()
    run_start_step, loss_sum, order_epoch = counters.step, torch.zeros((), device=ddp.device), None
    net.train()
    while counters.step < total_steps and (config.patience is None or counters.bad_evals < config.patience):
        if order_epoch != counters.epoch:
            order = _rng(config.seed, _ORDER, phase.index, counters.epoch).permutation(len(run.train_codes))
            order_epoch = counters.epoch
        global_batch = counters.batch * ddp.world + ddp.rank
        codes = _batch(run, order, global_batch, phase, counters.epoch)
        net.generator.manual_seed(_seed(config.seed, _DROPOUT, phase.index, counters.epoch, global_batch))
        with torch.autocast(ddp.device.type, dtype=torch.bfloat16) if config.bf16 else contextlib.nullcontext():
            loss = training_loss(model, net, codes, phase.l2, table)
        optimizer.zero_grad()
        loss.backward()
        if config.grad_clip:
            clipped = [*net.parameters(), *([table.rows_in_use] if table is not None else [])]
            torch.nn.utils.clip_grad_norm_(clipped, config.grad_clip)
        lr = learning_rate(config, counters.step, total_steps)
        optimizer.lr = lr
        optimizer.step()
        if table is not None:
            table.lr = lr
            table.step(ddp)
        loss_sum += loss.detach()

        counters.step += 1
        counters.batch += 1
        first = (counters.batch - 1) * ddp.world * config.batch_size
        counters.windows_seen += len(order[first:first + ddp.world * config.batch_size])
        epoch_end = counters.batch == run.steps_per_epoch
        if epoch_end:
            counters.epoch, counters.batch = counters.epoch + 1, 0
        if epoch_end or counters.step == total_steps or (config.eval_every and counters.step % config.eval_every == 0):
            if table is not None:
                table.catch_up()
            val_loss = _validation_loss(evaluator, val_codes, run.val_lengths, ddp)
            net.train()
            if val_loss < counters.best_val:
                counters.best_val, counters.bad_evals = val_loss, 0
                best_state = {k: v.detach().to("cpu", copy=True) for k, v in net.state_dict().items()}
            else:
                counters.bad_evals += 1
            if ddp.is_main:
                log.info("%s step %d (epoch %.2f): validation loss %.4f nats/base (best %.4f)", PHASE_NAMES[phase.name],
                         counters.step, counters.epoch + counters.batch / run.steps_per_epoch, val_loss,
                         counters.best_val)
        if bar is not None:
            bar.update()
            if counters.step % _BAR_EVERY == 0:
                seen = (counters.step - run_start_step) * config.batch_size * ddp.world
                bar.set_postfix(loss=f"{loss_sum.item() / _BAR_EVERY:.4f}",
                                windows_s=f"{seen / (time.monotonic() - started):.0f}")
                loss_sum.zero_()
        if run.on_step is not None:
            run.on_step(phase.name, counters.step)

        signum = _agreed_signal(run)
        if run.checkpoint is not None and (signum or time.monotonic() - last_checkpoint >= config.checkpoint_every):
            now = _Counters(**{**asdict(counters), "seconds": counters.seconds + time.monotonic() - started})
            checkpoints.save(phase, net, optimizer, table, now, best_state)
            last_checkpoint = time.monotonic()
        if signum:
            if ddp.world > 1:
                dist.barrier()  # no rank exits before rank 0 has written the checkpoint
            raise TrainingInterrupted(signum, run.checkpoint)
    if bar is not None:
        bar.close()
    counters.seconds += time.monotonic() - started
    stats = {"val_loss": counters.best_val, "steps": counters.step,
             "epochs": counters.epoch + counters.batch / run.steps_per_epoch,
             "windows_seen": counters.windows_seen, "seconds": counters.seconds}
    if ddp.is_main:
        log.info("%s done: %s", PHASE_NAMES[phase.name], stats)
    checkpoints.finish(phase, {"state": best_state, "stats": stats})


def _validation_loss(evaluator: LSTMModel, codes: np.ndarray, lengths: np.ndarray, ddp: _Distributed) -> float:
    """Nats per scored base over the validation windows (sharded over the ranks)."""
    shard = slice(ddp.rank, None, ddp.world)
    sums, n_scored = evaluator.loglik(codes[shard], lengths[shard])
    neg_loglik, n = ddp.all_sum([-sums.sum(), float(n_scored.sum())])
    return neg_loglik / n


def _batch(run: _Run, order: np.ndarray, global_batch: int, phase: Phase, epoch: int) -> torch.Tensor:
    """The (mutated) codes of one batch of the epoch's order, padded to its longest window, on the device."""
    size = run.config.batch_size
    rows = order[global_batch * size: (global_batch + 1) * size]
    codes = run.train_codes[rows, : int(run.train_lengths[rows].max())]
    if phase.mutation_rate:
        codes = mutate(codes, phase.mutation_rate, _rng(run.config.seed, _MUTATION, phase.index, epoch, global_batch))
    return torch.from_numpy(codes).to(run.ddp.device).long()


def _agreed_signal(run: _Run) -> int:
    """The stop signal received by any rank (0: none), agreed on by all ranks."""
    signum = run.stop.signum or 0
    if run.ddp.world > 1:
        flag = torch.tensor([signum], device=run.ddp.device)
        dist.all_reduce(flag, op=dist.ReduceOp.MAX)
        signum = int(flag.item())
    return signum


class _Checkpoints:
    """The run's checkpoint: the finished models and the latest saved state of each model in training. Models
    training side by side save in turn, each file holding the others' latest states too; so with `side_by_side` a
    saved state is a copy (its model trains on while the other one writes the file)."""

    def __init__(self, run: _Run, saved: dict | None, side_by_side: bool):
        self.run, self.side_by_side = run, side_by_side
        self.finished: dict[str, dict] = dict(saved["finished"]) if saved else {}
        self.running: dict[str, dict] = dict(saved["running"]) if saved else {}
        self.lock = threading.Lock()

    def save(self, phase: Phase, net: LSTMNet, optimizer: Adam, table: KmerTableAdam | None, counters: _Counters,
             best_state) -> None:
        if not self.run.ddp.is_main:
            return
        state = {"model": net.state_dict(), "optimizer": optimizer.state_dict(),
                 "table": table.state_dict() if table is not None else None, "counters": asdict(counters),
                 "best_state": best_state}
        if self.side_by_side:
            state = _cloned(state)
        with self.lock:
            self.running[phase.name] = state
            payload = {"format": CHECKPOINT_FORMAT, "fingerprint": self.run.fingerprint, "finished": self.finished,
                       "running": self.running}
            with atomic_output(self.run.checkpoint, "wb") as handle:
                torch.save(payload, handle)
        log.debug("checkpoint written to %s at %s step %d", self.run.checkpoint, phase.name, counters.step)

    def finish(self, phase: Phase, result: dict) -> None:
        with self.lock:
            self.finished[phase.name] = result
            self.running.pop(phase.name, None)


def _cloned(state):
    """A copy of `state` (nested dicts, lists and tensors) that later training steps do not change."""
    if isinstance(state, torch.Tensor):
        return state.detach().clone()
    if isinstance(state, dict):
        return {key: _cloned(value) for key, value in state.items()}
    if isinstance(state, (list, tuple)):
        return type(state)(_cloned(value) for value in state)
    return state


@dataclass
class _Distributed:
    device: torch.device
    rank: int = 0
    world: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def all_sum(self, values: list[float]) -> list[float]:
        tensor = torch.tensor(values, dtype=torch.float64, device=self.device)
        if self.world > 1:
            dist.all_reduce(tensor)
        return tensor.tolist()


def _load_checkpoint(path: Path | None, fingerprint: dict) -> dict:
    if path is None:
        raise UsageError("resume asked for without a checkpoint path")
    if not path.is_file():
        raise UsageError(f"{path}: no checkpoint to resume from")
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises many types for a damaged file
        raise UsageError(f"{path}: not a readable training checkpoint ({error})") from None
    kind = saved.get("format") if isinstance(saved, dict) else None
    if isinstance(kind, str) and kind.startswith("gooddetect-train-checkpoint") and kind != CHECKPOINT_FORMAT:
        raise UsageError(f"{path}: a checkpoint of another gooddetect version ({kind}; this one reads "
                         f"{CHECKPOINT_FORMAT}): train again without --resume")
    if kind != CHECKPOINT_FORMAT:
        raise UsageError(f"{path}: not a gooddetect training checkpoint")
    differing = [key for key in fingerprint if saved["fingerprint"].get(key) != fingerprint[key]]
    if differing:
        raise UsageError(f"{path}: checkpoint was written with different {', '.join(differing)}; cannot resume")
    return saved


def _digest(codes: np.ndarray, lengths: np.ndarray) -> list[int]:
    """A cheap identity of a data set, to refuse resuming on other data."""
    return [len(codes), zlib.crc32(np.ascontiguousarray(codes).data), zlib.crc32(np.ascontiguousarray(lengths).data)]


def _rng(seed: int, *key: int) -> np.random.Generator:
    return np.random.default_rng([seed, *key])


def _seed(seed: int, *key: int) -> int:
    return int(np.random.SeedSequence([seed, *key]).generate_state(1, np.uint64)[0])


def _to_numpy(state: dict[str, torch.Tensor]) -> dict[str, np.ndarray]:
    return {name: tensor.numpy() for name, tensor in state.items()}


@contextlib.contextmanager
def _distributed(device: str) -> Iterator[_Distributed]:
    """Join the torchrun process group when WORLD_SIZE > 1 (nccl on CUDA, gloo on CPU), leaving it afterwards if
    this call created it."""
    if int(os.environ.get("WORLD_SIZE", "1")) == 1:
        yield _Distributed(torch.device(device))
        return
    place = torch.device(device)
    if place.type == "cuda":
        place = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(place)
    owns_group = not dist.is_initialized()
    if owns_group:
        dist.init_process_group("nccl" if place.type == "cuda" else "gloo")
    try:
        yield _Distributed(place, dist.get_rank(), dist.get_world_size())
    finally:
        if owns_group:
            dist.destroy_process_group()


@contextlib.contextmanager
def _deterministic() -> Iterator[None]:
    """cuDNN in deterministic mode while training (CPU kernels are deterministic already)."""
    saved = torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
    try:
        yield
    finally:
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = saved


@dataclass
class _StopRequest:
    """Turns SIGINT/SIGTERM into a flag that training polls after each step; a second signal interrupts at once."""

    signum: int | None = None
    previous: dict = field(default_factory=dict)

    def __enter__(self) -> _StopRequest:
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGINT, signal.SIGTERM):
                self.previous[signum] = signal.signal(signum, self._handle)
        return self

    def _handle(self, signum: int, frame) -> None:
        if self.signum is not None:
            raise KeyboardInterrupt
        self.signum = signum

    def request(self, signum: int) -> None:
        """Ask the training to stop as if `signum` had arrived (no-op when a signal came already)."""
        if self.signum is None:
            self.signum = signum

    def __exit__(self, *exc) -> None:
        for signum, handler in self.previous.items():
            signal.signal(signum, handler)
