"""Voice activity in one pass, and in pieces side by side (what a GPU run uses), read a
stretch at a time: the same probabilities and regions as faster-whisper's own functions."""

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


@pytest.fixture(scope="module")
def long_audio(sample_audio: np.ndarray) -> np.ndarray:
    """Six minutes: more than one of faster-whisper's batches of frames, and many of ours."""
    audio = np.tile(sample_audio, 17)
    assert len(audio) // vad.FRAME > max(10_000, vad.BATCH_FRAMES)
    return audio


def test_one_pass_gives_faster_whispers_probabilities(long_audio: np.ndarray) -> None:
    from faster_whisper.vad import get_vad_model

    model = get_vad_model()
    expected = model(np.pad(long_audio, (0, 512 - len(long_audio) % 512))).reshape(-1)
    assert np.array_equal(vad._one_pass(model.session, long_audio), expected)


def test_one_pass_gives_faster_whispers_regions(long_audio: np.ndarray) -> None:
    from faster_whisper.vad import VadOptions, get_speech_timestamps

    settings = replace(load_config().vad, pad_ms=200)
    options = VadOptions(threshold=settings.threshold, min_speech_duration_ms=settings.min_speech_ms,
                         min_silence_duration_ms=settings.min_silence_ms, speech_pad_ms=settings.pad_ms)
    expected = [(s["start"] / 16000, s["end"] / 16000) for s in get_speech_timestamps(long_audio, options)]
    assert len(expected) > 10
    assert vad.speech_regions(long_audio, settings) == expected


@pytest.mark.parametrize("seed", range(40))
def test_the_rules_are_faster_whispers_on_any_probabilities(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Random runs of speech and quiet, random settings: the restated rules give what
    faster-whisper's function gives when its model hands out the same probabilities."""
    import faster_whisper.vad as silero

    rng = np.random.default_rng(seed)
    runs = [np.full(rng.integers(1, 60), rng.choice([0.02, 0.2, 0.42, 0.6, 0.97])) for _ in range(rng.integers(0, 40))]
    probabilities = np.concatenate(runs + [np.zeros(1)]).astype(np.float32)
    length = (len(probabilities) - 1) * 512 + int(rng.integers(0, 512))
    settings = replace(load_config().vad, threshold=float(rng.choice([0.3, 0.5, 0.1])),
                       min_speech_ms=int(rng.integers(0, 600)), min_silence_ms=int(rng.integers(0, 900)),
                       pad_ms=int(rng.integers(0, 500)))
    monkeypatch.setattr(silero, "get_vad_model", lambda: (lambda padded: probabilities[:len(padded) // 512]))
    options = silero.VadOptions(threshold=settings.threshold, min_speech_duration_ms=settings.min_speech_ms,
                                min_silence_duration_ms=settings.min_silence_ms, speech_pad_ms=settings.pad_ms)
    expected = [(s["start"], s["end"]) for s in silero.get_speech_timestamps(np.zeros(length, np.float32), options)]
    assert vad._regions(probabilities, length, settings) == expected


def test_a_films_samples_read_from_disk_give_the_same_regions(sample_zh: Path, sample_audio: np.ndarray) -> None:
    from subpipe.media import probe, read_audio

    info = probe(sample_zh)
    samples = read_audio(info, info.audio_streams[0]).samples
    settings = load_config().vad
    assert vad.speech_regions(samples, settings) == vad.speech_regions(samples[:], settings)
    assert vad.speech_regions(samples, settings, threads=2) == vad.speech_regions(samples[:], settings, threads=2)


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
