"""The sequence text loops, in C (sequences.c, built by pip): the line breaks of a block of input (memchr, several
times faster than bytes.count); over a chunk's list of sequences, the first one that is empty or holds a letter a
table refuses, and every letter through a byte table into one code array. Why compiled: joining a chunk's sequences
into one string, once to check them and once to encode them, cost a reader thread (which holds the GIL) a tenth
of a million-read run."""

from ._sequences import count_byte, first_refused, translate_all

__all__ = ["count_byte", "first_refused", "translate_all"]
