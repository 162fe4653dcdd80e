"""Voice activity in one pass, and in pieces side by side (what a GPU run uses)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from subpipe.asr import vad
from subpipe.config import load_config
from subpipe.listen import speech_of


@pytest.fixture(scope="module")
def sample_audio(sample_zh: Path) -> np.ndarray:
    from audio import extract_audio

    return extract_audio(sample_zh, 0)


def test_one_piece_gives_faster_whispers_probabilities(sample_audio: np.ndarray,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    from faster_whisper.vad import get_vad_model

    expected = get_vad_model()(np.pad(sample_audio, (0, 512 - len(sample_audio) % 512))).reshape(-1)
    monkeypatch.setattr(vad, "PIECES_PER_THREAD", 1)
    assert np.array_equal(vad._probabilities(sample_audio, 1), expected)


def test_pieces_side_by_side_find_the_same_regions_within_a_frame(sample_audio: np.ndarray) -> None:
    settings = load_config().vad
    one_pass = vad.speech_regions(sample_audio, settings)
    pieces = vad.speech_regions(sample_audio, settings, threads=4)
    assert one_pass and len(pieces) == len(one_pass)
    for (a, b), (c, d) in zip(one_pass, pieces):
        assert abs(a - c) <= 0.033 and abs(b - d) <= 0.033


def test_threads_follow_the_device_unless_set(sample_audio: np.ndarray, monkeypatch: pytest.MonkeyPatch) -> None:
    seen = []
    monkeypatch.setattr("subpipe.listen.speech_regions", lambda audio, settings, threads: seen.append(threads) or [])
    monkeypatch.setattr("subpipe.listen.usable_cpus", lambda: 16)
    config = load_config()
    speech_of(sample_audio, config)
    speech_of(sample_audio, replace(config, asr=replace(config.asr, device="cuda:0")))
    speech_of(sample_audio, replace(config, vad=replace(config.vad, threads=3)))
    assert seen == [1, 16, 3]
