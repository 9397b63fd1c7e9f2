"""The TSV text loops, in C (text.c, built by pip): printf-style fixed-point numbers (byte for byte what Python's
`"%.6f" % x` writes), integers, grouped cells and tab-joined rows, written into uint8 buffers that gooddetect.tsv
sizes. Why compiled: Python's own formatting of a large score table dominated `score`'s time."""

from ._text import join_rows, write_fixed, write_groups, write_ints

__all__ = ["join_rows", "write_fixed", "write_groups", "write_ints"]
