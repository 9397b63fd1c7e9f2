"""The compiled core: every loop that numba compiles (cached on disk after the first use), one module per concern.

- `kmer`: the k-mer chain's counting, scoring and model-file table layouts (a loop per base, which Python cannot
  run fast; the loops release the GIL, so row blocks score on several threads);
- `conv`: the ConvNet classifier's convolution at inference as table lookups (no torch call per window);
- `text`: the TSV's numbers and rows as printf writes them (Python's own formatting dominated `score`'s time).

Each has a plain-Python or torch twin that the tests compare it with.
"""
