"""Windows of speech for Whisper: voice-activity regions packed into 30-second windows.

Every backend decodes the same windows, so their outputs can be compared word for word:
the batched ones (faster-whisper, transformers) in batches, openai-whisper one after
another. Word times found inside a window map back onto the original timeline and are
kept inside the speech regions.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np

from .types import Segment, Transcript, Word

SAMPLE_RATE = 16_000
WINDOW = 30.0  # seconds Whisper's encoder sees at once
Regions = Sequence[tuple[float, float]]


@dataclass(frozen=True)
class Chunk:
    """Speech regions decoded as one window (seconds on the original timeline).

    ``glued``: the regions' audio end to end, silences left out (most speech per window);
    otherwise the stretch from the first region's start to the last one's end, pauses
    kept, so times map back by a plain offset and no word straddles a seam.
    """

    regions: tuple[tuple[float, float], ...]
    glued: bool = False

    @property
    def duration(self) -> float:
        if not self.glued:
            return self.regions[-1][1] - self.regions[0][0]
        return sum(end - start for start, end in self.regions)

    def samples(self, audio: np.ndarray) -> np.ndarray:
        spans = self.regions if self.glued else ((self.regions[0][0], self.regions[-1][1]),)
        pieces = [audio[int(round(s * SAMPLE_RATE)):int(round(e * SAMPLE_RATE))] for s, e in spans]
        return np.concatenate(pieces).astype(np.float32) if pieces else np.zeros(0, np.float32)

    def region_at(self, t: float) -> int:
        """Index of the region that chunk time ``t`` falls in (or, between regions, the nearer one)."""
        if self.glued:
            ends = np.cumsum([e - s for s, e in self.regions]).tolist()
            return min(bisect.bisect_right(ends, t), len(self.regions) - 1)
        at = self.regions[0][0] + t
        return min(range(len(self.regions)),
                   key=lambda i: 0.0 if self.regions[i][0] <= at <= self.regions[i][1]
                   else min(abs(at - self.regions[i][0]), abs(at - self.regions[i][1])))

    def original(self, t: float, region: int) -> float:
        """Chunk time ``t`` on the original timeline, kept inside ``region``.

        Voice activity says where speech is: a word timed into a pause is moved to its edge.
        """
        start, end = self.regions[region]
        before = sum(e - s for s, e in self.regions[:region]) if self.glued else start - self.regions[0][0]
        return round(min(max(start + t - before, start), end), 3)


def plan_chunks(regions: Regions, duration: float, window: float = WINDOW, glued: bool = False) -> list[Chunk]:
    """Greedy packing of speech regions into windows; long regions are cut at ``window``.

    Packing (rather than one window per region) is what makes batching pay: the encoder
    costs the same for 3 s of speech as for 30 s.
    """
    pieces: list[tuple[float, float]] = []
    for start, end in regions:
        start, end = max(0.0, start), min(duration, end)
        while end - start > window:
            pieces.append((start, start + window))
            start += window
        if end - start > 0.02:
            pieces.append((start, end))
    chunks, current = [], []
    for piece in pieces:
        if current and Chunk(tuple(current + [piece]), glued).duration > window:
            chunks.append(Chunk(tuple(current), glued))
            current = []
        current.append(piece)
    if current:
        chunks.append(Chunk(tuple(current), glued))
    return chunks


def default_regions(audio: np.ndarray, regions: Regions | None, vad: object | None) -> list[tuple[float, float]]:
    """The caller's regions, else voice activity with ``vad`` settings, else the whole audio;
    widened by ``vad.decode_pad_ms`` on each side for decoding."""
    duration = len(audio) / SAMPLE_RATE
    if regions is None and vad is not None:
        from .vad import speech_regions

        regions = speech_regions(audio, vad)  # type: ignore[arg-type]
    if regions is None:
        return [(0.0, duration)] if duration > 0 else []
    return widen(regions, getattr(vad, "decode_pad_ms", 0) / 1000, duration)


def widen(regions: Regions, pad: float, duration: float) -> list[tuple[float, float]]:
    """``regions`` padded by ``pad`` seconds each side, inside the audio; overlaps merged."""
    out: list[tuple[float, float]] = []
    for start, end in regions:
        start, end = max(0.0, start - pad), min(duration, end + pad)
        if out and start <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], end))
        else:
            out.append((start, end))
    return out


def regroup(chunk: Chunk, words: Iterable[Word], avg_logprob: float, no_speech_prob: float) -> list[Segment]:
    """Words in chunk time -> one Segment per speech region, on the original timeline."""
    by_region: dict[int, list[Word]] = {}
    for w in words:
        region = chunk.region_at((w.start + w.end) / 2)
        by_region.setdefault(region, []).append(
            Word(chunk.original(w.start, region), chunk.original(w.end, region), w.text, w.probability)
        )
    segments = []
    for region in sorted(by_region):
        ws = tuple(by_region[region])
        segments.append(Segment(ws[0].start, ws[-1].end, "".join(w.text for w in ws), ws,
                                no_speech_prob=no_speech_prob, avg_logprob=avg_logprob))
    return segments


def clip_windows(clips: Sequence[np.ndarray]) -> list[tuple[int, Chunk]]:
    """Each clip's windows, tagged with the clip's index, for decoding clips in batches."""
    return [(i, chunk) for i, clip in enumerate(clips)
            for chunk in plan_chunks([(0.0, len(clip) / SAMPLE_RATE)], len(clip) / SAMPLE_RATE)]


def batches(items: Sequence, size: int) -> Iterable[Sequence]:
    step = max(1, size)
    for first in range(0, len(items), step):
        yield items[first:first + step]


def keep_inside(segments: Sequence[Segment], regions: Regions) -> tuple[Segment, ...]:
    """``segments`` with each word moved inside the region it lies in (or is nearest to).

    What the batched backends do by construction, for a backend that decodes the windows
    itself: the regions are read as one unglued ``Chunk``, whose ``region_at`` and
    ``original`` place each word. Voice activity says where speech is.
    """
    if not regions:
        return tuple(segments)
    span, origin = Chunk(tuple(regions)), regions[0][0]
    out = []
    for segment in segments:
        words = []
        for w in segment.words:
            region = span.region_at((w.start + w.end) / 2 - origin)
            words.append(Word(span.original(w.start - origin, region), span.original(w.end - origin, region),
                              w.text, w.probability))
        if words:
            segment = Segment(words[0].start, words[-1].end, segment.text, tuple(words),
                              segment.no_speech_prob, segment.avg_logprob)
        out.append(segment)
    return tuple(out)


class BatchedBackend:
    """What the batched backends share: the windows they decode, and speech translation.

    A subclass decodes windows with ``_decode_windows`` and clips with ``translate_clips``.
    """

    vad: object | None

    def transcribe(self, audio: np.ndarray, lang: str, progress=None, prompt: str | None = None,
                   speech: Regions | None = None) -> Transcript:
        """Batched transcription of the speech regions (``speech``, else voice activity).

        ``prompt`` primes the decoder of every window (glossary terms).
        """
        duration = len(audio) / SAMPLE_RATE
        chunks = plan_chunks(default_regions(audio, speech, self.vad), duration)
        segments = self._decode_windows(audio, chunks, lang, progress, prompt)
        return Transcript(lang=lang, segments=tuple(segments), duration=duration)

    def translate_audio(self, audio: np.ndarray, lang: str) -> str:
        """English text of ``audio`` spoken in ``lang``, by Whisper's translate task."""
        return self.translate_clips([audio], lang)[0]

    def _decode_windows(self, audio: np.ndarray, chunks: Sequence[Chunk], lang: str, progress,
                        prompt: str | None) -> list[Segment]:
        raise NotImplementedError

    def translate_clips(self, clips: Sequence[np.ndarray], lang: str) -> list[str]:
        raise NotImplementedError
