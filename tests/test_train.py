import math
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import numpy as np
import pytest
import torch

from fixtures import cpu_runs_bf16
from gooddetect.detector import STRANDS
from gooddetect.errors import UsageError
from gooddetect.alphabet import decode
from gooddetect.models.lstm.model import LSTMConfig, LSTMNet, dequantize_rows
from gooddetect.training.data import FixedWindows, GenomeWindows
from gooddetect.training.optim import KmerTableAdam
from gooddetect.runtime import is_main_process
from gooddetect.training.loop import (
    KMER_TABLE,
    TrainConfig,
    TrainingInterrupted,
    learning_rate,
    train_lstm_pair,
    training_loss,
    training_phases,
)

MOTIF = np.array([0, 1, 2, 3, 3, 2, 1, 0], dtype=np.uint8)
TINY = LSTMConfig(hidden=16, kmer_input=3)


pytestmark = pytest.mark.usefixtures("one_thread")


def motif_windows(n: int, width: int = 40, seed: int = 0, motif: np.ndarray = MOTIF):
    """Windows cut at random phases from an endlessly repeated motif: almost fully predictable."""
    offsets = np.random.default_rng(seed).integers(0, len(motif), n)
    return motif[(offsets[:, None] + np.arange(width)) % len(motif)], np.full(n, width)


TRAIN = motif_windows(200)
VAL = motif_windows(40, seed=1)


def fast_config(**changes) -> TrainConfig:
    return TrainConfig(**{"lr": 1e-2, "lr_schedule": "constant", "batch_size": 20, "steps": 30, "eval_every": 10,
                          "checkpoint_every": 1e9, **changes})


def train(config: TrainConfig, model_config: LSTMConfig = TINY, **kwargs):
    return train_lstm_pair(FixedWindows(*TRAIN), *VAL, model_config, config, **kwargs)


def assert_same_weights(first, second):
    for a, b in zip(first, second):
        arrays_a, arrays_b = a.state_arrays(), b.state_arrays()
        assert arrays_a.keys() == arrays_b.keys()
        for name in arrays_a:
            np.testing.assert_array_equal(arrays_a[name], arrays_b[name], err_msg=name)


@pytest.mark.parametrize("bf16", [False, pytest.param(True, marks=pytest.mark.skipif(
    not cpu_runs_bf16(), reason="this CPU has no bfloat16 LSTM kernel (AVX512-BF16 or AMX)"))])
def test_training_reduces_validation_loss_and_reports_stats(bf16):
    foreground, background, stats = train(fast_config(steps=40, bf16=bf16))
    assert stats["foreground"]["val_loss"] < 0.5 < math.log(4)
    sums, n_scored = foreground.loglik(*VAL)
    # the returned model is the stored one, its k-mer table rounded to int8: the loss moves by far less than 0.1 %
    assert -sums.sum() / n_scored.sum() == pytest.approx(stats["foreground"]["val_loss"], rel=1e-3)
    for phase in ("foreground", "background"):
        assert stats[phase]["steps"] == 40 and stats[phase]["windows_seen"] == 800
        assert stats[phase]["epochs"] == 4.0 and stats[phase]["seconds"] > 0
    assert not foreground.module.training and foreground.device == torch.device("cpu")
    assert not background.module.training


def test_only_the_background_is_mutated_and_penalised():
    config = TrainConfig(mutation_rate=0.3, background_l2=0.01)
    foreground, background = training_phases(config)
    assert (foreground.name, foreground.mutation_rate, foreground.l2) == ("fg", 0.0, 0.0)
    assert (background.name, background.mutation_rate, background.l2) == ("bg", 0.3, 0.01)


