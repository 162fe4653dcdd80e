"""Voice activity: where in the audio someone speaks.

Uses the Silero VAD model that faster-whisper's wheel ships in ONNX form, so it works
offline. Regions drive the hallucination guard (no cue over music or silence) and the
windows Whisper decodes.

The audio is read a batch of frames at a time, whatever the film's length: one pass
carries the model's state from batch to batch as faster-whisper does (the same
probabilities). With ``threads`` the probabilities come from pieces run side
by side (an hour of audio takes about 8 s on one core: the whole of a GPU's budget for
that hour). faster-whisper's rules then turn the probabilities into regions; they are
restated in ``_regions`` because its own function pads a copy of the whole film first.
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from ..config import VadSettings
from ..errors import ModelError
from ..media import SAMPLE_RATE, Audible

FRAME, CONTEXT = 512, 64  # Silero v6 reads 512 new samples a frame, after the previous 64
# The one pass feeds the model this many frames (32 s) a call, carrying its state over:
# the probabilities are faster-whisper's to the bit (it takes 10,000 frames a call,
# whose buffers made a film's peak memory 70 MB higher than a one-minute clip's).
BATCH_FRAMES = 1_000
# Pieces side by side are at most this long (5.3 min), so memory stays bounded by the
# threads, not the film, while the warm-up they repeat stays under 2 % of the work.
PIECE_FRAMES = 10_000
# Each piece starts this many frames (5 s) early with a fresh state, and drops them: the
# LSTM's state has mostly settled by then, so regions move by a frame or so at most.
WARM_UP_FRAMES = 160
PIECES_PER_THREAD = 2  # pieces finish unevenly; more of them keep every thread busy


def speech_regions(audio: Audible, settings: VadSettings, threads: int = 1) -> list[tuple[float, float]]:
    """(start, end) seconds of speech in 16 kHz mono ``audio``, in order, not overlapping.

    ``threads`` above 1: probabilities from pieces in parallel (see the module's note).
    """
    try:
        from faster_whisper.vad import get_vad_model
    except ImportError:
        raise ModelError("voice activity detection needs faster-whisper: pip install faster-whisper==1.2.1") from None
    session = get_vad_model().session
    probabilities = _in_pieces(session, audio, threads) if threads > 1 else _one_pass(session, audio)
    return [(a / SAMPLE_RATE, b / SAMPLE_RATE) for a, b in _regions(probabilities, len(audio), settings)]


def _frames(audio: Audible) -> int:
    # As faster-whisper pads: to a whole frame, a whole extra one when it already is.
    return len(audio) // FRAME + 1


def _one_pass(session, audio: Audible) -> np.ndarray:  # noqa: ANN001 - an onnxruntime session
    """Silero's speech probability of every frame, the state carried through the film."""
    h = c = np.zeros((1, 1, 128), dtype=np.float32)
    parts = []
    total = _frames(audio)
    for first in range(0, total, BATCH_FRAMES):
        probs, h, c = session.run(None, {"input": _rows(audio, first, min(total, first + BATCH_FRAMES)),
                                         "h": h, "c": c})
        parts.append(probs.reshape(-1))
    return np.concatenate(parts)


def _in_pieces(session, audio: Audible, threads: int) -> np.ndarray:  # noqa: ANN001 - an onnxruntime session
    """Silero's speech probability of every frame, from pieces run on ``threads`` threads."""
    total = _frames(audio)
    count = max(threads * PIECES_PER_THREAD, math.ceil(total / PIECE_FRAMES))
    bounds = np.linspace(0, total, count + 1).astype(int)

    def piece(lo: int, hi: int) -> np.ndarray:
        first = max(0, lo - WARM_UP_FRAMES)
        state = np.zeros((1, 1, 128), dtype=np.float32)
        probs, _, _ = session.run(None, {"input": _rows(audio, first, hi), "h": state, "c": state})
        return probs.reshape(-1)[lo - first:]

    # One session for the run: runs on one session may overlap.
    with ThreadPoolExecutor(threads) as pool:
        parts = list(pool.map(lambda span: piece(*span), [(a, b) for a, b in zip(bounds, bounds[1:]) if b > a]))
    return np.concatenate(parts)


def _rows(audio: Audible, first: int, end: int) -> np.ndarray:
    """Frames ``first`` to ``end`` as Silero takes them: the previous 64 samples, then 512."""
    start = first * FRAME - CONTEXT
    span = np.zeros((end - first) * FRAME + CONTEXT, dtype=np.float32)
    lo, hi = max(0, start), min(len(audio), end * FRAME)
    if hi > lo:
        span[lo - start:hi - start] = audio[lo:hi]
    return np.ascontiguousarray(np.lib.stride_tricks.sliding_window_view(span, FRAME + CONTEXT)[::FRAME])


def _regions(probabilities: np.ndarray, length: int, settings: VadSettings) -> list[tuple[int, int]]:
    """Speech regions in samples, by faster-whisper's rules (``get_speech_timestamps`` with
    no longest region, as subpipe calls it), from the probability of every frame.

    Speech starts at a frame at or above the threshold and ends where the probability
    stays under a lower one for the shortest silence; regions shorter than the shortest
    speech are dropped; each is widened by the pad, or meets its neighbour half-way when
    the silence between them is shorter than two pads. tests/test_vad.py holds it equal
    to faster-whisper's function.
    """
    low = max(settings.threshold - 0.15, 0.01)
    shortest_speech = SAMPLE_RATE * settings.min_speech_ms / 1000
    shortest_silence = SAMPLE_RATE * settings.min_silence_ms / 1000
    pad = SAMPLE_RATE * settings.pad_ms / 1000
    found: list[list[int]] = []
    start: int | None = None
    quiet_since = 0  # where the current stretch under the low threshold began (0: none)
    for i, probability in enumerate(probabilities):
        at = FRAME * i
        if probability >= settings.threshold:
            quiet_since = 0
            if start is None:
                start = at
                continue
        if start is not None and probability < low:
            quiet_since = quiet_since or at
            if at - quiet_since < shortest_silence:
                continue
            if quiet_since - start > shortest_speech:
                found.append([start, quiet_since])
            start, quiet_since = None, 0
    if start is not None and length - start > shortest_speech:
        found.append([start, length])
    for i, region in enumerate(found):
        if i == 0:
            region[0] = int(max(0, region[0] - pad))
        if i == len(found) - 1:
            region[1] = int(min(length, region[1] + pad))
            continue
        following = found[i + 1]
        silence = following[0] - region[1]
        if silence < 2 * pad:
            region[1] += int(silence // 2)
            following[0] = int(max(0, following[0] - silence // 2))
        else:
            region[1] = int(min(length, region[1] + pad))
            following[0] = int(max(0, following[0] - pad))
    return [(a, b) for a, b in found]
