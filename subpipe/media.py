"""Probe media files and extract 16 kHz mono audio with ffmpeg (through ffmpeg-python)."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import InputError, SubpipeError

SAMPLE_RATE = 16_000

# Containers tag streams with ISO 639-2 codes (urd, chi/zho, eng), sometimes 639-1.
_LANGUAGE_TAGS = {
    "ur": {"ur", "urd"},
    "zh": {"zh", "chi", "zho", "cmn"},
    "en": {"en", "eng"},
}


@dataclass(frozen=True)
class AudioStream:
    """One audio stream; ``index`` counts audio streams only, from 0 (ffmpeg's ``0:a:N``)."""

    index: int
    codec: str
    channels: int
    sample_rate: int
    language: str | None
    duration: float | None


@dataclass(frozen=True)
class MediaInfo:
    path: Path
    duration: float
    fps: float | None
    audio_streams: tuple[AudioStream, ...]

    @property
    def audio_end(self) -> float:
        """Where the longest audio stream ends (the container's duration when no stream says)."""
        return max((s.duration or 0.0 for s in self.audio_streams), default=0.0) or self.duration


def require_ffmpeg() -> None:
    for tool in ("ffmpeg", "ffprobe"):
        if shutil.which(tool) is None:
            raise SubpipeError(f"{tool} is not installed: run 'apt-get install ffmpeg' (or 'make setup')")


def check_readable(path: Path) -> None:
    """Fail early, with a plain reason, on paths ffmpeg would only puzzle over."""
    if not path.exists():
        raise InputError(f"{path} does not exist")
    if path.is_dir():
        raise InputError(f"{path} is a directory, not a media file")
    if not path.is_file():
        kind = "a named pipe" if path.is_fifo() else "not a regular file"
        # ffprobe and ffmpeg each read the input, and a pipe gives its data only once.
        raise InputError(f"{path} is {kind}: subpipe reads a media file more than once, "
                         "so save the stream to a file first")
    if path.stat().st_size == 0:
        raise InputError(f"{path} is empty (0 bytes)")


def probe(path: Path) -> MediaInfo:
    """What ffprobe knows about ``path``: duration, frame rate, audio streams."""
    import ffmpeg

    check_readable(path)
    require_ffmpeg()
    try:
        data = ffmpeg.probe(str(path))
    except ffmpeg.Error as exc:
        raise InputError(f"{path} is not a media file ffmpeg can read: {last_line(exc.stderr)}") from None
    streams = data.get("streams", [])
    audio = tuple(_audio_stream(i, s) for i, s in enumerate(s for s in streams if s.get("codec_type") == "audio"))
    duration = _float(data.get("format", {}).get("duration"))
    if duration is None:
        duration = max((a.duration or 0.0 for a in audio), default=0.0)
    return MediaInfo(path=path, duration=duration, fps=_video_fps(streams), audio_streams=audio)


def choose_stream(info: MediaInfo, requested: int | None, lang: str | None) -> AudioStream:
    """The audio stream asked for; else the first tagged with ``lang``; else the first."""
    if not info.audio_streams:
        raise InputError(f"{info.path} has no audio stream")
    if requested is not None:
        if not 0 <= requested < len(info.audio_streams):
            count = len(info.audio_streams)
            raise InputError(
                f"{info.path} has no audio stream {requested}: it has {count} "
                f"(use --audio-stream 0{f' to {count - 1}' if count > 1 else ''})"
            )
        return info.audio_streams[requested]
    tags = _LANGUAGE_TAGS.get(lang or "", set())
    tagged = [s for s in info.audio_streams if s.language in tags]
    return tagged[0] if tagged else info.audio_streams[0]


def extract_audio(path: Path, stream: int) -> np.ndarray:
    """Audio stream ``stream`` of ``path`` as float32 mono samples at 16 kHz."""
    import ffmpeg

    try:
        out, _ = (
            ffmpeg.input(str(path))
            .output("pipe:", map=f"0:a:{stream}", format="s16le", acodec="pcm_s16le", ac=1, ar=SAMPLE_RATE)
            .global_args("-nostdin", "-v", "error")
            .run(capture_stdout=True, capture_stderr=True)
        )
    except ffmpeg.Error as exc:
        raise InputError(f"could not decode audio from {path}: {last_line(exc.stderr)}") from None
    return np.frombuffer(out, dtype=np.int16).astype(np.float32) / 32768.0


def is_silent(audio: np.ndarray, threshold_db: float = -60.0) -> bool:
    """True when the loudest sample stays below ``threshold_db`` dBFS."""
    if audio.size == 0:
        return True
    peak = float(np.max(np.abs(audio)))
    return peak <= 10 ** (threshold_db / 20)


def _audio_stream(index: int, stream: dict) -> AudioStream:
    tags = {k.lower(): v for k, v in (stream.get("tags") or {}).items()}
    return AudioStream(
        index=index,
        codec=stream.get("codec_name", "?"),
        channels=int(stream.get("channels") or 0),
        sample_rate=int(stream.get("sample_rate") or 0),
        language=(tags.get("language") or "").lower() or None,
        duration=_float(stream.get("duration")),
    )


def _video_fps(streams: list[dict]) -> float | None:
    for s in streams:
        if s.get("codec_type") != "video" or (s.get("disposition") or {}).get("attached_pic"):
            continue
        rate = s.get("avg_frame_rate") or s.get("r_frame_rate") or "0/0"
        num, _, den = rate.partition("/")
        try:
            fps = float(num) / float(den or 1)
        except (ValueError, ZeroDivisionError):
            continue
        if fps > 0:
            return fps
    return None


def _float(value: object) -> float | None:
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


def last_line(stderr: bytes | None) -> str:
    lines = [ln.strip() for ln in (stderr or b"").decode("utf-8", "replace").splitlines() if ln.strip()]
    return lines[-1] if lines else "ffmpeg gave no reason"
