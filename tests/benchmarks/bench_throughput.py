"""Throughput of gooddetect on this machine, in one run: GEMM peak, LSTM scoring and training, parsing, memory.

Measures, with `--threads` CPU threads (and on a CUDA device when one is present):
- the fp32 (and bf16) GEMM peak of a large torch.matmul: the reference for the LSTM rows;
- per LSTM hidden size: scoring reads/s of the models alone (Detector.loglik, two randomly initialised models,
  250 bp windows) with achieved GFLOP/s and fraction of the GEMM peak, and end to end (FASTQ.gz → api.score → TSV);
- training windows/s of the pair (train_lstm_pair, fp32 and bf16 autocast; validation excluded);
- parsing + windowing alone (what `score` does before the model), next to `seqkit stats` / `seqkit sliding`;
- training of the default model with the k-mer table updated row by row (what `train` does) against a dense Adam
  step over the whole table (the previous version's), and the paper's architecture (one-hot input, hidden 128);
- the paper's architecture (one-hot input, one strand, batch 100) against alibi-detect's LLR, trained and scored
  by its own code (tests/benchmarks/alibi_llr.py, run by `--alibi-python`, an interpreter with
  `alibi-detect[tensorflow]`; skipped without one), and the same Keras models compiled with `tf.function`;
- with ../shared present: a k-mer model trained on gdbench-v1's train.fa.gz, next to Kraken2 with a database built
  from the same windows in the same run (Debian package `kraken2`), both timed the same way on the same read files
  (`gooddetect score` and `kraken2` command lines, with loading, and without: minus a one-read run); the cost of
  pairs (`--paired`) and of writing the reads by call (`--in-out`, `--ood-out`) over plain scoring; the classifier's
  scoring rate;
- peak RSS of `gooddetect score` as a subprocess at 10k and 1M reads (hidden 32, 150 bp reads).

Each measurement sizes itself to about `--budget` seconds from a pilot run (the pilot is also the warm-up).
The numbers mean something only on an idle machine: the load average is recorded at the start and the end.
Not collected by pytest. Run from the repository root, e.g.
    python tests/benchmarks/bench_throughput.py --quick --out /tmp/tp          # smoke run, ~1 min
    python tests/benchmarks/bench_throughput.py --threads 2 --out bench_tp     # full run
    python tests/benchmarks/bench_throughput.py --kmer-only --out bench_kmer_tp    # the k-mer section alone
    python tests/benchmarks/bench_throughput.py --alibi-only --alibi-python ~/alibi/bin/python --out bench_alibi
Writes OUT/throughput.md and OUT/throughput.json (and OUT/throughput_profile.txt with --profile).
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import gzip
import io
import json
import os
import pstats
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Callable

import numpy as np

from gooddetect.runtime import Runtime
from gooddetect.scoring import DEFAULT_BATCH_SIZE

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_accuracy import BENCH, kraken2, run_seconds, timing  # noqa: E402  (Kraken2 built and timed as the accuracy run does)

WINDOW = 250  # bp, the scoring window (and read length of the scoring files)
MIN_LENGTH = 50
RSS_READ_LENGTH = 150
RSS_HIDDEN = 32
TRAIN_BATCH = 100  # windows per step (the paper's batch size)
KMER_TRAIN_WINDOWS = 20_000
GEMM_N = 2048
MIN_BATCH = 128  # fewest items in a measurement, even when that takes longer than the budget
REPO = Path(__file__).resolve().parents[2]

TARGET_LSTM_PEAK = 0.60  # fraction of the fp32 GEMM peak, at hidden >= 512
TARGET_LSTM_PEAK_MIN_HIDDEN = 512
TARGET_E2E = 8000.0  # reads/s end to end, default LSTMConfig
TARGET_KMER = 100_000.0  # reads/s end to end, k-mer model, 150 bp reads
TARGET_KMER_LOAD = 0.2  # seconds to read, verify and rebuild the k-mer model in a running process
LOAD_ROUNDS = 5  # best of, after a warm-up load (numba's start-up)
TARGET_TRAIN_SPEEDUP = 3.0  # default LSTM training vs a dense Adam step over the k-mer table
TARGET_ALIBI_TRAIN = 1.5  # the paper's architecture: training windows/s vs alibi-detect's LLR.fit
ALIBI_SCRIPT = Path(__file__).resolve().parent / "alibi_llr.py"
TARGET_OVERHEAD = 0.10  # pairs, or writing the reads by call, over plain scoring
OVERHEAD_ROUNDS = 6  # rounds of plain, paired and read-output scoring in turn; median of the rounds' ratios
TARGET_CLASSIFIER = 10_000.0  # reads/s end to end with a default classifier
TARGET_PARSE_FACTOR = 20.0  # parsing + windowing rate / end-to-end rate of the default model
TARGET_RSS_GROWTH = 0.20  # peak RSS at the largest vs the smallest --rss-reads


# -- machine -------------------------------------------------------------------------------------------------------


def cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return "unknown"


def cpu_flags() -> list[str]:
    """The SIMD/matrix extensions that decide fp32/bf16 speed (AVX-512, AVX512-BF16, AMX)."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                flags = line.split(":", 1)[1].split()
                return sorted(f for f in flags if f in ("avx2", "fma", "avx512f", "avx512_bf16", "avx512_fp16",
                                                         "amx_bf16", "amx_tile"))
    return []


def git_revision() -> str | None:
    try:
        head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return head + ("-dirty" if dirty else "")


def machine_info(torch, threads: int) -> dict:
    import gooddetect

    info = {
        "cpu_model": cpu_model(),
        "cpu_flags": cpu_flags(),
        "cpus_visible": len(os.sched_getaffinity(0)),
        "threads": threads,
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "python": sys.version.split()[0],
        "gooddetect": gooddetect.__version__,
        "git": git_revision(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "seqkit": seqkit_version(),
        "load_average_start": list(os.getloadavg()),
    }
    return info


def check_load(threads: int, when: str) -> list[float]:
    load = list(os.getloadavg())
    if load[0] > threads:
        print(f"WARNING: 1-minute load average {load[0]:.2f} exceeds --threads {threads} {when}: other processes "
              f"compete for the CPU, the rates below are lower bounds", file=sys.stderr)
    return load


# -- inputs --------------------------------------------------------------------------------------------------------


def random_codes(n: int, length: int, rng: np.random.Generator) -> np.ndarray:
    return rng.integers(0, 4, size=(n, length), dtype=np.uint8)


def write_fastq(path: Path, n: int, length: int, seed: int, level: int = 6) -> Path:
    """n random reads of `length` bp as gzip FASTQ (ids r1, r2, ...; constant quality)."""
    rng = np.random.default_rng(seed)
    bases = np.frombuffer(b"ACGT", dtype=np.uint8)
    quality = b"I" * length
    with gzip.open(path, "wb", compresslevel=level) as handle:
        for start in range(0, n, 50_000):
            chunk = bases[random_codes(min(50_000, n - start), length, rng)]
            handle.write(b"".join(b"@r%d\n%s\n+\n%s\n" % (start + i + 1, row.tobytes(), quality)
                                  for i, row in enumerate(chunk)))
    return path


def uncompressed_size(path: Path) -> int:
    size = 0
    with gzip.open(path, "rb") as handle:
        while block := handle.read(1 << 22):
            size += len(block)
    return size


# -- measuring -----------------------------------------------------------------------------------------------------


def sized_run(run: Callable[[int], float], budget: float, unit: int, max_n: int = 10**6) -> dict:
    """run(n) does n items and returns its seconds. Pilot runs (growing from 16 items; the first one warms up) give
    the rate; when whole batches of `unit` items fit in the budget, one more pilot of exactly `unit` items warms up
    that batch shape and the measurement is a whole number of batches, as in real scoring; otherwise (very slow
    models) the measurement is a smaller batch of about `budget` seconds, but at least MIN_BATCH items (a GEMM
    over fewer rows is far below the large-batch rate, which is not what scoring a file sees)."""
    n = 16
    seconds = run(n)
    while seconds < budget / 20 and n < unit:
        n = min(unit, n * 4)
        seconds = run(n)
    rate = n / seconds
    if rate * 2 * budget >= unit:
        if n != unit:
            rate = unit / run(unit)
        n = unit * max(1, round(rate * budget / unit))
    else:
        n = max(n, min(unit, MIN_BATCH), round(rate * budget))
    n = min(n, max_n)
    seconds = run(n)
    return {"n": n, "seconds": round(seconds, 4), "per_s": n / seconds}


def best_of(fn: Callable[[], None], repeats: int) -> float:
    fn()  # warm-up
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - started)
    return best


