"""Word timing: the batched warp takes transformers' (and openai-whisper's) path exactly."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays


def _transformers_starts(matrix: np.ndarray) -> list[int]:
    from transformers.models.whisper.generation_whisper import _dynamic_time_warping

    text, time = _dynamic_time_warping(matrix)
    jumps = np.pad(np.diff(text), (1, 0), constant_values=1).astype(bool)
    return time[jumps].tolist()


matrices = st.integers(1, 12).flatmap(lambda n: st.integers(1, 40).flatmap(
    lambda m: st.one_of(
        arrays(np.float64, (n, m), elements=st.integers(-2, 2).map(float)),  # ties everywhere
        arrays(np.float64, (n, m), elements=st.floats(-3, 3, allow_nan=False, width=32)),
    )))


@settings(max_examples=60, deadline=None)
@given(st.lists(matrices, min_size=1, max_size=4))
def test_the_batched_warp_takes_transformers_path(batch: list[np.ndarray]) -> None:
    import torch

    from subpipe.asr.word_timing import dtw_starts

    assert dtw_starts([torch.from_numpy(m) for m in batch]) == [_transformers_starts(m) for m in batch]


def test_a_warp_through_missing_attention_takes_transformers_path_too() -> None:
    import torch

    from subpipe.asr.word_timing import dtw_starts

    matrix = np.random.default_rng(0).standard_normal((6, 9))
    matrix[2, 3] = matrix[4, 0] = np.nan  # NaN never wins a comparison: the path turns as transformers' does
    assert dtw_starts([torch.from_numpy(matrix)]) == [_transformers_starts(matrix)]
