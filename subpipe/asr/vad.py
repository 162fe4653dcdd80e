"""Voice activity: where in the audio someone speaks.

Uses the Silero VAD model that faster-whisper's wheel ships in ONNX form, so it works
offline. Regions drive the hallucination guard (no cue over music or silence) and the
windows Whisper decodes.

One pass over the audio, as faster-whisper does it, is the default. With ``threads`` the
probabilities come from pieces run side by side (an hour of audio takes about 8 s on one
core: the whole of a GPU's budget for that hour), then faster-whisper's own rules turn
them into regions.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from ..config import VadSettings
from ..errors import ModelError
from ..media import SAMPLE_RATE

FRAME, CONTEXT = 512, 64  # Silero v6 reads 512 new samples a frame, after the previous 64
# Each piece starts this many frames (5 s) early with a fresh state, and drops them: the
# LSTM's state has mostly settled by then, so regions move by a frame or so at most.
WARM_UP_FRAMES = 160
PIECES_PER_THREAD = 2  # pieces finish unevenly; more of them keep every thread busy

_RULES = threading.Lock()


def speech_regions(audio: np.ndarray, settings: VadSettings, threads: int = 1) -> list[tuple[float, float]]:
    """(start, end) seconds of speech in 16 kHz mono ``audio``, in order, not overlapping.

    ``threads`` above 1: probabilities from pieces in parallel (see the module's note).
    """
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
    audio = audio.astype(np.float32)
    if threads > 1:
        stamps = _stamps_of(audio, options, _probabilities(audio, threads))
    else:
        stamps = get_speech_timestamps(audio, options)
    return [(s["start"] / SAMPLE_RATE, s["end"] / SAMPLE_RATE) for s in stamps]


def usable_cpus() -> int:
    """The CPUs this process may run on (a container may report the host's)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return os.cpu_count() or 1


def _probabilities(audio: np.ndarray, threads: int) -> np.ndarray:
    """Silero's speech probability of every frame, from pieces run on ``threads`` threads."""
    from faster_whisper.vad import get_vad_model

    session = get_vad_model().session  # one thread per run: runs on one session may overlap
    # As faster-whisper pads: to a whole frame, a whole extra one when it already is.
    n_frames = len(audio) // FRAME + 1
    bounds = np.linspace(0, n_frames, threads * PIECES_PER_THREAD + 1).astype(int)

    def piece(lo: int, hi: int) -> np.ndarray:
        first = max(0, lo - WARM_UP_FRAMES)
        state = np.zeros((1, 1, 128), dtype=np.float32)
        probs, _, _ = session.run(None, {"input": _rows(audio, first, hi), "h": state, "c": state})
        return probs.reshape(-1)[lo - first:]

    with ThreadPoolExecutor(threads) as pool:
        parts = list(pool.map(lambda span: piece(*span), [(a, b) for a, b in zip(bounds, bounds[1:]) if b > a]))
    return np.concatenate(parts)


def _rows(audio: np.ndarray, first: int, end: int) -> np.ndarray:
    """Frames ``first`` to ``end`` as Silero takes them: the previous 64 samples, then 512."""
    start = first * FRAME - CONTEXT
    span = np.zeros((end - first) * FRAME + CONTEXT, dtype=np.float32)
    lo, hi = max(0, start), min(len(audio), end * FRAME)
    if hi > lo:
        span[lo - start:hi - start] = audio[lo:hi]
    return np.ascontiguousarray(np.lib.stride_tricks.sliding_window_view(span, FRAME + CONTEXT)[::FRAME])


def _stamps_of(audio: np.ndarray, options, probabilities: np.ndarray) -> list[dict]:
    """faster-whisper's rules (``get_speech_timestamps``) on probabilities found here.

    Its function asks its module for the model; for this one call the module hands out
    the probabilities instead, so the rules stay faster-whisper's, not a copy of them.
    """
    import faster_whisper.vad as silero

    with _RULES:
        original = silero.get_vad_model
        silero.get_vad_model = lambda: (lambda padded: probabilities)
        try:
            return silero.get_speech_timestamps(audio, options)
        finally:
            silero.get_vad_model = original
