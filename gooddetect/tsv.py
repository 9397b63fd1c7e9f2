"""TSV text built column by column in compiled loops (numba): printf-style fixed-point numbers, byte for byte what
Python's `"%.6f" % x` writes, NaN as NA, and rows joined with tabs. Python's own formatting of a 200,000-row
score table took a third of `score`'s time.

A column is the text of its cells end to end (uint8) and where each cell ends (int64).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numba
import numpy as np

NA = "NA"
_NA = np.frombuffer(NA.encode(), dtype=np.uint8)
MAX_DIGITS = 9
SPLIT = 134217729.0  # 2^27 + 1: Veltkamp's splitter for doubles
JIT = {"nogil": True, "cache": True}


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


def constant_column(cell: str, n: int) -> Column:
    data = np.frombuffer(cell.encode("utf-8"), dtype=np.uint8)
    return Column(np.tile(data, n), np.arange(1, n + 1, dtype=np.int64) * len(data))


def int_column(values: np.ndarray) -> Column:
    """Integers in decimal."""
    values = np.ascontiguousarray(values, dtype=np.int64)
    text = np.empty(20 * len(values), dtype=np.uint8)
    ends = np.empty(len(values), dtype=np.int64)
    size = _write_ints(values, text, ends)
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
    size = _write_fixed(values, digits, _NA, text, ends)
    return Column(text[:size], ends)


def grouped(column: Column, bounds: np.ndarray, separator: str = ",") -> Column:
    """Cells bounds[i]..bounds[i+1]-1 of `column` joined by `separator` into cell i; NA for fewer than two."""
    n = len(bounds) - 1
    text = np.empty(len(column.text) + len(column) + 2 * n, dtype=np.uint8)
    ends = np.empty(n, dtype=np.int64)
    size = _write_groups(column.text, column.ends, np.asarray(bounds, dtype=np.int64), ord(separator), _NA, text,
                         ends)
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
    _join_rows(text, starts, ends, out)
    return out.tobytes().decode("utf-8")


# -- compiled loops -------------------------------------------------------------------------------------------------


@numba.njit(**JIT)
def _digits(value, out, at):
    """Write the decimal digits of `value` (an unsigned integer) at out[at]; return the position after them."""
    ten = np.uint64(10)
    value = np.uint64(value)
    n = 1
    rest = value // ten
    while rest:
        n += 1
        rest //= ten
    for i in range(n - 1, -1, -1):
        out[at + i] = np.uint8(48 + value % ten)
        value //= ten
    return at + n


@numba.njit(**JIT)
def _write_ints(values, out, ends):
    at = 0
    for i in range(values.size):
        v = values[i]
        if v < 0:
            out[at] = 45  # '-'
            at += 1
        at = _digits(np.uint64(-(v + 1)) + np.uint64(1) if v < 0 else np.uint64(v), out, at)  # |v|, also of -2^63
        ends[i] = at
    return at


@numba.njit(**JIT)
def _product_error(a, b, p):
    """a * b - p exactly, p being the rounded product (Dekker's product, no FMA needed)."""
    c = SPLIT * a
    a_hi = c - (c - a)
    a_lo = a - a_hi
    c = SPLIT * b
    b_hi = c - (c - b)
    b_lo = b - b_hi
    return ((a_hi * b_hi - p) + a_hi * b_lo + a_lo * b_hi) + a_lo * b_lo


@numba.njit(**JIT)
def _write_fixed(values, digits, na, out, ends):
    """printf's %.{digits}f of finite values below 2^53 / 10^digits in magnitude (NaN: `na`). The scaled value
    a·10^digits = p + e exactly (p its rounded double); p's fraction is exact, so comparing it, then e, with one
    half rounds as the exact value would."""
    scale = 10.0**digits
    unit = np.int64(10**digits)
    at = 0
    for i in range(values.size):
        x = values[i]
        if math.isnan(x):
            for j in range(na.size):
                out[at + j] = na[j]
            at += na.size
            ends[i] = at
            continue
        if math.copysign(1.0, x) < 0:
            out[at] = 45  # '-', also for a negative value that rounds to zero, as printf writes it
            at += 1
        a = abs(x)
        p = a * scale
        e = _product_error(a, scale, p)
        whole = math.floor(p)
        fraction = p - whole
        r = np.int64(whole)
        if fraction > 0.5 or (fraction == 0.5 and (e > 0 or (e == 0 and r % 2 == 1))):
            r += 1
        at = _digits(np.uint64(r // unit), out, at)
        if digits:
            out[at] = 46  # '.'
            at += 1
            frac = r % unit
            for j in range(digits - 1, -1, -1):
                out[at + j] = 48 + frac % 10
                frac //= 10
            at += digits
        ends[i] = at
    return at


@numba.njit(**JIT)
def _write_groups(text, ends, bounds, separator, na, out, out_ends):
    at = 0
    for g in range(bounds.size - 1):
        first, last = bounds[g], bounds[g + 1]
        if last - first < 2:
            for j in range(na.size):
                out[at + j] = na[j]
            at += na.size
        else:
            for cell in range(first, last):
                if cell > first:
                    out[at] = separator
                    at += 1
                start = ends[cell - 1] if cell else 0
                for j in range(start, ends[cell]):
                    out[at] = text[j]
                    at += 1
        out_ends[g] = at
    return at


@numba.njit(**JIT)
def _join_rows(text, starts, ends, out):
    at = 0
    n_columns, n_rows = starts.shape
    for i in range(n_rows):
        for c in range(n_columns):
            for j in range(starts[c, i], ends[c, i]):
                out[at] = text[j]
                at += 1
            out[at] = 9 if c + 1 < n_columns else 10  # tab, newline
            at += 1
