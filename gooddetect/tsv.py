"""TSV text built column by column (the loops are in C, in gooddetect._core.text): fixed-point numbers as
printf writes them, NaN as NA, rows joined with tabs. A column is the text of its cells end to end (uint8) and where
each cell ends (int64)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ._core import text as kernels

NA = "NA"
_NA = np.frombuffer(NA.encode(), dtype=np.uint8)
MAX_DIGITS = 9


@dataclass(frozen=True)
class Column:
    """The cells of one TSV column: their UTF-8 text end to end and the end offset of each."""

    text: np.ndarray  # uint8
    ends: np.ndarray  # int64 [cells]

    def __len__(self) -> int:
        return len(self.ends)


def text_column(cells: Sequence[str]) -> Column:
    """A column of strings (no tab or newline in them)."""
    joined = "".join(cells)
    data = joined.encode("utf-8")
    lengths = map(len, cells) if len(data) == len(joined) else (len(c.encode("utf-8")) for c in cells)
    return Column(np.frombuffer(data, dtype=np.uint8), np.cumsum(np.fromiter(lengths, np.int64, len(cells))))


def choice_column(index: np.ndarray, cells: Sequence[str]) -> Column:
    """Row i holds cells[index[i]] (a few distinct cells for many rows, built without a Python loop per row)."""
    encoded = [cell.encode("utf-8") for cell in cells]
    width = max(map(len, encoded), default=0)
    table = np.zeros((len(encoded), width), dtype=np.uint8)
    used = np.zeros((len(encoded), width), dtype=bool)
    for k, cell in enumerate(encoded):
        table[k, :len(cell)] = np.frombuffer(cell, dtype=np.uint8)
        used[k, :len(cell)] = True
    index = np.asarray(index, dtype=np.int64)
    return Column(table[index][used[index]], np.cumsum(used.sum(axis=1)[index]))


def constant_column(cell: str, n: int) -> Column:
    data = np.frombuffer(cell.encode("utf-8"), dtype=np.uint8)
    return Column(np.tile(data, n), np.arange(1, n + 1, dtype=np.int64) * len(data))


def int_column(values: np.ndarray) -> Column:
    """Integers in decimal."""
    values = np.ascontiguousarray(values, dtype=np.int64)
    text = np.empty(20 * len(values), dtype=np.uint8)
    ends = np.empty(len(values), dtype=np.int64)
    size = kernels.write_ints(values, text, ends)
    return Column(text[:size], ends)


def fixed_column(values: np.ndarray, digits: int) -> Column:
    """Each value as `"%.{digits}f" % value` would write it (correctly rounded, ties to even), NaN as NA."""
    if not 0 <= digits <= MAX_DIGITS:
        raise ValueError(f"digits must be in [0, {MAX_DIGITS}], got {digits}")
    values = np.ascontiguousarray(values, dtype=np.float64)
    finite = values[np.isfinite(values)]
    if len(finite) and np.abs(finite).max() >= 2.0**53 / 10**digits or np.isinf(values).any():
        return text_column([NA if math.isnan(v) else f"%.{digits}f" % v for v in values.tolist()])
    text = np.empty((20 + digits) * len(values), dtype=np.uint8)
    ends = np.empty(len(values), dtype=np.int64)
    size = kernels.write_fixed(values, digits, _NA, text, ends)
    return Column(text[:size], ends)


def grouped(column: Column, bounds: np.ndarray, separator: str = ",") -> Column:
    """Cells bounds[i]..bounds[i+1]-1 of `column` joined by `separator` into cell i; NA for fewer than two."""
    n = len(bounds) - 1
    text = np.empty(len(column.text) + len(column) + 2 * n, dtype=np.uint8)
    ends = np.empty(n, dtype=np.int64)
    size = kernels.write_groups(column.text, column.ends, np.asarray(bounds, dtype=np.int64), ord(separator), _NA,
                                   text, ends)
    return Column(text[:size], ends)


def rows(columns: Sequence[Column]) -> str:
    """The columns' cells as TSV lines: tab-separated, each line ending in a newline."""
    if not columns or not len(columns[0]):
        return ""
    n = len(columns[0])
    if any(len(c) != n for c in columns):
        raise ValueError("columns of different lengths")
    offsets = np.cumsum([0] + [len(c.text) for c in columns[:-1]])
    text = np.concatenate([c.text for c in columns])
    ends = np.stack([c.ends + offset for c, offset in zip(columns, offsets)])
    starts = np.concatenate([offsets[:, None], ends[:, :-1]], axis=1)
    out = np.empty(len(text) + n * len(columns), dtype=np.uint8)
    kernels.join_rows(text, starts, ends, out)
    return out.tobytes().decode("utf-8")
