"""Stretches of time on a film: speech, words, cues; and what one leaves of the other."""

from __future__ import annotations

from typing import Sequence

Spans = Sequence[tuple[float, float]]

# Seconds of detected speech with nothing over it before a stretch counts as missing:
# below, it is word timing leaving a pause between two words, or a cue's in-time
# sitting a few frames after the onset.
MIN_UNTRANSCRIBED = 1.0


def uncovered(speech: Spans, covers: Spans, least: float = MIN_UNTRANSCRIBED) -> list[tuple[float, float]]:
    """The stretches of ``speech`` that no span of ``covers`` reaches, each at least ``least`` s."""
    spans = sorted(covers)
    out: list[tuple[float, float]] = []
    for start, end in speech:
        at = start
        for a, b in spans:
            if b <= at or a >= end:
                continue
            if a - at >= least:
                out.append((at, a))
            at = max(at, b)
        if end - at >= least:
            out.append((at, end))
    return out
