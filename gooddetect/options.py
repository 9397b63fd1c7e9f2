"""Typed command options: the fields of a config dataclass, marked with `option(...)`, generate their click options
(flag, type, range, help and the default shown in it), and a command builds the dataclass from the values its user
gave; every other field keeps the dataclass's default. A default therefore lives in one place, the dataclass. Every
option of every command is declared this way; the CLI declares only the global ones (--threads, --seed, --device).

A model's stored config (models.configs) holds only its values and their bounds (`bounded(...)`): the command line's
words for its fields are given apart, by the module that offers them as options (`describe`), so the config carries
no CLI text. Bounds live with the field: the command line checks them, and so does `check_fields` for a config built
by the API or read from a model file. This module imports click only when a command's options are generated.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Callable

@dataclass(frozen=True)
class Switch:
    """One of several flags that set the same field (`--paired`, `--interleaved`): the value it sets, its help."""

    flag: str
    value: Any
    help: str


@dataclass(frozen=True)
class Bounds:
    """The values a field accepts: a range (ends open or closed) or a set of choices."""

    min: float | None = None
    max: float | None = None
    min_open: bool = False
    max_open: bool = False
    choices: tuple[str, ...] | None = None


BOUND_NAMES = tuple(f.name for f in dataclasses.fields(Bounds))


@dataclass(frozen=True)
class Spec:
    """How a field appears on the command line."""

    help: str
    flag: str | None = None  # default: --field-name
    short: str | None = None
    default_text: str | None = None  # what help shows as the default (else the field's default)
    metavar: str | None = None
    envvar: str | None = None
    required: bool = False
    multiple: bool = False  # repeatable: the field holds a tuple of every value given
    switches: tuple[Switch, ...] = ()  # the field is set by these flags instead of one taking a value
    off_flag: str | None = None  # a bool | None field: flag sets True, off_flag False, neither leaves the default
    parse: Callable[[str], Any] | None = None  # text -> value, raising ValueError with the message for the user


_DESCRIBED: dict[type, dict[str, Spec]] = {}  # the command-line words of stored configs' fields (describe)


def option(default: Any, help: str, **spec) -> Any:
    """A dataclass field with `default` that the command line sets: its Spec and its Bounds (min, max, min_open,
    max_open, choices) from `spec`."""
    bounds = {name: spec.pop(name) for name in BOUND_NAMES if name in spec}
    return _field(default, {"option": Spec(help, **spec), "bounds": Bounds(**bounds)})


def bounded(default: Any, **bounds) -> Any:
    """A field of a stored config with `default` and its Bounds, and no command-line words (see describe)."""
    return _field(default, {"bounds": Bounds(**bounds)})


def _field(default: Any, metadata: dict) -> Any:
    factory = {"default_factory": default} if callable(default) else {"default": default}
    return dataclasses.field(**factory, metadata=metadata)


def describe(cls, **specs: Spec) -> None:
    """Offer fields of the stored config `cls` as options, in these words (one Spec per field name)."""
    unknown = set(specs) - {f.name for f in dataclasses.fields(cls)}
    if unknown:
        raise TypeError(f"{cls.__name__} has no field {sorted(unknown)[0]}")
    _DESCRIBED[cls] = specs


def specs(cls) -> list[tuple[dataclasses.Field, Spec]]:
    """The fields of `cls` that are command-line options, in declaration order."""
    described = _DESCRIBED.get(cls, {})
    return [(f, f.metadata.get("option") or described[f.name]) for f in dataclasses.fields(cls)
            if "option" in f.metadata or f.name in described]


def bounds_of(field: dataclasses.Field) -> Bounds:
    return field.metadata.get("bounds", Bounds())


def flag_of(field: dataclasses.Field, spec: Spec) -> str:
    return spec.flag or "--" + field.name.replace("_", "-")


def param_name(field: dataclasses.Field, spec: Spec) -> str:
    """The click parameter name of a field: its flag's (so one flag is one parameter across dataclasses)."""
    return flag_of(field, spec)[2:].replace("-", "_")


