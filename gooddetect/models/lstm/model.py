"""The LSTM language model of Ren et al. 2019: an autoregressive model over the four bases.

At position t the network has read bases 0..t-1 and predicts base t. An unknown base in the context is fed as an
all-zero input vector ("no information"); unknown targets, padding and the first base are never scored.

Optionally (`kmer_input` K > 0, not in the paper) the input at each position also carries a learned embedding of the
last K bases read, a k-mer token as DNA language models use: a direct memory of 4^K contexts that a small recurrent
state cannot hold. Its table starts at zero and a row moves only when its k-mer occurs in training, so a k-mer never
seen (or one containing an unknown base, or a position with fewer than K bases before it) adds nothing. The model
file stores that table as int8 with one float16 scale per row (a quarter of the float32 size; validation AUROC
unchanged to four decimals), and a trained model is rounded the same way before it is used.
"""

from __future__ import annotations

import contextlib
import functools
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, ClassVar, Iterator

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ...alphabet import N_BASES, UNKNOWN, mask_padding
from ...errors import UsageError
from .. import ArraySpec, bin_positions
from ..configs import LSTMConfig

# Above this hidden size two models scored side by side on one core each are slower than one after the other on all
# cores: one model's recurrent weights, 16·H² bytes, no longer fit beside the other's in the cores' caches.
PAIR_MAX_HIDDEN = 192
KMER_TABLE = "kmer_embed.weight"
KMER_TABLE_CODES, KMER_TABLE_SCALES = f"{KMER_TABLE}.int8", f"{KMER_TABLE}.scale"  # its stored form


class LSTMNet(nn.Module):
    """Maps context codes [B, T] (long, 0..4) to next-base logits [B, T, 4]: output t predicts base t+1."""

    def __init__(self, config: LSTMConfig):
        super().__init__()
        if config.embedding:
            self.embed = nn.Embedding(N_BASES + 1, config.embedding, padding_idx=UNKNOWN)
            input_size = config.embedding
        else:
            self.embed = None
            one_hot = torch.cat([torch.eye(N_BASES), torch.zeros(1, N_BASES)])  # row 4 (unknown) is all zero
            self.register_buffer("one_hot", one_hot, persistent=False)
            input_size = N_BASES
        self.kmer_input = config.kmer_input
        if config.kmer_input:
            n_tokens = N_BASES**config.kmer_input
            self.kmer_embed = nn.Embedding(n_tokens + 1, config.kmer_embedding, padding_idx=n_tokens)
            nn.init.zeros_(self.kmer_embed.weight)
            input_size += config.kmer_embedding
        else:
            self.kmer_embed = None
        # Time-major: the fused CPU (oneDNN) and cuDNN kernels produce time-major output, so batch_first would cost
        # a transposing copy of every hidden state.
        self.lstm = nn.LSTM(
            input_size, config.hidden, num_layers=config.layers, dropout=config.dropout if config.layers > 1 else 0.0
        )
        self.dropout_rate = config.dropout
        self.generator: torch.Generator | None = None  # the dropout masks' source in training (None: torch's own)
        self.head = nn.Linear(config.hidden, N_BASES)

    def forward(self, context: torch.Tensor, kmer_lookup: Callable | None = None) -> torch.Tensor:
        """`kmer_lookup(tokens)` replaces the k-mer table lookup (training uses it to update only the rows a batch
        uses)."""
        time_major = context.T
        inputs = self.embed(time_major) if self.embed is not None else self.one_hot[time_major]
        if self.kmer_embed is not None:
            tokens = kmer_tokens(time_major, self.kmer_input)
            kmer = self.kmer_embed(tokens) if kmer_lookup is None else kmer_lookup(tokens)
            inputs = torch.cat([inputs, kmer], dim=-1)
        hidden, _ = self.lstm(inputs)
        return self.head(self._dropout(hidden)).transpose(0, 1)

    def _dropout(self, hidden: torch.Tensor) -> torch.Tensor:
        """nn.Dropout's arithmetic (a Bernoulli(1 - p) mask scaled by 1 / (1 - p), bit for bit), its mask drawn
        from `self.generator`: two models can then train side by side, each with its own random stream."""
        if not self.training or self.dropout_rate == 0:
            return hidden
        keep = 1.0 - self.dropout_rate
        return hidden * torch.empty_like(hidden).bernoulli_(keep, generator=self.generator).div_(keep)