def test_training_loss_adds_l2_of_the_non_bias_weights_and_of_the_kmer_rows_in_use():
    torch.manual_seed(0)
    net = LSTMNet(LSTMConfig(hidden=16, embedding=3, dropout=0.0, kmer_input=2))
    with torch.no_grad():
        net.kmer_embed.weight[:-1].normal_()  # zero at initialisation: give the penalty something to count
    codes = torch.from_numpy(TRAIN[0][:5]).long()
    table = KmerTableAdam(net.kmer_embed.weight, 0.1)
    plain = float(training_loss(net, net, codes, 0.0, table).detach())
    penalised = float(training_loss(net, net, codes, 0.5, table).detach())
    dense = sum(float(p.detach().square().sum()) for name, p in net.named_parameters()
                if "bias" not in name and name != KMER_TABLE)
    assert {name for name, _ in net.named_parameters() if "bias" not in name} == {
        "embed.weight", KMER_TABLE, "lstm.weight_ih_l0", "lstm.weight_hh_l0", "head.weight"}
    # the motif's 2-mers, and the 'no k-mer' row of the first position (zero: it adds nothing)
    used = sorted({int("".join(map(str, MOTIF[(i + np.arange(2)) % 8])), 4) for i in range(8)})
    assert set(table.rows.tolist()) == {*used, 16}
    rows = float(net.kmer_embed.weight.detach()[used].square().sum())
    assert penalised == pytest.approx(plain + 0.5 * (dense + rows), rel=1e-6)
    with torch.no_grad():  # without the row-wise optimiser, the whole table is penalised
        whole = float(training_loss(net, net, codes, 0.5)) - float(training_loss(net, net, codes, 0.0))
    assert whole == pytest.approx(0.5 * (dense + float(net.kmer_embed.weight.detach().square().sum())), rel=1e-5)


def test_background_learns_the_mutated_distribution_and_l2_shrinks_its_weights():
    _, background, stats = train(fast_config(mutation_rate=0.75))  # 0.75: every base uniformly random
    assert stats["foreground"]["val_loss"] < 0.8
    assert stats["background"]["val_loss"] > math.log(4) - 0.05

    foreground, background, _ = train(fast_config(mutation_rate=0.0, background_l2=0.05))

    def weight_norm(model):
        return sum(float((a**2).sum()) for name, a in model.state_arrays().items() if "bias" not in name)

    assert weight_norm(background) < 0.5 * weight_norm(foreground)


def test_kmer_table_rows_move_only_for_kmers_seen_in_training():
    """The foreground sees only the motif's 3-mers: every other row of its k-mer table stays exactly zero."""
    foreground, background, _ = train(fast_config(steps=10), LSTMConfig(hidden=8, kmer_input=3, kmer_embedding=4))
    seen = {int("".join(map(str, MOTIF[(i + np.arange(3)) % len(MOTIF)])), 4) for i in range(len(MOTIF))}
    table = foreground.module.kmer_embed.weight.detach()
    moved = set(torch.nonzero(table.abs().sum(dim=1)).flatten().tolist())
    assert moved == seen
    assert len(set(torch.nonzero(background.module.kmer_embed.weight.detach().abs().sum(dim=1)).flatten().tolist())
               - seen) > 20  # the background's mutated windows contain many other 3-mers


def test_learning_rate_schedules():
    constant, cosine = TrainConfig(lr=0.01, lr_schedule="constant"), TrainConfig(lr=0.01)
    assert {learning_rate(constant, step, 100) for step in range(100)} == {0.01}
    rates = [learning_rate(cosine, step, 100) for step in range(100)]
    assert rates[:2] == [0.005, 0.01]  # warm-up over 2 steps
    assert all(a >= b for a, b in zip(rates[1:], rates[2:])) and rates[-1] == pytest.approx(0.01 * 0.5 * (1 + math.cos(
        math.pi * 97 / 98)))
    with pytest.raises(ValueError, match="lr_schedule"):
        TrainConfig(lr_schedule="linear")


def test_same_seed_gives_identical_weights_and_another_seed_does_not():
    first = train(fast_config(steps=12, seed=5))
    second = train(fast_config(steps=12, seed=5))
    assert_same_weights(first[:2], second[:2])
    other = train(fast_config(steps=12, seed=6))
    assert not np.array_equal(first[0].state_arrays()["head.weight"], other[0].state_arrays()["head.weight"])


def test_early_stopping_keeps_the_best_weights():
    val = motif_windows(40, seed=1, motif=MOTIF[::-1].copy() ^ 1)  # another motif: fitting TRAIN makes it worse
    foreground, _, stats = train_lstm_pair(FixedWindows(*TRAIN), *val, TINY,
                                           fast_config(steps=200, eval_every=1, patience=3))
    assert stats["foreground"]["steps"] < 200
    sums, n_scored = foreground.loglik(*val)
    assert -sums.sum() / n_scored.sum() == pytest.approx(stats["foreground"]["val_loss"])


