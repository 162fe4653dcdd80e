"""Wiring: video in, SRT files out. Each stage lives in its own module."""

from __future__ import annotations

import json
import logging
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from .asr import Progress, Transcriber
from .bilingual import bilingual_tracks, default_pairs
from .cache import StageCache, dump_array, key_of, load_array
from .chunks import from_json, join, plan_chunks, shift, to_json
from .config import Config
from .cues import ShapeResult, shape, words_from_segments
from .errors import ModelError, OutputError, UsageError
from .glossary import Glossary, load_glossary, whisper_prompt
from .linebreak import warm_up
from .manifest import Manifest, manifest_path, sha256_text
from .media import SAMPLE_RATE, AudioStream, MediaInfo, choose_stream, extract_audio, is_silent, probe
from .srtio import read_track, write_track
from .translate import (
    HUB_IDS,
    PIVOT,
    MarianTranslator,
    RoutedTranslator,
    TrackOptions,
    TranslationSettings,
    describe,
    find_marian_model,
    translate_tracks,
)
from .types import LANGUAGES, Cue, Track, Transcript
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
    targets: tuple[str, ...] = ()
    review: bool = False  # also write <stem>.review.html and its proxy beside the tracks


@dataclass(frozen=True)
class Heard:
    """What listening to one audio stream gave: the transcript and where speech is."""

    info: MediaInfo
    stream: AudioStream
    transcript: Transcript
    speech: tuple[tuple[float, float], ...] | None
    backend: str
    silent: bool = False
    audio: np.ndarray | None = None
    engine: Transcriber | None = None
    audio_key: str = ""


@dataclass(frozen=True)
class RunResult:
    lang: str
    outputs: tuple[Path, ...]
    cues: int
    duration: float
    problems: tuple[str, ...] = field(default_factory=tuple)
    warnings: tuple[str, ...] = field(default_factory=tuple)
    notices: tuple[str, ...] = field(default_factory=tuple)


def load_transcriber(config: Config) -> Transcriber:
    """The configured backend on weights found by the resolver."""
    from .backends import make_transcriber

    return make_transcriber(config.asr.backend, config)


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
    cache: StageCache | None = None,
) -> RunResult:
    """Transcribe ``request.video``, translate it, and write every track; returns what was written."""
    if request.lang != "auto" and request.lang not in config.project.languages:
        raise UsageError(f"language '{request.lang}' is not among this project's languages")
    _check_targets(request.targets)
    out = output_dir(request)
    stem = request.video.stem
    manifest = Manifest(manifest_path(out, stem))
    if request.lang != "auto":
        # Refuse before minutes of work, and again once the language is known.
        manifest.guard(planned_outputs(out, stem, request.lang, request.targets, config), request.force)
        _check_translation_models(request.lang, request.targets, config)

    cache = cache or StageCache(enabled=False)
    heard = listen(request, config, load=load, progress=progress, cache=cache)
    lang = heard.transcript.lang
    manifest.guard(planned_outputs(out, stem, lang, request.targets, config), request.force)
    shaped = subtitle(heard, config)
    source = Track(lang=lang, cues=shaped.cues)

    warnings = []
    if heard.silent:
        warnings.append(f"{request.video.name}: audio stream {heard.stream.index} is silent; writing an empty {lang} track")
    elif not source.cues:
        warnings.append(f"{request.video.name}: no speech was recognised; writing an empty {lang} track")
    tracks, summary, notices = _translated_cached(source, request.targets, config, heard, cache)
    meta = {"model": config.asr.model, "backend": heard.backend, "settings": _settings(config, lang)}
    paths = write_tracks(tracks, out, stem, manifest, meta)
    if request.review:
        from .review import review_command

        srt_paths = [p for p in paths if p.suffix == ".srt"]
        paths += tuple(review_command(request.video, srt_paths, out / f"{stem}.review.html", config))
    for warning in warnings:
        log.warning(warning)
    problems = tuple(f"{lang}: cue {p.cue + 1 if p.cue is not None else '-'}: {p.rule}: {p.reason}"
                     for p in shaped.problems) + tuple(summary)
    for line in problems:
        log.info("%s", line)
    for notice in notices:
        log.warning(notice)
    return RunResult(lang, paths, len(source.cues), heard.transcript.duration, problems, tuple(warnings),
                     tuple(notices))