def kmer_tokens(codes: torch.Tensor, k: int) -> torch.Tensor:
    """The token of the k bases ending at each position of time-major codes [T, B]: sum of base(t - j) * 4^j over
    j < k, or 4^k (the zero row) where one of them is unknown or before the start."""
    length = codes.shape[0]
    tokens = torch.zeros_like(codes)
    incomplete = torch.zeros(codes.shape, dtype=torch.bool, device=codes.device)
    incomplete[: k - 1] = True
    for j in range(min(k, length)):
        earlier = codes[: length - j]
        tokens[j:] += (earlier & 3) << (2 * j)
        incomplete[j:] |= earlier >= UNKNOWN
    return tokens.masked_fill_(incomplete, N_BASES**k)


def next_base_nll(net: nn.Module, codes: torch.Tensor, kmer_lookup: Callable | None = None) -> torch.Tensor:
    """-log p(base t | bases 0..t-1) for t = 1..L-1 of codes [B, L] (long): a [B, L-1] tensor, 0 where base t is
    unknown or padding (code 4)."""
    targets = codes[:, 1:]
    logits = net(codes[:, :-1]) if kmer_lookup is None else net(codes[:, :-1], kmer_lookup=kmer_lookup)
    nll = F.cross_entropy(logits.reshape(-1, N_BASES), targets.reshape(-1), ignore_index=UNKNOWN, reduction="none")
    return nll.view_as(targets)


def check_bf16(device: torch.device) -> None:
    """Refuse bfloat16 where torch has no bfloat16 LSTM kernel (CPUs without AVX512-BF16 or AMX)."""
    if device.type == "cpu" and not _cpu_runs_bf16_lstm():
        raise UsageError("--bf16: this CPU has no bfloat16 LSTM kernel (it needs AVX512-BF16 or AMX); "
                         "run without --bf16")


@functools.cache
def _cpu_runs_bf16_lstm() -> bool:
    try:
        with torch.autocast("cpu", dtype=torch.bfloat16), torch.inference_mode():
            nn.LSTM(4, 4)(torch.zeros(2, 1, 4))
    except RuntimeError:
        return False
    return True


