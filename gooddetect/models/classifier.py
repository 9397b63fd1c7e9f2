"""The paper's second program: a ConvNet classifier over the in-distribution classes, and the OOD scores derived from
it that the paper compares the likelihood ratio with.

Architecture (genomics_ood classifier.py): one-hot input, a 1-D convolution (`filters` of `width` bases), ReLU, the
maximum over positions, a dense layer of `hidden` units with ReLU, dropout, and a softmax over the classes. OOD
scores, each "higher = more out of distribution":
- msp: 1 − the largest class probability (Hendrycks & Gimpel 2017);
- entropy: of the class probabilities;
- odin: 1 − the largest probability at temperature T after a perturbation of the (one-hot) input of size eps
  towards a higher top class score (Liang et al. 2018); needs a gradient, so `evaluate` computes it, not `score`;
- mahalanobis: the smallest Mahalanobis distance of the penultimate features to a class mean, with one shared
  covariance, all fitted on the training windows (Lee et al. 2018);
- rel_mahalanobis: that distance minus the one to a single class-agnostic Gaussian (Ren et al. 2021).
With `both_strands`, every window is also read as its reverse complement and the two strands' outputs averaged.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..alphabet import N_BASES, mask_padding, reverse_complement_padded
from ..runtime import in_row_blocks
from . import ArraySpec
from .configs import ClassifierConfig
from .._core.conv import group_tables, max_pooled_conv

COVARIANCE_RIDGE = 1e-6  # added to the covariances' diagonals before inverting
KERNEL_ROWS = 256  # windows per task of the compiled convolution


class ConvNet(nn.Module):
    """Codes [B, L] (long, 0..4) and lengths [B] → class logits [B, C]; `features` gives the penultimate layer."""

    def __init__(self, config: ClassifierConfig):
        super().__init__()
        self.width = config.width
        self.conv = nn.Conv1d(N_BASES, config.filters, config.width)
        self.dense = nn.Linear(config.filters, config.hidden)
        self.dropout = nn.Dropout(config.dropout)
        self.out = nn.Linear(config.hidden, len(config.classes))
        self.register_buffer("one_hot", torch.cat([torch.eye(N_BASES), torch.zeros(1, N_BASES)]), persistent=False)

    def encode(self, codes: torch.Tensor) -> torch.Tensor:
        """One-hot input [B, 4, L] (an unknown base is all zero)."""
        return self.one_hot[codes].transpose(1, 2)

    def features(self, inputs: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Penultimate features [B, hidden] of one-hot inputs [B, 4, L]: the maximum over the positions whose
        filter lies inside the window."""
        activations = F.relu(self.conv(inputs))
        inside = torch.arange(activations.shape[-1], device=inputs.device) <= (lengths[:, None] - self.width)
        pooled = activations.masked_fill(~inside[:, None, :], 0.0).amax(dim=-1)  # ReLU output >= 0
        return F.relu(self.dense(pooled))

    def logits(self, features: torch.Tensor) -> torch.Tensor:
        return self.out(self.dropout(features))

    def forward(self, inputs: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return self.logits(self.features(inputs, lengths))


@dataclass
class Gaussians:
    """Class means and a shared precision, and a class-agnostic mean and precision, of the penultimate features."""

    means: np.ndarray  # [C, H]
    precision: np.ndarray  # [H, H]
    global_mean: np.ndarray  # [H]
    global_precision: np.ndarray  # [H, H]

    @classmethod
    def fit(cls, features: np.ndarray, labels: np.ndarray, n_classes: int) -> Gaussians:
        features = features.astype(np.float64)
        means = np.stack([features[labels == c].mean(axis=0) for c in range(n_classes)])
        centred = features - means[labels]
        ridge = COVARIANCE_RIDGE * np.eye(features.shape[1])
        precision = np.linalg.pinv(centred.T @ centred / len(features) + ridge)
        global_mean = features.mean(axis=0)
        spread = features - global_mean
        global_precision = np.linalg.pinv(spread.T @ spread / len(features) + ridge)
        return cls(*(a.astype(np.float32) for a in (means, precision, global_mean, global_precision)))

    def distances(self, features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(min over classes of the Mahalanobis distance, that minus the class-agnostic distance) per row: the
        relative distance is taken per class, then minimised, as in Ren et al. 2021."""
        f = features.astype(np.float64)
        to_class = _squared_distances(f, self.means.astype(np.float64), self.precision.astype(np.float64))
        to_global = _squared_distances(f, self.global_mean[None].astype(np.float64),
                                       self.global_precision.astype(np.float64))[:, 0]
        return to_class.min(axis=1), (to_class - to_global[:, None]).min(axis=1)

    @classmethod
    def untrained(cls, config: ClassifierConfig) -> Gaussians:
        """Zero means and identity precisions, until Gaussians.fit."""
        n, h = len(config.classes), config.hidden
        return cls(np.zeros((n, h), np.float32), np.eye(h, dtype=np.float32), np.zeros(h, np.float32),
                   np.eye(h, dtype=np.float32))

    def arrays(self) -> dict[str, np.ndarray]:
        return {"gaussians.means": self.means, "gaussians.precision": self.precision,
                "gaussians.global_mean": self.global_mean, "gaussians.global_precision": self.global_precision}


def _squared_distances(x: np.ndarray, means: np.ndarray, precision: np.ndarray) -> np.ndarray:
    """(x - m)' P (x - m) for every row x [B, H] and mean m [C, H] as [B, C], expanded into matrix products."""
    xp = x @ precision
    return ((xp * x).sum(axis=1)[:, None] - 2 * xp @ means.T + ((means @ precision) * means).sum(axis=1)[None]).clip(0)


class Classifier:
    """The ConvNet classifier of a model file: class probabilities and classifier-based OOD scores per window."""

    kind: ClassVar[str] = "convnet"
    uses_torch: ClassVar[bool] = True
    stored_deflated: ClassVar[bool] = False
    chunks_in_flight: ClassVar[int] = 1  # ODIN and training use torch
    score_names: ClassVar[tuple[str, ...]] = ("msp", "entropy", "mahalanobis", "rel_mahalanobis")
    has_odin: ClassVar[bool] = True

    def __init__(self, config: ClassifierConfig, net: ConvNet, gaussians: Gaussians, stats: dict | None = None,
                 batch_size: int = 1024):
        self.config, self.net, self.gaussians = config, net.eval(), gaussians
        self.stats = stats or {}
        self.device = torch.device("cpu")
        self.batch_size = batch_size
        self.threads = 1
        self._tables = (None, None)  # (the conv weight's identity and version, its lookup tables)

    @property
    def classes(self) -> list[str]:
        return self.config.classes

    # -- the model file -------------------------------------------------------------------------------------------

    def configure(self, *, threads: int | None = None, device: str = "cpu", bf16: bool = False) -> None:
        self.device = torch.device(device)
        self.net.to(self.device)
        self.threads = threads or 1

    def config_dict(self) -> dict:
        return self.config.to_dict()

    def state_arrays(self) -> dict[str, np.ndarray]:
        arrays = {f"net.{k}": v.detach().cpu().numpy().astype(np.float32) for k, v in self.net.state_dict().items()}
        return arrays | self.gaussians.arrays()

    @classmethod
    def expected_arrays(cls, config: dict) -> dict[str, ArraySpec]:
        c = ClassifierConfig.from_model_file(config, "classifier")
        n, h = len(c.classes), c.hidden
        shapes = {"net.conv.weight": (c.filters, N_BASES, c.width), "net.conv.bias": (c.filters,),
                  "net.dense.weight": (h, c.filters), "net.dense.bias": (h,), "net.out.weight": (n, h),
                  "net.out.bias": (n,), "gaussians.means": (n, h), "gaussians.precision": (h, h),
                  "gaussians.global_mean": (h,), "gaussians.global_precision": (h, h)}
        return {name: (shape, "float32") for name, shape in shapes.items()}

    @classmethod
    def from_state(cls, config: dict, arrays: dict[str, np.ndarray], threads: int = 1) -> Classifier:
        c = ClassifierConfig.from_dict(config)
        net = ConvNet(c)
        net.load_state_dict({k[len("net."):]: torch.from_numpy(np.array(v)) for k, v in arrays.items()
                             if k.startswith("net.")})
        gaussians = Gaussians(*(np.array(arrays[f"gaussians.{k}"]) for k in
                                ("means", "precision", "global_mean", "global_precision")))
        return cls(c, net, gaussians)

    # -- prediction -----------------------------------------------------------------------------------------------

    def predict(self, codes: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """(class probabilities [B, C], {name: [B]} for each of score_names) of windows codes [B, L] holding
        lengths [B]."""
        probs, features = self._both_strands(codes, lengths, self._probs_and_features)
        msp = 1.0 - probs.max(axis=1)
        entropy = -(probs * np.log(np.maximum(probs, 1e-30))).sum(axis=1)
        distance, relative = (np.mean(pair, axis=0) for pair in zip(*(self.gaussians.distances(f) for f in features)))
        return probs, {"msp": msp, "entropy": entropy, "mahalanobis": distance, "rel_mahalanobis": relative}

    def odin(self, codes: np.ndarray, lengths: np.ndarray, temperature: float | None = None,
             epsilon: float | None = None) -> np.ndarray:
        """ODIN's OOD score per window: 1 − the largest softmax probability at `temperature` of the one-hot input
        moved by `epsilon` in the direction that raises the top class's tempered log-probability."""
        t = self.config.odin_temperature if temperature is None else temperature
        e = self.config.odin_epsilon if epsilon is None else epsilon
        top, _ = self._both_strands(codes, lengths, lambda c, n: (self._odin_top(c, n, t, e), None))
        return 1.0 - top

    def _both_strands(self, codes, lengths, function):
        """`function` of the windows, averaged with its value on their reverse complements with both_strands."""
        codes, lengths = mask_padding(codes, lengths), np.asarray(lengths, dtype=np.int64)
        first, first_extra = function(codes, lengths)
        if not self.config.both_strands:
            return first, [first_extra]
        second, second_extra = function(reverse_complement_padded(codes, lengths), lengths)
        return (first + second) / 2, [first_extra, second_extra]

    def _batches(self, codes: np.ndarray, lengths: np.ndarray):
        for start in range(0, len(codes), self.batch_size):
            rows = slice(start, start + self.batch_size)
            yield (torch.from_numpy(codes[rows]).long().to(self.device),
                   torch.from_numpy(lengths[rows]).to(self.device))

    def _probs_and_features(self, codes: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """On the CPU the convolution runs as table lookups (gooddetect._core.conv), else through the network."""
        if self.device.type != "cpu":
            return self._probs_and_features_on_device(codes, lengths)
        pooled = self._pooled(codes, lengths)
        with torch.inference_mode():
            f = F.relu(self.net.dense(torch.from_numpy(pooled)))
            probs = torch.softmax(self.net.logits(f), dim=1).double().numpy()
        return probs, f.numpy()

    def _probs_and_features_on_device(self, codes: np.ndarray, lengths: np.ndarray):
        probs, features = [], []
        with torch.inference_mode():
            for batch, batch_lengths in self._batches(codes, lengths):
                f = self.net.features(self.net.encode(batch), batch_lengths)
                probs.append(torch.softmax(self.net.logits(f), dim=1).double().cpu().numpy())
                features.append(f.cpu().numpy())
        return np.concatenate(probs), np.concatenate(features)

    def _pooled(self, codes: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        """The max-pooled ReLU convolution [B, filters] of windows (padding masked), by table lookups."""
        weight = self.net.conv.weight
        version = (weight.data_ptr(), weight._version)
        if self._tables[0] != version:  # new weights (training changes them in place)
            self._tables = (version, group_tables(weight.detach().cpu().numpy()))
        tables, bias = self._tables[1], self.net.conv.bias.detach().cpu().numpy()
        codes, lengths = np.ascontiguousarray(codes, dtype=np.uint8), np.asarray(lengths, dtype=np.int64)
        out = np.empty((len(codes), self.config.filters), dtype=np.float32)

        def pool(first: int, last: int) -> None:
            max_pooled_conv(codes, lengths, tables, bias, self.config.width, first, last, out)

        in_row_blocks(pool, len(codes), KERNEL_ROWS, self.threads)
        return out

    def _odin_top(self, codes: np.ndarray, lengths: np.ndarray, temperature: float, epsilon: float) -> np.ndarray:
        tops = []
        for batch, batch_lengths in self._batches(codes, lengths):
            inputs = self.net.encode(batch).clone().requires_grad_(True)
            log_probs = torch.log_softmax(self.net(inputs, batch_lengths) / temperature, dim=1)
            log_probs.max(dim=1).values.sum().backward()
            with torch.inference_mode():
                moved = inputs + epsilon * inputs.grad.sign()
                probs = torch.softmax(self.net(moved, batch_lengths) / temperature, dim=1)
                tops.append(probs.max(dim=1).values.double().cpu().numpy())
        return np.concatenate(tops)
