"""One module per command: each owns its options' meaning, its orchestration and its outputs; `gooddetect.cli`
is the click layer over them and `gooddetect.api` re-exports their entry points."""

from __future__ import annotations

from dataclasses import dataclass

from ..options import option


@dataclass(frozen=True)
class ModelChoice:
    """The model of a command whose arguments are input files (`score`, `screen`): the first argument, or this."""

    model: str | None = option(None, "Model file, instead of the first argument.", short="-m",
                               envvar="GOODDETECT_MODEL")
