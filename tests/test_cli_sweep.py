"""Every option of every command, given out-of-range or ill-typed values, or given to the wrong model kind: a usage
error (exit 2) or a one-line error (exit 1), never a Python traceback."""

from __future__ import annotations

import click
import pytest
from click.testing import CliRunner

from gooddetect.commands.train import KIND_OPTIONS
from gooddetect.cli import main

BAD_VALUES = ("abc", "-5", "0", "1e99", "")
# Arguments that make each command fail fast on input once its options are accepted (nothing exists).
REQUIRED = {"windows": ["missing.fa"], "train": ["missing.fa", "-o", "out/m.gdm"], "score": ["missing.gdm", "r.fa"],
            "calibrate": ["missing.gdm", "--in-dist", "r.fa"], "evaluate": ["missing.gdm", "--in-dist", "r.fa"],
            "merge": ["missing.tsv"], "info": ["missing.gdm"], "count": ["missing.fa", "-o", "out/c.gdc"],
            "screen": ["missing.gdm", "r.fa"]}


def run(args: list[str]):
    result = CliRunner().invoke(main, args, catch_exceptions=True)
    assert result.exception is None or isinstance(result.exception, SystemExit), (args, repr(result.exception))
    assert "Traceback" not in result.output and "internal error" not in result.output, (args, result.output)
    return result


def value_options():
    for name, command in main.commands.items():
        for param in command.params:
            if isinstance(param, click.Option) and not param.is_flag and param.name not in ("help",):
                yield name, param.opts[-1]


@pytest.mark.parametrize("command, option", list(value_options()))
def test_bad_option_values_are_clean_errors(command, option, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for value in BAD_VALUES:
        result = run([command, *REQUIRED[command], option, value])
        assert result.exit_code in (1, 2), (command, option, value, result.output)


def valid_value(param: click.Option) -> list[str]:
    """A value the option accepts (none for a flag)."""
    kind = param.type
    if param.is_flag:
        return []
    if isinstance(kind, click.Choice):
        return [kind.choices[0]]
    if isinstance(kind, click.types.IntRange):
        return [str(max(kind.min or 0, 3) if kind.max is None else min(max(kind.min or 0, 3), kind.max))]
    if isinstance(kind, click.types.FloatRange):
        return ["0.25"]
    return ["cpu" if param.name == "device" else "x"]


@pytest.mark.parametrize("kind", list(KIND_OPTIONS))
def test_options_of_the_other_model_kind_are_usage_errors(kind, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "r.fa").write_text(">r\n" + "ACGT" * 100 + "\n")
    train = {p.name: p for p in main.commands["train"].params}
    others = sorted({name for k, names in KIND_OPTIONS.items() if k != kind for name in names} - KIND_OPTIONS[kind])
    assert others
    for name in others:
        param = train[name]
        result = run(["train", "r.fa", "-o", "m.gdm", "--arch", kind, param.opts[-1], *valid_value(param)])
        assert result.exit_code == 1, (name, result.output)
        assert f"{param.opts[-1]}: not used by --arch {kind}" in result.output, result.output
        assert not (tmp_path / "m.gdm").exists()


def test_classifier_options_need_classes(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "r.fa").write_text(">r\n" + "ACGT" * 100 + "\n")
    result = run(["train", "r.fa", "-o", "m.gdm", "--arch", "kmer", "--classifier-epochs", "2"])
    assert result.exit_code == 1 and "only with --classes, --class-per-file or --record-classes" in result.output
    result = run(["train", "r.fa", "-o", "m.gdm", "--classes", "c.tsv", "--class-per-file"])
    assert result.exit_code == 1 and "give one of --classes, --class-per-file, --record-classes" in result.output
