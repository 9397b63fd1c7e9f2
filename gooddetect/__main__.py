"""`python -m gooddetect ...`: the same as the `gooddetect` command."""

from .cli import main

main(prog_name="gooddetect")
