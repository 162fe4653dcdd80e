"""Probe media files and extract 16 kHz mono audio with ffmpeg (through ffmpeg-python)."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Iterator, Union

import numpy as np

from .errors import InputError, OutputError, SubpipeError
from .findings import DAMAGED_AUDIO, WARNING, Finding

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
    # The picture's width and height in pixels (None without a video stream).
    size: tuple[int, int] | None = None

    @property
    def audio_end(self) -> float:
        """Where the longest audio stream ends (the container's duration when no stream says)."""
        return max((s.duration or 0.0 for s in self.audio_streams), default=0.0) or self.duration


def url(path: Path) -> str:
    """``path`` as ffmpeg and ffprobe must be given it: with the ``file:`` protocol, so
    that a name such as ``-version`` or ``-dash.mp4`` is never read as an option, and
    one with a colon (``take:2.mov``) never as another protocol."""
    return f"file:{path}"


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
        data = ffmpeg.probe(url(path))
    except ffmpeg.Error as exc:
        raise InputError(f"{path} is not a media file ffmpeg can read: {last_line(exc.stderr)}") from None
    except ValueError:  # its output was no JSON: ffprobe said something else entirely
        raise InputError(f"{path} is not a media file ffmpeg can read: ffprobe gave no description") from None
    streams = data.get("streams", [])
    audio = tuple(_audio_stream(i, s) for i, s in enumerate(s for s in streams if s.get("codec_type") == "audio"))
    duration = _float(data.get("format", {}).get("duration"))
    if duration is None:
        duration = max((a.duration or 0.0 for a in audio), default=0.0)
    return MediaInfo(path=path, duration=duration, fps=_video_fps(streams), audio_streams=audio,
                     size=_video_size(streams))


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


def damage(start: float, end: float, reason: str) -> Finding:
    """A stretch of the audio that could not be decoded (or is missing): ``start`` to ``end`` s."""
    return Finding(DAMAGED_AUDIO, f"audio damaged from {_clock(start)} to {_clock(end)} ({reason}): "
                   "no speech can be heard there; check the source", WARNING, start=start, end=end)


class Samples:
    """One decoded audio stream, 16 kHz mono, kept on disk and read a stretch at a time.

    Held in memory, two hours of audio took 0.7 GB (the 16-bit samples and their float
    copy), so memory grew with the film. The samples stay in an unnamed temporary file
    (``scratch_folder``; gone with the process, even a killed one) and every reader slices
    out the stretch it works on: ``samples[a:b]`` is a float32 array, as ``np.ndarray``
    gives one, so the stages take either.
    """

    def __init__(self, file: BinaryIO, count: int):
        self._file = file
        self._count = count

    def __len__(self) -> int:
        return self._count

    def __getitem__(self, key: slice) -> np.ndarray:
        if not isinstance(key, slice) or key.step not in (None, 1):
            raise TypeError("audio samples are read by stretches: samples[start:stop]")
        start, stop, _ = key.indices(self._count)
        wanted = max(0, stop - start) * 2
        data = bytearray()
        while len(data) < wanted:  # pread may return less than asked
            got = os.pread(self._file.fileno(), wanted - len(data), start * 2 + len(data))
            if not got:
                raise OSError(f"the decoded audio ended early, at sample {start + len(data) // 2}")
            data += got
        return np.frombuffer(data, dtype=np.int16).astype(np.float32) / 32768.0

    def pieces(self, seconds: float = 60.0) -> Iterator[np.ndarray]:
        """The samples in order, ``seconds`` at a time."""
        step = max(1, int(seconds * SAMPLE_RATE))
        for start in range(0, self._count, step):
            yield self[start:start + step]


# What the stages read audio from, a stretch at a time: a film's samples, or a clip in memory.
Audible = Union[Samples, np.ndarray]


@dataclass(frozen=True)
class Audio:
    """One audio stream, decoded: 16 kHz mono samples on the container's timeline, and the
    stretches that were damaged or missing (filled with silence so later times still match)."""

    samples: Samples
    damage: tuple[Finding, ...] = ()


def read_audio(info: MediaInfo, stream: AudioStream) -> Audio:
    """The stream's samples, and what of it is damaged.

    Frames ffmpeg cannot decode are left out of its output, which would move every later
    word earlier: resampling to the frames' timestamps fills them with silence instead.
    Where ffmpeg reports decoding errors, the frames' timestamps say which stretches they
    took; audio more than ``SHORT`` seconds shorter than the container says is cut short.
    """
    samples, errors = _decode(info.path, stream.index)
    damaged = list(_gaps(info.path, stream.index)) if errors else []
    decoded = len(samples) / SAMPLE_RATE
    expected = stream.duration or info.duration
    if expected - decoded > SHORT:
        damaged.append(damage(round(decoded, 3), round(expected, 3), "the file ends early: it may be cut short"))
    return Audio(samples, tuple(damaged))


# Decoded audio this much shorter than the container says is reported as cut short.
SHORT = 1.0
# Frames missing for longer than this, or this close together, make one damaged stretch.
GAP = 0.1


def _decode(path: Path, stream: int) -> tuple[Samples, bool]:
    """Samples, and whether ffmpeg reported errors while decoding them."""
    import ffmpeg

    command = (
        ffmpeg.input(url(path))
        .output("pipe:", map=f"0:a:{stream}", af="aresample=async=1", format="s16le",
                acodec="pcm_s16le", ac=1, ar=SAMPLE_RATE)
        .global_args("-nostdin", "-v", "error")
        .compile()
    )
    folder = scratch_folder()
    try:
        out = tempfile.TemporaryFile(prefix="subpipe-audio-", dir=folder)
        with tempfile.TemporaryFile(prefix="subpipe-ffmpeg-") as err:
            try:
                status = _wait(subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=out, stderr=err))
            except BaseException:
                out.close()
                raise
            errors = _tail(err)
    except OSError as exc:
        raise _no_room(path, folder, exc.strerror or str(exc)) from None
    if status != 0:
        out.close()
        if b"No space left on device" in errors:
            raise _no_room(path, folder, "no space left on device")
        raise InputError(f"could not decode audio from {path}: {last_line(errors)}")
    return Samples(out, os.fstat(out.fileno()).st_size // 2), bool(errors.strip())


def _no_room(path: Path, folder: str | None, reason: str) -> OutputError:
    where = folder or tempfile.gettempdir()
    return OutputError(f"the decoded audio of {path.name} can't be kept in {where} ({reason}): free space there, "
                       "or set TMPDIR to a folder with room (2 MB a minute of film)")


def scratch_folder() -> str | None:
    """Where a film's decoded audio waits (2 MB a minute): ``$TMPDIR`` when one is set,
    else /var/tmp, which is on disk by convention, where /tmp is often a RAM disk (as on
    Debian 13) that would hold the samples in memory after all; else the system's choice."""
    if os.environ.get("TMPDIR"):
        return os.environ["TMPDIR"]
    return "/var/tmp" if os.access("/var/tmp", os.W_OK | os.X_OK) else None


def _wait(process: subprocess.Popen) -> int:
    """ffmpeg's exit status; stopped with us when we are stopped (Ctrl-C, SIGTERM)."""
    try:
        return process.wait()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def _tail(file: BinaryIO, size: int = 65_536) -> bytes:
    """The last ``size`` bytes of ``file``: a damaged film can make ffmpeg report errors by the megabyte."""
    end = file.seek(0, os.SEEK_END)
    file.seek(max(0, end - size))
    return file.read()


def _gaps(path: Path, stream: int) -> list[Finding]:
    """Stretches where the stream's decoded frames leave holes in time (ffprobe's frame times)."""
    import ffmpeg

    try:
        frames = ffmpeg.probe(url(path), select_streams=f"a:{stream}", show_entries="frame=pts_time,pkt_duration_time",
                              v="error").get("frames", [])
    except (ffmpeg.Error, ValueError):
        return [damage(0.0, 0.0, "ffmpeg reported decoding errors it could not place")]
    holes: list[tuple[float, float]] = []
    end = None
    for frame in frames:
        at, length = _float(frame.get("pts_time")), _float(frame.get("pkt_duration_time"))
        if at is None:
            continue
        if end is not None and at - end > GAP:
            if holes and end - holes[-1][1] <= GAP * 5:
                holes[-1] = (holes[-1][0], at)
            else:
                holes.append((end, at))
        end = at + (length or 0.0)
    return [damage(round(a, 3), round(b, 3), "frames that could not be decoded") for a, b in holes]


def _clock(seconds: float) -> str:
    minutes, secs = divmod(seconds, 60)
    return f"{int(minutes):02d}:{secs:06.3f}"


def is_silent(audio: Samples, threshold_db: float = -60.0) -> bool:
    """True when the loudest sample stays below ``threshold_db`` dBFS."""
    peak = max((float(np.max(np.abs(piece))) for piece in audio.pieces() if piece.size), default=0.0)
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


def _video_size(streams: list[dict]) -> tuple[int, int] | None:
    for s in streams:
        if s.get("codec_type") == "video" and not (s.get("disposition") or {}).get("attached_pic"):
            width, height = s.get("width"), s.get("height")
            if isinstance(width, int) and isinstance(height, int) and width > 0 and height > 0:
                return width, height
    return None


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
