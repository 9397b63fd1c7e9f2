"""Typed command options: the fields of a config dataclass, marked with `option(...)`, generate their click options
(flag, type, range, help and the default shown in it), and a command builds the dataclass from the values its user
gave; every other field keeps the dataclass's default. A default therefore lives in one place, the dataclass.

Config dataclasses stay plain data: this module imports click only when a command's options are generated.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Callable

GIVEN_SOURCES = ("COMMANDLINE", "ENVIRONMENT")


@dataclass(frozen=True)
class Spec:
    """How a config field appears on the command line."""

    help: str
    flag: str | None = None  # default: --field-name
    short: str | None = None
    min: float | None = None
    max: float | None = None
    min_open: bool = False
    max_open: bool = False
    choices: tuple[str, ...] | None = None
    default_text: str | None = None  # what help shows as the default (else the field's default)
    metavar: str | None = None
    envvar: str | None = None


def option(default: Any, help: str, **spec) -> Any:
    """A dataclass field with `default` that the command line sets (see Spec for `spec`)."""
    factory = {"default_factory": default} if callable(default) else {"default": default}
    return dataclasses.field(**factory, metadata={"option": Spec(help, **spec)})


def specs(cls) -> list[tuple[dataclasses.Field, Spec]]:
    """The fields of `cls` that are command-line options, in declaration order."""
    return [(f, f.metadata["option"]) for f in dataclasses.fields(cls) if "option" in f.metadata]


def flag_of(field: dataclasses.Field, spec: Spec) -> str:
    return spec.flag or "--" + field.name.replace("_", "-")


def param_name(field: dataclasses.Field, spec: Spec) -> str:
    """The click parameter name of a field: its flag's (so one flag is one parameter across dataclasses)."""
    return flag_of(field, spec)[2:].replace("-", "_")


def _default_text(field: dataclasses.Field, spec: Spec) -> str | None:
    if spec.default_text is not None:
        return spec.default_text
    if field.default is dataclasses.MISSING or field.default is None or field.default is False:
        return None
    return str(field.default).lower() if isinstance(field.default, bool) else f"{field.default:g}" \
        if isinstance(field.default, float) else str(field.default)


def click_options(*groups: tuple[str, type]) -> Callable:
    """A decorator adding the click options of every (label, dataclass) group: one option per flag; a flag that
    several groups declare (with their own defaults) shows each group's default, labelled."""
    import click

    merged: dict[str, list[tuple[str, dataclasses.Field, Spec]]] = {}
    for label, cls in groups:
        for field, spec in specs(cls):
            merged.setdefault(param_name(field, spec), []).append((label, field, spec))
    decorators = []
    for name, entries in merged.items():
        _, field, spec = entries[0]
        defaults = [(label, _default_text(f, s)) for label, f, s in entries]
        if len(entries) > 1 and len({text for _, text in defaults}) > 1:
            shown = "; ".join(f"{label}: {text}" for label, text in defaults if text is not None)
        else:
            shown = defaults[0][1]
        help_text = spec.help + (f"  [default: {shown}]" if shown else "")
        flags = [flag_of(field, spec), *([spec.short] if spec.short else [])]
        kind = _click_type(field, spec)
        if kind is bool:
            decorators.append(click.option(*flags, name, is_flag=True, default=False, help=help_text))
        else:
            decorators.append(click.option(*flags, name, type=kind, default=None, help=help_text,
                                           metavar=spec.metavar, envvar=spec.envvar,
                                           show_envvar=spec.envvar is not None))

    def decorate(command: Callable) -> Callable:
        for decorator in reversed(decorators):
            command = decorator(command)
        return command

    return decorate


def _click_type(field: dataclasses.Field, spec: Spec):
    import click

    if spec.choices is not None:
        return click.Choice(list(spec.choices))
    kind = field.type if isinstance(field.type, str) else getattr(field.type, "__name__", str(field.type))
    base = kind.split("|")[0].strip()
    if base == "bool":
        return bool
    if base == "int":
        return click.IntRange(None if spec.min is None else int(spec.min), None if spec.max is None else int(spec.max),
                              min_open=spec.min_open, max_open=spec.max_open)
    if base == "float":
        return click.FloatRange(spec.min, spec.max, min_open=spec.min_open, max_open=spec.max_open)
    return click.STRING


def given(cls, params: dict, was_given: Callable[[str], bool]) -> dict:
    """{field: value} of the fields of `cls` whose option the user gave (`was_given(param name)`)."""
    return {f.name: params[param_name(f, s)] for f, s in specs(cls) if was_given(param_name(f, s))}


def given_flags(cls, was_given: Callable[[str], bool]) -> list[str]:
    """The flags of `cls`'s options that the user gave."""
    return [flag_of(f, s) for f, s in specs(cls) if was_given(param_name(f, s))]


def build(cls, params: dict, was_given: Callable[[str], bool], **fixed):
    """`cls` from the options given (the others keep their defaults) and `fixed` values; a given value outside
    its option's choices or range is a UsageError naming the flag (as the command line checks it)."""
    for field, spec in specs(cls):
        name = param_name(field, spec)
        if was_given(name):
            _check(flag_of(field, spec), spec, params[name])
    return cls(**given(cls, params, was_given), **fixed)


def _check(flag: str, spec: Spec, value) -> None:
    from .errors import UsageError

    if value is None or isinstance(value, bool):
        return
    if spec.choices is not None and value not in spec.choices:
        raise UsageError(f"{flag} must be one of {', '.join(spec.choices)}, got {value!r}")
    low = spec.min is not None and (value <= spec.min if spec.min_open else value < spec.min)
    high = spec.max is not None and (value >= spec.max if spec.max_open else value > spec.max)
    if low or high:
        raise UsageError(f"{flag}: {value} is out of range")
