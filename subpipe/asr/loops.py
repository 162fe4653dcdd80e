"""Whisper's loops: text that repeats itself, or a decoder that ran into the token limit.

Greedy decoding sometimes falls into a loop (ur_dev 155-167 s: one phrase eleven times
at int8). openai-whisper retries such a window at a higher temperature; a batch has no
per-window fallback, so the batched backends catch the loop with the same test and
decode that window again with a beam, which does not loop there. A window whose
decoding stops at Whisper's token limit is a loop too.
"""

from __future__ import annotations

import zlib

# openai-whisper's compression_ratio_threshold: above it, text repeats itself.
LOOP_RATIO = 2.4
# A looping window is decoded again with a beam this wide.
REPAIR_BEAM = 5
# A second try at a translation that looped: no three tokens may repeat.
NO_REPEAT_NGRAM = 3
# Whisper's decoder has this many positions: start tokens, text and the end token must fit.
TEXT_CONTEXT = 448


def compression_ratio(text: str) -> float:
    """Bytes of ``text`` over bytes of its zlib compression (openai-whisper's repetition test)."""
    raw = text.encode("utf-8")
    return len(raw) / len(zlib.compress(raw)) if raw else 0.0


def looping(text: str, at_limit: bool = False) -> bool:
    """True for a window whose text repeats itself, or whose decoding stopped at the token limit."""
    return at_limit or compression_ratio(text) > LOOP_RATIO