def gemm_peak(torch, device: str, dtype, repeats: int, n: int = GEMM_N) -> float:
    """GFLOP/s of the best of `repeats` n×n @ n×n matmuls (2n³ FLOP each)."""
    a = torch.randn(n, n, device=device).to(dtype)
    b = torch.randn(n, n, device=device).to(dtype)

    def once() -> None:
        torch.matmul(a, b)
        if torch.device(device).type == "cuda":
            torch.cuda.synchronize()

    return 2 * n**3 / best_of(once, repeats) / 1e9


def lstm_flop_per_window(detector, length: int = WINDOW) -> int:
    """FLOP of one model of `detector` on one window: at each of the length-1 predicted positions, each layer does
    the gate products W_ih·x + W_hh·h, 4H×(in+H) multiply-adds = 8H(in+H) FLOP (in = the first layer's input: 4
    one-hot bases plus the k-mer embedding; H above), and the head 4×H multiply-adds = 8H FLOP. Element-wise gate
    maths, the embedding lookups and the softmax are left out."""
    lstm = detector.foreground.module.lstm
    hidden, layers, input_size = lstm.hidden_size, lstm.num_layers, lstm.input_size
    per_position = sum(8 * hidden * ((input_size if layer == 0 else hidden) + hidden) for layer in range(layers))
    return (length - 1) * (per_position + 8 * hidden)


def flop_per_read(detector, length: int = WINDOW) -> int:
    """FLOP to score one `length` bp read: both models, on both strands when the detector scores both."""
    return 2 * (2 if detector.strands == "both" else 1) * lstm_flop_per_window(detector, length)


# -- scoring ---------------------------------------------------------------------------------------------------------


def random_detector(hidden: int, seed: int = 0, paper: bool = False):
    """Two randomly initialised LSTM models: the defaults but for the hidden size, or with `paper` the paper's
    architecture (one-hot input, no k-mer input, one strand)."""
    import torch

    from gooddetect.models.lstm.options import LstmData
    from gooddetect.detector import Detector
    from gooddetect.models.lstm.model import LSTMConfig, LSTMModel

    torch.manual_seed(seed)
    configs = [LSTMConfig(hidden=hidden, kmer_input=0)] * 2 if paper else \
        [LSTMConfig(hidden=hidden), LSTMConfig(hidden=hidden, kmer_input=LstmData.background_kmer_input)]
    strands = "forward" if paper else LstmData.score_strands
    return Detector(LSTMModel(configs[0]), LSTMModel(configs[1]),
                    {"window_length": WINDOW, "min_length": MIN_LENGTH, "strands": strands})


def model_rate(detector, budget: float, autocast: tuple[str, object] | None = None, max_n: int = 20_000) -> dict:
    """Windows/s through both models of `detector` (Detector.loglik on random 250 bp windows, on the strands the
    detector scores)."""
    import torch

    rng = np.random.default_rng(1)

    def run(n: int) -> float:
        codes = random_codes(n, WINDOW, rng)
        lengths = np.full(n, WINDOW, dtype=np.int64)
        context = torch.autocast(autocast[0], dtype=autocast[1]) if autocast else contextlib.nullcontext()
        started = time.perf_counter()
        with context:
            detector.loglik(codes, lengths)
        return time.perf_counter() - started

    return sized_run(run, budget, getattr(detector.foreground, "batch_size", DEFAULT_BATCH_SIZE), max_n)


def end_to_end_rate(model_file: Path, workdir: Path, budget: float, threads: int | None, device: str = "cpu",
                    max_n: int = 200_000, bf16: bool = False) -> dict:
    """Reads/s of api.score (parsing, windowing, both models, TSV) on N random 250 bp reads, N sized for about
    `budget` seconds. The run's fixed cost (loading and checking the model file: ~0.5 s for a 134 MB file), timed
    on a one-read file, is reported as `load_seconds` and left out of `per_s`, the rate a large file sees;
    `per_s_with_load` is the rate of the measured run including it."""
    from gooddetect import api

    def run(n: int) -> float:
        reads = write_fastq(workdir / f"e2e_{n}.fq.gz", n, WINDOW, seed=n)
        started = time.perf_counter()
        api.score(str(model_file), [str(reads)], str(workdir / "e2e.tsv"), api.ScoreOptions(bf16=bf16),
                  Runtime(threads=threads, device=device))
        seconds = time.perf_counter() - started
        reads.unlink()
        return seconds

    load = min(run(1) for _ in range(2))
    # Grow the pilot until the scoring itself takes a quarter of the budget, so that the noise of the subtracted
    # load time (a few hundredths of a second) cannot swamp it; then one run sized for the whole budget.
    n = 16
    while (seconds := run(n) - load) < budget / 4 and n < max_n:
        n = min(max_n, n * 4)
    sized = min(max_n, max(n, round(n / seconds * budget)))
    if sized != n:
        n, seconds = sized, run(sized) - load
    return {"n": n, "seconds": round(seconds, 4), "per_s": n / seconds, "load_seconds": round(load, 4),
            "per_s_with_load": n / (seconds + load)}


@contextlib.contextmanager
def scoring_in_bf16(detector):
    """Both LSTM models of `detector` score under bfloat16 autocast (what `score --bf16` sets); a no-op where the CPU
    has no bfloat16 LSTM kernel (the rows then repeat float32)."""
    from gooddetect.errors import UsageError
    from gooddetect.models.lstm.model import check_bf16

    try:
        check_bf16(detector.foreground.device)
    except UsageError:
        yield False
        return
    with _bf16(detector):
        yield True


@contextlib.contextmanager
def _bf16(detector):
    """Both LSTM models of `detector` score under bfloat16 autocast (what `score --bf16` sets)."""
    models = (detector.foreground, detector.background)
    for model in models:
        model.bf16 = True
    try:
        yield
    finally:
        for model in models:
            model.bf16 = False


def scoring_rows(sizes: list[int], budget: float, peaks: dict[str, float], threads: int, workdir: Path) -> list[dict]:
    """Per hidden size: both models alone, in fp32 (the default) and in bf16 (`score --bf16`); then end to end."""
    rows = []
    for hidden in sizes:
        detector = random_detector(hidden)
        flop = flop_per_read(detector)
        model = model_rate(detector, budget)
        with scoring_in_bf16(detector) as bf16_runs:
            model_bf16 = model_rate(detector, budget) if bf16_runs else None  # no bf16 kernel: not measured
        for rate, peak in ((model, peaks["fp32"]), (model_bf16, peaks["bf16"])):
            if rate is None:
                continue
            rate["gflops"] = rate["per_s"] * flop / 1e9
            rate["fraction_of_peak"] = rate["gflops"] / peak
            rate["batch"] = min(rate["n"], detector.foreground.batch_size)
        model_file = workdir / f"random_h{hidden}.gdm"
        detector.save(model_file)
        e2e = end_to_end_rate(model_file, workdir, budget, threads)
        e2e_bf16 = end_to_end_rate(model_file, workdir, budget, threads, bf16=True) if bf16_runs else None
        rows.append({"hidden": hidden, "flop_per_read": flop, "model": model, "model_bf16": model_bf16,
                     "end_to_end": e2e, "end_to_end_bf16": e2e_bf16})
        print(f"  scoring hidden {hidden}: models {model['per_s']:.1f} reads/s ({model['gflops']:.1f} GFLOP/s, "
              f"{100 * model['fraction_of_peak']:.0f}% of peak), end to end {e2e['per_s']:.1f} reads/s",
              file=sys.stderr)
    return rows


