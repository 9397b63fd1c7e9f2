"""The "lstm" model kind (see models.registry.ModelKind): the paper's autoregressive LSTM pair. model.py is the
network and its scoring, training.py how `train` trains the pair (with gooddetect.training's loop), options.py its
`train` options. torch is imported by model.py and training.py only."""

from __future__ import annotations

from ...errors import UsageError
from ..configs import LSTMConfig
from .options import LstmData, TrainConfig

NAME = "lstm"
USES_TORCH = True
OPTION_GROUPS = (LstmData, LSTMConfig, TrainConfig)
# Options that choose or shape fixed windows: --genomes draws its own from whole genomes.
NOT_WITH_GENOMES = ("windows_per_file", "stride", "max_windows", "train_strands", "classes", "class_per_file",
                    "record_classes")


def model_class():
    from .model import LSTMModel

    return LSTMModel


def check(settings) -> None:
    if settings.given.get("genomes"):
        clash = [name for name in NOT_WITH_GENOMES if settings.given.get(name)]
        if clash:
            raise UsageError(f"--{clash[0].replace('_', '-')}: not with --genomes (which draws windows of both "
                             "strands from whole genomes)")
    for group in OPTION_GROUPS:
        settings.part(group)


def window_options(settings) -> dict | None:
    data = settings.part(LstmData)
    return None if data.genomes else {"stride": data.stride, "max_windows": data.max_windows}


def train(inputs, windows, training, settings, *, output, seed, runtime):
    from .training import train_pair

    return train_pair(inputs, windows, training, settings, output=output, seed=seed, runtime=runtime)
