"""Listening to a film: probe it, take one audio stream, find the speech, decide the
language, and transcribe it chunk by chunk through the stage cache."""

from __future__ import annotations

import json
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

from .accounting import account, transcribe_safely, untranscribed
from .asr import Chunk, DecodeOptions, Progress, Transcriber, plan_chunks
from .asr.backends import make_transcriber
from .asr.chunks import regions_within
from .asr.vad import speech_regions
from .cache import StageCache, key_of
from .config import Config
from .cores import usable_cpus
from .cues import kept_words
from .errors import UsageError
from .findings import Finding
from .glossary import Glossary, whisper_prompt
from .language import decide_language
from .linebreak import warm_up
from .media import SAMPLE_RATE, Audible, AudioStream, MediaInfo, choose_stream, is_silent, probe, read_audio
from .types import Transcript, Word

log = logging.getLogger(__name__)

TranscriberFactory = Callable[[Config], Transcriber]
# Bumped when the cached form of a chunk's words, or the way they are made, changes.
TRANSCRIPT_FORMAT = "words-2"
LANGUAGE_FORMAT = "language-2"
AUDIO_FORMAT = "audio-3"  # how the samples are decoded: part of every later stage's key


@dataclass(frozen=True)
class Heard:
    """What listening to one audio stream gave: the transcript, where speech is, the
    speech that no word covers even after every retry, and damage in the audio."""

    info: MediaInfo
    stream: AudioStream
    transcript: Transcript
    speech: tuple[tuple[float, float], ...] | None
    backend: str
    silent: bool = False
    untranscribed: tuple[Finding, ...] = ()
    damage: tuple[Finding, ...] = ()
    source: str = ""  # the input's sha256 ('' when no one computed it)


@dataclass(frozen=True)
class Sound:
    """The audio that was heard, its cache key, and the engine that heard it: what
    Whisper's speech translation listens to again. Cue shaping never sees it."""

    samples: Audible
    key: str
    engine: Transcriber | None = None


def load_transcriber(config: Config) -> Transcriber:
    """The configured backend on weights found by the resolver."""
    return make_transcriber(config.asr)


def listen(
    video: Path,
    lang: str,
    config: Config,
    glossary: Glossary,
    *,
    audio_stream: int | None = None,
    load: TranscriberFactory = load_transcriber,
    progress: Callable[[float], Progress | None] = lambda total: None,
    cache: StageCache | None = None,
    on_detected: Callable[[str], None] = lambda lang: None,
    source: str = "",
) -> tuple[Heard, Sound]:
    """Probe ``video``, pick the stream, extract the audio, find speech and transcribe it.

    ``lang`` is a language or ``auto``; ``on_detected`` hears the language detection
    picked before the transcription starts (it may raise to stop the run). With a
    ``cache``, the audio and each chunk's words are reused when the input, the model and
    the settings that made them are the same. ``source`` is the input's sha256 when the
    caller knows it (a film sent to a node is checked as it arrives), else it is computed.
    """
    cache = cache or StageCache(enabled=False)
    info = probe(video)
    stream = choose_stream(info, audio_stream, None if lang == "auto" else lang)
    source = source or (cache.input_hash(video) if cache.enabled else "")
    audio_key = key_of(AUDIO_FORMAT, source, stream.index, SAMPLE_RATE)
    # The weights load (and jieba's dictionary, for Mandarin cues) while ffmpeg and voice
    # activity work: on 2 cores that takes about a second off a three-minute film.
    with ThreadPoolExecutor(max_workers=2) as pool:
        loading = pool.submit(load, config)
        if lang in ("zh", "auto"):
            pool.submit(warm_up, "zh")
        # Not cached: decoding takes seconds even for hours of film, and a cached copy
        # would pass through memory whole (the samples are read from disk by stretches).
        heard_audio = read_audio(info, stream)
        audio = heard_audio.samples
        duration = len(audio) / SAMPLE_RATE
        if is_silent(audio):
            lang = lang if lang != "auto" else _silent_language(info, stream, config)
            heard = Heard(info, stream, Transcript(lang, (), duration), (), "none", silent=True,
                          damage=heard_audio.damage, source=source)
            return heard, Sound(audio, audio_key)
        speech = speech_of(audio, config)
        engine = loading.result()
    if lang == "auto":
        candidates = list(config.project.languages)
        lang = cache.get_or_make(
            "language", key_of(LANGUAGE_FORMAT, audio_key, engine.identity, candidates, speech),
            lambda: _detect(engine, audio, speech, candidates, config, video.name), str.encode, bytes.decode,
        )
        on_detected(lang)
    prompt = (whisper_prompt(glossary, lang) or None) if config.asr.glossary_prompt else None
    words, lost = hear(engine, audio, lang, speech, config, prompt=prompt, cache=cache, audio_key=audio_key,
                       report=progress(duration))
    heard = Heard(info, stream, Transcript(lang, words, duration), speech, engine.name,
                  untranscribed=lost, damage=heard_audio.damage, source=source)
    return heard, Sound(audio, audio_key, engine)


