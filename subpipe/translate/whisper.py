"""X->English from each sentence's own audio: Whisper's translate task as the offline
stand-in for MarianMT.

It follows engine.SpanTranslator: the track code hands it whole sentences with
their times, and it listens to those stretches of the film again in translate mode,
in batches where the backend batches.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ..asr.interface import Transcriber
from ..config import Config
from ..errors import ModelError
from ..media import SAMPLE_RATE
from .engine import EngineRow, Hearing

ENGLISH = "en"
PAD = 0.2  # seconds of context around a sentence, so its first word isn't clipped


def serves(pair: str, config: Config, hearing: Hearing) -> None:
    """Routing's question: X->English, when the film can be heard again and the config
    allows the fallback; raises ModelError otherwise."""
    if not (hearing.can_listen and config.translate.whisper_fallback and pair.endswith(f"-{ENGLISH}")):
        raise ModelError(f"Whisper's speech translation can't make {pair}")


def inventory(config: Config) -> list[EngineRow]:
    state = "on" if config.translate.whisper_fallback else "off ([translate] whisper_fallback)"
    return [EngineRow("whisper", "ur-en, zh-en (from the audio)", f"the Whisper {config.asr.model} weights above",
                      state, 0, "MIT")]


def make(config: Config, hearing: Hearing) -> "SpeechTranslation":
    return SpeechTranslation(hearing.engine, hearing.audio, config.asr.model)


def notice(pair: str, engine: "SpeechTranslation") -> str:
    return (f"no MarianMT model for {pair}: the English track was made by Whisper's speech "
            f"translation ({engine.engine_for(*pair.split('-'))}), not by MarianMT")


class SpeechTranslation:
    """Whisper's translate task over the sentences' stretches of ``audio``."""

    def __init__(self, engine: Transcriber, audio: np.ndarray, model_name: str):
        self.engine, self.audio, self.model_name = engine, audio, model_name

    def engine_for(self, src: str, tgt: str) -> str:
        return f"whisper-translate:{self.model_name}"

    def translate_spans(self, spans: Sequence, src: str, tgt: str) -> list[str]:
        return self._listen(spans, src, tgt, again=False)

    def retranslate_spans(self, spans: Sequence, src: str, tgt: str) -> list[str]:
        """A second try for sentences whose English looped or held another script."""
        return self._listen(spans, src, tgt, again=True)

    def _listen(self, spans: Sequence, src: str, tgt: str, again: bool) -> list[str]:
        if tgt != ENGLISH:
            raise ModelError(f"Whisper translates speech into English only, not into {tgt}")
        clips = [self.audio[max(0, int((s.start - PAD) * SAMPLE_RATE)):min(len(self.audio), int((s.end + PAD) * SAMPLE_RATE))]
                 for s in spans]
        heard = [c for c in clips if len(c)]
        texts = iter(self.engine.translate_clips(heard, src, again) if heard else [])
        return [next(texts) if len(c) else "" for c in clips]

    def translate(self, texts: Sequence[str], src: str, tgt: str) -> list[str]:
        raise ModelError("Whisper's speech translation needs the audio: use it from `subpipe run`")
