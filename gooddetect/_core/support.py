"""The support table's loops, in C (support.c, built by pip): the canonical k-mer minimizers of a sequence, and a
Bloom filter of their hashes (insert, and per row of a padded batch the minimizers found and looked up). Why
compiled: a minimizer walk touches every base of every read."""

from ._support import insert, minimizers, query

__all__ = ["insert", "minimizers", "query"]
