"""Windows of speech for Whisper: the regions of a chunk packed into 30-second windows.

Every backend decodes the same windows, so their outputs can be compared word for word:
the batched ones (faster-whisper, transformers) in batches, openai-whisper one after
another. A window's regions are film time; word times found inside a window map back
onto the film once, here, and stay inside the speech regions.
"""

from __future__ import annotations

import bisect
import logging
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Sequence, TypeVar

import numpy as np

from ..media import SAMPLE_RATE
from ..types import Word
from .chunks import Chunk, Regions
from .interface import DecodeOptions, Progress

log = logging.getLogger(__name__)
T = TypeVar("T")
R = TypeVar("R")

WINDOW = 30.0  # seconds Whisper's encoder sees at once
MEL_FRAMES_PER_SECOND = 100  # Whisper's log-mel frames are 10 ms
MEL_FRAMES = int(WINDOW * MEL_FRAMES_PER_SECOND)  # a whole window: 3000


def mel_frames(samples: int) -> int:
    """The mel frames a clip of ``samples`` fills (what word timing warps over)."""
    return int(samples / SAMPLE_RATE * MEL_FRAMES_PER_SECOND)


@dataclass(frozen=True)
class Window:
    """Speech regions decoded as one window (seconds on the film's timeline).

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
        """Index of the region that window time ``t`` falls in (or, between regions, the nearer one)."""
        if self.glued:
            ends = np.cumsum([e - s for s, e in self.regions]).tolist()
            return min(bisect.bisect_right(ends, t), len(self.regions) - 1)
        at = self.regions[0][0] + t
        return min(range(len(self.regions)),
                   key=lambda i: 0.0 if self.regions[i][0] <= at <= self.regions[i][1]
                   else min(abs(at - self.regions[i][0]), abs(at - self.regions[i][1])))

    def film_time(self, t: float, region: int) -> float:
        """Window time ``t`` on the film's timeline, kept inside ``region``.

        Voice activity says where speech is: a word timed into a pause is moved to its edge.
        """
        start, end = self.regions[region]
        before = sum(e - s for s, e in self.regions[:region]) if self.glued else start - self.regions[0][0]
        return round(min(max(start + t - before, start), end), 3)

    def place(self, words: Iterable[Word]) -> list[Word]:
        """Words timed in window time, on the film's timeline, each inside its region.

        Ordered by region (a word keeps its place among the words of its region).
        """
        placed = [(self.region_at((w.start + w.end) / 2), w) for w in words]
        placed.sort(key=lambda item: item[0])
        return [self._moved(w, region) for region, w in placed]

    def inside(self, word: Word) -> Word:
        """A word already on the film's timeline, moved inside the region it lies in (or is nearest to).

        For a backend that decodes the windows itself: an unglued window's time is film
        time less its first region's start.
        """
        origin = self.regions[0][0]
        region = self.region_at((word.start + word.end) / 2 - origin)
        return self._moved(Word(word.start - origin, word.end - origin, word.text, word.probability), region)

    def _moved(self, w: Word, region: int) -> Word:
        return Word(self.film_time(w.start, region), self.film_time(w.end, region), w.text, w.probability)


@dataclass(frozen=True)
class Decoded:
    """What decoding one window gave: its words (window time); whether the decoder ran
    into the token limit; the error, when decoding it raised."""

    words: tuple[Word, ...] = ()
    at_limit: bool = False
    failed: str = ""

    @property
    def text(self) -> str:
        return "".join(w.text for w in self.words)


def plan_windows(regions: Regions, window: float = WINDOW, glued: bool = False) -> list[Window]:
    """Greedy packing of speech regions into windows; long regions are cut at ``window``.

    Packing (rather than one window per region) is what makes batching pay: the encoder
    costs the same for 3 s of speech as for 30 s.
    """
    pieces: list[tuple[float, float]] = []
    for start, end in regions:
        while end - start > window:
            pieces.append((start, start + window))
            start += window
        if end - start > 0.02:
            pieces.append((start, end))
    windows, current = [], []
    for piece in pieces:
        if current and Window(tuple(current + [piece]), glued).duration > window:
            windows.append(Window(tuple(current), glued))
            current = []
        current.append(piece)
    if current:
        windows.append(Window(tuple(current), glued))
    return windows


def clip_windows(clips: Sequence[np.ndarray]) -> list[tuple[int, Window]]:
    """Each clip's windows (in clip time), tagged with the clip's index, for decoding clips in batches."""
    return [(i, w) for i, clip in enumerate(clips) for w in plan_windows([(0.0, len(clip) / SAMPLE_RATE)])]


def batches(items: Sequence, size: int) -> Iterable[Sequence]:
    step = max(1, size)
    for first in range(0, len(items), step):
        yield items[first:first + step]


def in_batches(items: Sequence[T], size: int, decode: Callable[[Sequence[T], Any], list[R]], *,
               prepare: Callable[[Sequence[T]], Any] | None = None,
               out_of_memory: Callable[[Exception], bool] = lambda exc: False,
               failed: Callable[[T, Exception], R] | None = None,
               done: Callable[[Sequence[T]], None] = lambda batch: None) -> tuple[list[R], int]:
    """``decode(batch, prepare(batch))`` over ``items`` in batches of ``size``, outputs in order.

    A batch that runs out of device memory (``out_of_memory`` says which errors mean
    that) is halved and tried again, with a warning, and the rest goes on at the size
    that fitted: a long film finishes on a smaller GPU instead of failing at minute 80.
    A batch that fails otherwise is decoded item by item, and an item that still fails
    gives ``failed(item, error)`` (without ``failed``, the error is raised): one bad
    window must not lose the film. ``prepare`` (the host's share: the next batch's
    samples) runs one batch ahead in a worker thread while ``decode`` waits on the
    device. ``done`` follows each batch. Returns the outputs and the batch size that fitted.
    """
    results: list[R] = []
    first = 0
    ahead = ThreadPoolExecutor(max_workers=1) if prepare is not None else None
    pending: tuple[tuple[int, int], Future] | None = None
    try:
        while first < len(items):
            batch = items[first:first + size]
            if pending is not None and pending[0] == (first, len(batch)):
                prepared = pending[1].result()
            else:  # the first batch, or one cut anew after running out of memory
                prepared = prepare(batch) if prepare is not None else None
            after = first + len(batch)
            pending = None
            if ahead is not None and after < len(items):
                following = items[after:after + size]
                pending = ((after, len(following)), ahead.submit(prepare, following))
            try:
                found = decode(batch, prepared)
            except Exception as exc:  # noqa: BLE001 - out of memory halves the batch; the rest, per item
                if len(batch) > 1 and out_of_memory(exc):
                    size = len(batch) // 2
                    log.warning("out of device memory decoding %d windows at once; going on %d at a time",
                                len(batch), size)
                    continue
                if failed is None:
                    raise
                found = [_alone(item, decode, prepare, failed) for item in batch]
            results += found
            first = after
            done(batch)
    finally:
        if ahead is not None:
            ahead.shutdown(wait=True, cancel_futures=True)
    return results, size


def _alone(item: T, decode: Callable[[Sequence[T], Any], list[R]], prepare: Callable[[Sequence[T]], Any] | None,
           failed: Callable[[T, Exception], R]) -> R:
    try:
        return decode([item], prepare([item]) if prepare is not None else None)[0]
    except Exception as exc:  # noqa: BLE001 - any engine error: the caller accounts for it
        return failed(item, exc)


def failed_window(where: Callable[[Any], Window]) -> Callable[[Any, Exception], "Decoded"]:
    """What a window whose decoding fails gives: no words, and why (logged as a warning).
    Its speech is then accounted for as untranscribed, not dropped in silence."""
    def give_up(item: Any, exc: Exception) -> Decoded:
        window, reason = where(item), f"{type(exc).__name__}: {exc}"
        log.warning("decoding %.1f-%.1f s failed (%s)", window.regions[0][0], window.regions[-1][1], reason)
        return Decoded(failed=reason)

    return give_up


class BatchedBackend:
    """What the batched backends share: a chunk's windows, decoded in batches of ``batch_size``.

    A subclass decodes windows with ``_decode_windows`` and clips with ``translate_clips``.
    """

    batch_size: int
    options: DecodeOptions

    def transcribe(self, audio: np.ndarray, lang: str, chunk: Chunk, progress: Progress | None = None,
                   prompt: str | None = None, options: DecodeOptions | None = None) -> tuple[Word, ...]:
        """Batched transcription of the chunk's speech regions."""
        windows = plan_windows(chunk.decode_regions())
        found = self._decode_windows(audio, windows, lang, progress, prompt, options or self.options)
        return tuple(w for window, decoded in zip(windows, found) for w in window.place(decoded.words))

    def _decode_windows(self, audio: np.ndarray, windows: Sequence[Window], lang: str, progress: Progress | None,
                        prompt: str | None, options: DecodeOptions) -> list[Decoded]:
        """Each window's words, timed in window time; ``progress`` after each batch."""
        raise NotImplementedError

    def translate_clips(self, clips: Sequence[np.ndarray], lang: str, again: bool = False) -> list[str]:
        raise NotImplementedError