@pytest.mark.parametrize("interrupt_at, schedule", [(("fg", 9), "constant"), (("bg", 17), "constant"),
                                                    (("fg", 9), "cosine")])
def test_resuming_after_a_signal_matches_an_uninterrupted_run(tmp_path, interrupt_at, schedule):
    config = fast_config(steps=25, eval_every=4, patience=10, lr_schedule=schedule)
    uninterrupted = train(config, checkpoint=tmp_path / "a.ckpt")

    def send_sigterm(phase, step):
        if (phase, step) == interrupt_at:
            os.kill(os.getpid(), signal.SIGTERM)

    checkpoint = tmp_path / "b.ckpt"
    handler_before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(TrainingInterrupted) as interruption:
        train(config, checkpoint=checkpoint, on_step=send_sigterm)
    assert interruption.value.signum == signal.SIGTERM and isinstance(interruption.value, KeyboardInterrupt)
    assert signal.getsignal(signal.SIGTERM) is handler_before
    saved = torch.load(checkpoint, weights_only=True)
    assert list(saved["running"]) == [interrupt_at[0]]
    assert saved["running"][interrupt_at[0]]["counters"]["step"] == interrupt_at[1]
    assert list(saved["finished"]) == (["fg"] if interrupt_at[0] == "bg" else [])

    resumed = train(config, checkpoint=checkpoint, resume=True)
    assert_same_weights(uninterrupted[:2], resumed[:2])
    for phase in ("foreground", "background"):
        for key in ("val_loss", "steps", "epochs", "windows_seen"):
            assert resumed[2][phase][key] == uninterrupted[2][phase][key]


def test_checkpoints_are_written_periodically_and_resume_to_the_same_weights(tmp_path):
    """With checkpoint_every 1e-9 s every step writes one: resuming from the checkpoint of any step (here the last
    one written before the end of the foreground phase) completes to the uninterrupted run's weights."""
    config = fast_config(steps=12, eval_every=4, lr_schedule="cosine")
    uninterrupted = train(config)
    checkpoint = tmp_path / "run.ckpt"
    copies = {}

    def keep_a_copy(phase, step):
        if checkpoint.exists():
            copies[(phase, step)] = checkpoint.read_bytes()

    train(fast_config(steps=12, eval_every=4, lr_schedule="cosine", checkpoint_every=1e-9), checkpoint=checkpoint,
          on_step=keep_a_copy)
    assert len(copies) >= 20  # one per step (the copy runs before the step's own checkpoint)
    checkpoint.write_bytes(copies[("fg", 7)])  # written after step 6
    assert torch.load(checkpoint, weights_only=True)["running"]["fg"]["counters"]["step"] == 6
    resumed = train(config, checkpoint=checkpoint, resume=True)
    assert_same_weights(uninterrupted[:2], resumed[:2])


SPARSE_TRAIN = (np.random.default_rng(0).integers(0, 4, (300, 30)).astype(np.uint8), np.full(300, 30))
SPARSE_VAL = (np.random.default_rng(1).integers(0, 4, (40, 30)).astype(np.uint8), np.full(40, 30))


@pytest.mark.parametrize("threads", [1, 2])
def test_a_killed_run_resumes_from_any_checkpoint_to_the_uninterrupted_bytes(tmp_path, threads):
    """SIGKILL leaves the last periodic checkpoint: resuming from the checkpoint of any step (mid-epoch, the
    foreground finished and the background mid-way, both side by side) ends with the uninterrupted run's weights.
    A k-mer table of 1,024 rows that each batch uses a few of makes rows coast between uses (lazy Adam), at the
    learning rate of the cosine schedule's last step, which a resumed run must restore."""
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        _resume_from_every_kind_of_checkpoint(tmp_path, threads)
    finally:
        torch.set_num_threads(previous)


