"""The models' settings: one config dataclass per model kind and classifier (plain data, no torch or numba), each
stored in the model file, with the bounds of its values (gooddetect.options.bounded). The command line offers their
fields in the words of the kind's options module (gooddetect.options.describe); ClassifierTraining, the ConvNet's
schedule, is recorded, not stored as a config, and declares its options itself."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import ClassVar

from ..options import bounded, check_fields, option
from . import ConfigDict, check_classes

MAX_KMER_INPUT = 11  # 4^11 rows: the table is already 4.2M × kmer_embedding floats
BACKGROUND_MAX_ORDER = 8
MAX_ORDER = 31  # a context plus its next base must fit in 64 bits
MAX_DIRECT_ORDER = 12
MAX_HASH_BITS = 26  # 2^26 buckets x 8 slots x 2 bytes = 1 GiB per hashed order in memory
DEFAULT_MAX_HASH_BITS = 24


@dataclass
class LSTMConfig(ConfigDict):
    """Hyperparameters of the network (the paper: hidden=2000, one layer, one-hot input, kmer_input=0)."""

    SETTINGS: ClassVar[str] = "LSTM hyperparameters"

    hidden: int = bounded(32, min=1, max=8192)
    layers: int = bounded(1, min=1, max=8)
    dropout: float = bounded(0.1, min=0, max=1, max_open=True)
    embedding: int = bounded(0, min=0, max=1024)  # 0: one-hot input
    # K > 0: also input a learned embedding of the last K bases (4^K + 1 rows); 0: the paper. `train` sizes it by
    # the training bases when not given (models.lstm.training.KMER_INPUT_BY_BASES).
    kmer_input: int = bounded(10, min=0, max=MAX_KMER_INPUT)
    kmer_embedding: int = bounded(16, min=1, max=256)

    def __post_init__(self) -> None:
        check_fields(self)


@dataclass
class KmerConfig(ConfigDict):
    """Hyperparameters of the interpolated Markov chain.

    Orders 0..min(direct_order, max_order) use exact counts; above that, the hashed orders are max_order,
    max_order - order_step, ... down to direct_order + 1. discount (d) and concentration (alpha) are the smoother's
    (d in [0, 1), alpha >= 0, d + alpha > 0). both_strands also counts the reverse complement of every sequence.
    hash_bits is the size of the trained hashed tables (set by training)."""

    SETTINGS: ClassVar[str] = "kmer hyperparameters"

    max_order: int = bounded(14, min=0, max=MAX_ORDER)
    direct_order: int = 11
    order_step: int = 3
    hash_bits: int = bounded(DEFAULT_MAX_HASH_BITS, min=8, max=MAX_HASH_BITS)
    both_strands: bool = True
    discount: float = 0.5
    concentration: float = 1.0

    def __post_init__(self) -> None:
        check_fields(self)
        if not 0 <= self.direct_order <= MAX_DIRECT_ORDER:
            raise ValueError(f"direct_order must be in [0, {MAX_DIRECT_ORDER}], got {self.direct_order}")
        if self.order_step < 1:
            raise ValueError(f"order_step must be >= 1, got {self.order_step}")
        if not 0.0 <= self.discount < 1.0 or self.concentration < 0.0 or self.discount + self.concentration <= 0.0:
            raise ValueError("need 0 <= discount < 1, concentration >= 0 and discount + concentration > 0")

    @property
    def top_direct_order(self) -> int:
        return min(self.direct_order, self.max_order)

    @property
    def hashed_orders(self) -> tuple[int, ...]:
        return tuple(sorted(range(self.max_order, self.direct_order, -self.order_step)))

    @property
    def width(self) -> int:
        """Bases the rolling codes cover: enough for the highest order and its next base, a power of two."""
        return 1 << max(self.max_order, 0).bit_length()

    def background(self) -> KmerConfig:
        """The config recommended for the background model: this one capped at BACKGROUND_MAX_ORDER (exact tables
        only). On the benchmark's validation sets a background with the foreground's high orders cancels the
        foreground's long k-mer matches and lowers AUROC, while a low-order one (with a mutation rate near 0.3) only
        takes out base-composition effects."""
        return replace(self, max_order=min(self.max_order, BACKGROUND_MAX_ORDER))


@dataclass
class KmerClassifierConfig(ConfigDict):
    """One chain of `order` per class, smoothed with (discount, concentration), likelihoods divided by
    `temperature` before Bayes' rule."""

    SETTINGS: ClassVar[str] = "k-mer classifier settings"

    classes: list[str] = field(default_factory=list)
    order: int = bounded(10, min=1, max=MAX_DIRECT_ORDER)
    discount: float = 0.5
    concentration: float = 100.0
    temperature: float = 3.0

    def __post_init__(self) -> None:
        check_classes(self.classes)
        check_fields(self)
        if self.temperature <= 0:
            raise ValueError("temperature > 0 needed")
        self.chain()  # checks the smoothing settings

    def chain(self) -> KmerConfig:
        """The config of each class's chain: exact counts up to `order`, both strands, no hashed orders."""
        return KmerConfig(max_order=self.order, direct_order=self.order, both_strands=True, discount=self.discount,
                          concentration=self.concentration)


@dataclass
class ClassifierConfig(ConfigDict):
    """The network (the paper's seed: filters 1000, width 20, hidden 200, dropout 0.1; the default has 128 filters,
    chosen on validation for CPU training and scoring) and the ODIN settings."""

    SETTINGS: ClassVar[str] = "classifier settings"

    classes: list[str] = field(default_factory=list)
    filters: int = bounded(128, min=1, max=8192)
    width: int = bounded(20, min=1, max=250)
    hidden: int = bounded(200, min=1, max=8192)
    dropout: float = 0.1
    both_strands: bool = True
    odin_temperature: float = 10.0
    odin_epsilon: float = 0.0005

    def __post_init__(self) -> None:
        check_classes(self.classes)
        check_fields(self)
        if not 0 <= self.dropout < 1 or self.odin_temperature <= 0 or self.odin_epsilon < 0:
            raise ValueError("dropout in [0, 1), odin_temperature > 0 and odin_epsilon >= 0 needed")


@dataclass
class ClassifierTraining:
    """Optimisation settings (the seed: Adam, learning rate 1e-4, batch 100, 1 epoch; the default learning rate and
    epochs were chosen on validation)."""

    lr: float = option(1e-3, "convnet classifier: Adam learning rate (the paper: 1e-4).", flag="--classifier-lr",
                       min=0, min_open=True)
    batch_size: int = option(100, "convnet classifier: windows per step (the paper: 100).",
                             flag="--classifier-batch-size", min=1)
    epochs: int = option(3, "convnet classifier: epochs (the paper: 1).", flag="--classifier-epochs", min=1)
    seed: int = 0
