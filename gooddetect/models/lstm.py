"""The LSTM language model of Ren et al. 2019: an autoregressive model over the four bases.

At position t the network has read bases 0..t-1 and predicts base t. An unknown base in the context is fed as an
all-zero input vector ("no information"); unknown targets, padding and the first base are never scored.

Optionally (`kmer_input` K > 0, not in the paper) the input at each position also carries a learned embedding of the
last K bases read, a k-mer token as DNA language models use: a direct memory of 4^K contexts that a small recurrent
state cannot hold. Its table starts at zero and a row moves only when its k-mer occurs in training, so a k-mer never
seen (or one containing an unknown base, or a position with fewer than K bases before it) adds nothing.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, fields
from typing import ClassVar, Iterator

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ModelFileError

N_BASES = 4
UNKNOWN = 4
MAX_KMER_INPUT = 11  # 4^11 rows: the table is already 4.2M × kmer_embedding floats
# Above this hidden size two models scored side by side on one core each are slower than one after the other on all
# cores (measured on a 2-core Xeon with AMX: 1.15-1.3x faster at 64-192, 0.7x at 256, where one model's recurrent
# weights, 16·H² bytes, no longer fit beside the other's in the cores' caches).
PAIR_MAX_HIDDEN = 192
_pair_pool: ThreadPoolExecutor | None = None


@dataclass
class LSTMConfig:
    """Hyperparameters of the network (the paper: hidden=2000, one layer, one-hot input, kmer_input=0)."""

    hidden: int = 32
    layers: int = 1
    dropout: float = 0.1
    embedding: int = 0  # 0: one-hot input; > 0: a learned embedding of this size (the unknown row stays zero)
    kmer_input: int = 10  # K > 0: also input a learned embedding of the last K bases (4^K + 1 rows); 0: the paper
    kmer_embedding: int = 16  # width of that embedding

    def __post_init__(self) -> None:
        if self.hidden < 1 or self.layers < 1 or self.embedding < 0 or self.kmer_embedding < 1:
            raise ValueError(f"hidden, layers and kmer_embedding must be >= 1 and embedding >= 0, got {self}")
        if not 0 <= self.kmer_input <= MAX_KMER_INPUT:
            raise ValueError(f"kmer_input must be in [0, {MAX_KMER_INPUT}], got {self.kmer_input}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> LSTMConfig:
        unknown = set(values) - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f"unknown LSTM hyperparameters: {sorted(unknown)}")
        return cls(**values)


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
        self.dropout = nn.Dropout(config.dropout)
        self.head = nn.Linear(config.hidden, N_BASES)

    def forward(self, context: torch.Tensor) -> torch.Tensor:
        time_major = context.T
        inputs = self.embed(time_major) if self.embed is not None else self.one_hot[time_major]
        if self.kmer_embed is not None:
            inputs = torch.cat([inputs, self.kmer_embed(kmer_tokens(time_major, self.kmer_input))], dim=-1)
        hidden, _ = self.lstm(inputs)
        return self.head(self.dropout(hidden)).transpose(0, 1)


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


def next_base_nll(net: nn.Module, codes: torch.Tensor) -> torch.Tensor:
    """-log p(base t | bases 0..t-1) for t = 1..L-1 of codes [B, L] (long): a [B, L-1] tensor, 0 where base t is
    unknown or padding (code 4)."""
    targets = codes[:, 1:]
    logits = net(codes[:, :-1])
    nll = F.cross_entropy(logits.reshape(-1, N_BASES), targets.reshape(-1), ignore_index=UNKNOWN, reduction="none")
    return nll.view_as(targets)


def mask_padding(codes: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Codes [B, L] uint8 with every position >= lengths[i] and every non-ACGT code set to UNKNOWN."""
    codes = np.asarray(codes, dtype=np.uint8)
    inside = np.arange(codes.shape[1]) < np.asarray(lengths)[:, None]
    return np.where(inside & (codes < UNKNOWN), codes, np.uint8(UNKNOWN))


