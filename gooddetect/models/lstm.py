"""The LSTM language model of Ren et al. 2019: an autoregressive model over the four bases.

At position t the network has read bases 0..t-1 and predicts base t. An unknown base in the context is fed as an
all-zero input vector ("no information"); unknown targets, padding and the first base are never scored.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import ClassVar, Iterator

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ModelFileError

N_BASES = 4
UNKNOWN = 4


@dataclass
class LSTMConfig:
    """Hyperparameters of the network (the paper uses hidden=2000, one layer, one-hot input)."""

    hidden: int = 128
    layers: int = 1
    dropout: float = 0.1
    embedding: int = 0  # 0: one-hot input; > 0: a learned embedding of this size (the unknown row stays zero)

    def __post_init__(self) -> None:
        if self.hidden < 1 or self.layers < 1 or self.embedding < 0:
            raise ValueError(f"hidden and layers must be >= 1 and embedding >= 0, got {self}")
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
        hidden, _ = self.lstm(inputs)
        return self.head(self.dropout(hidden)).transpose(0, 1)


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

    def __init__(self, config: LSTMConfig, module: LSTMNet | None = None, device: str = "cpu", batch_size: int = 512):
        self.config = config
        self.module = module if module is not None else LSTMNet(config)
        self.device = device
        self.batch_size = batch_size

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
        with torch.inference_mode():
            for start in range(0, len(order), self.batch_size):
                rows = order[start : start + self.batch_size]
                width = int(lengths[rows[0]])
                if width < 2:
                    break
                chunk = torch.from_numpy(codes[rows, :width]).to(self.device).long()
                yield rows, next_base_nll(self.module, chunk)
