"""A film's samples for tests, through the product's own reading (media.read_audio)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from subpipe.media import Samples, probe, read_audio


def extract_samples(path: Path, stream: int) -> Samples:
    """Audio stream ``stream`` (counting audio streams from 0) as the product keeps it: on disk."""
    info = probe(path)
    return read_audio(info, info.audio_streams[stream]).samples


def extract_audio(path: Path, stream: int) -> np.ndarray:
    """Audio stream ``stream`` (counting audio streams from 0) as 16 kHz mono float32, all of it."""
    return extract_samples(path, stream)[:]
