"""Speech recognition behind one small interface, with openai-whisper as the reference.

The pipeline is handed a ``Transcriber``; tests hand in tiny real models. torch and
whisper are imported only here, inside the backend.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, is_dataclass
from typing import Callable, Protocol, Sequence

import numpy as np

from .errors import ModelError
from .models import ResolvedModel, alignment_heads_dump
from .types import Segment, Transcript, Word

log = logging.getLogger(__name__)

SAMPLE_RATE = 16_000
Progress = Callable[[float], None]  # called with seconds of audio done


@dataclass(frozen=True)
class DecodeOptions:
    beam_size: int = 5
    temperatures: tuple[float, ...] = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
    seed: int = 0
    condition_on_previous_text: bool = False
    word_timestamps: bool = True
    initial_prompt: str | None = None


class Transcriber(Protocol):
    name: str

    def detect_language(self, audio: np.ndarray, candidates: Sequence[str]) -> tuple[str, dict[str, float]]:
        """The most likely of ``candidates`` and the probability of each."""

    def transcribe(self, audio: np.ndarray, lang: str, progress: Progress | None = None,
                   prompt: str | None = None,
                   speech: Sequence[tuple[float, float]] | None = None) -> Transcript:
        """Segments (with word timing) of 16 kHz mono ``audio`` spoken in ``lang``.

        ``prompt`` primes the decoder (glossary terms, so names come out spelled right);
        ``speech`` is where voice activity found speech, for backends that batch over it.
        """


class OpenAIWhisper:
    """openai-whisper on a checkpoint found by the model resolver."""

    name = "openai-whisper"

    def __init__(self, model: ResolvedModel, options: DecodeOptions, device: str = "cpu", vad: object | None = None):
        import whisper

        try:
            self.model = whisper.load_model(str(model.path), device=device)
        except (RuntimeError, KeyError, OSError, EOFError) as exc:
            raise ModelError(f"could not load Whisper weights {model.path}: {exc}") from None
        if model.alignment_heads:
            dims = self.model.dims
            self.model.set_alignment_heads(
                alignment_heads_dump(model.alignment_heads, dims.n_text_layer, dims.n_text_head)
            )
        self.options = options
        self.device = device
        self.vad = vad
        # What makes its output what it is: the cache keys transcripts on this.
        self.identity = {"backend": self.name, "model": model.sha256, "options": asdict(options), "device": device,
                         "vad": asdict(vad) if is_dataclass(vad) else None}

    def detect_language(self, audio: np.ndarray, candidates: Sequence[str]) -> tuple[str, dict[str, float]]:
        import whisper

        mel = whisper.log_mel_spectrogram(
            whisper.pad_or_trim(audio.astype(np.float32)), self.model.dims.n_mels
        ).to(self.model.device)
        _, probs = self.model.detect_language(mel)
        # Only the project's languages compete: base hears synthetic Mandarin as Thai.
        scores = {lang: float(probs.get(lang, 0.0)) for lang in candidates}
        best = max(candidates, key=lambda lang: (scores[lang], -candidates.index(lang)))
        return best, scores

    def transcribe(self, audio: np.ndarray, lang: str, progress: Progress | None = None,
                   prompt: str | None = None,
                   speech: Sequence[tuple[float, float]] | None = None) -> Transcript:
        """Sequential decoding, as the `whisper` command does it.

        With voice activity (``speech``, or the backend's own ``vad``), it decodes the
        same windows of speech as the batched backends, one after another, and keeps
        words inside the speech regions: their outputs then differ only by the engine
        (zh_dev, greedy: CER 0.114 against 0.125 on the whole audio, in about the same time).
        Without, it decodes the whole audio.
        """
        import importlib

        import torch

        from .windows import default_regions, keep_inside, plan_chunks

        # The package re-exports the function under the module's name; we need the module.
        wt = importlib.import_module("whisper.transcribe")

        duration = len(audio) / SAMPLE_RATE
        regions = default_regions(audio, speech, self.vad) if speech is not None or self.vad is not None else None
        clips: str | list[float] = "0"
        if regions is not None:
            clips = [t for window in plan_chunks(regions, duration) for t in (window.regions[0][0], window.regions[-1][1])]
            if not clips:
                return Transcript(lang=lang, segments=(), duration=duration)
        o = self.options
        # Sampling at fallback temperatures must give the same text every run.
        torch.manual_seed(o.seed)
        with _progress_hook(wt, progress):
            result = wt.transcribe(
                self.model,
                audio.astype(np.float32),
                language=lang,
                task="transcribe",
                temperature=o.temperatures,
                beam_size=o.beam_size if o.beam_size > 1 else None,
                best_of=o.beam_size if o.beam_size > 1 else None,
                condition_on_previous_text=o.condition_on_previous_text,
                word_timestamps=o.word_timestamps,
                initial_prompt=prompt or o.initial_prompt,
                fp16=self.device != "cpu",
                verbose=False if progress else None,
                clip_timestamps=clips,
            )
        segments = tuple(_segment(s) for s in result["segments"])
        if regions is not None:
            segments = keep_inside(segments, regions)
        return Transcript(lang=lang, segments=segments, duration=duration)

    def translate_audio(self, audio: np.ndarray, lang: str) -> str:
        """English text of ``audio`` spoken in ``lang``, by Whisper's translate task."""
        import torch
        import whisper

        torch.manual_seed(self.options.seed)
        result = whisper.transcribe(
            self.model,
            audio.astype(np.float32),
            language=lang,
            task="translate",
            # No fallback: on one sentence's clip, resampling at rising temperatures cost
            # ten times the time (34 s against 3.6 s on zh_dev) and gave worse English.
            temperature=self.options.temperatures[:1],
            beam_size=self.options.beam_size if self.options.beam_size > 1 else None,
            best_of=self.options.beam_size if self.options.beam_size > 1 else None,
            condition_on_previous_text=False,
            fp16=self.device != "cpu",
            verbose=None,
        )
        return " ".join(s["text"].strip() for s in result["segments"] if s["text"].strip())


class WhisperSpeechTranslation:
    """X->English from each sentence's own audio: the offline stand-in for MarianMT.

    It follows translate.SpanTranslator: the track code hands it whole sentences with
    their times, and it listens to that stretch of audio again in translate mode.
    """

    PAD = 0.2  # seconds of context around a sentence, so its first word isn't clipped

    def __init__(self, engine: OpenAIWhisper, audio: np.ndarray, model_name: str):
        self.engine, self.audio, self.model_name = engine, audio, model_name

    def engine_for(self, src: str, tgt: str) -> str:
        return f"whisper-translate:{self.model_name}"

    def translate_spans(self, spans: Sequence, src: str, tgt: str) -> list[str]:
        if tgt != "en":
            raise ModelError(f"Whisper translates speech into English only, not into {tgt}")
        out = []
        for span in spans:
            first = max(0, int((span.start - self.PAD) * SAMPLE_RATE))
            last = min(len(self.audio), int((span.end + self.PAD) * SAMPLE_RATE))
            out.append(self.engine.translate_audio(self.audio[first:last], src) if last > first else "")
        return out

    def translate(self, texts: Sequence[str], src: str, tgt: str) -> list[str]:
        raise ModelError("Whisper's speech translation needs the audio: use it from `subpipe run`")


def _segment(raw: dict) -> Segment:
    words = tuple(
        Word(start=float(w["start"]), end=float(w["end"]), text=w["word"], probability=float(w.get("probability", 1.0)))
        for w in raw.get("words") or ()
    )
    return Segment(
        start=float(raw["start"]),
        end=float(raw["end"]),
        text=raw["text"],
        words=words,
        no_speech_prob=float(raw.get("no_speech_prob", 0.0)),
        avg_logprob=float(raw.get("avg_logprob", 0.0)),
    )


class _ProgressBar:
    """Stands in for tqdm inside whisper.transcribe and reports seconds done instead."""

    def __init__(self, progress: Progress, **_: object):
        self.progress = progress
        self.frames = 0

    def __enter__(self) -> "_ProgressBar":
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def update(self, n: int) -> None:
        self.frames += n
        self.progress(self.frames / 100.0)  # whisper's mel frames are 10 ms


class _TqdmShim:
    def __init__(self, progress: Progress):
        self.progress = progress

    def tqdm(self, **kwargs: object) -> _ProgressBar:
        return _ProgressBar(self.progress, **kwargs)


class _progress_hook:
    """whisper.transcribe draws its own tqdm bar; route it to our callback instead."""

    def __init__(self, module, progress: Progress | None):
        self.module, self.progress, self.saved = module, progress, None

    def __enter__(self) -> None:
        if self.progress is not None:
            self.saved = self.module.tqdm
            self.module.tqdm = _TqdmShim(self.progress)

    def __exit__(self, *exc: object) -> None:
        if self.saved is not None:
            self.module.tqdm = self.saved
