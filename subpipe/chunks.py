"""Long films are transcribed in chunks cut in silences, each cached on its own, so a
crash at minute 85 of a 90-minute film resumes near minute 85."""

from __future__ import annotations

from dataclasses import replace
from typing import Sequence

from .types import Segment, Transcript, Word


def plan_chunks(duration: float, speech: Sequence[tuple[float, float]] | None,
                chunk_seconds: float, search: float | None = None) -> list[tuple[float, float]]:
    """(start, end) pieces of about ``chunk_seconds`` that cover ``[0, duration]``.

    Each cut lies in the middle of the longest pause within ``search`` seconds (default:
    a quarter of a chunk, at most a minute) of the ideal point, so no word is cut in
    two; with no pause there, it falls on the point.
    """
    if search is None:
        search = min(60.0, chunk_seconds / 4)
    if chunk_seconds <= 0 or duration <= chunk_seconds + search:
        return [(0.0, duration)]
    pauses = _pauses(duration, speech or ())
    cuts, start = [], 0.0
    while duration - start > chunk_seconds + search:
        ideal = start + chunk_seconds
        near = [(b - a, (a + b) / 2) for a, b in pauses if abs((a + b) / 2 - ideal) <= search and (a + b) / 2 > start]
        cut = max(near)[1] if near else ideal
        cuts.append(cut)
        start = cut
    edges = [0.0, *cuts, duration]
    return list(zip(edges, edges[1:]))


def shift(transcript: Transcript, offset: float) -> Transcript:
    """Times moved by ``offset`` seconds (a chunk's transcript into the film's time)."""
    if not offset:
        return transcript
    segments = tuple(
        replace(s, start=s.start + offset, end=s.end + offset,
                words=tuple(replace(w, start=w.start + offset, end=w.end + offset) for w in s.words))
        for s in transcript.segments
    )
    return replace(transcript, segments=segments, duration=transcript.duration + offset)


def join(lang: str, parts: Sequence[Transcript], duration: float) -> Transcript:
    return Transcript(lang=lang, segments=tuple(s for p in parts for s in p.segments), duration=duration)


def _pauses(duration: float, speech: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
    edges = [0.0] + [x for region in sorted(speech) for x in region] + [duration]
    return [(a, b) for a, b in zip(edges[::2], edges[1::2]) if b > a]


def to_json(transcript: Transcript) -> dict:
    return {
        "lang": transcript.lang,
        "duration": transcript.duration,
        "segments": [
            {"start": s.start, "end": s.end, "text": s.text, "no_speech_prob": s.no_speech_prob,
             "avg_logprob": s.avg_logprob,
             "words": [[w.start, w.end, w.text, w.probability] for w in s.words]}
            for s in transcript.segments
        ],
    }


def from_json(data: dict) -> Transcript:
    segments = tuple(
        Segment(s["start"], s["end"], s["text"], tuple(Word(*w) for w in s["words"]),
                s["no_speech_prob"], s["avg_logprob"])
        for s in data["segments"]
    )
    return Transcript(data["lang"], segments, data["duration"])
