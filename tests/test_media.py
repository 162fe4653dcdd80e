"""Probing and extraction with real ffmpeg on real media."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from subpipe.errors import InputError
from audio import extract_audio, extract_samples
from subpipe.media import choose_stream, is_silent, probe


@pytest.mark.parametrize("name", ["tone.wav", "tone.mp3", "tone.mp4", "tone.mkv", "tone.mov", "tone.ts", "tone.mxf"])
def test_every_container_gives_16k_mono_audio(media: Path, name: str) -> None:
    info = probe(media / name)
    assert len(info.audio_streams) == 1
    audio = extract_audio(media / name, info.audio_streams[0].index)
    assert audio.dtype == np.float32
    assert abs(len(audio) / 16_000 - 4.0) < 0.1
    # The tone peaks near 0.4; a wrong sample format would show up as noise or clipping.
    assert 0.2 < float(np.max(np.abs(audio))) < 0.6


def test_video_frame_rate_is_probed(media: Path) -> None:
    assert probe(media / "tone.mp4").fps == pytest.approx(25.0)
    assert probe(media / "tone.wav").fps is None


def test_default_stream_is_the_one_tagged_with_the_language(media: Path) -> None:
    info = probe(media / "two_streams.mkv")
    assert [s.language for s in info.audio_streams] == ["eng", "urd"]
    assert choose_stream(info, None, "ur").index == 1
    assert choose_stream(info, None, "en").index == 0
    assert choose_stream(info, None, "zh").index == 0  # nothing tagged zh: the first
    assert choose_stream(info, None, None).index == 0
    assert choose_stream(info, 1, "en").index == 1  # an explicit choice wins


def test_streams_hold_different_audio(media: Path) -> None:
    noise = extract_audio(media / "two_streams.mkv", 0)
    voice = extract_audio(media / "two_streams.mkv", 1)
    assert np.max(np.abs(voice)) > 3 * np.max(np.abs(noise))


def test_missing_stream_is_named(media: Path) -> None:
    info = probe(media / "two_streams.mkv")
    with pytest.raises(InputError, match="has no audio stream 2: it has 2"):
        choose_stream(info, 2, None)


def test_silence_is_detected(media: Path) -> None:
    assert is_silent(extract_samples(media / "silent.mp4", 0))
    assert not is_silent(extract_samples(media / "tone.wav", 0))


def test_samples_are_read_from_disk_by_stretches_as_ffmpeg_decoded_them(media: Path) -> None:
    import subprocess

    decoded = subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-i", str(media / "tone.mp4"), "-map", "0:a:0",
                              "-af", "aresample=async=1", "-f", "s16le", "-acodec", "pcm_s16le", "-ac", "1",
                              "-ar", "16000", "pipe:"], capture_output=True, check=True).stdout
    whole = np.frombuffer(decoded, dtype=np.int16).astype(np.float32) / 32768.0
    samples = extract_samples(media / "tone.mp4", 0)
    assert len(samples) == len(whole) and np.array_equal(samples[:], whole)
    for a, b in [(0, 1), (100, 16_000), (16_000, 10**9), (len(whole) - 5, len(whole)), (-300, None), (500, 400)]:
        assert np.array_equal(samples[a:b], whole[a:b]), (a, b)
    assert np.array_equal(np.concatenate(list(samples.pieces(0.7))), whole)
    with pytest.raises(TypeError, match="by stretches"):
        samples[3]


@pytest.mark.parametrize(
    "name, message",
    [
        ("missing.mp4", "does not exist"),
        ("empty.mp4", "is empty"),
        ("text.mp4", "not a media file ffmpeg can read"),
        ("truncated.mp4", "not a media file ffmpeg can read"),
    ],
)
def test_unreadable_inputs(media: Path, name: str, message: str) -> None:
    with pytest.raises(InputError, match=message):
        probe(media / name)


def test_no_audio_stream(media: Path) -> None:
    info = probe(media / "no_audio.mp4")
    with pytest.raises(InputError, match="has no audio stream"):
        choose_stream(info, None, "zh")