def _resume_from_every_kind_of_checkpoint(tmp_path, threads):
    model = LSTMConfig(hidden=8, kmer_input=5)
    config = fast_config(batch_size=5, steps=40, eval_every=10, lr_schedule="cosine")

    def run(**kwargs):
        return train_lstm_pair(FixedWindows(*SPARSE_TRAIN), *SPARSE_VAL, model, config, **kwargs)

    uninterrupted = run()
    checkpoint = tmp_path / "run.ckpt"
    copies = {}

    def keep_a_copy(phase, step):
        if checkpoint.exists():
            copies[(phase, step)] = checkpoint.read_bytes()

    config = fast_config(batch_size=5, steps=40, eval_every=10, lr_schedule="cosine", checkpoint_every=1e-9)
    run(checkpoint=checkpoint, on_step=keep_a_copy)
    config = fast_config(batch_size=5, steps=40, eval_every=10, lr_schedule="cosine")
    for at in [("fg", 13), ("fg", 37), ("bg", 29)]:  # steps 12 (mid-epoch), 36 (after the last validation), 28
        checkpoint.write_bytes(copies[at])
        saved = torch.load(checkpoint, weights_only=True)
        assert saved["running"][at[0]]["counters"]["step"] == at[1] - 1
        if threads == 1 and at[0] == "bg":
            assert list(saved["finished"]) == ["fg"]
        resumed = run(checkpoint=checkpoint, resume=True)
        assert_same_weights(uninterrupted[:2], resumed[:2])


@pytest.fixture
def two_threads():
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(threads)


def test_side_by_side_training_equals_training_in_turn(two_threads):
    """With two torch threads the models train at once, one thread each (each model with its own dropout stream):
    the same weights and statistics as one thread training them in turn."""
    config = fast_config(steps=12, eval_every=4, lr_schedule="cosine")
    threads_of = {"fg": set(), "bg": set()}

    def note_thread(phase, step):
        threads_of[phase].add(threading.current_thread().name)

    side_by_side = train(config, on_step=note_thread)
    assert torch.get_num_threads() == 2  # restored
    assert len(threads_of["fg"]) == len(threads_of["bg"]) == 1 and threads_of["fg"] != threads_of["bg"]
    assert threading.main_thread().name not in threads_of["fg"] | threads_of["bg"]
    for names in threads_of.values():
        names.clear()
    torch.set_num_threads(1)
    in_turn = train(config, on_step=note_thread)
    assert threads_of == {"fg": {threading.main_thread().name}, "bg": {threading.main_thread().name}}
    assert_same_weights(side_by_side[:2], in_turn[:2])
    for phase in ("foreground", "background"):
        for key in ("val_loss", "steps", "epochs", "windows_seen"):
            assert side_by_side[2][phase][key] == in_turn[2][phase][key]


def test_side_by_side_training_resumes_after_a_signal_to_the_same_weights(tmp_path, two_threads):
    """A signal stops both models (each writes its state into the one checkpoint); resuming trains both on to the
    weights of an uninterrupted run."""
    config = fast_config(steps=25, eval_every=4)
    uninterrupted = train(config)

    def sigterm_at(when):
        def send(phase, step):
            if (phase, step) == when:
                os.kill(os.getpid(), signal.SIGTERM)
        return send

    checkpoint = tmp_path / "run.ckpt"
    with pytest.raises(TrainingInterrupted):
        train(config, checkpoint=checkpoint, on_step=sigterm_at(("fg", 9)))
    saved = torch.load(checkpoint, weights_only=True)
    assert saved["running"]["fg"]["counters"]["step"] >= 9 and saved["running"]["fg"]["counters"]["step"] < 25
    resumed = train(config, checkpoint=checkpoint, resume=True)
    assert_same_weights(uninterrupted[:2], resumed[:2])

    # The foreground finished, the background interrupted (written by one thread: the same weights): the background
    # resumes alone with its share of the threads, not all of them.
    torch.set_num_threads(1)
    with pytest.raises(TrainingInterrupted):
        train(config, checkpoint=checkpoint, on_step=sigterm_at(("bg", 9)))
    assert list(torch.load(checkpoint, weights_only=True)["running"]) == ["bg"]
    torch.set_num_threads(2)
    resumed = train(config, checkpoint=checkpoint, resume=True)
    assert_same_weights(uninterrupted[:2], resumed[:2])


