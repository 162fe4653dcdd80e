"""X->English from each sentence's own audio: Whisper's translate task as the offline
stand-in for MarianMT.

It follows translate.SpanTranslator: the track code hands it whole sentences with
their times, and it listens to those stretches of the film again in translate mode,
in batches where the backend batches.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ..errors import ModelError
from ..media import SAMPLE_RATE
from .interface import Transcriber

PAD = 0.2  # seconds of context around a sentence, so its first word isn't clipped


class SpeechTranslation:
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
        if tgt != "en":
            raise ModelError(f"Whisper translates speech into English only, not into {tgt}")
        clips = [self.audio[max(0, int((s.start - PAD) * SAMPLE_RATE)):min(len(self.audio), int((s.end + PAD) * SAMPLE_RATE))]
                 for s in spans]
        heard = [c for c in clips if len(c)]
        texts = iter(self.engine.translate_clips(heard, src, again) if heard else [])
        return [next(texts) if len(c) else "" for c in clips]

    def translate(self, texts: Sequence[str], src: str, tgt: str) -> list[str]:
        raise ModelError("Whisper's speech translation needs the audio: use it from `subpipe run`")