def translate_file(
    srt_path: Path,
    lang: str | None,
    targets: tuple[str, ...],
    config: Config,
    *,
    out_dir: Path | None = None,
    force: bool = False,
) -> RunResult:
    """``film.ur.srt`` (typically corrected by an editor) in other languages, same cue times."""
    stem, src = _split_track_name(srt_path, lang)
    _check_targets(targets)
    if not targets or set(targets) == {src}:
        raise UsageError("give at least one target language other than the source with --to")
    out = output_dir(RunRequest(srt_path, out_dir=out_dir))
    manifest = Manifest(manifest_path(out, stem))
    planned = [p for p in planned_outputs(out, stem, src, targets, config) if p != track_path(out, stem, src)]
    manifest.guard(planned, force)
    _check_translation_models(src, targets, config, audio=False)
    source = read_track(srt_path, src)
    tracks, summary, notices = translated(source, targets, config, None, None)
    tracks.pop(src)
    meta = {"model": "", "backend": "translate", "settings": {"source": srt_path.name, **_translate_settings(config)}}
    paths = write_tracks(tracks, out, stem, manifest, meta)
    for line in summary:
        log.info("%s", line)
    return RunResult(src, paths, len(source.cues), 0.0, tuple(summary), (), tuple(notices))


def planned_outputs(out: Path, stem: str, src: str, targets: tuple[str, ...], config: Config) -> list[Path]:
    """Every file a run will write: source, targets, the English pivot, bilingual pairs."""
    langs = [src, *_target_langs(src, targets)]
    pairs = _pairs(src, targets, config)
    return [track_path(out, stem, lang) for lang in langs] + [track_path(out, stem, pair) for pair in pairs]


def translated(
    source: Track, targets: tuple[str, ...], config: Config, fps: float | None, heard: Heard | None
) -> tuple[dict[str, Track], list[str], list[str]]:
    """The source track, its translations (pivot included) and bilingual tracks, by name."""
    tracks: dict[str, Track] = {source.lang: source}
    wanted = _target_langs(source.lang, targets)
    if not wanted:
        return tracks, [], []
    translator, notices = make_translator(source.lang, wanted, config, heard)
    t = config.translate
    rules = {lang: config.rules_for(lang, fps) for lang in LANGUAGES}
    options = TrackOptions(t.max_cues_per_sentence, t.max_sentence_gap, config.output.urdu_direction_marks)
    results = translate_tracks(source, wanted, translator, rules, _glossary(config), options=options)
    summary = []
    for lang, result in results.items():
        tracks[lang] = result.track
        summary += describe(result)
        summary += [f"{lang}: glossary term {u.term!r} used" for u in result.glossary_uses]
    tracks.update(bilingual_tracks(tracks, _pairs(source.lang, targets, config)))
    return tracks, summary, notices


def _translated_cached(source: Track, targets: tuple[str, ...], config: Config, heard: Heard,
                       cache: StageCache) -> tuple[dict[str, Track], list[str], list[str]]:
    """``translated`` through the stage cache, keyed on the source track and the settings."""
    if not _target_langs(source.lang, targets):
        return {source.lang: source}, [], []
    glossary = config.translate.glossary_path
    key = key_of(
        "translation", _track_json(source), targets, heard.info.fps, _translate_settings(config),
        sha256_text(glossary.read_text(encoding="utf-8")) if glossary.is_file() else "",
        # The Whisper fallback listens to the audio again: its English depends on both.
        heard.audio_key, getattr(heard.engine, "identity", heard.backend),
    )

    def dump(value: tuple[dict[str, Track], list[str], list[str]]) -> bytes:
        tracks, summary, notices = value
        return json.dumps({"tracks": {k: _track_json(t) for k, t in tracks.items()},
                           "summary": summary, "notices": notices}, ensure_ascii=False).encode()

    def load(data: bytes) -> tuple[dict[str, Track], list[str], list[str]]:
        raw = json.loads(data)
        return ({k: _track_from(t) for k, t in raw["tracks"].items()}, raw["summary"], raw["notices"])

    return cache.get_or_make("translation", key,
                             lambda: translated(source, targets, config, heard.info.fps, heard), dump, load)


def _track_json(track: Track) -> dict:
    return {"lang": track.lang, "cues": [[c.start, c.end, list(c.lines)] for c in track.cues]}


