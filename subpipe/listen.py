"""Listening to a film: probe it, take one audio stream, find the speech, decide the
language, and transcribe it chunk by chunk through the stage cache."""

from __future__ import annotations

import json
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from .asr import Progress, Transcriber, plan_chunks
from .asr.backends import make_transcriber
from .asr.vad import speech_regions, usable_cpus
from .cache import StageCache, dump_array, key_of, load_array
from .config import Config
from .glossary import Glossary, whisper_prompt
from .linebreak import warm_up
from .media import SAMPLE_RATE, AudioStream, MediaInfo, choose_stream, extract_audio, is_silent, probe
from .types import Transcript, Word

log = logging.getLogger(__name__)

TranscriberFactory = Callable[[Config], Transcriber]
# Bumped when the cached form of a chunk's words changes.
TRANSCRIPT_FORMAT = "words-1"


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
class Sound:
    """The audio that was heard, its cache key, and the engine that heard it: what
    Whisper's speech translation listens to again. Cue shaping never sees it."""

    samples: np.ndarray
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
) -> tuple[Heard, Sound]:
    """Probe ``video``, pick the stream, extract the audio, find speech and transcribe it.

    ``lang`` is a language or ``auto``. With a ``cache``, the audio and each chunk's
    words are reused when the input, the model and the settings that made them are the same.
    """
    cache = cache or StageCache(enabled=False)
    info = probe(video)
    stream = choose_stream(info, audio_stream, None if lang == "auto" else lang)
    source = cache.input_hash(video) if cache.enabled else ""
    audio_key = key_of("audio", source, stream.index, SAMPLE_RATE)
    # The weights load (and jieba's dictionary, for Mandarin cues) while ffmpeg and voice
    # activity work: on 2 cores that takes about a second off a three-minute film.
    with ThreadPoolExecutor(max_workers=2) as pool:
        loading = pool.submit(load, config)
        if lang in ("zh", "auto"):
            pool.submit(warm_up, "zh")
        audio = cache.get_or_make("audio", audio_key, lambda: extract_audio(video, stream.index),
                                  dump_array, load_array)
        duration = len(audio) / SAMPLE_RATE
        if is_silent(audio):
            lang = lang if lang != "auto" else config.project.languages[0]
            heard = Heard(info, stream, Transcript(lang, (), duration), (), "none", silent=True)
            return heard, Sound(audio, audio_key)
        speech = speech_of(audio, config)
        engine = loading.result()
    if lang == "auto":
        candidates = list(config.project.languages)
        lang = cache.get_or_make(
            "language", key_of(audio_key, engine.identity, candidates),
            lambda: _detect(engine, audio, candidates), str.encode, bytes.decode,
        )
    prompt = (whisper_prompt(glossary, lang) or None) if config.asr.glossary_prompt else None
    report = progress(duration)
    words: list[Word] = []
    for chunk in plan_chunks(duration, speech, config.asr.chunk_seconds, config.vad.decode_pad_ms / 1000):
        key = key_of(TRANSCRIPT_FORMAT, audio_key, asdict(chunk), engine.identity, lang, prompt)
        words += cache.get_or_make(
            "transcript", key, lambda: engine.transcribe(audio, lang, chunk, report, prompt=prompt),
            _dump_words, _load_words,
        )
        if report:
            report(chunk.end)
    heard = Heard(info, stream, Transcript(lang, tuple(words), duration), speech, engine.name)
    return heard, Sound(audio, audio_key, engine)


def speech_of(audio: np.ndarray, config: Config) -> tuple[tuple[float, float], ...] | None:
    """Where someone speaks, by voice activity (None when it is switched off)."""
    if not config.vad.enabled:
        return None
    # On a GPU, decoding an hour takes a second or two: one pass of voice activity would be most of the run.
    threads = config.vad.threads or (usable_cpus() if config.asr.device.startswith("cuda") else 1)
    return tuple(speech_regions(audio, config.vad, threads))


def _detect(engine: Transcriber, audio: np.ndarray, candidates: list[str]) -> str:
    lang, scores = engine.detect_language(audio, candidates)
    log.info("detected language %s (%s)", lang, ", ".join(f"{k} {v:.2f}" for k, v in scores.items()))
    return lang


def _dump_words(words: tuple[Word, ...]) -> bytes:
    return json.dumps([[w.start, w.end, w.text, w.probability] for w in words], ensure_ascii=False).encode()


def _load_words(data: bytes) -> tuple[Word, ...]:
    return tuple(Word(*w) for w in json.loads(data))