def test_an_error_in_one_side_by_side_model_stops_the_other_and_is_raised(two_threads):
    foreground_steps = []

    def fail_in_the_background(phase, step):
        if phase == "fg":
            foreground_steps.append(step)
        elif step == 3:
            raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        train(fast_config(steps=400), on_step=fail_in_the_background)
    assert max(foreground_steps) < 400


def test_resume_refuses_a_checkpoint_of_other_settings(tmp_path):
    checkpoint = tmp_path / "run.ckpt"
    train(fast_config(steps=6, checkpoint_every=1e-9), checkpoint=checkpoint)
    with pytest.raises(UsageError, match="train_config"):
        train(fast_config(steps=6, lr=0.5), checkpoint=checkpoint, resume=True)
    with pytest.raises(UsageError, match="model_config"):
        train(fast_config(steps=6), LSTMConfig(hidden=8, kmer_input=3), checkpoint=checkpoint, resume=True)
    with pytest.raises(UsageError, match="no checkpoint"):
        train(fast_config(steps=6), checkpoint=tmp_path / "missing.ckpt", resume=True)
    torch.save({"format": "gooddetect-train-checkpoint-3"}, checkpoint)
    with pytest.raises(UsageError, match="another gooddetect version.*without --resume"):
        train(fast_config(steps=6), checkpoint=checkpoint, resume=True)
    torch.save({"weights": torch.zeros(2)}, checkpoint)
    with pytest.raises(UsageError, match="not a gooddetect training checkpoint"):
        train(fast_config(steps=6), checkpoint=checkpoint, resume=True)


def test_config_validation():
    with pytest.raises(ValueError, match="epochs or steps"):
        TrainConfig(epochs=None, steps=None)
    with pytest.raises(ValueError, match="mutation_rate"):
        TrainConfig(mutation_rate=1.5)
    with pytest.raises(ValueError, match="checkpoint_every"):
        TrainConfig(checkpoint_every=0)


def test_only_rank_zero_is_the_main_process(monkeypatch):
    monkeypatch.delenv("RANK", raising=False)
    assert is_main_process()
    monkeypatch.setenv("RANK", "1")
    assert not is_main_process()
    monkeypatch.setenv("RANK", "0")
    assert is_main_process()


DDP_SCRIPT = """
import os, sys
import numpy as np
import torch
torch.set_num_threads(1)
from gooddetect.models.lstm.model import LSTMConfig
from gooddetect.runtime import is_main_process
from gooddetect.training.data import FixedWindows
from gooddetect.training.loop import TrainConfig, train_lstm_pair

rng = np.random.default_rng(0)
codes = rng.integers(0, 4, (200, 30)).astype(np.uint8)
lengths = np.full(200, 30)
out, batch_size = sys.argv[1], int(sys.argv[2])
config = TrainConfig(lr=1e-2, batch_size=batch_size, steps=4, eval_every=2, checkpoint_every=1e-9, mutation_rate=0.0)
foreground, background, stats = train_lstm_pair(FixedWindows(codes[:160], lengths[:160]), codes[160:], lengths[160:],
                                                 LSTMConfig(hidden=16, kmer_input=3, dropout=0.0), config,
                                                 checkpoint=f"{out}/run.ckpt")
arrays = {f"fg.{k}": v for k, v in foreground.state_arrays().items()}
arrays.update({f"bg.{k}": v for k, v in background.state_arrays().items()})
rank = os.environ.get("RANK", "single")
np.savez(f"{out}/rank{rank}.npz", main=is_main_process(), windows=stats["foreground"]["windows_seen"], **arrays)
"""