def _track_from(data: dict) -> Track:
    return Track(data["lang"], tuple(Cue(a, b, tuple(lines)) for a, b, lines in data["cues"]))


def make_translator(src: str, targets: tuple[str, ...], config: Config, heard: Heard | None):
    """MarianMT per direction; X->en from Whisper's speech translation when Marian is absent."""
    from .backends import speech_translation

    settings = _translation_settings(config)
    marian = MarianTranslator(settings)
    can_listen = heard is not None and heard.audio is not None and hasattr(heard.engine, "translate_audio")
    routes, notices = {}, []
    for pair in _directions(src, targets):
        if _engine_kind(pair, settings, config, can_listen) == "marian":
            routes[pair] = marian
            continue
        routes[pair] = fallback = speech_translation(heard.engine, heard.audio, config.asr.model)
        notices.append(
            f"no MarianMT model for {pair}: the English track was made by Whisper's speech "
            f"translation ({fallback.engine_for(*pair.split('-'))}), not by MarianMT"
        )
    return RoutedTranslator(routes), notices


def _engine_kind(pair: str, settings: TranslationSettings, config: Config, can_listen: bool) -> str:
    """``marian`` when its model is found; ``whisper`` for X->en when the audio can be heard
    again; else the ModelError that says what is missing and how to get it."""
    try:
        find_marian_model(pair, settings)
        return "marian"
    except ModelError:
        if can_listen and config.translate.whisper_fallback and pair.endswith(f"-{PIVOT}"):
            return "whisper"
        raise


def write_tracks(tracks: dict[str, Track], out: Path, stem: str, manifest: Manifest, meta: dict) -> tuple[Path, ...]:
    """Write each track atomically and record it; the manifest is saved after each file."""
    paths = []
    for name, track in tracks.items():
        path = track_path(out, stem, name)
        text = write_track(track, path)
        manifest.record(path, text, **meta)
        manifest.save()
        paths.append(path)
    return tuple(paths)


def _check_targets(targets: tuple[str, ...]) -> None:
    unknown = [t for t in targets if t not in LANGUAGES]
    if unknown:
        raise UsageError(f"unknown target language '{unknown[0]}': use {', '.join(LANGUAGES)}")


def _target_langs(src: str, targets: tuple[str, ...]) -> tuple[str, ...]:
    """The targets in order, with the English pivot added whenever it will be computed."""
    wanted = [t for t in dict.fromkeys(targets) if t != src]
    if src != PIVOT and any(t != PIVOT for t in wanted) and PIVOT not in wanted:
        wanted.insert(0, PIVOT)
    return tuple(wanted)


def _directions(src: str, targets: tuple[str, ...]) -> list[str]:
    pairs = []
    for tgt in _target_langs(src, targets):
        if src != PIVOT and tgt != PIVOT:
            pairs += [f"{src}-{PIVOT}", f"{PIVOT}-{tgt}"]
        else:
            pairs.append(f"{src}-{tgt}")
    return list(dict.fromkeys(pairs))


def _pairs(src: str, targets: tuple[str, ...], config: Config) -> tuple[str, ...]:
    wanted = [t for t in dict.fromkeys(targets) if t != src]
    pairs = default_pairs(src, wanted)
    if config.bilingual.pairs:
        pairs = tuple(p for p in pairs if p in config.bilingual.pairs)
    return pairs


def _check_translation_models(src: str, targets: tuple[str, ...], config: Config, audio: bool = True) -> None:
    """Fail before any work when a direction has no model and no fallback."""
    settings = _translation_settings(config)
    for pair in _directions(src, targets):
        _engine_kind(pair, settings, config, can_listen=audio)


def _translation_settings(config: Config) -> TranslationSettings:
    t = config.translate
    models = {pair: t.models.get(pair, hub) for pair, hub in HUB_IDS.items()}
    return TranslationSettings(models=models, batch_size=t.batch_size, num_beams=t.num_beams,
                               max_new_tokens=t.max_new_tokens, device=t.device)


def _prompt(config: Config, lang: str) -> str | None:
    """The glossary's terms in ``lang``, so Whisper spells names the way the project does."""
    glossary = _glossary(config) if config.asr.glossary_prompt else None
    return whisper_prompt(glossary, lang) or None if glossary else None


def _glossary(config: Config) -> Glossary | None:
    path = config.translate.glossary_path
    return load_glossary(path) if path.is_file() else None


