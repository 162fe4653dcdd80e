"""Whisper's loops: text that repeats itself, caught by openai-whisper's own test.

Greedy decoding sometimes falls into a loop (ur_dev 155-167 s: one phrase eleven times
at int8). openai-whisper retries such a window at a higher temperature; a batch has no
per-window fallback, so the batched backends catch the loop with the same test and
decode that window again with a beam, which does not loop there.
"""

from __future__ import annotations

import zlib

LOOP_RATIO = 2.4  # openai-whisper's compression_ratio_threshold: above it, text repeats itself
REPAIR_BEAM = 5


def compression_ratio(text: str) -> float:
    """Bytes of ``text`` over bytes of its zlib compression (openai-whisper's repetition test)."""
    raw = text.encode("utf-8")
    return len(raw) / len(zlib.compress(raw)) if raw else 0.0


def loops(text: str) -> bool:
    """Whether ``text`` repeats itself past openai-whisper's threshold."""
    return compression_ratio(text) > LOOP_RATIO
