"""Dynamic time warping of a batch of alignment matrices, compiled by numba.

The path is transformers' ``_dynamic_time_warping`` (openai-whisper's ``dtw_cpu``, which
it copies): costs kept in float32, ties broken alike, walked back from the last cell. In
Python that took seconds per window; compiled, with the windows of a batch on every core,
it is a few milliseconds a batch. Imported only when words are timed (numba comes with
openai-whisper); compiled once per machine (numba's cache).
"""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(parallel=True, nogil=True, cache=True)
def first_frames(matrices, rows, cols, out):  # pragma: no cover - numba's, tested through dtw_starts
    """For each matrix ``b`` (its ``rows[b]`` x ``cols[b]`` corner of ``matrices[b]``), the
    frame where the cheapest path first reaches each row, written to ``out[b]``."""
    for b in numba.prange(matrices.shape[0]):
        n, m = rows[b], cols[b]
        cost = np.full((n + 1, m + 1), np.inf, dtype=np.float32)
        trace = np.full((n + 1, m + 1), -1, dtype=np.int8)
        cost[0, 0] = 0
        for j in range(1, m + 1):
            for i in range(1, n + 1):
                c0 = cost[i - 1, j - 1]
                c1 = cost[i - 1, j]
                c2 = cost[i, j - 1]
                if c0 < c1 and c0 < c2:
                    c, t = c0, 0
                elif c1 < c0 and c1 < c2:
                    c, t = c1, 1
                else:
                    c, t = c2, 2
                cost[i, j] = matrices[b, i - 1, j - 1] + c  # summed in float64, kept in float32
                trace[i, j] = t
        trace[0, :] = 2
        trace[:, 0] = 1
        i, j = n, m
        while i > 0 or j > 0:
            # Walking back, the last visit to a row is the path's first: the row's start.
            out[b, i - 1] = j - 1
            t = trace[i, j]
            if t == 0:
                i -= 1
                j -= 1
            elif t == 1:
                i -= 1
            else:
                j -= 1