class LSTMModel:
    """The model contract around an LSTMNet: batched, length-sorted scoring on `device`."""

    kind: ClassVar[str] = "lstm"

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

    def config_dict(self) -> dict:
        return self.config.to_dict()

    def state_arrays(self) -> dict[str, np.ndarray]:
        return {
            name: tensor.detach().cpu().numpy().astype(np.float32, copy=True)
            for name, tensor in self.module.state_dict().items()
        }

    @classmethod
    def from_state(cls, config: dict, arrays: dict[str, np.ndarray]) -> LSTMModel:
        try:
            model_config = LSTMConfig.from_dict(config)
        except (TypeError, ValueError) as error:
            raise ModelFileError(f"bad LSTM configuration: {error}") from None
        net = LSTMNet(model_config)
        expected = net.state_dict()
        if set(arrays) != set(expected):
            raise ModelFileError(
                f"LSTM arrays do not match the configuration: missing {sorted(set(expected) - set(arrays))}, "
                f"unexpected {sorted(set(arrays) - set(expected))}"
            )
        for name, tensor in expected.items():
            if tuple(arrays[name].shape) != tuple(tensor.shape):
                shape = tuple(arrays[name].shape)
                raise ModelFileError(f"LSTM array {name} has shape {shape}, expected {tuple(tensor.shape)}")
        net.load_state_dict({name: torch.from_numpy(np.array(arrays[name], dtype=np.float32)) for name in expected})
        return cls(model_config, net)

    def loglik(self, codes: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(sum of natural-log probabilities float64 [B], number of scored positions int64 [B]) of each window."""
        codes, lengths = self._prepare(codes, lengths)
        sums = np.zeros(len(codes), dtype=np.float64)
        for rows, nll in self._nll_chunks(codes, lengths):
            sums[rows] = -nll.double().sum(dim=1).cpu().numpy()
        n_scored = (codes[:, 1:] < UNKNOWN).sum(axis=1, dtype=np.int64)
        return sums, n_scored

    def token_logprobs(self, codes: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        """log p(base t | bases 0..t-1) as float32 [B, L]; NaN where a position is not scored."""
        codes, lengths = self._prepare(codes, lengths)
        out = np.full(codes.shape, np.nan, dtype=np.float32)
        for rows, nll in self._nll_chunks(codes, lengths):
            logp = (-nll).cpu().numpy()
            width = logp.shape[1] + 1
            out[rows, 1:width] = np.where(codes[rows, 1:width] < UNKNOWN, logp, np.nan)
        return out

    def loglik_pair(self, other: LSTMModel, codes: np.ndarray, lengths: np.ndarray):
        """(self.loglik(...), other.loglik(...)) of the same windows, identical to calling them in turn. On a CPU with
        two or more torch threads and small models, the two run side by side on half of the threads each: one small
        model's per-step GEMMs cannot keep two cores busy, two independent ones can (see PAIR_MAX_HIDDEN)."""
        torch_threads = torch.get_num_threads()
        if (torch_threads < 2 or "cpu" != self.device.type or "cpu" != other.device.type
                or max(self.config.hidden, other.config.hidden) > PAIR_MAX_HIDDEN):
            return self.loglik(codes, lengths), other.loglik(codes, lengths)
        global _pair_pool
        if _pair_pool is None:
            _pair_pool = ThreadPoolExecutor(1, thread_name_prefix="gooddetect-pair")
        torch.set_num_threads(torch_threads // 2)  # process-wide: both threads run with half
        try:
            theirs = _pair_pool.submit(other.loglik, codes, lengths)
            mine = self.loglik(codes, lengths)
            return mine, theirs.result()
        finally:
            torch.set_num_threads(torch_threads)

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
        autocast = torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16)
        with torch.inference_mode(), autocast:
            for start in range(0, len(order), self.batch_size):
                rows = order[start : start + self.batch_size]
                width = int(lengths[rows[0]])
                if width < 2:
                    break
                chunk = torch.from_numpy(codes[rows, :width]).to(self.device).long()
                yield rows, next_base_nll(self.module, chunk)
