"""The TSV text loops, in C (text.c, built by pip): printf-style fixed-point numbers (byte for byte what Python's
`"%.6f" % x` writes), integers, grouped cells and tab-joined rows, written into uint8 buffers that gooddetect.tsv
sizes; and the line breaks of a block of input (memchr, several times faster than bytes.count). Why compiled:
Python's own formatting of a large score table dominated `score`'s time (CHANGELOG 0.2.0)."""

from ._text import count_byte, join_rows, write_fixed, write_groups, write_ints

__all__ = ["count_byte", "join_rows", "write_fixed", "write_groups", "write_ints"]
