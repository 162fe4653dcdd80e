"""Long films are transcribed in chunks cut in silences, each cached on its own, so a
crash at minute 85 of a 90-minute film resumes near minute 85.

A chunk carries the speech regions to decode in it, widened for decoding; every time
here is on the film's timeline.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

Regions = Sequence[tuple[float, float]]


@dataclass(frozen=True)
class Chunk:
    """``[start, end]`` of the film, decoded and cached as one piece.

    ``regions``: where to decode, voice activity widened by the decoding pad and kept
    inside the chunk; None when voice activity is off (the whole stretch is decoded).
    """

    start: float
    end: float
    regions: tuple[tuple[float, float], ...] | None = None

    def decode_regions(self) -> list[tuple[float, float]]:
        """The regions to decode: voice activity's, else the whole chunk."""
        if self.regions is not None:
            return list(self.regions)
        return [(self.start, self.end)] if self.end > self.start else []


def plan_chunks(duration: float, speech: Regions | None, chunk_seconds: float, decode_pad: float = 0.0,
                search: float | None = None) -> list[Chunk]:
    """Chunks of about ``chunk_seconds`` that cover ``[0, duration]``, with their regions.

    Each cut lies in the middle of the longest pause within ``search`` seconds (default:
    a quarter of a chunk, at most a minute) of the ideal point, so no word is cut in
    two; with no pause there, it falls on the point. ``speech`` None: voice activity off.
    """
    spans = _spans(duration, speech or (), chunk_seconds, search)
    if speech is None:
        return [Chunk(a, b) for a, b in spans]
    return [Chunk(a, b, tuple(widen(regions_within(speech, a, b), decode_pad, a, b))) for a, b in spans]


def _spans(duration: float, speech: Regions, chunk_seconds: float,
           search: float | None) -> list[tuple[float, float]]:
    if search is None:
        search = min(60.0, chunk_seconds / 4)
    if chunk_seconds <= 0 or duration <= chunk_seconds + search:
        return [(0.0, duration)]
    pauses = _pauses(duration, speech)
    cuts, start = [], 0.0
    while duration - start > chunk_seconds + search:
        ideal = start + chunk_seconds
        near = [(b - a, (a + b) / 2) for a, b in pauses if abs((a + b) / 2 - ideal) <= search and (a + b) / 2 > start]
        cut = max(near)[1] if near else ideal
        cuts.append(cut)
        start = cut
    edges = [0.0, *cuts, duration]
    return list(zip(edges, edges[1:]))


def _pauses(duration: float, speech: Regions) -> list[tuple[float, float]]:
    edges = [0.0] + [x for region in sorted(speech) for x in region] + [duration]
    return [(a, b) for a, b in zip(edges[::2], edges[1::2]) if b > a]


def regions_within(speech: Regions, start: float, end: float) -> list[tuple[float, float]]:
    """The speech regions that fall in ``[start, end]``, cut at its edges."""
    return [(max(a, start), min(b, end)) for a, b in speech if b > start and a < end]


def widen(regions: Regions, pad: float, low: float, high: float) -> list[tuple[float, float]]:
    """``regions`` padded by ``pad`` seconds each side, inside ``[low, high]``; overlaps merged.

    Cut exactly at voice activity's boundaries, Whisper loses onsets and endings.
    """
    out: list[tuple[float, float]] = []
    for start, end in regions:
        start, end = max(low, start - pad), min(high, end + pad)
        if out and start <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], end))
        else:
            out.append((start, end))
    return out
