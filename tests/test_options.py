"""Typed options: the config dataclasses generate the click options, their defaults stay in the dataclasses, and a
command gets exactly the options its user gave."""

from __future__ import annotations

import dataclasses

import click
import pytest
from click.testing import CliRunner

from gooddetect import options
from gooddetect.cli import main
from gooddetect.commands.score import ScoreOptions
from gooddetect.commands.train import KIND_OPTIONS, OPTION_GROUPS, TrainSettings
from gooddetect.detector import STRANDS
from gooddetect.errors import UsageError
from gooddetect.models.registry import KINDS
from gooddetect.models.configs import KmerConfig, LSTMConfig
from gooddetect.options import option
from gooddetect.models.lstm.options import TrainConfig


@dataclasses.dataclass(frozen=True)
class Sample:
    size: int = option(3, "A size.", min=1, max=9)
    rate: float = option(0.5, "A rate.", min=0, max=1, max_open=True)
    mode: str = option("fast", "A mode.", choices=("fast", "slow"))
    named: int = option(7, "Another flag.", flag="--other-name")
    hidden: int = 4  # no option


def test_every_marked_field_is_one_option_with_no_default_of_its_own():
    @options.click_options(("", Sample))
    @click.command()
    def command(**values):
        pass

    by_name = {p.name: p for p in command.params}
    assert set(by_name) == {"size", "rate", "mode", "other_name"}
    assert by_name["other_name"].opts == ["--other-name"]
    assert all(p.default is None for p in by_name.values())  # the dataclass holds the defaults
    assert "[default: 3]" in by_name["size"].help and "[default: fast]" in by_name["mode"].help
    result = CliRunner().invoke(command, ["--size", "10"])
    assert result.exit_code == 2 and "10 is not in the range 1<=x<=9" in result.output


def test_build_takes_only_the_given_options():
    given = {"size": 5, "rate": None, "mode": "slow", "other_name": 8}
    built = options.build(Sample, given, lambda name: name in ("size", "other_name"))
    assert built == Sample(size=5, named=8)
    with pytest.raises(UsageError, match="--mode must be one of fast, slow"):
        options.build(Sample, {"mode": "medium"}, lambda name: name == "mode")
    with pytest.raises(UsageError, match="--rate: 1.0 is out of range"):
        options.build(Sample, {"rate": 1.0}, lambda name: name == "rate")


def test_a_flag_two_kinds_share_shows_each_kinds_default():
    train = {p.name: p for p in main.commands["train"].params}
    assert "[default: lstm: 0.1; kmer: 0.3]" in train["mutation_rate"].help
    assert "[default: lstm: both; kmer: forward]" in train["score_strands"].help
    assert tuple(train["score_strands"].type.choices) == STRANDS
    assert tuple(train["arch"].type.choices) == tuple(KINDS) == tuple(KIND_OPTIONS)
    assert "--train-batch-size" in train["train_batch_size"].opts
    assert f"[default: {LSTMConfig.hidden}]" in train["hidden"].help
    assert all(name in train for names in KIND_OPTIONS.values() for name in names)


def test_train_settings_keep_the_dataclass_defaults_for_options_not_given():
    settings = TrainSettings.from_options({"arch": "lstm", "hidden": 8, "train_batch_size": 20})
    assert settings.part(LSTMConfig) == LSTMConfig(hidden=8)
    assert settings.part(TrainConfig) == TrainConfig(batch_size=20)
    kmer = TrainSettings.from_options({"arch": "kmer", "max_order": 6})
    assert kmer.part(KmerConfig) == KmerConfig(max_order=6)
    with pytest.raises(UsageError, match="--hidden: not used by --arch kmer"):
        TrainSettings.from_options({"arch": "kmer", "hidden": 8})
    with pytest.raises(UsageError, match="unknown train option"):
        TrainSettings.from_options({"hiden": 8})


def test_score_options_are_generated_from_the_dataclass():
    score = {p.name: p for p in main.commands["score"].params}
    for field, spec in options.specs(ScoreOptions):
        assert options.param_name(field, spec) in score
    assert f"[default: {ScoreOptions.batch_size}]" in score["batch_size"].help
    assert {name for name, _ in OPTION_GROUPS} >= {"", "lstm", "kmer"}
