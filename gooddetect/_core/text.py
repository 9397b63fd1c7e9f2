"""The TSV text kernels: printf-style fixed-point numbers (byte for byte what Python's `"%.6f" % x` writes), integers,
grouped cells and tab-joined rows, written into uint8 buffers (see gooddetect.tsv for the column API). Why compiled:
Python's own formatting of a large score table dominated `score`'s time (CHANGELOG 0.2.0)."""

from __future__ import annotations

import math

import numba
import numpy as np

SPLIT = 134217729.0  # 2^27 + 1: Veltkamp's splitter for doubles
JIT = {"nogil": True, "cache": True}

@numba.njit(**JIT)
def write_digits(value, out, at):
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
def write_ints(values, out, ends):
    at = 0
    for i in range(values.size):
        v = values[i]
        if v < 0:
            out[at] = 45  # '-'
            at += 1
        at = write_digits(np.uint64(-(v + 1)) + np.uint64(1) if v < 0 else np.uint64(v), out, at)  # |v|, also of -2^63
        ends[i] = at
    return at


@numba.njit(**JIT)
def product_error(a, b, p):
    """a * b - p exactly, p being the rounded product (Dekker's product, no FMA needed)."""
    c = SPLIT * a
    a_hi = c - (c - a)
    a_lo = a - a_hi
    c = SPLIT * b
    b_hi = c - (c - b)
    b_lo = b - b_hi
    return ((a_hi * b_hi - p) + a_hi * b_lo + a_lo * b_hi) + a_lo * b_lo


@numba.njit(**JIT)
def write_fixed(values, digits, na, out, ends):
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
        e = product_error(a, scale, p)
        whole = math.floor(p)
        fraction = p - whole
        r = np.int64(whole)
        if fraction > 0.5 or (fraction == 0.5 and (e > 0 or (e == 0 and r % 2 == 1))):
            r += 1
        at = write_digits(np.uint64(r // unit), out, at)
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
def write_groups(text, ends, bounds, separator, na, out, out_ends):
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
def join_rows(text, starts, ends, out):
    at = 0
    n_columns, n_rows = starts.shape
    for i in range(n_rows):
        for c in range(n_columns):
            for j in range(starts[c, i], ends[c, i]):
                out[at] = text[j]
                at += 1
            out[at] = 9 if c + 1 < n_columns else 10  # tab, newline
            at += 1
