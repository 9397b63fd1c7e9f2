"""The k-mer model's loops: counting, scoring and the model file's table layouts, in C (kmer.c, built by pip).
tests/test_kmer.py checks them against brute-force references in plain Python.

Every loop releases the GIL, so row blocks count and score on several threads; arrays are C-contiguous numpy arrays
of the documented dtypes (kmer.c checks kind, size and shape). Floating-point arithmetic is evaluated as written,
so scores are the same bytes on every machine.
"""

from __future__ import annotations

import numpy as np

from ._kmer import (BUCKET_SLOTS, COUNT_CAP, class_loglik_rows, count_rows, insert, interpolate, into_columns,
                    loglik_rows, merge_buckets, unpack_buckets, unpack_symmetric)
from ._kmer import halve as _halve

__all__ = ["BUCKET_SLOTS", "COUNT_CAP", "class_loglik_rows", "count_rows", "halve_tables", "insert", "interpolate",
           "into_columns", "loglik_rows", "merge_buckets", "unpack_buckets", "unpack_symmetric"]


def halve_tables(tables: np.ndarray) -> np.ndarray:
    """Tables with half the buckets: bucket b takes the entries of buckets 2b and 2b+1 (the hash's next-lower top
    bit), keeping the most frequent when they do not fit."""
    out = np.zeros((tables.shape[0], tables.shape[1] // 2, tables.shape[2]), dtype=tables.dtype)
    _halve(np.ascontiguousarray(tables), out)
    return out
