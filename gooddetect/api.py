"""The Python API: one function per command (what `gooddetect <command>` does), callable from a notebook or a
workflow. Each lives in gooddetect.commands.<command>; the models' settings are the dataclasses of
gooddetect.models.configs and of each model kind's options module (gooddetect.models.<kind>.options), and how a
command runs is a gooddetect.runtime.Runtime."""

from .commands.calibrate import calibrate
from .commands.evaluate import evaluate
from .commands.info import info
from .commands.merge import merge_shards
from .commands.score import ScoreOptions, score, score_reads
from .commands.train import train
from .commands.windows import write_windows
from .detector import Detector, load_detector
from .runtime import Runtime
from .samples import labeled_scores, score_sample

__all__ = ["write_windows", "train", "score", "score_reads", "merge_shards", "calibrate", "evaluate", "info",
           "load_detector", "score_sample", "labeled_scores", "ScoreOptions", "Runtime", "Detector"]