@pytest.mark.slow
def test_torchrun_two_processes_equal_one_process_with_the_global_batch(tmp_path):
    """Two ranks of 20 windows per step end with identical weights, equal (to float rounding) to one process
    training on batches of 40: the same windows per step, gradients averaged over the ranks (the k-mer table's
    rows too). No dropout and no mutation, whose random streams are keyed by batch."""
    torchrun = shutil.which("torchrun") or str(Path(sys.executable).with_name("torchrun"))
    if not Path(torchrun).exists():
        pytest.skip("torchrun not found")
    script = tmp_path / "ddp_train.py"
    script.write_text(textwrap.dedent(DDP_SCRIPT))
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1]), "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [torchrun, "--standalone", "--nproc-per-node", "2", str(script), str(tmp_path), "20"],
        env=env, capture_output=True, text=True, timeout=180,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    single = subprocess.run([sys.executable, str(script), str(tmp_path), "40"], env=env, capture_output=True,
                            text=True, timeout=180)
    assert single.returncode == 0, single.stderr[-3000:]
    rank0, rank1, alone = (np.load(tmp_path / f"rank{r}.npz") for r in ("0", "1", "single"))
    assert bool(rank0["main"]) and not bool(rank1["main"])
    assert int(rank0["windows"]) == int(alone["windows"]) == 4 * 40  # 4 steps of one 20-window batch per rank
    weights = [name for name in rank0.files if name.startswith(("fg.", "bg."))]
    assert len(weights) == 2 * 8  # k-mer table (codes, scales), LSTM (4), head (2)
    for name in weights:
        np.testing.assert_array_equal(rank0[name], rank1[name], err_msg=name)
        if name.endswith(".int8"):  # the int8 k-mer table: float noise may round an entry one step the other way
            scales = f"{name[:-len('.int8')]}.scale"
            ddp, single = (dequantize_rows(f[name], f[scales]) for f in (rank0, alone))
            step = np.maximum(rank0[scales], alone[scales]).astype(np.float32)[:, None]
            assert np.all(np.abs(ddp - single) <= 1.01 * step + 1e-5), name
        else:
            np.testing.assert_allclose(rank0[name], alone[name], rtol=1e-3 if name.endswith(".scale") else 1e-4,
                                       atol=1e-5, err_msg=name)
    saved = torch.load(tmp_path / "run.ckpt", weights_only=True)
    assert list(saved["finished"]) == ["fg"] and list(saved["running"]) == ["bg"]


def test_a_time_budget_becomes_a_recorded_step_count_that_reproduces_the_model(tmp_path, monkeypatch):
    """--time-budget times two runs of the pair (a fake clock here: 0.5 s per step after a fixed start-up),
    turns the budget into a step count up front and records it; `--steps` with that count trains the same weights."""
    from gooddetect import api
    from gooddetect.models.lstm import training as lstm_training
    from gooddetect.detector import Detector
    from fixtures import TRAIN

    ticks = iter([0.0, 3.0 + 40 * 0.5, 30.0, 30.0 + 3.0 + 140 * 0.5])  # start, end of the 40- and 140-step runs

    monkeypatch.setattr(lstm_training, "probe_clock", lambda: next(ticks))
    options = {"hidden": 8, "kmer_input": 2, "max_windows": 300, "runtime": api.Runtime(threads=1)}
    budgeted = api.train([str(TRAIN[0])], str(tmp_path / "b.gdm"), time_budget=0.5, **options)
    recorded = Detector.load(tmp_path / "b.gdm").meta["training"]["time_budget"]
    # 3 s a validation (the 40-step run's 23 s less its steps); 285 windows: a validation every 3 steps and 1000
    per_step = 0.5 + 3.0 * (1 / 3 + 1 / 1000)
    assert recorded == {"minutes": 0.5, "seconds_per_step": 0.5, "seconds_per_validation": 3.0,
                        "steps": int(0.9 * 30 / per_step)}
    monkeypatch.undo()
    again = api.train([str(TRAIN[0])], str(tmp_path / "s.gdm"), steps=recorded["steps"], **options)
    assert_same_weights([budgeted.foreground, budgeted.background], [again.foreground, again.background])
    with pytest.raises(UsageError, match="--time-budget sets the number of steps: not with --steps"):
        api.train([str(TRAIN[0])], str(tmp_path / "x.gdm"), time_budget=1, steps=5, **options)


