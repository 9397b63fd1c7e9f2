"""Training the foreground/background LSTM pair of Ren et al. 2019.

The foreground model is trained on the windows as they are; the background model on the same windows with every
base mutated with probability `mutation_rate` (fresh mutations each time a window is used) and with an L2 penalty on
its non-bias weights. Both keep the weights of their best validation loss (nats per scored base): the foreground is
validated on the clean validation windows, the background on the validation windows mutated once with a fixed seed,
which is the task it is trained for. On a CPU with two or more torch threads the two train side by side, half of
the threads each (one small model's per-step products cannot keep two cores busy; two independent ones can), each
ending with the weights of training it alone on its share; otherwise (one thread, a GPU, torchrun) the foreground
trains first.

The training windows (training.data) are fixed windows in a new order every epoch, or fresh random windows from
genomes. Randomness is keyed by counters, not carried in generator states: an epoch's windows, the mutations and
the dropout masks of a batch each come from a generator seeded with (seed, purpose, phase, epoch, batch). A run is
therefore bit-identical for a given seed, device and number of threads, a resumed run is bit-identical to an
uninterrupted one, and a checkpoint (training.checkpoints) only needs the finished models and, per model in
training, weights, optimizer state and counters. A checkpoint is written every `checkpoint_every` seconds and on
SIGINT/SIGTERM (training.signals), so a job killed by its scheduler loses at most that much work.

The k-mer input table (4^K + 1 rows) is updated only on the rows a batch uses (lazy Adam: the other rows keep their
weights and moments), and the background's L2 covers the rows in use, so a step costs the same whatever the table
size.

Under torchrun (WORLD_SIZE > 1, training.distributed) each step's batches are sharded by rank: rank r of W trains on batches r, r+W, ...
of the epoch's global batch order, so a step sees W batches; validation is sharded and summed over all ranks.
Only rank 0 writes checkpoints, shows progress and logs.
"""

from __future__ import annotations

import contextlib
import logging
import math
import signal
import threading
import time
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from ..alphabet import UNKNOWN, mask_padding
from ..errors import UsageError
from ..models.lstm.model import KMER_TABLE, LSTMConfig, LSTMModel, LSTMNet, check_bf16, next_base_nll
from ..mutate import mutate
from ..runtime import Runtime, resolve_device
from . import checkpoints
from .checkpoints import Checkpoints
from ..models.lstm.options import RESUMABLE_CHANGES, TrainConfig
from .data import Batches, FixedWindows, GenomeWindows
from .distributed import Distributed, distributed
from .optim import Adam, KmerTableAdam
from .signals import StopRequest, TrainingInterrupted

log = logging.getLogger("gooddetect")

PHASE_NAMES = {"fg": "foreground", "bg": "background"}
# Purposes of the counter-keyed random streams.
_INIT, _ORDER, _MUTATION, _DROPOUT, _VAL_MUTATION = range(5)
_BAR_EVERY = 20  # steps between progress-bar loss updates (each costs a device sync)
WARMUP_FRACTION = 0.02
_GLOBAL_RNG = threading.Lock()  # held while a model is initialised from torch's global generator


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


@dataclass
class _Run:
    """What every phase of one training run shares."""

    train: FixedWindows | GenomeWindows
    val_codes: np.ndarray
    val_lengths: np.ndarray
    model_configs: dict[str, LSTMConfig]  # by phase name
    config: TrainConfig
    ddp: Distributed
    stop: StopRequest
    checkpoint: Path | None
    fingerprint: dict
    on_step: Callable[[str, int], None] | None
    runtime: Runtime

    @property
    def steps_per_epoch(self) -> int:
        """Full steps of `world` batches in an epoch (a few tail batches are dropped when world > 1)."""
        return math.ceil(len(self.train) / self.config.batch_size) // self.ddp.world


