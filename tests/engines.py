"""A scripted speech backend for the tests that inject faults into transcription.

It follows the ``Transcriber`` protocol and "hears" one word every half second inside
the speech regions of each chunk it is given, so what it covers is known exactly. A
fault can be placed at a time: the first pass (no options given: the backend's own)
over a region holding that time returns nothing there, loops, or raises; ``stubborn``
makes every retry fail the same way. Real models can't be made to fail on demand: everything else
in these tests (ffmpeg, voice activity, shaping, writing, the manifest) is the real code.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from subpipe.asr import Chunk, DecodeOptions
from subpipe.types import Word

WORDS = {"zh": ["我们", "今天", "讨论", "经济", "发展", "问题"], "ur": ["ہم", "آج", "بات", "کریں", "گے"],
         "en": ["we", "talk", "about", "trade", "today"]}


@dataclass
class ScriptedEngine:
    lang: str = "zh"
    fault: str | None = None  # None | "nothing" | "loop" | "raise"
    at: float = 0.0
    stubborn: bool = False
    scores: dict[str, float] = field(default_factory=dict)
    calls: list[tuple[float, float, int]] = field(default_factory=list)  # (start, end, beam; 0: first pass)
    name: str = "scripted"

    @property
    def identity(self) -> dict:
        return {"backend": self.name, "fault": self.fault, "at": self.at, "stubborn": self.stubborn}

    def detect_language(self, audio: np.ndarray, candidates: Sequence[str]) -> tuple[str, dict[str, float]]:
        scores = {lang: self.scores.get(lang, 0.99 if lang == self.lang else 0.0) for lang in candidates}
        return max(candidates, key=lambda lang: scores[lang]), scores

    def transcribe(self, audio: np.ndarray, lang: str, chunk: Chunk, progress=None, prompt: str | None = None,
                   options: DecodeOptions | None = None) -> tuple[Word, ...]:
        first = options is None
        self.calls.append((chunk.start, chunk.end, 0 if first else options.beam_size))
        words: list[Word] = []
        vocabulary = WORDS[lang]
        for start, end in chunk.decode_regions():
            faulty = self.fault and start <= self.at <= end and (self.stubborn or first)
            if faulty and self.fault == "raise":
                raise RuntimeError("the decoder fell over")
            if faulty and self.fault == "nothing":
                continue
            t = start
            while t + 0.4 <= end:
                # Each half second its own word (numbered by time, so no run of words
                # ever repeats); a loop is one word of four letters, over and over.
                k = round(t * 2)
                text = vocabulary[0] * 2 if faulty else f"{vocabulary[k % len(vocabulary)]}{k}"
                words.append(Word(round(t, 3), round(t + 0.4, 3), text if lang == "zh" else f" {text}"))
                t += 0.5
        if progress is not None:
            progress(chunk.end)
        return tuple(words)

    def translate_clips(self, clips: Sequence[np.ndarray], lang: str, again: bool = False) -> list[str]:
        return ["We talk about trade." for _ in clips]
