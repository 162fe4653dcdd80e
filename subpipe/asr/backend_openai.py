"""openai-whisper, the reference backend: sequential decoding, as the `whisper` command does it.

torch and whisper are imported only here, inside the backend.
"""

from __future__ import annotations

import importlib
import logging
from dataclasses import asdict
from typing import Sequence

import numpy as np

from ..errors import ModelError
from ..media import SAMPLE_RATE
from ..types import Word
from .chunks import Chunk
from .interface import DecodeOptions, Progress
from .weights import ResolvedModel, alignment_heads_dump
from .windows import MEL_FRAMES_PER_SECOND, Window, plan_windows

log = logging.getLogger(__name__)


class OpenAIWhisper:
    """openai-whisper on a checkpoint found by the model resolver."""

    name = "openai-whisper"

    def __init__(self, model: ResolvedModel, options: DecodeOptions, device: str = "cpu"):
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
        self.identity = {"backend": self.name, "model": model.sha256, "options": asdict(options), "device": device}

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

    def transcribe(self, audio: np.ndarray, lang: str, chunk: Chunk, progress: Progress | None = None,
                   prompt: str | None = None, options: DecodeOptions | None = None) -> tuple[Word, ...]:
        """Sequential decoding of ``chunk``, as the `whisper` command does it.

        With voice activity it decodes the same windows of speech as the batched
        backends, one after another, and keeps words inside the speech regions: their
        outputs then differ only by the engine (zh_dev, greedy: CER 0.114 against 0.125
        on the whole audio, in about the same time). Without, it decodes the whole chunk.
        """
        import torch

        # The package re-exports the function under the module's name; we need the module.
        wt = importlib.import_module("whisper.transcribe")

        clips: str | list[float] = "0"
        if chunk.regions is not None:
            windows = plan_windows(chunk.decode_regions())
            clips = [t - chunk.start for w in windows for t in (w.regions[0][0], w.regions[-1][1])]
            if not clips:
                return ()
        piece = audio[round(chunk.start * SAMPLE_RATE):round(chunk.end * SAMPLE_RATE)]
        o = options or self.options
        # Sampling at fallback temperatures must give the same text every run.
        torch.manual_seed(o.seed)
        done = (lambda seconds: progress(chunk.start + seconds)) if progress else None
        with _progress_hook(wt, done):
            result = wt.transcribe(
                self.model,
                piece.astype(np.float32),
                language=lang,
                task="transcribe",
                temperature=o.temperatures,
                beam_size=o.beam_size if o.beam_size > 1 else None,
                best_of=o.beam_size if o.beam_size > 1 else None,
                condition_on_previous_text=o.condition_on_previous_text,
                word_timestamps=True,
                initial_prompt=prompt,
                fp16=self.device != "cpu",
                verbose=False if progress else None,
                clip_timestamps=clips,
            )
        return tuple(_words(result["segments"], chunk))

    def translate_clips(self, clips: Sequence[np.ndarray], lang: str, again: bool = False) -> list[str]:
        """English text of each clip spoken in ``lang``, one clip after another.

        ``again``: a beam of five, with the temperature fallback that catches loops.
        """
        return [self._translate(clip, lang, again) for clip in clips]

    def _translate(self, audio: np.ndarray, lang: str, again: bool = False) -> str:
        import torch
        import whisper

        torch.manual_seed(self.options.seed)
        beam = (self.options.again() if again else self.options).beam_size
        result = whisper.transcribe(
            self.model,
            audio.astype(np.float32),
            language=lang,
            task="translate",
            # No fallback the first time: on one sentence's clip, resampling at rising
            # temperatures cost ten times the time (34 s against 3.6 s on zh_dev) and
            # gave worse English. A second try has it: it is what catches a loop.
            temperature=self.options.temperatures if again else self.options.temperatures[:1],
            beam_size=beam if beam > 1 else None,
            best_of=beam if beam > 1 else None,
            condition_on_previous_text=False,
            fp16=self.device != "cpu",
            verbose=None,
        )
        return " ".join(s["text"].strip() for s in result["segments"] if s["text"].strip())


def _words(segments: Sequence[dict], chunk: Chunk) -> list[Word]:
    """Whisper's words on the film's timeline, each moved inside its speech region.

    Voice activity says where speech is; a segment without word timing (rare) stands
    as one word.
    """
    span = Window(chunk.regions) if chunk.regions else None
    words = []
    for segment in segments:
        if not segment.get("words"):
            if segment["text"].strip():
                words.append(Word(float(segment["start"]) + chunk.start, float(segment["end"]) + chunk.start,
                                  segment["text"]))
            continue
        for w in segment["words"]:
            word = Word(float(w["start"]) + chunk.start, float(w["end"]) + chunk.start, w["word"],
                        float(w.get("probability", 1.0)))
            words.append(span.inside(word) if span else word)
    return words


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
        self.progress(self.frames / MEL_FRAMES_PER_SECOND)


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
