"""Voice activity: where in the audio someone speaks.

Uses the Silero VAD model that faster-whisper's wheel ships in ONNX form, so it works
offline. Regions drive the hallucination guard (no cue over music or silence) and the
windows Whisper decodes.
"""

from __future__ import annotations

import numpy as np

from ..config import VadSettings
from ..errors import ModelError
from ..media import SAMPLE_RATE


def speech_regions(audio: np.ndarray, settings: VadSettings) -> list[tuple[float, float]]:
    """(start, end) seconds of speech in 16 kHz mono ``audio``, in order, not overlapping."""
    try:
        from faster_whisper.vad import VadOptions, get_speech_timestamps
    except ImportError:
        raise ModelError("voice activity detection needs faster-whisper: pip install faster-whisper==1.2.1") from None
    options = VadOptions(
        threshold=settings.threshold,
        min_speech_duration_ms=settings.min_speech_ms,
        min_silence_duration_ms=settings.min_silence_ms,
        speech_pad_ms=settings.pad_ms,
    )
    stamps = get_speech_timestamps(audio.astype(np.float32), options)
    return [(s["start"] / SAMPLE_RATE, s["end"] / SAMPLE_RATE) for s in stamps]
