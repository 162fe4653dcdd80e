"""Wiring: video in, SRT files out. Each stage lives in its own module."""

from __future__ import annotations

import logging
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from .asr import DecodeOptions, OpenAIWhisper, Progress, Transcriber
from .config import Config
from .cues import ShapeResult, shape, words_from_segments
from .errors import OutputError, UsageError
from .manifest import Manifest, manifest_path
from .media import SAMPLE_RATE, AudioStream, MediaInfo, choose_stream, extract_audio, is_silent, probe
from .models import resolve_whisper
from .srtio import write_track
from .types import Track, Transcript
from .vad import VadSettings, speech_regions

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
class Heard:
    """What listening to one audio stream gave: the transcript and where speech is."""

    info: MediaInfo
    stream: AudioStream
    transcript: Transcript
    speech: tuple[tuple[float, float], ...] | None
    backend: str
    silent: bool = False


@dataclass(frozen=True)
class RunResult:
    lang: str
    outputs: tuple[Path, ...]
    cues: int
    duration: float
    problems: tuple[str, ...] = field(default_factory=tuple)
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
    out = output_dir(request)
    stem = request.video.stem
    manifest = Manifest(manifest_path(out, stem))
    if request.lang != "auto":
        # Refuse before minutes of work, and again once the language is known.
        manifest.guard([track_path(out, stem, request.lang)], request.force)

    heard = listen(request, config, load=load, progress=progress)
    lang = heard.transcript.lang
    path = track_path(out, stem, lang)
    manifest.guard([path], request.force)
    shaped = subtitle(heard, config)
    track = Track(lang=lang, cues=shaped.cues)

    warnings = []
    if heard.silent:
        warnings.append(f"{request.video.name}: audio stream {heard.stream.index} is silent; writing an empty {lang} track")
    elif not track.cues:
        warnings.append(f"{request.video.name}: no speech was recognised; writing an empty {lang} track")
    text = write_track(track, path)
    manifest.record(path, text, model=config.asr.model, backend=heard.backend, settings=_settings(config, lang))
    manifest.save()
    for warning in warnings:
        log.warning(warning)
    problems = tuple(f"cue {p.cue + 1 if p.cue is not None else '-'}: {p.rule}: {p.reason}" for p in shaped.problems)
    for problem in problems:
        log.info("%s", problem)
    return RunResult(lang, (path,), len(track.cues), heard.transcript.duration, problems, tuple(warnings))


def listen(
    request: RunRequest,
    config: Config,
    *,
    load: TranscriberFactory = load_transcriber,
    progress: Callable[[float], Progress | None] = lambda total: None,
) -> Heard:
    """Probe, pick the stream, extract the audio, find speech and transcribe it."""
    info = probe(request.video)
    stream = choose_stream(info, request.audio_stream, None if request.lang == "auto" else request.lang)
    audio = extract_audio(request.video, stream.index)
    duration = len(audio) / SAMPLE_RATE
    if is_silent(audio):
        lang = request.lang if request.lang != "auto" else config.project.languages[0]
        return Heard(info, stream, Transcript(lang, (), duration), (), "none", silent=True)
    speech = _speech(audio, config)
    engine = load(config)
    lang = request.lang
    if lang == "auto":
        lang, scores = engine.detect_language(audio, list(config.project.languages))
        log.info("detected language %s (%s)", lang, ", ".join(f"{k} {v:.2f}" for k, v in scores.items()))
    transcript = engine.transcribe(audio, lang, progress(duration))
    return Heard(info, stream, transcript, speech, engine.name)


def subtitle(heard: Heard, config: Config) -> ShapeResult:
    """Cues shaped to the language's rules, at the video's frame rate."""
    lang = heard.transcript.lang
    return shape(
        words_from_segments(heard.transcript.segments),
        lang,
        config.rules_for(lang, heard.info.fps),
        speech=heard.speech,
        audio_end=heard.transcript.duration,
        blocklist=config.cues.blocklist,
        rtl_marks=config.output.urdu_direction_marks,
    )


def _speech(audio: np.ndarray, config: Config) -> tuple[tuple[float, float], ...] | None:
    v = config.vad
    if not v.enabled:
        return None
    settings = VadSettings(v.threshold, v.min_speech_ms, v.min_silence_ms, v.pad_ms)
    return tuple(speech_regions(audio, settings))


def _settings(config: Config, lang: str) -> dict:
    asr = asdict(config.asr)
    asr["temperatures"] = list(config.asr.temperatures)
    return {
        "asr": asr,
        "rules": asdict(config.rules[lang]) if lang in config.rules else {},
        "vad": asdict(config.vad),
        "blocklist": list(config.cues.blocklist),
        "urdu_direction_marks": config.output.urdu_direction_marks,
    }