def train_lstm_pair(
    train: FixedWindows | GenomeWindows,
    val_codes: np.ndarray,
    val_lengths: np.ndarray,
    model_config: LSTMConfig,
    config: TrainConfig,
    checkpoint: str | Path | None = None,
    resume: bool = False,
    on_step: Callable[[str, int], None] | None = None,
    background_config: LSTMConfig | None = None,
    runtime: Runtime | None = None,
) -> tuple[LSTMModel, LSTMModel, dict]:
    """Train on `train` (training.data) the foreground, then the background model (`background_config`, default
    `model_config`); return both (best weights, eval mode, on CPU) and stats {"foreground"|"background":
    {"val_loss", "steps", "epochs", "windows_seen", "seconds"}}.

    `checkpoint` is written every `config.checkpoint_every` seconds and when SIGINT/SIGTERM arrives (then
    TrainingInterrupted is raised); it is left in place after success, for the caller to delete. `resume=True`
    continues from it. `on_step(phase, step)` is called after every optimizer step; `runtime` says whether progress
    bars may be shown."""
    val_lengths = np.asarray(val_lengths, np.int64)
    val_codes = mask_padding(val_codes, val_lengths)
    if len(val_codes) == 0 or not (val_codes[:, 1:] < UNKNOWN).any():
        raise UsageError("the validation set has no scorable bases")
    checkpoint = Path(checkpoint) if checkpoint is not None else None
    model_configs = {"fg": model_config, "bg": background_config or model_config}
    fingerprint = {
        "model_configs": {name: c.to_dict() for name, c in model_configs.items()},
        "train_config": {k: v for k, v in asdict(config).items() if k not in RESUMABLE_CHANGES},
        "train_data": train.digest(),
        "val_data": checkpoints.data_digest(val_codes, val_lengths),
    }
    saved = checkpoints.load(checkpoint, fingerprint) if resume else None
    device = resolve_device(config.device)
    if config.bf16:
        check_bf16(torch.device(device))
    with distributed(device) as ddp, _deterministic(), StopRequest() as stop:
        run = _Run(train, val_codes, val_lengths, model_configs, config, ddp, stop, checkpoint,
                   fingerprint, on_step, runtime or Runtime())
        if run.steps_per_epoch == 0:
            raise UsageError(f"{len(train)} training windows make no full step of {ddp.world} batches")
        pending = [phase for phase in training_phases(config) if not saved or phase.name not in saved["finished"]]
        together = bool(pending) and side_by_side(run)
        saving = Checkpoints(checkpoint, fingerprint, saved, together, ddp.is_main)
        if together:
            _train_side_by_side(run, pending, saving)
        else:
            for phase in pending:
                train_phase(run, phase, saving)
        finished = saving.finished
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


def _train_side_by_side(run: _Run, phases: list[Phase], checkpoints: Checkpoints) -> None:
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


def train_phase(run: _Run, phase: Phase, checkpoints: Checkpoints, threads: int | None = None) -> None:
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
    bar = run.runtime.bar(total=total_steps, initial=counters.step, desc=PHASE_NAMES[phase.name], unit="step",
                   position=phase.index) if ddp.is_main else None
    started = last_checkpoint = time.monotonic()
    run_start_step, loss_sum, batches_epoch = counters.step, torch.zeros((), device=ddp.device), None
    net.train()
    while counters.step < total_steps and (config.patience is None or counters.bad_evals < config.patience):
        if batches_epoch != counters.epoch:
            batches = run.train.epoch(_rng(config.seed, _ORDER, phase.index, counters.epoch))
            batches_epoch = counters.epoch
        global_batch = counters.batch * ddp.world + ddp.rank
        codes = _batch(run, batches, global_batch, phase, counters.epoch)
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
        counters.windows_seen += min(len(run.train), first + ddp.world * config.batch_size) - first
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

        signum = ddp.agreed_signal(run.stop.signum)
        if run.checkpoint is not None and (signum or time.monotonic() - last_checkpoint >= config.checkpoint_every):
            now = _Counters(**{**asdict(counters), "seconds": counters.seconds + time.monotonic() - started})
            checkpoints.save(phase.name, {"model": net.state_dict(), "optimizer": optimizer.state_dict(),
                                          "table": table.state_dict() if table is not None else None,
                                          "counters": asdict(now), "best_state": best_state})
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
    checkpoints.finish(phase.name, {"state": best_state, "stats": stats})


def _validation_loss(evaluator: LSTMModel, codes: np.ndarray, lengths: np.ndarray, ddp: Distributed) -> float:
    """Nats per scored base over the validation windows (sharded over the ranks)."""
    shard = slice(ddp.rank, None, ddp.world)
    sums, n_scored = evaluator.loglik(codes[shard], lengths[shard])
    neg_loglik, n = ddp.all_sum([-sums.sum(), float(n_scored.sum())])
    return neg_loglik / n


def _batch(run: _Run, batches: Batches, global_batch: int, phase: Phase, epoch: int) -> torch.Tensor:
    """The (mutated) codes of one batch of the epoch's windows, padded to its longest window, on the device."""
    size = run.config.batch_size
    codes = batches(global_batch * size, min((global_batch + 1) * size, len(run.train)))
    if phase.mutation_rate:
        codes = mutate(codes, phase.mutation_rate, _rng(run.config.seed, _MUTATION, phase.index, epoch, global_batch))
    return torch.from_numpy(codes).to(run.ddp.device).long()


def _rng(seed: int, *key: int) -> np.random.Generator:
    return np.random.default_rng([seed, *key])


def _seed(seed: int, *key: int) -> int:
    return int(np.random.SeedSequence([seed, *key]).generate_state(1, np.uint64)[0])


def _to_numpy(state: dict[str, torch.Tensor]) -> dict[str, np.ndarray]:
    return {name: tensor.numpy() for name, tensor in state.items()}


@contextlib.contextmanager
def _deterministic() -> Iterator[None]:
    """cuDNN in deterministic mode while training (CPU kernels are deterministic already)."""
    saved = torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
    try:
        yield
    finally:
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = saved