def hear(engine: Transcriber, audio: Audible, lang: str, speech: tuple[tuple[float, float], ...] | None,
         config: Config, *, prompt: str | None = None, cache: StageCache | None = None, audio_key: str = "",
         report: Progress | None = None) -> tuple[tuple[Word, ...], tuple[Finding, ...]]:
    """The words of ``audio`` in ``lang``, chunk by chunk through the stage cache (keyed
    on ``audio_key``), and the speech that stays untranscribed after every retry."""
    cache = cache or StageCache(enabled=False)
    duration = len(audio) / SAMPLE_RATE
    words: list[Word] = []
    lost: list[Finding] = []
    for chunk in plan_chunks(duration, speech, config.asr.chunk_seconds, config.vad.decode_pad_ms / 1000):
        key = key_of(TRANSCRIPT_FORMAT, audio_key, asdict(chunk), engine.identity, lang, prompt,
                     config.cues.blocklist)
        found, missing = cache.get_or_make(
            "transcript", key, lambda: _transcribe(engine, audio, lang, chunk, speech, config, report, prompt),
            _dump_words, lambda data: _load_words(data, lang),
        )
        words += found
        lost += missing
        if report:
            report(chunk.end)
    return tuple(words), tuple(lost)


def _transcribe(engine: Transcriber, audio: Audible, lang: str, chunk: Chunk,
                speech: tuple[tuple[float, float], ...] | None, config: Config, report: Progress | None,
                prompt: str | None) -> tuple[tuple[Word, ...], tuple[Finding, ...]]:
    """The chunk's words, its lost speech decoded again (accounting.py), and what stays lost."""
    found = transcribe_safely(engine, audio, lang, chunk, report, prompt=prompt)
    if speech is None:
        return found, ()

    def keep(words):  # noqa: ANN001, ANN202 - the guards cue shaping will run
        return kept_words(words, lang, config.rules_for(lang), speech=speech, blocklist=config.cues.blocklist)

    return account(engine, audio, lang, chunk, found, regions_within(speech, chunk.start, chunk.end), keep,
                   options=DecodeOptions.of(config.asr), pad=config.vad.decode_pad_ms / 1000, vad=config.vad,
                   prompt=prompt, ladder=config.asr.retry_ladder)


def speech_of(audio: Audible, config: Config) -> tuple[tuple[float, float], ...] | None:
    """Where someone speaks, by voice activity (None when it is switched off)."""
    if not config.vad.enabled:
        return None
    # On a GPU, decoding an hour takes a second or two: one pass of voice activity would be most of the run.
    threads = config.vad.threads or (usable_cpus() if config.asr.device.startswith("cuda") else 1)
    return tuple(speech_regions(audio, config.vad, threads))


def _silent_language(info: MediaInfo, stream: AudioStream, config: Config) -> str:
    """The language of a silent stream under ``--lang auto``: the project's only one, else
    none can be told, and an empty track in a language nobody spoke helps no one (a
    silent first stream may sit beside the one with the speech)."""
    languages = config.project.languages
    if len(languages) == 1:
        return languages[0]
    others = len(info.audio_streams)
    hint = f", or choose another of its {others} audio streams with --audio-stream" if others > 1 else ""
    raise UsageError(f"audio stream {stream.index} of {info.path.name} is silent, so its language can't be told: "
                     f"give --lang {'|'.join(languages)} to write an empty track{hint}")


def _detect(engine: Transcriber, audio: Audible, speech: tuple[tuple[float, float], ...] | None,
            candidates: list[str], config: Config, name: str) -> str:
    decision = decide_language(engine, audio, speech, candidates, DecodeOptions.of(config.asr), name)
    log.info("language %s, %s (%s)", decision.lang, decision.how,
             ", ".join(f"{k} {v:.2f}" for k, v in decision.scores.items()))
    return decision.lang


def _dump_words(value: tuple[tuple[Word, ...], tuple[Finding, ...]]) -> bytes:
    words, lost = value
    return json.dumps({"words": [[w.start, w.end, w.text, w.probability] for w in words],
                       "untranscribed": [[u.start, u.end] for u in lost]}, ensure_ascii=False).encode()


def _load_words(data: bytes, lang: str) -> tuple[tuple[Word, ...], tuple[Finding, ...]]:
    raw = json.loads(data)
    return tuple(Word(*w) for w in raw["words"]), tuple(untranscribed(a, b, lang) for a, b in raw["untranscribed"])
