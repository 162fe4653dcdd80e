"""What the pipeline asks of a speech backend, and how it asks.

The pipeline is handed a ``Transcriber``; tests hand in tiny real models. Every backend
decodes the same windows of speech (``windows.py``) and returns words on the film's
timeline, so their outputs can be compared word for word.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable, Protocol, Sequence

import numpy as np

from ..config import AsrSettings
from ..types import Word
from .chunks import Chunk
from .loops import REPAIR_BEAM

Progress = Callable[[float], None]  # called with the film time (seconds) decoded so far


@dataclass(frozen=True)
class DecodeOptions:
    """How a backend decodes: what of ``[asr]`` reaches the decoder."""

    beam_size: int
    temperatures: tuple[float, ...]
    seed: int
    condition_on_previous_text: bool = False
    # A window that loops is decoded again with a wider beam (loops.py); off when only
    # telling whether a decoding loops, as language detection does.
    repair: bool = True

    @classmethod
    def of(cls, asr: AsrSettings) -> "DecodeOptions":
        return cls(asr.beam_size, tuple(asr.temperatures), asr.seed, asr.condition_on_previous_text)

    def again(self, beam: int | None = None) -> "DecodeOptions":
        """The options of a second try (a window that looped, speech left without words):
        ``beam`` when given, else a beam of at least ``loops.REPAIR_BEAM``."""
        return replace(self, beam_size=max(self.beam_size, REPAIR_BEAM) if beam is None else beam)


class Transcriber(Protocol):
    name: str
    # What makes its output what it is (backend, weights, options): the stage cache keys on it.
    identity: dict

    def detect_language(self, audio: np.ndarray, candidates: Sequence[str]) -> tuple[str, dict[str, float]]:
        """The most likely of ``candidates`` and the probability of each."""

    def transcribe(self, audio: np.ndarray, lang: str, chunk: Chunk, progress: Progress | None = None,
                   prompt: str | None = None, options: DecodeOptions | None = None) -> tuple[Word, ...]:
        """Words (with their timing, in film seconds) spoken in ``lang`` in ``chunk`` of ``audio``.

        ``audio`` is the whole film's 16 kHz mono track; ``prompt`` primes the decoder
        (glossary terms, so names come out spelled right, or the text before a retried
        stretch); ``options`` replace the backend's own for this call (a retry's beam).
        A window that loops or runs into the token limit is decoded again with a wider
        beam; one whose decoding fails gives no words (its speech is then accounted for).
        """

    def translate_clips(self, clips: Sequence[np.ndarray], lang: str, again: bool = False) -> list[str]:
        """English text of each clip spoken in ``lang``, by Whisper's translate task.

        ``again``: a second try for clips whose English looped or held another script
        (a beam of five that may not repeat itself, where the backend can).
        """
