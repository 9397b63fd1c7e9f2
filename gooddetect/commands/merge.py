"""`gooddetect merge`: the TSVs of `score --shard i/n` back in input order."""

from __future__ import annotations

import gzip
from dataclasses import dataclass

from ..errors import InputError
from ..files import atomic_output
from ..options import option


@dataclass(frozen=True)
class MergeOptions:
    output: str = option("-", "Merged TSV ('-' = stdout), written atomically.", short="-o")


def merge_shards(shards: list[str], output: str) -> int:
    """Interleave the TSVs of `score --shard i/n` (given in order 1..n) back into input order; returns rows."""
    handles = [(gzip.open if p.endswith(".gz") else open)(p, "rt", encoding="utf-8") for p in shards]
    try:
        headers = {h.readline() for h in handles}
        if len(headers) != 1 or not next(iter(headers)).startswith("read_id\t"):
            raise InputError(f"{', '.join(shards)}: not score TSVs with the same header")
        rows = 0
        with atomic_output(output) as out:
            out.write(headers.pop())
            while True:
                lines = [h.readline() for h in handles]
                present = [bool(line) for line in lines]
                k = present.index(False) if False in present else len(lines)
                # Shard i holds reads i, i+n, ...: a round is full, or a prefix of shards then none at all.
                if any(present[k:]) or (k < len(lines) and any(h.readline() for h in handles[:k])):
                    raise InputError(f"{', '.join(shards)}: inconsistent row counts; give all shards of one run, "
                                     f"in order 1..n")
                out.writelines(lines[:k])
                rows += k
                if k < len(lines):
                    break
        return rows
    finally:
        for handle in handles:
            handle.close()
