"""The classifier's convolution at inference, as table lookups (numba, cached on disk after the first use).

On a one-hot input, a filter's response at position p is the sum over its `width` offsets j of its weight for the
base at p + j (an unknown base, all-zero, adds nothing). Offsets are taken in groups of GROUP: for each group the
summed weights of every possible GROUP-mer over A, C, G, T, N are tabulated once, so a position costs
ceil(width / GROUP) row additions of `filters` floats instead of 4 · width · filters multiply-adds. The twin in
torch is ConvNet.features (training and ODIN use it; tests compare the two).
"""

from __future__ import annotations

import numba
import numpy as np

GROUP = 4  # offsets per table: 5^4 = 625 rows of `filters` floats per group
SYMBOLS = 5  # A, C, G, T and unknown (code 4, weight 0)


def group_tables(weight: np.ndarray) -> np.ndarray:
    """float32 [groups, 5^GROUP, filters]: for group g and the GROUP-mer with base-5 digits d_0..d_{GROUP-1} (d_0
    most significant), the sum over j of weight[:, d_j, g·GROUP + j] (zero for an unknown base or an offset past
    `width`). `weight` is the convolution's [filters, 4, width]."""
    filters, bases, width = weight.shape
    groups = -(-width // GROUP)
    padded = np.zeros((filters, SYMBOLS, groups * GROUP), dtype=np.float64)
    padded[:, :bases, :width] = weight
    keys = np.arange(SYMBOLS ** GROUP)
    digits = [(keys // SYMBOLS ** (GROUP - 1 - j)) % SYMBOLS for j in range(GROUP)]
    tables = np.zeros((groups, len(keys), filters), dtype=np.float64)
    for g in range(groups):
        for j, digit in enumerate(digits):
            tables[g] += padded[:, digit, g * GROUP + j].T
    return tables.astype(np.float32)


@numba.njit(nogil=True, cache=True)
def max_pooled_conv(codes, lengths, tables, bias, width, first, last, out):
    """out[r] = max(0, max over p in 0..lengths[r]-width of bias + Σ_g tables[g, key of codes[r, p+g·GROUP:...]])
    for rows first..last-1 of codes [B, L] (uint8, 0-4; positions past a row's length read as unknown): the
    ReLU'd, max-pooled convolution (0 when the row is shorter than `width`)."""
    groups, _, filters = tables.shape
    n_columns = codes.shape[1]
    span = groups * GROUP
    acc = np.empty(filters, dtype=np.float32)
    keys = np.empty(n_columns + span, dtype=np.int64)
    for r in range(first, last):
        length = min(lengths[r], n_columns)
        n_positions = length - width + 1
        for f in range(filters):
            out[r, f] = 0.0
        if n_positions <= 0:
            continue
        key = 0
        # keys[q] = the GROUP-mer starting at q, for q < n_positions + span - GROUP
        for q in range(n_positions + span - 1):
            code = codes[r, q] if q < length else 4
            key = (key * SYMBOLS + code) % SYMBOLS ** GROUP
            if q >= GROUP - 1:
                keys[q - GROUP + 1] = key
        for p in range(n_positions):
            for f in range(filters):
                acc[f] = bias[f]
            for g in range(groups):
                row = tables[g, keys[p + g * GROUP]]
                for f in range(filters):
                    acc[f] += row[f]
            for f in range(filters):
                if acc[f] > out[r, f]:
                    out[r, f] = acc[f]