def test_both_strands_train_on_every_window_and_its_reverse_complement(tmp_path):
    """--train-strands both: the training and validation windows are the source windows and their reverse
    complements; forward: the windows as given. The model file records which."""
    from gooddetect import api
    from gooddetect.detector import Detector
    from fixtures import TRAIN

    options = {"hidden": 8, "kmer_input": 2, "max_windows": 300, "steps": 3, "runtime": api.Runtime(threads=1)}
    recorded = {}
    for strands in STRANDS:
        api.train([str(TRAIN[0])], str(tmp_path / f"{strands}.gdm"), train_strands=strands, **options)
        recorded[strands] = Detector.load(tmp_path / f"{strands}.gdm").meta["training"]
    both, forward = recorded["both"], recorded["forward"]
    assert both["n_train_windows"] == 2 * forward["n_train_windows"] > 0
    assert both["n_val_windows"] == 2 * forward["n_val_windows"] > 0
    assert both["both_strands"] and not forward["both_strands"]


def test_large_sets_of_fixed_windows_default_to_both_strands_and_five_epochs_within_a_step_cap():
    """Sized defaults (docs/method.md): below 10 Mb of training bases, forward and enough epochs for 200 steps (at
    most 10); from 10 Mb, both strands and 5 epochs, fewer when they pass 20,000 steps; a given strand choice
    sizes the epochs by its windows; genomes keep the small-set rule."""
    from gooddetect.models.lstm.training import sized_defaults

    assert sized_defaults(9_999_999, 40_000, 100) == {"kmer_input": 8, "train_strands": "forward", "epochs": 1}
    assert sized_defaults(47_500_000, 190_000, 100) == {"kmer_input": 10, "train_strands": "both", "epochs": 5}
    assert sized_defaults(47_500_000, 190_000, 100, "forward")["epochs"] == 5
    assert sized_defaults(100_000_000, 400_000, 100)["epochs"] == 2  # 8,000 steps an epoch
    assert sized_defaults(400_000_000, 1_600_000, 100)["epochs"] == 1  # one epoch, past the cap
    assert sized_defaults(1_000_000, 4_000, 100, "both") == {"kmer_input": 6, "train_strands": "both", "epochs": 3}
    assert sized_defaults(35_000_000, 140_000, 100, genomes=True) == {"kmer_input": 10, "epochs": 1}


def genome_windows(length: int = 40) -> GenomeWindows:
    """Three stretches of a random genome (600, 41 and 300 bases)."""
    sequence = np.random.default_rng(4).integers(0, 4, 1000).astype(np.uint8)
    return GenomeWindows(sequence, np.array([0, 650, 700]), np.array([600, 41, 300]), length)


def test_genome_windows_are_fresh_every_epoch_and_training_on_them_is_reproducible_and_resumable(tmp_path):
    source = genome_windows()
    assert len(source) == 941 // 40
    first, second = (source.epoch(np.random.default_rng([1, epoch]))(0, len(source)) for epoch in (0, 1))
    assert first.shape == (len(source), 40) and not np.array_equal(first, second)
    stretches = [decode(source.sequence[s:s + n]) for s, n in zip(source.starts, source.lengths)]
    forward = [any(decode(w) in text for text in stretches) for w in np.concatenate([first, second])]
    assert 0.25 < np.mean(forward) < 0.75  # both strands (random 40-mers are never their own reverse complement)
    np.testing.assert_array_equal(first, source.epoch(np.random.default_rng([1, 0]))(0, len(source)))

    config = fast_config(steps=12, eval_every=4, batch_size=5)

    def run(**kwargs):
        return train_lstm_pair(source, *VAL, TINY, config, **kwargs)

    uninterrupted = run()
    assert uninterrupted[2]["foreground"]["epochs"] == pytest.approx(12 / 5)  # 23 windows: 5 steps an epoch
    assert_same_weights(uninterrupted[:2], run()[:2])

    def send_sigterm(phase, step):
        if (phase, step) == ("fg", 7):
            os.kill(os.getpid(), signal.SIGTERM)

    with pytest.raises(TrainingInterrupted):
        run(checkpoint=tmp_path / "g.ckpt", on_step=send_sigterm)
    resumed = run(checkpoint=tmp_path / "g.ckpt", resume=True)
    assert_same_weights(uninterrupted[:2], resumed[:2])
    with pytest.raises(UsageError, match="train_data"):
        train_lstm_pair(genome_windows(30), *VAL, TINY, config, checkpoint=tmp_path / "g.ckpt", resume=True)