class LSTMModel:
    """The model contract around an LSTMNet: batched, length-sorted scoring on `device`."""

    kind: ClassVar[str] = "lstm"
    uses_torch: ClassVar[bool] = True
    context: ClassVar[int | None] = None  # an LSTM reads windows as it was trained on them
    stored_deflated: ClassVar[bool] = False
    chunks_in_flight: ClassVar[int] = 1  # torch runs its own threads

    def __init__(self, config: LSTMConfig, module: LSTMNet | None = None, device: str = "cpu", batch_size: int = 512,
                 bf16: bool = False):
        self.config = config
        self.module = module if module is not None else LSTMNet(config)
        self.device = device
        self.batch_size = batch_size
        self.bf16 = bf16  # score under bfloat16 autocast (a run-time setting, not part of the model)

    @property
    def device(self) -> torch.device:
        return self._device

    @device.setter
    def device(self, device: str | torch.device) -> None:
        self._device = torch.device(device)
        self.module.to(self._device).eval()

    def to(self, device: str | torch.device) -> LSTMModel:
        self.device = device
        return self

    def configure(self, *, threads: int | None = None, device: str = "cpu", bf16: bool = False) -> None:
        """Place the model on `device`; `bf16` scores under bfloat16 autocast (threads are torch's, set globally)."""
        self.device = device
        if bf16:
            check_bf16(self.device)
        self.bf16 = bf16

    def config_dict(self) -> dict:
        return self.config.to_dict()

    @classmethod
    def expected_arrays(cls, config: dict) -> dict[str, ArraySpec]:
        c = LSTMConfig.from_model_file(config, "LSTM")
        gates = 4 * c.hidden
        arrays: dict[str, ArraySpec] = {}
        if c.embedding:
            arrays["embed.weight"] = ((N_BASES + 1, c.embedding), "float32")
        if c.kmer_input:
            rows = N_BASES**c.kmer_input + 1
            arrays[KMER_TABLE_CODES] = ((rows, c.kmer_embedding), "int8")
            arrays[KMER_TABLE_SCALES] = ((rows,), "float16")
        inputs = (c.embedding or N_BASES) + (c.kmer_embedding if c.kmer_input else 0)
        for layer in range(c.layers):
            arrays[f"lstm.weight_ih_l{layer}"] = ((gates, inputs if layer == 0 else c.hidden), "float32")
            arrays[f"lstm.weight_hh_l{layer}"] = ((gates, c.hidden), "float32")
            arrays[f"lstm.bias_ih_l{layer}"] = ((gates,), "float32")
            arrays[f"lstm.bias_hh_l{layer}"] = ((gates,), "float32")
        arrays["head.weight"] = ((N_BASES, c.hidden), "float32")
        arrays["head.bias"] = ((N_BASES,), "float32")
        return arrays

    def state_arrays(self) -> dict[str, np.ndarray]:
        arrays = {name: tensor.detach().cpu().numpy().astype(np.float32, copy=True)
                  for name, tensor in self.module.state_dict().items()}
        if KMER_TABLE in arrays:
            arrays[KMER_TABLE_CODES], arrays[KMER_TABLE_SCALES] = quantize_rows(arrays.pop(KMER_TABLE))
        return arrays

    @classmethod
    def from_state(cls, config: dict, arrays: dict[str, np.ndarray], threads: int = 1) -> LSTMModel:
        model_config = LSTMConfig.from_dict(config)
        weights = {name: np.array(array, dtype=np.float32) for name, array in arrays.items()
                   if name not in (KMER_TABLE_CODES, KMER_TABLE_SCALES)}
        if KMER_TABLE_CODES in arrays:
            weights[KMER_TABLE] = dequantize_rows(arrays[KMER_TABLE_CODES], arrays[KMER_TABLE_SCALES])
        net = LSTMNet(model_config)
        net.load_state_dict({name: torch.from_numpy(array) for name, array in weights.items()})
        return cls(model_config, net)

    @classmethod
    def from_weights(cls, config: LSTMConfig, weights: dict[str, np.ndarray]) -> LSTMModel:
        """The model of trained float32 weights (a state dict), exactly as its model file will hold it."""
        stored = LSTMModel(config, LSTMNet(config))
        stored.module.load_state_dict({name: torch.from_numpy(np.asarray(a)) for name, a in weights.items()})
        return cls.from_state(config.to_dict(), stored.state_arrays())

    def loglik(self, codes: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(sum of natural-log probabilities float64 [B], number of scored positions int64 [B]) of each window."""
        codes, lengths = self._prepare(codes, lengths)
        sums = np.zeros(len(codes), dtype=np.float64)
        for rows, nll in self._nll_chunks(codes, lengths):
            sums[rows] = -nll.double().sum(dim=1).cpu().numpy()
        n_scored = (codes[:, 1:] < UNKNOWN).sum(axis=1, dtype=np.int64)
        return sums, n_scored

    def binned_loglik(self, codes: np.ndarray, lengths: np.ndarray, skip: np.ndarray,
                      bin_size: int) -> tuple[np.ndarray, np.ndarray]:
        """(sums float64 [B, bins], scored positions int64 [B, bins]) over the positions of each row in bins of
        `bin_size` from position skip[i] on (the first skip[i] positions are context only)."""
        codes, lengths = self._prepare(codes, lengths)
        width = codes.shape[1]
        logp = np.zeros((len(codes), width), dtype=np.float64)
        for rows, nll in self._nll_chunks(codes, lengths):
            logp[rows, 1:nll.shape[1] + 1] = -nll.double().cpu().numpy()
        scored = np.zeros((len(codes), width), dtype=bool)
        scored[:, 1:] = codes[:, 1:] < UNKNOWN
        return bin_positions(logp, scored, np.asarray(skip, dtype=np.int64), bin_size)

    @classmethod
    def pair_binned_loglik(cls, foreground: LSTMModel, background: LSTMModel, codes: np.ndarray,
                           lengths: np.ndarray, skip: np.ndarray, bin_size: int):
        return (foreground.binned_loglik(codes, lengths, skip, bin_size),
                background.binned_loglik(codes, lengths, skip, bin_size))

    @classmethod
    def pair_loglik(cls, foreground: LSTMModel, background: LSTMModel, codes: np.ndarray, lengths: np.ndarray):
        """(foreground.loglik(...), background.loglik(...)) of the same windows, identical to calling them in turn.
        On a CPU with two or more torch threads and small models, the two run side by side on half of the threads
        each: one small model's per-step GEMMs cannot keep two cores busy, two independent ones can (see
        PAIR_MAX_HIDDEN)."""
        torch_threads = torch.get_num_threads()
        if (torch_threads < 2 or "cpu" != foreground.device.type or "cpu" != background.device.type
                or max(foreground.config.hidden, background.config.hidden) > PAIR_MAX_HIDDEN):
            return foreground.loglik(codes, lengths), background.loglik(codes, lengths)
        # Two threads of their own, each with half of the caller's torch threads (set once, as each starts).
        with ThreadPoolExecutor(2, thread_name_prefix="gooddetect-pair", initializer=torch.set_num_threads,
                                initargs=(torch_threads // 2,)) as pool:
            mine, theirs = (pool.submit(model.loglik, codes, lengths) for model in (foreground, background))
            return mine.result(), theirs.result()

    @staticmethod
    def _prepare(codes: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        codes, lengths = np.asarray(codes), np.asarray(lengths, dtype=np.int64)
        if codes.ndim != 2 or lengths.shape != codes.shape[:1]:
            raise ValueError(f"expected codes [B, L] and lengths [B], got {codes.shape} and {lengths.shape}")
        lengths = np.clip(lengths, 0, codes.shape[1])
        return mask_padding(codes, lengths), lengths

    def _nll_chunks(self, codes: np.ndarray, lengths: np.ndarray) -> Iterator[tuple[np.ndarray, torch.Tensor]]:
        """(rows, next_base_nll [rows, width-1]) over chunks of windows of similar length, longest first."""
        self.module.eval()
        order = np.argsort(-lengths, kind="stable")
        # Only when asked for: an autocast context opened with enabled=False would switch off a caller's autocast.
        autocast = torch.autocast(self.device.type, dtype=torch.bfloat16) if self.bf16 else contextlib.nullcontext()
        with torch.inference_mode(), autocast:
            for start in range(0, len(order), self.batch_size):
                rows = order[start : start + self.batch_size]
                width = int(lengths[rows[0]])
                if width < 2:
                    break
                chunk = torch.from_numpy(codes[rows, :width]).to(self.device).long()
                yield rows, next_base_nll(self.module, chunk)


def quantize_rows(table: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(int8 codes, float16 scale per row) with row ≈ codes * scale; a zero row stays exactly zero."""
    wanted = np.abs(table).max(axis=1) / 127
    scales = wanted.astype(np.float16)
    scales = np.where(scales.astype(np.float32) < wanted, np.nextafter(scales, np.float16(np.inf)), scales)  # no clip
    safe = np.where(scales > 0, scales.astype(np.float32), 1.0)
    codes = np.clip(np.rint(table / safe[:, None]), -127, 127).astype(np.int8)
    return codes, scales


def dequantize_rows(codes: np.ndarray, scales: np.ndarray) -> np.ndarray:
    return codes.astype(np.float32) * scales.astype(np.float32)[:, None]
