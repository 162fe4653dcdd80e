"""Wiring: video in, SRT files out. Each stage lives in its own module."""

from __future__ import annotations

import logging
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

from .asr import DecodeOptions, OpenAIWhisper, Progress, Transcriber
from .config import Config
from .errors import OutputError, UsageError
from .manifest import Manifest, manifest_path
from .media import MediaInfo, choose_stream, extract_audio, is_silent, probe
from .models import resolve_whisper
from .srtio import write_track
from .types import Track, Transcript

log = logging.getLogger(__name__)

TranscriberFactory = Callable[[Config], Transcriber]


@dataclass(frozen=True)
class RunRequest:
    video: Path
    lang: str = "auto"  # ur | zh | en | auto
    audio_stream: int | None = None
    out_dir: Path | None = None
    force: bool = False


@dataclass(frozen=True)
class RunResult:
    lang: str
    outputs: tuple[Path, ...]
    cues: int
    duration: float
    warnings: tuple[str, ...] = field(default_factory=tuple)


def load_transcriber(config: Config) -> Transcriber:
    """The configured backend on weights found by the resolver."""
    a = config.asr
    model = resolve_whisper(a.model, explicit=a.model_path, explicit_sha256=a.model_sha256)
    options = DecodeOptions(
        beam_size=a.beam_size,
        temperatures=a.temperatures,
        seed=a.seed,
        condition_on_previous_text=a.condition_on_previous_text,
    )
    return OpenAIWhisper(model, options, device=a.device)


def output_dir(request: RunRequest) -> Path:
    """Where outputs go; created when asked for and missing, and checked writable."""
    out = request.out_dir or request.video.parent
    if request.out_dir is not None and not out.exists():
        try:
            out.mkdir(parents=True)
        except OSError as exc:
            raise OutputError(f"cannot create output folder {out}: {exc.strerror}") from None
    if not out.is_dir():
        raise OutputError(f"output folder {out} is not a folder")
    try:
        # Ask the file system itself: permission bits say nothing for root or read-only mounts.
        with tempfile.TemporaryFile(dir=out):
            pass
    except OSError:
        raise OutputError(f"output folder {out} is not writable: choose another with --out") from None
    return out


def track_path(out_dir: Path, stem: str, lang: str) -> Path:
    return out_dir / f"{stem}.{lang}.srt"


def run(
    request: RunRequest,
    config: Config,
    *,
    load: TranscriberFactory = load_transcriber,
    progress: Callable[[float], Progress | None] = lambda total: None,
) -> RunResult:
    """Transcribe ``request.video`` and write its subtitle tracks; returns what was written."""
    if request.lang != "auto" and request.lang not in config.project.languages:
        raise UsageError(f"language '{request.lang}' is not among this project's languages")
    info = probe(request.video)
    stream = choose_stream(info, request.audio_stream, None if request.lang == "auto" else request.lang)
    out = output_dir(request)
    stem = request.video.stem
    manifest = Manifest(manifest_path(out, stem))
    if request.lang != "auto":
        manifest.guard([track_path(out, stem, request.lang)], request.force)

    audio = extract_audio(request.video, stream.index)
    duration = len(audio) / 16_000
    warnings: list[str] = []
    if is_silent(audio):
        lang = request.lang if request.lang != "auto" else config.project.languages[0]
        warnings.append(f"{request.video.name}: audio stream {stream.index} is silent; writing an empty {lang} track")
        transcript = Transcript(lang=lang, segments=(), duration=duration)
        backend_name = "none"
    else:
        engine = load(config)
        lang = request.lang
        if lang == "auto":
            lang, scores = engine.detect_language(audio, list(config.project.languages))
            log.info("detected language %s (%s)", lang, ", ".join(f"{k} {v:.2f}" for k, v in scores.items()))
        manifest.guard([track_path(out, stem, lang)], request.force)
        transcript = engine.transcribe(audio, lang, progress(duration))
        backend_name = engine.name

    track = build_track(transcript, config, info)
    if not track.cues and not warnings:
        warnings.append(f"{request.video.name}: no speech was recognised; writing an empty {lang} track")
    path = track_path(out, stem, lang)
    text = write_track(track, path)
    manifest.record(path, text, model=config.asr.model, backend=backend_name, settings=_settings(config, lang))
    manifest.save()
    for warning in warnings:
        log.warning(warning)
    return RunResult(lang=lang, outputs=(path,), cues=len(track.cues), duration=duration, warnings=tuple(warnings))


def build_track(transcript: Transcript, config: Config, info: MediaInfo) -> Track:
    """Cues from recognised segments, clipped to the audio and kept in order."""
    from .types import Cue

    cues = []
    last_end = 0.0
    for seg in transcript.segments:
        text = seg.text.strip()
        start = max(seg.start, last_end)
        end = min(seg.end, transcript.duration)
        if not text or end <= start:
            continue
        cues.append(Cue(start, end, (text,)))
        last_end = end
    return Track(lang=transcript.lang, cues=tuple(cues))


def _settings(config: Config, lang: str) -> dict:
    asr = asdict(config.asr)
    asr["temperatures"] = list(config.asr.temperatures)
    return {"asr": asr, "rules": asdict(config.rules[lang]) if lang in config.rules else {}}