def _default_text(field: dataclasses.Field, spec: Spec) -> str | None:
    if spec.default_text is not None:
        return spec.default_text
    if field.default is dataclasses.MISSING or field.default is None or field.default is False or field.default == ():
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
        if spec.switches:
            decorators += [click.option(switch.flag, name, flag_value=switch.value, help=switch.help)
                           for switch in spec.switches]
            continue
        defaults = [(label, _default_text(f, s)) for label, f, s in entries]
        if len(entries) > 1 and len({text for _, text in defaults}) > 1:
            shown = "; ".join(f"{label}: {text}" for label, text in defaults if text is not None)
        else:
            shown = defaults[0][1]
        help_text = spec.help + (f"  [default: {shown}]" if shown else "")
        flags = [*([spec.short] if spec.short else []), flag_of(field, spec)]
        kind = _click_type(field, spec, bounds_of(field))
        if spec.off_flag:
            decorators.append(click.option(f"{flag_of(field, spec)}/{spec.off_flag}", name, default=None,
                                           help=spec.help))
        elif kind is bool:
            decorators.append(click.option(*flags, name, is_flag=True, default=False, help=help_text))
        else:
            decorators.append(click.option(*flags, name, type=kind, help=help_text, metavar=spec.metavar,
                                           envvar=spec.envvar, required=spec.required, multiple=spec.multiple,
                                           show_envvar=spec.envvar is not None,
                                           callback=_parser(spec.parse) if spec.parse else None,
                                           **({} if spec.required else {"default": None})))

    def decorate(command: Callable) -> Callable:
        for decorator in reversed(decorators):
            command = decorator(command)
        return command

    return decorate


def _parser(parse: Callable[[str], Any]) -> Callable:
    """A click callback applying `parse` to a given value (a ValueError is click's usage error)."""
    import click

    def callback(ctx, param, value):
        try:
            return None if value is None else parse(value)
        except ValueError as error:
            raise click.BadParameter(str(error)) from None

    return callback


def _click_type(field: dataclasses.Field, spec: Spec, bounds: Bounds):
    import click

    if bounds.choices is not None:
        return click.Choice(list(bounds.choices))
    kind = field.type if isinstance(field.type, str) else getattr(field.type, "__name__", str(field.type))
    base = kind.split("|")[0].strip()
    if base == "bool":
        return bool
    if base == "int":
        return click.IntRange(None if bounds.min is None else int(bounds.min),
                              None if bounds.max is None else int(bounds.max), min_open=bounds.min_open,
                              max_open=bounds.max_open)
    if base == "float":
        return click.FloatRange(bounds.min, bounds.max, min_open=bounds.min_open, max_open=bounds.max_open)
    return click.STRING


def given(cls, params: dict, was_given: Callable[[str], bool]) -> dict:
    """{field: value} of the fields of `cls` whose option the user gave (`was_given(param name)`)."""
    return {f.name: params[param_name(f, s)] for f, s in specs(cls) if was_given(param_name(f, s))}


def build(cls, params: dict, was_given: Callable[[str], bool], **fixed):
    """`cls` from the options given (the others keep their defaults) and `fixed` values; a given value outside
    its option's choices or range is a UsageError naming the flag (as the command line checks it)."""
    for field, spec in specs(cls):
        name = param_name(field, spec)
        if was_given(name) and not (spec.switches or spec.parse):  # click has checked those
            _check(flag_of(field, spec), bounds_of(field), params[name])
    return cls(**given(cls, params, was_given), **fixed)


def check_fields(instance) -> None:
    """Raise ValueError for the first option field of `instance` outside its choices or range: a config from the API
    or a model file meets the bounds the command line checks (they are declared once, with the field)."""
    for field in dataclasses.fields(instance):
        problem = _problem(bounds_of(field), getattr(instance, field.name))
        if problem:
            raise ValueError(field.name + problem)


def _check(flag: str, bounds: Bounds, value) -> None:
    from .errors import UsageError

    problem = _problem(bounds, value)
    if problem:
        raise UsageError(flag + problem)


def _problem(bounds: Bounds, value) -> str | None:
    """What is wrong with `value` for `bounds`, as the end of a sentence that starts with its name; None if
    nothing."""
    if value is None or isinstance(value, (bool, tuple)):
        return None
    if bounds.choices is not None and value not in bounds.choices:
        return f" must be one of {', '.join(bounds.choices)}, got {value!r}"
    low = bounds.min is not None and (value <= bounds.min if bounds.min_open else value < bounds.min)
    high = bounds.max is not None and (value >= bounds.max if bounds.max_open else value > bounds.max)
    return f": {value} is out of range" if low or high else None