def cuda_rows(sizes: list[int], budget: float, workdir: Path, device: str = "cuda") -> dict:
    """On the CUDA device: both models alone in fp32 and under bf16 / fp16 autocast, and end to end (fp32).
    (`device` is a parameter only so that the code path can be smoke-tested with "cpu" on a machine without GPU.)"""
    import torch

    kind = torch.device(device).type

    precisions = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
    peaks = {name: gemm_peak(torch, device, dtype, 10, n=8192 if kind == "cuda" else GEMM_N)
             for name, dtype in precisions.items()}
    rows = []
    for hidden in sizes:
        detector = random_detector(hidden).to(device)
        for name, dtype in precisions.items():
            rate = model_rate(detector, budget, None if name == "fp32" else (kind, dtype), max_n=200_000)
            rate["gflops"] = rate["per_s"] * flop_per_read(detector) / 1e9
            rate["fraction_of_peak"] = rate["gflops"] / peaks[name]
            rows.append({"hidden": hidden, "precision": name, **rate})
        model_file = workdir / f"random_h{hidden}.gdm"
        detector.save(model_file)
        e2e = end_to_end_rate(model_file, workdir, budget, threads=None, device=device)
        rows.append({"hidden": hidden, "precision": "fp32 end to end", **e2e})
        print(f"  cuda hidden {hidden}: " + ", ".join(f"{r['precision']} {r['per_s']:.0f} reads/s"
                                                     for r in rows[-4:]), file=sys.stderr)
    return {"device": torch.cuda.get_device_name(0) if kind == "cuda" else device, "gemm_gflops": peaks, "rows": rows,
            "allow_tf32": {"matmul": torch.backends.cuda.matmul.allow_tf32, "cudnn": torch.backends.cudnn.allow_tf32}}


# -- training --------------------------------------------------------------------------------------------------------


def training_row(hidden: int, steps: int, bf16: bool, **model) -> dict:
    """Windows/s of train_lstm_pair over `steps` steps per model, timed from the end of step 1 (warm-up) to the
    end of the last step; validation runs only at the last step, on 2 windows. The background has no k-mer input
    (the default). The pair's rate counts the time either model was training (once where they overlap: with two or
    more threads they train side by side)."""
    from gooddetect.models.lstm.model import LSTMConfig
    from gooddetect.training.data import FixedWindows
    from gooddetect.training.loop import TrainConfig, train_lstm_pair

    rng = np.random.default_rng(2)
    n_train = steps * TRAIN_BATCH
    train = random_codes(n_train, WINDOW, rng)
    val = random_codes(2, WINDOW, rng)
    marks: dict[str, dict[int, float]] = {"fg": {}, "bg": {}}

    def on_step(phase: str, step: int) -> None:
        marks[phase][step] = time.perf_counter()

    config = TrainConfig(steps=steps, batch_size=TRAIN_BATCH, eval_every=None, bf16=bf16, device="cpu")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # e.g. autocast notes on CPU
        train_lstm_pair(FixedWindows(train, np.full(n_train, WINDOW)), val, np.full(2, WINDOW),
                        LSTMConfig(hidden=hidden, **model), config, on_step=on_step,
                        background_config=LSTMConfig(hidden=hidden, **{**model, "kmer_input": 0}))
    per_model = {phase: (steps - 1) * TRAIN_BATCH / (m[steps] - m[1]) for phase, m in marks.items()}
    (fg_start, fg_end), (bg_start, bg_end) = ((m[1], m[steps]) for m in marks.values())
    overlap = max(0.0, min(fg_end, bg_end) - max(fg_start, bg_start))  # > 0 when the models train side by side
    busy = (fg_end - fg_start) + (bg_end - bg_start) - overlap
    pair = (steps - 1) * TRAIN_BATCH / busy  # windows through both models per second
    return {"steps": steps, "measured_steps": steps - 1, "per_model": per_model, "pair_per_s": pair,
            "side_by_side": overlap > 0}


def cpu_has_bf16() -> bool:
    """Whether this CPU has a bfloat16 kernel (AMX or AVX512-BF16); without one bf16 is emulated, slowly."""
    import torch

    from gooddetect.errors import UsageError
    from gooddetect.models.lstm.model import check_bf16

    try:
        check_bf16(torch.device("cpu"))
        return True
    except UsageError:
        return False


def training_rows(sizes: list[int], scoring: list[dict], budget: float, max_steps: int) -> list[dict]:
    """Steps per size from the scoring rate: a training step (forward + backward) costs about 3 forward passes."""
    bf16_runs = cpu_has_bf16()
    rate_of = {row["hidden"]: row["model"]["per_s"] for row in scoring}
    rows = []
    for hidden in sizes:
        per_model_forward = 2 * rate_of.get(hidden, 1000.0)
        step_seconds = 3 * TRAIN_BATCH / per_model_forward
        steps = int(np.clip(round(budget / 2 / step_seconds), 3, max_steps))
        row = {"hidden": hidden, "fp32": training_row(hidden, steps, bf16=False)}
        row["bf16"] = training_row(hidden, steps, bf16=True) if bf16_runs else None
        rows.append(row)
        print(f"  training hidden {hidden}: fp32 {row['fp32']['pair_per_s']:.1f} windows/s (pair, {steps} steps per "
              f"model)", file=sys.stderr)
    return rows


def table_step_rate(steps: int, lazy: bool, **config) -> float:
    """Windows/s of one model (the default foreground) trained alone, from step 2 on: with `lazy`, the k-mer table
    updated only on the rows a batch uses (gooddetect.training.optim, what `train` does); else a dense Adam step over every
    parameter, the whole table included (the previous version's step). Same loss and batch."""
    import torch

    from gooddetect.models.lstm.model import KMER_TABLE, LSTMConfig, LSTMNet
    from gooddetect.training.optim import Adam, KmerTableAdam
    from gooddetect.training.distributed import Distributed
    from gooddetect.training.loop import training_loss

    torch.manual_seed(0)
    net = LSTMNet(LSTMConfig(**config))
    table = KmerTableAdam(net.kmer_embed.weight, 1e-3) if lazy else None
    optimizer = Adam([p for name, p in net.named_parameters() if not lazy or name != KMER_TABLE], lr=1e-3)
    codes = torch.from_numpy(random_codes(TRAIN_BATCH, WINDOW, np.random.default_rng(3))).long()
    one_process = Distributed(torch.device("cpu"))

    def step() -> None:
        loss = training_loss(net, net, codes, 1e-4, table)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if table is not None:
            table.step(one_process)

    step()
    started = time.perf_counter()
    for _ in range(steps):
        step()
    return steps * TRAIN_BATCH / (time.perf_counter() - started)


def training_comparison(steps: int) -> dict:
    """The default foreground trained alone with the k-mer table row by row against the dense step (the same model
    and loop, so the optimizer is all that differs), the default pair, and the paper's model."""
    from gooddetect.models.lstm.model import LSTMConfig

    default = training_row(LSTMConfig().hidden, steps, bf16=False)
    paper = training_row(128, steps, bf16=False, kmer_input=0)
    lazy, dense = table_step_rate(steps, lazy=True), table_step_rate(steps, lazy=False)
    row = {"lazy_per_model": lazy, "dense_per_model": dense, "default_pair": default, "paper_h128": paper,
           "speedup": lazy / dense}
    print(f"  training: default foreground {lazy:.0f} windows/s alone, dense-table step {dense:.0f} "
          f"({row['speedup']:.1f}x); default pair {default['pair_per_s']:.0f}, paper's model (h128) "
          f"{paper['pair_per_s']:.0f} windows/s (pair)", file=sys.stderr)
    return row


# -- alibi-detect ---------------------------------------------------------------------------------------------------


def alibi_interpreter(requested: str | None) -> str | None:
    """The Python that runs alibi_llr.py: `requested`, else this one if it has alibi-detect; None: not installed."""
    import importlib.util

    if requested:
        return requested
    return sys.executable if importlib.util.find_spec("alibi_detect") else None


