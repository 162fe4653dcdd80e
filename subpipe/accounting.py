"""Speech accounting: every second of detected speech ends up under a word, or is flagged.

After a chunk is transcribed, the speech that no kept word covers (kept: what survives
the guards against invented text) is measured. Each stretch longer than
``MIN_UNTRANSCRIBED`` sends its speech region through a ladder of retries; the guards
run again after every rung, so a retry can never put text over music or silence.
A rung's words replace the region's only when they cover more of its speech. What
still has no text is returned as untranscribed, with its times, for the editor.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import Callable, Sequence

import numpy as np

from .asr import Chunk, DecodeOptions, Transcriber
from .asr.chunks import widen
from .asr.vad import speech_regions
from .config import VadSettings
from .findings import UNTRANSCRIBED, Finding
from .media import SAMPLE_RATE
from .rules import timestamp
from .timeline import MIN_UNTRANSCRIBED, uncovered
from .types import Word

log = logging.getLogger(__name__)

# A region is split again at pauses this short for the ladder's split rung.
SPLIT_SILENCE_MS = 100

Regions = Sequence[tuple[float, float]]
Keep = Callable[[Sequence[Word]], list[Word]]


@dataclass(frozen=True)
class Retry:
    """How one rung of the ladder decodes a region again: ``beam`` (None: the configured
    one, at least ``REPAIR_BEAM``), each stretch between inner pauses as a window of its
    own (``split``), the text before the region as the decoder's prompt (``context``)."""

    name: str
    beam: int | None = None
    split: bool = False
    context: bool = False


# The rungs by name ([asr] retry_ladder orders them): a rung runs only while speech is
# still uncovered. Greedy decoding is the other way out of a beam that collapsed a long
# Urdu passage to a few words (ur_dev_long at beam 5: 32.6-46.3 s, 197.3-213.2 s).
RUNGS = {rung.name: rung for rung in (Retry("greedy", beam=1), Retry("alone"), Retry("split", split=True),
                                      Retry("context", context=True))}


def account(engine: Transcriber, audio: np.ndarray, lang: str, chunk: Chunk, words: Sequence[Word],
            speech: Regions, keep: Keep, *, options: DecodeOptions, pad: float, vad: VadSettings,
            prompt: str | None = None, ladder: Sequence[str] = tuple(RUNGS)) -> tuple[tuple[Word, ...],
                                                                                         tuple[Finding, ...]]:
    """``words`` of ``chunk`` with lost speech decoded again, and what stays untranscribed.

    ``speech``: voice activity inside the chunk (unpadded); ``keep``: the guards against
    invented text; ``pad``: the decoding pad around a region.
    """
    words = list(words)
    for region in _regions_with_gaps(speech, keep(words)):
        span = widen([region], pad, chunk.start, chunk.end)[0]
        best = _missing(region, keep(words))
        if best < MIN_UNTRANSCRIBED:  # an earlier region's retry gave it its words
            continue
        for rung in map(RUNGS.__getitem__, ladder):
            found = _decode(engine, audio, lang, span, rung, options, vad, prompt, _text_before(words, span[0]))
            trial = [w for w in words if not _inside(w, span)] + [w for w in found if _inside(w, span)]
            trial.sort(key=lambda w: w.start)
            missing = _missing(region, keep(trial))
            log.info("%.1f-%.1f s: %.1f s of speech had no words; %s retry leaves %.1f s", region[0], region[1],
                     best, rung.name, missing)
            if missing < best:
                words, best = trial, missing
            if best < MIN_UNTRANSCRIBED:
                break
    lost = tuple(untranscribed(round(a, 3), round(b, 3), lang) for a, b in uncovered(speech, _spans(keep(words))))
    return tuple(words), lost


def untranscribed(start: float, end: float, lang: str) -> Finding:
    """Speech that no word covers after every retry, ``start`` to ``end`` film seconds."""
    return Finding(UNTRANSCRIBED, f"{timestamp(start)} to {timestamp(end)}: {end - start:.1f} s of speech has no "
                   "subtitle (every retry failed): subtitle it by hand", track=lang, start=start, end=end)


def _regions_with_gaps(speech: Regions, words: Sequence[Word]) -> list[tuple[float, float]]:
    gaps = uncovered(speech, _spans(words))
    return [r for r in speech if any(r[0] <= a and b <= r[1] for a, b in gaps)]


def _missing(region: tuple[float, float], words: Sequence[Word]) -> float:
    """Seconds of ``region`` in stretches no word covers (each at least the threshold)."""
    return sum(b - a for a, b in uncovered([region], _spans(words)))


def _spans(words: Sequence[Word]) -> list[tuple[float, float]]:
    return [(w.start, w.end) for w in words]


def _inside(word: Word, span: tuple[float, float]) -> bool:
    return span[0] <= (word.start + word.end) / 2 <= span[1]


def _text_before(words: Sequence[Word], at: float, chars: int = 120) -> str:
    """The end of the text before ``at``: what the speaker was saying."""
    return "".join(w.text for w in words if w.end <= at)[-chars:].strip()


def transcribe_safely(engine: Transcriber, audio: np.ndarray, lang: str, chunk: Chunk, progress=None,  # noqa: ANN001
                      prompt: str | None = None, options: DecodeOptions | None = None) -> tuple[Word, ...]:
    """``engine.transcribe``; a backend that fails on the chunk gives no words, and says why.

    Its speech is then accounted for (retried, or flagged untranscribed) instead of
    ending the run: one bad window must not lose the film.
    """
    try:
        return engine.transcribe(audio, lang, chunk, progress, prompt=prompt, options=options)
    except Exception as exc:  # noqa: BLE001 - any engine error; it is reported, not hidden
        log.warning("decoding %.1f-%.1f s failed (%s: %s)", chunk.start, chunk.end, type(exc).__name__, exc)
        return ()


def _decode(engine: Transcriber, audio: np.ndarray, lang: str, span: tuple[float, float], rung: Retry,
            options: DecodeOptions, vad: VadSettings, prompt: str | None, before: str) -> list[Word]:
    """The words one rung finds in ``span``."""
    wider = options.again(rung.beam)
    primer = (before or prompt) if rung.context else prompt
    if not rung.split:
        return list(transcribe_safely(engine, audio, lang, Chunk(span[0], span[1], (span,)), prompt=primer,
                                      options=wider))
    first, last = round(span[0] * SAMPLE_RATE), round(span[1] * SAMPLE_RATE)
    finer = replace(vad, min_silence_ms=SPLIT_SILENCE_MS, pad_ms=0)
    pieces = [(span[0] + a, span[0] + b) for a, b in speech_regions(audio[first:last], finer)]
    found: list[Word] = []
    for a, b in pieces:
        found += transcribe_safely(engine, audio, lang, Chunk(a, b, ((a, b),)), prompt=primer, options=wider)
    return found
