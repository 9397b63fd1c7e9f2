"""The two-state segmentation of a sequence's bins (see gooddetect.screening), compiled: a Python loop over the
two million bins of a 100 Mb assembly would take seconds."""

from __future__ import annotations

import numba
import numpy as np

JIT = {"nogil": True, "cache": True}


@numba.njit(**JIT)
def viterbi(evidence, penalty, foreign):
    """foreign[b] = whether bin b is foreign on the best path of a two-state chain (in, foreign) whose path score is
    the evidence of its foreign bins minus `penalty` per state change (entering the foreign state at the first bin
    counts as a change). Ties keep the in-distribution state."""
    n = evidence.size
    back = np.zeros((n, 2), dtype=np.int8)  # the previous state on the best path into (bin, state)
    v_in, v_out = 0.0, -penalty
    for b in range(n):
        stay_in, switch_in = v_in, v_out - penalty
        stay_out, switch_out = v_out, v_in - penalty
        back[b, 0] = 1 if switch_in > stay_in else 0
        back[b, 1] = 0 if switch_out >= stay_out else 1
        v_in = max(stay_in, switch_in)
        v_out = max(stay_out, switch_out) + evidence[b]
    state = 1 if v_out > v_in else 0
    for b in range(n - 1, -1, -1):
        foreign[b] = state == 1
        state = back[b, state]
