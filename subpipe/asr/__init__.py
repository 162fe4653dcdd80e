"""Speech recognition: voice activity, windows of speech, three Whisper backends on one
set of weights, word timing, and the weights themselves (found, verified, converted).

The face is small: the pipeline plans chunks (``chunks.plan_chunks``), loads a backend
(``backends.make_transcriber``) and gets words on the film's timeline back. Heavy
libraries (torch, whisper, transformers, CTranslate2) load only inside the backends.
"""

from .chunks import Chunk, plan_chunks
from .interface import DecodeOptions, Progress, Transcriber

__all__ = ["Chunk", "DecodeOptions", "Progress", "Transcriber", "plan_chunks"]
