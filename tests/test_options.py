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
from gooddetect.models.configs import KmerConfig, LSTMConfig
from gooddetect.models.lstm.options import TrainConfig
from gooddetect.models.registry import KINDS
from gooddetect.options import Switch, option


@dataclasses.dataclass(frozen=True)
class Sample:
    size: int = option(3, "A size.", min=1, max=9)
    rate: float = option(0.5, "A rate.", min=0, max=1, max_open=True)
    mode: str = option("fast", "A mode.", choices=("fast", "slow"))
    named: int = option(7, "Another flag.", flag="--other-name")
    hidden: int = 4  # no option


def _pair(text: str) -> tuple[int, int]:
    left, right = text.split(":")  # a ValueError is the user's message
    return int(left), int(right)


@dataclasses.dataclass(frozen=True)
class Shapes:
    layout: str = option("single", "", switches=(Switch("--paired", "paired", "Two files."),
                                                 Switch("--interleaved", "interleaved", "One file, alternating.")))
    files: tuple[str, ...] = option((), "Repeatable.", multiple=True)
    aware: bool | None = option(None, "On or off.", off_flag="--unaware")
    pair: tuple[int, int] | None = option(None, "A:B.", parse=_pair)
    out: str | None = option(None, "Required.", short="-o", required=True)


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


def test_switches_repeatable_paired_parsed_and_required_options_build_their_fields():
    @options.click_options(("", Shapes))
    @click.command()
    @click.pass_context
    def command(ctx, **values):
        given = lambda name: ctx.get_parameter_source(name) == click.core.ParameterSource.COMMANDLINE
        click.echo(repr(options.build(Shapes, values, given)))

    run = lambda *args: CliRunner().invoke(command, list(args))
    assert run("-o", "x").output.strip() == repr(Shapes(out="x"))
    built = run("-o", "x", "--interleaved", "--files", "a", "--files", "b", "--unaware", "--pair", "2:3")
    assert built.output.strip() == repr(Shapes("interleaved", ("a", "b"), False, (2, 3), "x"))
    assert run("-o", "x", "--aware").output.strip() == repr(Shapes(aware=True, out="x"))
    assert run("--paired").exit_code == 2  # -o is required
    bad = run("-o", "x", "--pair", "2")
    assert bad.exit_code == 2 and "Invalid value for '--pair'" in bad.output


def test_the_cli_declares_by_hand_only_the_global_options():
    """Every other option comes from a dataclass field (one declaration, its default with it)."""
    import re
    from pathlib import Path

    import gooddetect.cli

    source = Path(gooddetect.cli.__file__).read_text()
    flags = re.findall(r'click\.option\(\s*"(--[a-z-]+)"', source)
    assert sorted(flags) == ["--device", "--quiet", "--seed", "--threads", "--verbose"]


def test_stored_configs_hold_bounds_but_no_command_line_words():
    """The configs a model file stores carry their values' bounds, checked however they are built; the words of
    their options live with the kind that offers them."""
    from gooddetect.models.configs import ClassifierConfig, KmerClassifierConfig

    for cls in (LSTMConfig, KmerConfig, KmerClassifierConfig, ClassifierConfig):
        assert not any("option" in f.metadata for f in dataclasses.fields(cls)), cls
        assert options.specs(cls), cls  # yet offered on the command line
    with pytest.raises(ValueError, match="hidden: 9000 is out of range"):
        LSTMConfig(hidden=9000)
    with pytest.raises(ValueError, match="hash_bits: 7 is out of range"):
        KmerConfig(hash_bits=7)
