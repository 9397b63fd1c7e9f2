"""The compiled core, one module per concern.

In C (built by pip with the machine's C compiler; Python faces in the .py files of the same name):
- `kmer` (kmer.c): the k-mer chain's counting, scoring and model-file table layouts, and the k-mer classifier's
  scoring: a loop per base, which Python cannot run fast. The loops release the GIL, so row blocks run on several
  threads. C rather than numba so that `score` with a k-mer model starts without numba's import and cache load
  (half a second, 65 MB).
- `text` (text.c): the TSV's numbers and rows as printf writes them (Python's own formatting dominated `score`'s
  time).
- `sequences` (sequences.c): the line breaks of an input block, and a chunk's sequences checked and encoded without
  joining them into one string.

In numba (cached on disk after the first use):
- `conv`: the ConvNet classifier's convolution at inference as table lookups (no torch call per window);
- `segment`: `screen`'s segmentation of contigs into foreign and native runs.

Each has a plain-Python or torch twin that the tests compare it with.
"""
