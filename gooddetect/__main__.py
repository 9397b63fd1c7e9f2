"""`python -m gooddetect ...`: the same as the `gooddetect` command."""

from .cli import run

run()
