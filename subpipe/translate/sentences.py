"""A track's cues read as sentences: the unit a model translates."""

from __future__ import annotations

from dataclasses import dataclass

from ..config import TranslateSettings
from ..script import FULL_STOPS, visible
from ..types import Cue, Track

_CLOSERS = "\"'”’」』)]）》"


@dataclass(frozen=True)
class Sentence:
    """Cues ``first`` to ``last`` (inclusive) read as one sentence."""

    first: int
    last: int
    text: str
    start: float
    end: float

    @property
    def cues(self) -> range:
        return range(self.first, self.last + 1)


def cue_text(cue: Cue, lang: str) -> str:
    """A cue's text on one line, without direction marks."""
    sep = "" if lang == "zh" else " "
    return sep.join(part for part in (visible(line).strip() for line in cue.lines) if part)


def sentences(track: Track, options: TranslateSettings = TranslateSettings()) -> list[Sentence]:
    """Merge cues until sentence-final punctuation (or a long pause, or the cue limit)."""
    out: list[Sentence] = []
    first = 0
    for i, cue in enumerate(track.cues):
        is_last = i == len(track.cues) - 1
        gap = track.cues[i + 1].start - cue.end if not is_last else 0.0
        full = i - first + 1 >= max(1, options.max_cues_per_sentence)
        if is_last or full or gap > options.max_sentence_gap or _ends_sentence(cue_text(cue, track.lang)):
            out.append(_sentence(track, first, i))
            first = i + 1
    return out


def _ends_sentence(text: str) -> bool:
    text = text.rstrip().rstrip(_CLOSERS)
    # A trailing ellipsis is the subtitle sign for "the sentence goes on".
    return bool(text) and text[-1] in FULL_STOPS and not text.endswith("...")


def _sentence(track: Track, first: int, last: int) -> Sentence:
    sep = "" if track.lang == "zh" else " "
    cues = track.cues[first:last + 1]
    text = sep.join(t for t in (cue_text(c, track.lang) for c in cues) if t)
    return Sentence(first, last, text, cues[0].start, cues[-1].end)