def _split_track_name(path: Path, lang: str | None) -> tuple[str, str]:
    """``film.ur.srt`` -> (``film``, ``ur``); ``--lang`` wins over the name."""
    stem, _, tag = path.stem.rpartition(".")
    if tag in LANGUAGES and stem:
        return stem, lang or tag
    if lang is None:
        raise UsageError(f"can't tell the language of {path.name}: name it <film>.<lang>.srt or give --lang")
    return path.stem, lang


def listen(
    request: RunRequest,
    config: Config,
    *,
    load: TranscriberFactory = load_transcriber,
    progress: Callable[[float], Progress | None] = lambda total: None,
    cache: StageCache | None = None,
) -> Heard:
    """Probe, pick the stream, extract the audio, find speech and transcribe it.

    With a ``cache``, the audio and each chunk's transcript are reused when the input,
    the model and the settings that made them are the same.
    """
    cache = cache or StageCache(enabled=False)
    info = probe(request.video)
    stream = choose_stream(info, request.audio_stream, None if request.lang == "auto" else request.lang)
    source = cache.input_hash(request.video) if cache.enabled else ""
    audio_key = key_of("audio", source, stream.index, SAMPLE_RATE)
    # The weights load (and jieba's dictionary, for Mandarin cues) while ffmpeg and voice
    # activity work: on 2 cores that takes about a second off a three-minute film.
    with ThreadPoolExecutor(max_workers=2) as pool:
        loading = pool.submit(load, config)
        if request.lang in ("zh", "auto"):
            pool.submit(warm_up, "zh")
        audio = cache.get_or_make("audio", audio_key, lambda: extract_audio(request.video, stream.index),
                                  dump_array, load_array)
        duration = len(audio) / SAMPLE_RATE
        if is_silent(audio):
            lang = request.lang if request.lang != "auto" else config.project.languages[0]
            return Heard(info, stream, Transcript(lang, (), duration), (), "none", silent=True, audio_key=audio_key)
        speech = speech_of(audio, config)
        engine = loading.result()
    identity = getattr(engine, "identity", engine.name)
    lang = request.lang
    if lang == "auto":
        candidates = list(config.project.languages)
        lang = cache.get_or_make(
            "language", key_of(audio_key, identity, candidates),
            lambda: _detect(engine, audio, candidates), str.encode, bytes.decode,
        )
    prompt = _prompt(config, lang)
    report = progress(duration)
    parts = []
    for start, end in plan_chunks(duration, speech, config.asr.chunk_seconds):
        piece = audio[round(start * SAMPLE_RATE):round(end * SAMPLE_RATE)]
        done = (lambda seconds, at=start: report(at + seconds)) if report else None
        key = key_of(audio_key, start, end, identity, lang, prompt)
        regions = _within(speech, start, end)
        part = cache.get_or_make(
            "transcript", key, lambda: engine.transcribe(piece, lang, done, prompt=prompt, speech=regions),
            lambda t: json.dumps(to_json(t)).encode(), lambda b: from_json(json.loads(b)),
        )
        parts.append(shift(part, start))
        if report:
            report(end)
    transcript = join(lang, parts, duration)
    return Heard(info, stream, transcript, speech, engine.name, audio=audio, engine=engine, audio_key=audio_key)


def _within(speech: tuple[tuple[float, float], ...] | None, start: float,
            end: float) -> tuple[tuple[float, float], ...] | None:
    """The speech regions inside [start, end], in that chunk's own time."""
    if speech is None:
        return None
    return tuple((max(a, start) - start, min(b, end) - start) for a, b in speech if b > start and a < end)


def _detect(engine: Transcriber, audio: np.ndarray, candidates: list[str]) -> str:
    lang, scores = engine.detect_language(audio, candidates)
    log.info("detected language %s (%s)", lang, ", ".join(f"{k} {v:.2f}" for k, v in scores.items()))
    return lang


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
        close_gaps_frames=config.cues.close_gaps_frames,
        hold_in_sentence_frames=config.cues.hold_in_sentence_frames,
    )


def speech_of(audio: np.ndarray, config: Config) -> tuple[tuple[float, float], ...] | None:
    """Where someone speaks, by voice activity (None when it is switched off)."""
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
        **_translate_settings(config),
    }


def _translate_settings(config: Config) -> dict:
    return {"translate": asdict(config.translate), "bilingual": list(config.bilingual.pairs)}