def alibi_rows(sizes: list[int], python: str, threads: int, train_windows: int, score_windows: int,
               budget: float) -> list[dict]:
    """Per hidden size, the paper's architecture: training windows/s through the pair (train_lstm_pair) and scoring
    windows/s through both models (Detector.loglik), then alibi-detect's LLR on the same number of windows (its
    own fit and instance_score, and the same models compiled), with the same threads and scoring batch."""
    rows = []
    for hidden in sizes:
        ours_training = training_row(hidden, max(3, train_windows // TRAIN_BATCH), bf16=False, kmer_input=0)
        detector = random_detector(hidden, paper=True)
        ours_scoring = model_rate(detector, budget)
        command = [python, str(ALIBI_SCRIPT), "--hidden", str(hidden), "--train-windows", str(train_windows),
                   "--score-windows", str(score_windows), "--score-batch", str(detector.foreground.batch_size),
                   "--threads", str(threads)]
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed:\n{done.stderr[-3000:]}")
        alibi = json.loads(done.stdout.strip().splitlines()[-1])
        row = {"hidden": hidden, "gooddetect": {"train_pair_per_s": ours_training["pair_per_s"],
                                                "score_per_s": ours_scoring["per_s"]}, "alibi": alibi}
        rows.append(row)
        print(f"  hidden {hidden}: training {ours_training['pair_per_s']:.0f} vs alibi {alibi['train_pair_per_s']:.0f} "
              f"(compiled {alibi['compiled_train_pair_per_s']:.0f}); scoring {ours_scoring['per_s']:.0f} vs "
              f"{alibi['score_per_s']:.0f} (compiled {alibi['compiled_score_per_s']:.0f}) windows/s", file=sys.stderr)
    return rows


def alibi_markdown(rows: list[dict]) -> list[str]:
    if not rows:
        return ["", "## Against alibi-detect", "", "Not measured: no interpreter with alibi-detect (--alibi-python)."]
    a = rows[0]["alibi"]
    lines = ["", f"## Against alibi-detect {a['alibi_detect']} (TensorFlow {a['tensorflow']})", "",
             "The paper's architecture (one-hot input, one LSTM layer, one strand, batch 100), random 250 bp windows, "
             "same threads. alibi-detect: `LLR.fit` (its own training loop, eager) and `LLR.instance_score`; "
             "compiled: the same Keras models, a training step and the scoring under `tf.function`.", "",
             "| hidden | training, windows/s through the pair: gooddetect | alibi-detect | TF compiled | scoring, "
             "windows/s through both models: gooddetect | alibi-detect | TF compiled |",
             "|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        g, a = r["gooddetect"], r["alibi"]
        lines.append(f"| {r['hidden']} | {g['train_pair_per_s']:,.0f} | {a['train_pair_per_s']:,.0f} | "
                     f"{a['compiled_train_pair_per_s']:,.0f} | {g['score_per_s']:,.0f} | {a['score_per_s']:,.0f} | "
                     f"{a['compiled_score_per_s']:,.0f} |")
    return lines


# -- parsing ---------------------------------------------------------------------------------------------------------


def parse_only(path: Path) -> int:
    from gooddetect.seqio import read_chunks

    return sum(len(chunk) for chunk in read_chunks(str(path), DEFAULT_BATCH_SIZE))


def parse_and_window(path: Path) -> int:
    """What `score` does before the model, through its own code: parse, encode, cut windows, drop unknown-heavy
    ones, pad batches of DEFAULT_BATCH_SIZE windows."""
    from gooddetect.seqio import read_chunks
    from gooddetect.windows import cut_reads

    reads = 0
    for chunk in read_chunks(str(path), DEFAULT_BATCH_SIZE):
        cut = cut_reads(chunk.seqs, WINDOW, None, MIN_LENGTH)
        for first in range(0, len(cut), DEFAULT_BATCH_SIZE):
            cut.padded(first, min(first + DEFAULT_BATCH_SIZE, len(cut)))
        reads += len(chunk)
    return reads


def seqkit_version() -> str | None:
    if not shutil.which("seqkit"):
        return None
    with contextlib.suppress(OSError, subprocess.CalledProcessError):
        return subprocess.run(["seqkit", "version"], capture_output=True, text=True, check=True).stdout.strip()
    return None


def parsing_rows(workdir: Path, n_reads: int, threads: int) -> dict:
    path = write_fastq(workdir / "parse.fq.gz", n_reads, WINDOW, seed=3)
    compressed, raw = path.stat().st_size, uncompressed_size(path)
    tools: dict[str, Callable[[], None]] = {
        "read_chunks": lambda: parse_only(path),
        "read_chunks + windows": lambda: parse_and_window(path),
    }
    if shutil.which("seqkit"):
        for name, args in (("seqkit stats", ["stats"]), ("seqkit sliding -W 250 -s 250", ["sliding", "-W", "250",
                                                                                            "-s", "250"])):
            command = ["seqkit", *args, "-j", str(threads), str(path)]
            tools[name] = lambda command=command: subprocess.run(command, stdout=subprocess.DEVNULL, check=True)
    rows = []
    for name, fn in tools.items():
        seconds = best_of(fn, 1)
        rows.append({"tool": name, "reads": n_reads, "seconds": round(seconds, 4), "reads_per_s": n_reads / seconds,
                     "mb_per_s_compressed": compressed / seconds / 1e6, "mb_per_s_uncompressed": raw / seconds / 1e6})
        print(f"  parsing {name}: {n_reads / seconds:.0f} reads/s", file=sys.stderr)
    return {"file_reads": n_reads, "compressed_bytes": compressed, "uncompressed_bytes": raw, "rows": rows}


# -- k-mer model ---------------------------------------------------------------------------------------------------


def kmer_rows(threads: int, workdir: Path) -> dict | None:
    """A k-mer model of gdbench-v1's train.fa.gz and Kraken2 from the same windows, timed the same way on the same
    150 bp read files; then what pairs, reads written by call and a classifier cost."""
    if not (BENCH / "train.fa.gz").is_file():
        print("  k-mer rows skipped: ../shared/benchmark is not there", file=sys.stderr)
        return None
    from gooddetect import api
    from gooddetect.detector import Detector

    model = workdir / "kmer.gdm"
    started = time.perf_counter()
    api.train([str(BENCH / "train.fa.gz")], str(model), arch="kmer", runtime=Runtime(threads=threads))
    fit_seconds = time.perf_counter() - started
    api.calibrate(str(model), in_dist=[str(BENCH / "val_strains_in.fa.gz")], runtime=Runtime(threads=threads))
    reads = workdir / "test_reads.fq"
    reads.write_bytes(gzip.decompress((BENCH / "test_reads.fq.gz").read_bytes()))
    big = workdir / "test_reads_x10.fq"
    big.write_bytes(reads.read_bytes() * 10)
    one = workdir / "one.fq"
    one.write_text("\n".join(reads.read_text().splitlines()[:4]) + "\n")
    score = [*cli_command(), "-q", "score", "--threads", str(threads), "-o", str(workdir / "k.tsv"), str(model)]
    files = {"test_reads (20k)": (reads, 20_000), "test_reads x10 (200k)": (big, 200_000)}
    result = {"fit_seconds": fit_seconds, "model_bytes": model.stat().st_size,
              "load_in_process_seconds": best_of(lambda: Detector.load(model, threads), LOAD_ROUNDS),
              "gooddetect": {name: timing(score, path, one, n) for name, (path, n) in files.items()}}
    if shutil.which("kraken2-build"):
        classes = {rid: row["class"] for rid, row in _train_classes().items()}
        kraken = kraken2(workdir, [str(BENCH / "train.fa.gz")], classes, threads, {})
        command = ["kraken2", "--db", kraken["db"], "--threads", str(threads), "--output", str(workdir / "k.kraken")]
        result["kraken2"] = {name: timing(command, path, one, n) for name, (path, n) in files.items()}
        result["kraken2_build_seconds"] = kraken["build_seconds"]
    # pairs: the 200k reads as 100k fragments (R1 = odd records, R2 = even ones, renamed to pair)
    records = big.read_text().splitlines()
    r1, r2 = workdir / "r1.fq", workdir / "r2.fq"
    for path, mate in ((r1, 0), (r2, 1)):
        path.write_text("".join(f"@f{i}/{mate + 1}\n{records[8 * i + 4 * mate + 1]}\n+\n{records[8 * i + 4 * mate + 3]}"
                                f"\n" for i in range(100_000)))
    commands = {"plain_200k": [*score, str(big)], "pairs": [*score[:-1], "--paired", str(model), str(r1), str(r2)],
                "split_outputs": [*score[:-1], "--in-out", str(workdir / "in.fq"), "--ood-out",
                                  str(workdir / "ood.fq"), str(model), str(big)]}
    seconds = {key: [] for key in commands}
    for _ in range(OVERHEAD_ROUNDS):  # interleaved, so that a slow spell of the machine hits all three alike
        for key, command in commands.items():
            seconds[key].append(run_seconds(command))
    for key in commands:
        result[key] = {"seconds": min(seconds[key]), "all_seconds": [round(x, 3) for x in seconds[key]],
                       "reads": 200_000}
    for key in ("pairs", "split_outputs"):  # a round's runs share the machine's pace, so its ratio cancels most of it
        ratios = [mine / plain for mine, plain in zip(seconds[key], seconds["plain_200k"])]
        result[key] |= {"overhead": statistics.median(ratios) - 1, "round_overheads": [round(r - 1, 4) for r in ratios]}
    print(f"  k-mer: {json.dumps(result['gooddetect'])}; Kraken2: {json.dumps(result.get('kraken2'))}; pairs "
          f"{result['pairs']['overhead']:+.1%}, split outputs {result['split_outputs']['overhead']:+.1%}", file=sys.stderr)
    result["classifier"] = classifier_row(model, big, one, threads, workdir)
    for kind, row in result["classifier"].items():
        print(f"  {kind} classifier: {row['reads_per_s_with_load']:,.0f} reads/s with loading", file=sys.stderr)
    return result


SAMPLES, SAMPLE_READS, MILLION = 40, 5_000, 1_000_000
SCALE_ROUNDS, ONE_READ_ROUNDS = 2, 7  # interleaved rounds (best of): the whole commands, and the one-read start-up
TARGET_ONE_READ_SECONDS, TARGET_SCORE_RSS_MB = 0.3, 300.0

# Runs its arguments as a child (output discarded) and prints its wall seconds and peak RSS (KiB). The wrapper is a
# small fresh process: Linux carries a process's peak RSS across fork + exec, so a child forked straight from this
# benchmark (torch loaded, hundreds of MB) would report the benchmark's own peak.
RSS_WRAPPER = ("import resource, subprocess, sys, time; started = time.perf_counter(); "
               "code = subprocess.call(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL); "
               "print(time.perf_counter() - started, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); "
               "sys.exit(code)")


def timed_rss(command: list[str]) -> tuple[float, float]:
    """(wall seconds, peak RSS in MB) of `command`, timed in a small wrapper process (its own start-up left out)."""
    done = subprocess.run([sys.executable, "-c", RSS_WRAPPER, *command], stdout=subprocess.PIPE, text=True,
                          check=True)
    seconds, peak_kib = done.stdout.split()
    return float(seconds), int(peak_kib) / 1024


def scale_rows(threads: int, workdir: Path) -> dict | None:
    """Many samples, a million reads and one read, loading included, same run: `score --samples` over 40 samples
    of 5,000 reads (one model load) against Kraken2 run once per sample (as its users do; also with
    --memory-mapping), 1M reads (plain FASTQ and gzip) against Kraken2 on the same files, and a one-read file (the
    start-up: imports, reading and verifying the model, rebuilding its tables). A k-mer model of train.fa.gz
    (calibrated on val_strains_in) and a Kraken2 database of the same windows; the test reads, repeated. Best of
    SCALE_ROUNDS interleaved rounds (ONE_READ_ROUNDS for the one-read file), each command's peak RSS beside."""
    if not (BENCH / "train.fa.gz").is_file() or not shutil.which("kraken2"):
        print("  scale rows skipped: they need ../shared/benchmark and Kraken2", file=sys.stderr)
        return None
    from gooddetect import api

    model = workdir / "scale_kmer.gdm"
    api.train([str(BENCH / "train.fa.gz")], str(model), arch="kmer", runtime=Runtime(threads=threads))
    api.calibrate(str(model), in_dist=[str(BENCH / "val_strains_in.fa.gz")], runtime=Runtime(threads=threads))
    classes = {rid: row["class"] for rid, row in _train_classes().items()}
    db = kraken2(workdir, [str(BENCH / "train.fa.gz")], classes, threads, {})["db"]
    records = gzip.decompress((BENCH / "test_reads.fq.gz").read_bytes()).decode().splitlines()
    per_read = ["\n".join(records[i:i + 4]) + "\n" for i in range(0, len(records), 4)]
    samples_dir = workdir / "samples"
    samples_dir.mkdir(exist_ok=True)
    sheet = ["sample\tR1"]
    for i in range(SAMPLES):
        path = samples_dir / f"s{i:02d}.fq"
        path.write_text("".join(per_read[(i * SAMPLE_READS + j) % len(per_read)] for j in range(SAMPLE_READS)))
        sheet.append(f"s{i:02d}\t{path}")
    (workdir / "sheet.tsv").write_text("\n".join(sheet) + "\n")
    (workdir / "scores").mkdir(exist_ok=True)
    million = workdir / "million.fq"
    million.write_text("".join(per_read) * (MILLION // len(per_read)))
    million_gz = workdir / "million.fq.gz"
    subprocess.run(f"gzip -c {million} > {million_gz}", shell=True, check=True)
    one = workdir / "one.fq"
    one.write_text(per_read[0])
    gd = [*cli_command(), "-q", "score", "--threads", str(threads)]
    kraken = ["kraken2", "--db", str(db), "--threads", str(threads), "--output", str(workdir / "k.kraken")]

    def per_sample(extra: list[str]) -> tuple[float, float]:
        runs = [timed_rss([*kraken, *extra, str(samples_dir / f"s{i:02d}.fq")]) for i in range(SAMPLES)]
        return sum(seconds for seconds, _ in runs), max(peak for _, peak in runs)

    runs = {"gooddetect_samples": lambda: timed_rss([*gd, str(model), "--samples", str(workdir / "sheet.tsv"), "-o",
                                                     str(workdir / "scores" / "{sample}.tsv")]),
            "kraken2_per_sample": lambda: per_sample([]),
            "kraken2_per_sample_memory_mapping": lambda: per_sample(["--memory-mapping"]),
            "gooddetect_1m_fastq": lambda: timed_rss([*gd, str(model), str(million), "-o", str(workdir / "m.tsv")]),
            "kraken2_1m_fastq": lambda: timed_rss([*kraken, str(million)]),
            "gooddetect_1m_gzip": lambda: timed_rss([*gd, str(model), str(million_gz), "-o", str(workdir / "m.tsv")]),
            "kraken2_1m_gzip": lambda: timed_rss([*kraken, str(million_gz)])}
    one_read = {"gooddetect_one_read": lambda: timed_rss([*gd, str(model), str(one), "-o", str(workdir / "o.tsv")]),
                "kraken2_one_read": lambda: timed_rss([*kraken, str(one)])}
    measured: dict[str, list[tuple[float, float]]] = {name: [] for name in (*runs, *one_read)}
    for _ in range(SCALE_ROUNDS):  # interleaved rounds: a slow spell of the machine hits every command alike
        for name, run in runs.items():
            measured[name].append(run())
    for _ in range(ONE_READ_ROUNDS):
        for name, run in one_read.items():
            measured[name].append(run())
    result = {name: {"seconds": min(s for s, _ in values), "all_seconds": [round(s, 3) for s, _ in values],
                     "median_seconds": round(statistics.median(s for s, _ in values), 3),
                     "peak_rss_mb": round(max(peak for _, peak in values), 1)}
              for name, values in measured.items()}
    result["samples"], result["sample_reads"], result["million_reads"] = SAMPLES, SAMPLE_READS, MILLION
    print(f"  scale: {json.dumps({k: v['seconds'] for k, v in result.items() if isinstance(v, dict)})}",
          file=sys.stderr)
    return result


def scale_markdown(scale: dict | None) -> list[str]:
    lines = ["", "## Many samples, a million reads and one read, loading included (k-mer model; Kraken2 side by side)",
             ""]
    if not scale:
        return lines + ["Not measured (it needs ../shared/benchmark and Kraken2)."]
    rows = [(f"{scale['samples']} samples x {scale['sample_reads']:,} reads", "gooddetect_samples",
             ("kraken2_per_sample", "kraken2_per_sample_memory_mapping")),
            (f"{scale['million_reads']:,} reads, FASTQ", "gooddetect_1m_fastq", ("kraken2_1m_fastq",)),
            (f"{scale['million_reads']:,} reads, FASTQ.gz", "gooddetect_1m_gzip", ("kraken2_1m_gzip",)),
            ("1 read (start-up)", "gooddetect_one_read", ("kraken2_one_read",))]
    lines += ["| reads | gooddetect s | Kraken2 s | gooddetect / Kraken2 speed | gooddetect peak RSS MB | "
              "Kraken2 peak RSS MB |", "|---|---:|---:|---:|---:|---:|"]
    for label, ours, theirs in rows:
        for kraken in theirs:
            name = label + (" (Kraken2 --memory-mapping)" if "memory" in kraken else "")
            lines.append(f"| {name} | {scale[ours]['seconds']:.2f} | {scale[kraken]['seconds']:.2f} | "
                         f"{scale[kraken]['seconds'] / scale[ours]['seconds']:.2f}x | {scale[ours]['peak_rss_mb']:.0f} "
                         f"| {scale[kraken]['peak_rss_mb']:.0f} |")
    one = scale["gooddetect_one_read"]
    lines += ["", f"One read: best {one['seconds']:.3f} s, median {one['median_seconds']:.3f} s of "
              f"{len(one['all_seconds'])} runs (target <= {TARGET_ONE_READ_SECONDS} s); peak RSS of k-mer scoring "
              f"{max(scale[k]['peak_rss_mb'] for k in ('gooddetect_one_read', 'gooddetect_1m_fastq', 'gooddetect_1m_gzip')):.0f}"
              f" MB (target <= {TARGET_SCORE_RSS_MB:.0f} MB)."]
    return lines


def _train_classes() -> dict[str, dict]:
    with gzip.open(BENCH / "labels.tsv.gz", "rt") as handle:
        header = handle.readline().rstrip("\n").split("\t")
        rows = (dict(zip(header, line.rstrip("\n").split("\t"))) for line in handle)
        return {row["read_id"]: row for row in rows if row["split"] == "train"}


def classifier_row(kmer_model: Path, reads: Path, one: Path, threads: int, workdir: Path) -> dict:
    """End-to-end rates of the k-mer model with a default classifier of 10 classes, of each kind (random weights and
    counts: the rate does not depend on them), on the 200,000 reads of `reads` (on fewer, loading dominates)."""
    from gooddetect.detector import Detector
    from gooddetect.models.classifier import Classifier, ClassifierConfig, ConvNet, Gaussians
    from gooddetect.models.kmer.model import DirectCounts, pack_counts, reverse_complemented
    from gooddetect.models.kmer_classifier import KmerClassifier, KmerClassifierConfig

    classes = [f"c{i}" for i in range(10)]
    rng = np.random.default_rng(0)
    kmer = KmerClassifierConfig(classes=classes)
    chain = kmer.chain()
    convnet = ClassifierConfig(classes=classes)
    n_bases = chain.top_direct_order + 1

    def random_counts() -> DirectCounts:  # counts of both strands, stored one per reverse-complement pair
        counts = rng.integers(0, 50, 4 ** n_bases, dtype=np.uint32)
        return DirectCounts.of(pack_counts(counts + reverse_complemented(counts, n_bases), n_bases))

    classifiers = {
        "kmer": (kmer, KmerClassifier(kmer, [random_counts() for _ in classes])),
        "convnet": (convnet, Classifier(convnet, ConvNet(convnet), Gaussians.untrained(convnet)))}
    rows = {}
    for kind, (config, classifier) in classifiers.items():
        detector = Detector.load(kmer_model)
        detector.classifier = classifier
        model = workdir / f"kmer_{kind}_classifier.gdm"
        detector.save(model)
        score = [*cli_command(), "-q", "score", "--threads", str(threads), "-o", str(workdir / "c.tsv"), str(model)]
        rows[kind] = timing(score, reads, one, 200_000)
        rows[kind]["config"] = {k: v for k, v in config.to_dict().items() if k != "classes"}
        rows[kind]["model_bytes"] = model.stat().st_size
    return rows


# -- memory ----------------------------------------------------------------------------------------------------------


def cli_command() -> list[str]:
    script = Path(sys.executable).with_name("gooddetect")
    if script.is_file():
        return [str(script)]
    return [sys.executable, "-c", "from gooddetect.cli import main; main()"]


def rss_rows(read_counts: list[int], threads: int, workdir: Path) -> list[dict]:
    """Peak RSS of `gooddetect score` as a subprocess (getrusage(RUSAGE_CHILDREN).ru_maxrss, via timed_rss)."""
    detector = random_detector(RSS_HIDDEN)
    model_file = workdir / "rss_model.gdm"
    detector.save(model_file)
    rows = []
    for n in read_counts:
        reads = write_fastq(workdir / f"rss_{n}.fq.gz", n, RSS_READ_LENGTH, seed=5, level=1)
        command = [*cli_command(), "-q", "score", "--device", "cpu", "-t", str(threads), str(model_file), str(reads),
                   "-o", str(workdir / "rss.tsv")]
        seconds, peak_mb = timed_rss(command)
        reads.unlink()
        rows.append({"reads": n, "read_length": RSS_READ_LENGTH, "hidden": RSS_HIDDEN, "peak_rss_mb": peak_mb,
                     "seconds": round(seconds, 3), "reads_per_s": n / seconds})
        print(f"  RSS at {n} reads: {peak_mb:.0f} MB ({n / seconds:.0f} reads/s)", file=sys.stderr)
    return rows


# -- profile ---------------------------------------------------------------------------------------------------------


def profile_scoring(model_file: Path, workdir: Path, n: int, threads: int) -> str:
    """cProfile of api.score at the default hidden size: where end-to-end time goes (top 30 by own time)."""
    from gooddetect import api

    reads = write_fastq(workdir / "profile.fq.gz", n, WINDOW, seed=6)
    profiler = cProfile.Profile()
    profiler.enable()
    api.score(str(model_file), [str(reads)], str(workdir / "profile.tsv"), runtime=Runtime(threads=threads, device="cpu"))
    profiler.disable()
    text = io.StringIO()
    stats = pstats.Stats(profiler, stream=text)
    stats.sort_stats("tottime").print_stats(30)
    return f"cProfile of api.score, {n} reads of {WINDOW} bp, default LSTM, {threads} threads\n{text.getvalue()}"


# -- report ----------------------------------------------------------------------------------------------------------


def targets(result: dict) -> list[dict]:
    """Each target with the measurement it is judged on and pass/fail (None: not measured)."""
    from gooddetect.models.lstm.model import LSTMConfig

    default_hidden = LSTMConfig().hidden
    rows = []

    def add(target: str, value, passed, text: str) -> None:
        rows.append({"target": target, "measured": text if value is not None else "not measured",
                     "pass": None if value is None else passed})

    big = [r for r in result["scoring"] if r["hidden"] >= TARGET_LSTM_PEAK_MIN_HIDDEN]
    for r in big:
        frac = r["model"]["fraction_of_peak"]
        add(f"LSTM scoring ≥ {TARGET_LSTM_PEAK:.0%} of fp32 GEMM peak (hidden {r['hidden']})", frac,
            frac >= TARGET_LSTM_PEAK, f"{frac:.1%}")
    default = next((r for r in result["scoring"] if r["hidden"] == default_hidden), None)
    e2e = default["end_to_end"]["per_s"] if default else None
    add(f"LSTM end to end ≥ {TARGET_E2E:,.0f} reads/s, default model (hidden {default_hidden})", e2e,
        e2e is not None and e2e >= TARGET_E2E, f"{e2e or 0:,.0f} reads/s")
    parse = next((r for r in (result["parsing"] or {"rows": []})["rows"] if r["tool"] == "read_chunks + windows"), None)
    if parse and e2e:
        factor = parse["reads_per_s"] / e2e
        add(f"parsing + windowing ≥ {TARGET_PARSE_FACTOR:.0f}× default LSTM end to end", factor,
            factor >= TARGET_PARSE_FACTOR, f"{factor:.1f}×")
    t = result.get("training_comparison")
    add(f"default LSTM training ≥ {TARGET_TRAIN_SPEEDUP:.0f}× a dense Adam step over the k-mer table",
        t and t["speedup"], t is not None and t["speedup"] >= TARGET_TRAIN_SPEEDUP, f"{(t or {}).get('speedup', 0):.1f}×")
    for r in result["alibi"] or []:
        g, a = r["gooddetect"], r["alibi"]
        ratio = g["train_pair_per_s"] / a["train_pair_per_s"]
        compiled = g["train_pair_per_s"] / a["compiled_train_pair_per_s"]
        add(f"paper's architecture training ≥ {TARGET_ALIBI_TRAIN}× alibi-detect (hidden {r['hidden']})", ratio,
            ratio >= TARGET_ALIBI_TRAIN, f"{ratio:.1f}× ({compiled:.2f}× the same models compiled with tf.function)")
    k = result.get("kmer")
    if k:
        ours = k["gooddetect"]["test_reads x10 (200k)"]
        add(f"k-mer end to end ≥ {TARGET_KMER:,.0f} reads/s (150 bp, with loading, 200k reads)",
            ours["reads_per_s_with_load"], ours["reads_per_s_with_load"] >= TARGET_KMER,
            f"{ours['reads_per_s_with_load']:,.0f} reads/s")
        add(f"k-mer model load ≤ {TARGET_KMER_LOAD} s in process (read, verify, rebuild; best of {LOAD_ROUNDS})",
            k["load_in_process_seconds"], k["load_in_process_seconds"] <= TARGET_KMER_LOAD,
            f"{k['load_in_process_seconds']:.3f} s")
        if "kraken2" in k:
            for name, theirs in k["kraken2"].items():
                mine = k["gooddetect"][name]
                ratio = mine["reads_per_s_with_load"] / theirs["reads_per_s_with_load"]
                add(f"k-mer ≥ Kraken2 reads/s, with loading, {name}", ratio, ratio >= 1.0, f"{ratio:.2f}×")
        for key, label in (("pairs", "--paired"), ("split_outputs", "--in-out + --ood-out")):
            add(f"{label} costs ≤ {TARGET_OVERHEAD:.0%} over plain scoring (k-mer model)", k[key]["overhead"],
                k[key]["overhead"] <= TARGET_OVERHEAD, f"{k[key]['overhead']:+.1%}")
        c = k["classifier"]["kmer"]
        add(f"default (k-mer) classifier scoring ≥ {TARGET_CLASSIFIER:,.0f} reads/s end to end", c["reads_per_s"],
            c["reads_per_s"] >= TARGET_CLASSIFIER, f"{c['reads_per_s']:,.0f} reads/s")
    rss = result["rss"]
    if len(rss) >= 2:
        growth = rss[-1]["peak_rss_mb"] / rss[0]["peak_rss_mb"] - 1
        add(f"peak RSS flat: {rss[-1]['reads']:,} vs {rss[0]['reads']:,} reads within +{TARGET_RSS_GROWTH:.0%}",
            growth, growth <= TARGET_RSS_GROWTH, f"{growth:+.1%}")
    return rows


def markdown(result: dict) -> str:
    m = result["machine"]
    lines = [
        "# gooddetect throughput",
        "",
        f"CPU: {m['cpu_model']} ({m['cpus_visible']} visible; {', '.join(m['cpu_flags']) or 'no AVX flags'}); "
        f"threads {m['threads']}; torch {m['torch']}; gooddetect {m['gooddetect']} ({m['git']}); "
        f"CUDA: {m['cuda'] or 'none'}.",
        f"Load average (1/5/15 min): start {'/'.join(f'{x:.2f}' for x in m['load_average_start'])}, "
        f"end {'/'.join(f'{x:.2f}' for x in m['load_average_end'])}"
        + (" — **machine not idle: the rates are lower bounds**" if max(m["load_average_start"][0],
                                                                       m["load_average_end"][0]) > m["threads"]
           else "") + ".",
        f"Run took {result['seconds']:.0f} s{' (--quick)' if result['quick'] else ''}.",
        "",
        f"GEMM peak ({GEMM_N}×{GEMM_N} @ {GEMM_N}×{GEMM_N} torch.matmul, best of repeats): "
        f"fp32 {result['gemm_gflops']['fp32']:.1f} GFLOP/s, bf16 "
        + (f"{result['gemm_gflops']['bf16']:.1f} GFLOP/s." if result["gemm_gflops"]["bf16"] else
           "not measured (no bf16 kernel on this CPU: the bf16 columns are empty)."),
        "",
        "## Targets",
        "",
        "| target | measured | pass |",
        "|---|---|---|",
    ]
    for t in result["targets"]:
        verdict = "n/a" if t["pass"] is None else "PASS" if t["pass"] else "FAIL"
        lines.append(f"| {t['target']} | {t['measured']} | {verdict} |")
    if result["scoring"]:
        lines += lstm_markdown(result)
    p = result["parsing"]
    if p:
        lines += parsing_markdown(p)
    t = result["training_comparison"]
    if t:
        lines += ["", "## LSTM training", "",
                  f"Default foreground alone, one step = {TRAIN_BATCH} windows: {t['lazy_per_model']:,.0f} "
                  f"windows/s with the k-mer table updated row by row, {t['dense_per_model']:,.0f} with a "
                  f"dense Adam step over the whole table ({t['speedup']:.1f}×). Through the pair"
                  f"{' (side by side)' if t['default_pair']['side_by_side'] else ''}: the default "
                  f"{t['default_pair']['pair_per_s']:,.0f} windows/s, the paper's model (one-hot input, hidden 128, one "
                  f"strand) {t['paper_h128']['pair_per_s']:,.0f}."]
    if result["alibi"] is not None:
        lines += alibi_markdown(result["alibi"])
    if not result["alibi_only"]:
        lines += kmer_markdown(result["kmer"])
    if "scale" in result:
        lines += scale_markdown(result["scale"])
    c = result["cuda"]
    if c:
        lines += ["", f"## CUDA ({c['device']})", "",
                  "GEMM peak GFLOP/s: " + ", ".join(f"{k} {v:.0f}" for k, v in c["gemm_gflops"].items()), "",
                  "| hidden | precision | reads/s | GFLOP/s | % GEMM peak of that precision |",
                  "|---:|---|---:|---:|---:|"]
        lines += [f"| {r['hidden']} | {r['precision']} | {r['per_s']:,.0f} | "
                  + (f"{r['gflops']:.0f} | {100 * r['fraction_of_peak']:.0f}% |" if "gflops" in r else "— | — |")
                  for r in c["rows"]]
    lines += ["", f"## Memory: peak RSS of `gooddetect score` (hidden {RSS_HIDDEN}, {RSS_READ_LENGTH} bp reads)", ""]
    if result["rss"]:
        lines += ["| reads | peak RSS MB | seconds | reads/s |", "|---:|---:|---:|---:|"]
        lines += [f"| {r['reads']:,} | {r['peak_rss_mb']:.0f} | {r['seconds']:.1f} | {r['reads_per_s']:,.0f} |"
                  for r in result["rss"]]
    else:
        lines.append("Not measured (--rss-reads empty).")
    return "\n".join(lines) + "\n"


def lstm_markdown(result: dict) -> list[str]:
    lines = []
    train_of = {r["hidden"]: r for r in result["training"]}
    both = result["strands"] == "both"
    strands_scored, strands_factor = ("both strands", "2 strands") if both else ("the forward strand", "1 strand")
    lines += [
        "",
        "## LSTM, per hidden size",
        "",
        "Models alone: Detector.loglik (both models, default LSTMConfig but for the hidden size) on random 250 bp "
        f"windows, scored on {strands_scored} (the default). GFLOP/s = reads/s × 2 models × {strands_factor} × "
        f"{WINDOW - 1} positions × (8H(in+H) + 8H) FLOP, `in` = 4 bases + the k-mer embedding width. End to end: "
        "api.score on a "
        "FASTQ.gz of random 250 bp reads (parse, window, both models, TSV), the rate a large file sees: the fixed "
        "cost of loading the model file, timed on a one-read file, is left out and shown apart. "
        "bf16: `score --bf16` (bfloat16 autocast; the CPU's bf16 GEMM, AMX where present). "
        "Training: train_lstm_pair, windows/s through the pair "
        f"(per-model rate / 2), batch {TRAIN_BATCH}, validation excluded, step 1 (warm-up) excluded.",
        "",
        "| hidden | models reads/s | GFLOP/s | % fp32 peak | models bf16 reads/s (% bf16 peak) "
        "| end-to-end reads/s | end-to-end bf16 reads/s | model load s | train fp32 windows/s | train bf16 windows/s |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in result["scoring"]:
        t = train_of.get(r["hidden"])
        fp32 = f"{t['fp32']['pair_per_s']:.1f}" if t else "—"
        bf16 = f"{t['bf16']['pair_per_s']:.1f}" if t and t["bf16"] else "—"
        bf16_score = r["model_bf16"]
        bf16_model = (f"{bf16_score['per_s']:,.1f} ({100 * bf16_score['fraction_of_peak']:.0f}%)" if bf16_score
                      else "—")
        bf16_e2e = f"{r['end_to_end_bf16']['per_s']:,.1f}" if r["end_to_end_bf16"] else "—"
        lines.append(f"| {r['hidden']} | {r['model']['per_s']:,.1f} | {r['model']['gflops']:.1f} | "
                     f"{100 * r['model']['fraction_of_peak']:.0f}% | {bf16_model} | {r['end_to_end']['per_s']:,.1f} | "
                     f"{bf16_e2e} | {r['end_to_end']['load_seconds']:.2f} | {fp32} | {bf16} |")
    return lines


def parsing_markdown(p: dict) -> list[str]:
    lines = [
        "",
        f"## Parsing + windowing ({p['file_reads']:,} random 250 bp reads, FASTQ.gz "
        f"{p['compressed_bytes'] / 1e6:.1f} MB, {p['uncompressed_bytes'] / 1e6:.1f} MB uncompressed)",
        "",
        "| tool | reads/s | MB/s compressed | MB/s uncompressed |",
        "|---|---:|---:|---:|",
    ]
    for r in p["rows"]:
        lines.append(f"| {r['tool']} | {r['reads_per_s']:,.0f} | {r['mb_per_s_compressed']:.1f} | "
                     f"{r['mb_per_s_uncompressed']:.1f} |")
    return lines


def kmer_markdown(k: dict | None) -> list[str]:
    lines = ["", "## k-mer model and Kraken2 on the same reads", ""]
    if k:
        lines += [f"k-mer model trained on gdbench-v1 train.fa.gz in {k['fit_seconds']:.1f} s ({k['model_bytes'] / 1e6:.1f} "
                  f"MB file)" + (f"; Kraken2 database built from the same windows in {k['kraken2_build_seconds']:.0f} s"
                                 if "kraken2" in k else "; Kraken2 not installed") + ". Command lines, "
                  "same threads; with loading, and without (minus a one-read run). Of the loading, reading, "
                  f"verifying and rebuilding the model in a running process (imports and numba's start-up left out) "
                  f"takes {k['load_in_process_seconds']:.3f} s (best of {LOAD_ROUNDS}).", "",
                  "| tool | file | reads/s with loading | reads/s without | loading s |", "|---|---|---:|---:|---:|"]
        for tool in ("gooddetect", "kraken2"):
            for name, row in k.get(tool, {}).items():
                lines.append(f"| {tool} | {name} | {row['reads_per_s_with_load']:,.0f} | {row['reads_per_s']:,.0f} | "
                             f"{row['load_seconds']:.2f} |")
        lines += ["", f"200k reads as 100k pairs (`--paired`): {k['pairs']['overhead']:+.1%} time over plain scoring; "
                  f"writing the reads by call (`--in-out`, `--ood-out`): {k['split_outputs']['overhead']:+.1%} (median "
                  f"over {OVERHEAD_ROUNDS} rounds of the three runs, one after the other, of each round's ratio; rounds "
                  + ", ".join(f"{key} {min(k[key]['round_overheads']):+.1%} to {max(k[key]['round_overheads']):+.1%}"
                              for key in ("pairs", "split_outputs")) + "; runs " + ", ".join(
                      f"{key} {min(k[key]['all_seconds']):.2f}–{max(k[key]['all_seconds']):.2f} s"
                      for key in ("plain_200k", "pairs", "split_outputs")) + ").",
                  *(f"With a default {kind} classifier ({json.dumps(c['config'])}, {c['model_bytes'] / 1e6:.1f} MB "
                    f"file): {c['reads_per_s']:,.0f} reads/s ({c['reads_per_s_with_load']:,.0f} with loading)."
                    for kind, c in k["classifier"].items())]
    else:
        lines.append("Not measured (../shared/benchmark is not there).")
    return lines


def parse_ints(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part.strip()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, help="Directory for throughput.md and throughput.json.")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--sizes", default="32,128,256,512,1000,2000", help="LSTM hidden sizes for the scoring rows.")
    parser.add_argument("--train-sizes", default=None,
                        help="Hidden sizes for the training rows (default: the --sizes up to 1000; at 2000 one CPU "
                             "training step takes tens of seconds).")
    parser.add_argument("--budget", type=float, default=None, help="Seconds per measurement (default 5; quick 0.5).")
    parser.add_argument("--max-train-steps", type=int, default=20)
    parser.add_argument("--parse-reads", type=int, default=None, help="Reads in the parsing file (default 200k).")
    parser.add_argument("--rss-reads", default=None, help="Read counts for the RSS runs (default 10000,1000000).")
    parser.add_argument("--profile", action="store_true", help="Also cProfile api.score at the default hidden size.")
    parser.add_argument("--quick", action="store_true", help="Smoke run: small sizes, few reads (~1 min).")
    parser.add_argument("--kmer-only", action="store_true",
                        help="Only the k-mer section: k-mer model and Kraken2, pairs, reads out, classifier.")
    parser.add_argument("--alibi-python", default=None,
                        help="Python with alibi-detect[tensorflow] for the comparison (default: this one, if it has "
                             "alibi-detect; else the rows are skipped).")
    parser.add_argument("--alibi-sizes", default="128,256", help="Hidden sizes of the alibi-detect comparison.")
    parser.add_argument("--alibi-windows", type=int, default=1000,
                        help="Training windows per model in the alibi-detect comparison (scoring: twice as many).")
    parser.add_argument("--alibi-only", action="store_true", help="Only the alibi-detect comparison.")
    parser.add_argument("--scale-only", action="store_true",
                        help="Only the many-samples and million-read rows (k-mer model and Kraken2).")
    args = parser.parse_args()

    torch = Runtime(threads=args.threads).torch()  # before torch starts its thread pools
    sizes = parse_ints(args.sizes if not args.quick or args.sizes != parser.get_default("sizes") else "64,256")
    train_sizes = parse_ints(args.train_sizes) if args.train_sizes else [h for h in sizes if h <= 1000]
    budget = args.budget or (0.5 if args.quick else 5.0)
    parse_reads = args.parse_reads or (5_000 if args.quick else 200_000)
    rss_reads = parse_ints(args.rss_reads if args.rss_reads is not None else
                           ("2000,20000" if args.quick else "10000,1000000"))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    started = time.perf_counter()
    check_load(args.threads, "at the start")
    from gooddetect.models.lstm.options import LstmData

    result: dict = {"quick": args.quick, "alibi_only": args.alibi_only, "budget_s": budget, "machine": machine_info(torch, args.threads),
                    "strands": LstmData.score_strands,
                    "flop_formula": "per read: 2 models x strands x (L-1) positions x (8H(in+H) + 8H) FLOP, L = 250 "
                                    "(one layer; in = 4 + k-mer embedding width; gate products and head only)"}
    with tempfile.TemporaryDirectory(prefix="gd_throughput_") as tmp:
        workdir = Path(tmp)
        print("GEMM peak", file=sys.stderr)
        repeats = 3 if args.quick else 10
        result["gemm_gflops"] = {"fp32": gemm_peak(torch, "cpu", torch.float32, repeats),
                                 "bf16": gemm_peak(torch, "cpu", torch.bfloat16, repeats) if cpu_has_bf16() else None}
        result |= {"scoring": [], "training": [], "parsing": None, "training_comparison": None, "cuda": None,
                   "rss": [], "alibi": None, "kmer": None}
        only = args.kmer_only or args.alibi_only or args.scale_only
        if not (args.kmer_only or args.scale_only):
            python = alibi_interpreter(args.alibi_python)
            print("alibi-detect" + ("" if python else ": not installed, skipped"), file=sys.stderr)
            windows = 200 if args.quick else args.alibi_windows
            result["alibi"] = alibi_rows(parse_ints(args.alibi_sizes), python, args.threads, windows, 2 * windows,
                                         budget) if python else []
        if not only:
            print("scoring", file=sys.stderr)
            result["scoring"] = scoring_rows(sizes, budget, result["gemm_gflops"], args.threads, workdir)
            print("training", file=sys.stderr)
            result["training"] = training_rows(train_sizes, result["scoring"], budget,
                                               3 if args.quick else args.max_train_steps)
            print("parsing", file=sys.stderr)
            result["parsing"] = parsing_rows(workdir, parse_reads, args.threads)
            print("training comparison", file=sys.stderr)
            result["training_comparison"] = training_comparison(3 if args.quick else args.max_train_steps)
        if not (args.alibi_only or args.scale_only):
            print("k-mer model and Kraken2", file=sys.stderr)
            result["kmer"] = kmer_rows(args.threads, workdir)
        result["scale"] = None
        if not (args.alibi_only or args.kmer_only):
            print("many samples and a million reads", file=sys.stderr)
            result["scale"] = scale_rows(args.threads, workdir)
        if torch.cuda.is_available() and not only:
            print("CUDA", file=sys.stderr)
            result["cuda"] = cuda_rows(sizes, budget, workdir)
        if not only:
            print("memory", file=sys.stderr)
            result["rss"] = rss_rows(rss_reads, args.threads, workdir)
        if args.profile:
            from gooddetect.models.lstm.model import LSTMConfig

            model_file = workdir / "profile_model.gdm"
            random_detector(LSTMConfig().hidden).save(model_file)
            (out / "throughput_profile.txt").write_text(profile_scoring(model_file, workdir, 2000 if not args.quick
                                                                        else 200, args.threads))
    result["machine"]["load_average_end"] = check_load(args.threads, "at the end")
    result["seconds"] = time.perf_counter() - started
    result["targets"] = targets(result)
    (out / "throughput.json").write_text(json.dumps(result, indent=2) + "\n")
    text = markdown(result)
    (out / "throughput.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
