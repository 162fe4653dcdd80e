"""Read CTranslate2 ``model.bin`` files and map Whisper ones onto openai-whisper checkpoints.

The format (binary version 6, little-endian) is described in shared MODELS.md. We read
it with numpy alone so that conversion needs neither CTranslate2 nor a network.
"""

from __future__ import annotations

import re
import struct
from pathlib import Path
from typing import BinaryIO

import numpy as np

from ..atomic import atomic_file
from ..digest import sha256_file
from ..errors import ModelError

_DTYPES = {0: np.float32, 1: np.int8, 2: np.int16, 3: np.int32, 4: np.float16}
_BFLOAT16 = 5


def _read(f: BinaryIO, fmt: str) -> tuple:
    size = struct.calcsize(fmt)
    data = f.read(size)
    if len(data) != size:
        raise ModelError("CTranslate2 model.bin ends early: the file is truncated")
    return struct.unpack(fmt, data)


def _string(f: BinaryIO) -> str:
    (length,) = _read(f, "<H")
    return f.read(length).rstrip(b"\0").decode("utf-8")


def read_model_bin(path: Path) -> dict[str, np.ndarray]:
    """All variables of a CTranslate2 model.bin, aliases resolved, by name."""
    variables: dict[str, np.ndarray] = {}
    with open(path, "rb") as f:
        (version,) = _read(f, "<I")
        if version < 2 or version > 6:
            raise ModelError(f"{path}: unsupported CTranslate2 binary version {version}")
        _string(f)  # spec name
        _read(f, "<I")  # spec revision
        (count,) = _read(f, "<I")
        for _ in range(count):
            name = _string(f)
            (rank,) = _read(f, "<B")
            shape = _read(f, f"<{rank}I") if rank else ()
            (dtype,) = _read(f, "<B")
            (nbytes,) = _read(f, "<I")
            raw = f.read(nbytes)
            if len(raw) != nbytes:
                raise ModelError(f"{path}: variable {name} is truncated")
            variables[name] = _decode(raw, dtype, shape, name)
        tail = f.read(4)
        if len(tail) == 4:
            (aliases,) = struct.unpack("<I", tail)
            for _ in range(aliases):
                alias, target = _string(f), _string(f)
                variables[alias] = variables[target]
    return variables


def _decode(raw: bytes, dtype: int, shape: tuple, name: str) -> np.ndarray:
    if dtype == _BFLOAT16:
        # bfloat16 is the upper half of a float32.
        halves = np.frombuffer(raw, dtype=np.uint16).astype(np.uint32) << 16
        return halves.view(np.float32).reshape(shape)
    if dtype not in _DTYPES:
        raise ModelError(f"variable {name} has unknown dtype {dtype}")
    return np.frombuffer(raw, dtype=_DTYPES[dtype]).reshape(shape)


def whisper_checkpoint(variables: dict[str, np.ndarray]) -> dict:
    """An openai-whisper checkpoint dict (``dims`` + ``model_state_dict``) of numpy arrays.

    The mapping is the table in shared MODELS.md; the caller turns arrays into tensors.
    """
    v = variables
    state: dict[str, np.ndarray] = {}

    def layers(prefix: str) -> int:
        found = {int(m.group(1)) for k in v if (m := re.match(rf"{prefix}/layer_(\d+)/", k))}
        return max(found) + 1 if found else 0

    def linear(src: str, dst: str, bias: bool = True) -> None:
        state[f"{dst}.weight"] = v[f"{src}/weight"]
        if bias:
            state[f"{dst}.bias"] = v[f"{src}/bias"]

    def norm(src: str, dst: str) -> None:
        state[f"{dst}.weight"] = v[f"{src}/gamma"]
        state[f"{dst}.bias"] = v[f"{src}/beta"]

    def split_rows(src: str, parts: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
        weight, bias = v[f"{src}/weight"], v[f"{src}/bias"]
        return np.split(weight, parts, axis=0), np.split(bias, parts, axis=0)

    def fused_attention(src: str, dst: str, names: tuple[str, ...]) -> None:
        weights, biases = split_rows(src, len(names))
        for name, w, b in zip(names, weights, biases):
            state[f"{dst}.{name}.weight"] = w
            # Keys carry no bias in Whisper; CTranslate2 stores zeros for them.
            if name != "key":
                state[f"{dst}.{name}.bias"] = b

    def self_attention(src: str, dst: str) -> None:
        norm(f"{src}/self_attention/layer_norm", f"{dst}.attn_ln")
        fused_attention(f"{src}/self_attention/linear_0", f"{dst}.attn", ("query", "key", "value"))
        linear(f"{src}/self_attention/linear_1", f"{dst}.attn.out")

    for conv in ("conv1", "conv2"):
        linear(f"encoder/{conv}", f"encoder.{conv}")
    state["encoder.positional_embedding"] = v["encoder/position_encodings/encodings"]
    n_audio_layer = layers("encoder")
    for i in range(n_audio_layer):
        src, dst = f"encoder/layer_{i}", f"encoder.blocks.{i}"
        self_attention(src, dst)
        _ffn(v, state, src, dst)
    norm("encoder/layer_norm", "encoder.ln_post")

    state["decoder.token_embedding.weight"] = v["decoder/embeddings/weight"]
    state["decoder.positional_embedding"] = v["decoder/position_encodings/encodings"]
    n_text_layer = layers("decoder")
    for i in range(n_text_layer):
        src, dst = f"decoder/layer_{i}", f"decoder.blocks.{i}"
        self_attention(src, dst)
        norm(f"{src}/attention/layer_norm", f"{dst}.cross_attn_ln")
        linear(f"{src}/attention/linear_0", f"{dst}.cross_attn.query")
        fused_attention(f"{src}/attention/linear_1", f"{dst}.cross_attn", ("key", "value"))
        linear(f"{src}/attention/linear_2", f"{dst}.cross_attn.out")
        _ffn(v, state, src, dst)
    norm("decoder/layer_norm", "decoder.ln")

    conv1 = v["encoder/conv1/weight"]
    vocab = v["decoder/embeddings/weight"]
    dims = {
        "n_mels": int(conv1.shape[1]),
        "n_audio_ctx": int(v["encoder/position_encodings/encodings"].shape[0]),
        "n_audio_state": int(conv1.shape[0]),
        "n_audio_head": int(np.asarray(v["encoder/num_heads"]).reshape(-1)[0]),
        "n_audio_layer": n_audio_layer,
        "n_vocab": int(vocab.shape[0]),
        "n_text_ctx": int(v["decoder/position_encodings/encodings"].shape[0]),
        "n_text_state": int(vocab.shape[1]),
        "n_text_head": int(np.asarray(v["decoder/num_heads"]).reshape(-1)[0]),
        "n_text_layer": n_text_layer,
    }
    return {"dims": dims, "model_state_dict": state}


def _ffn(v: dict[str, np.ndarray], state: dict[str, np.ndarray], src: str, dst: str) -> None:
    state[f"{dst}.mlp_ln.weight"] = v[f"{src}/ffn/layer_norm/gamma"]
    state[f"{dst}.mlp_ln.bias"] = v[f"{src}/ffn/layer_norm/beta"]
    for ct2, torch_name in (("linear_0", "mlp.0"), ("linear_1", "mlp.2")):
        state[f"{dst}.{torch_name}.weight"] = v[f"{src}/ffn/{ct2}/weight"]
        state[f"{dst}.{torch_name}.bias"] = v[f"{src}/ffn/{ct2}/bias"]


def write_checkpoint(model_bin: Path, target: Path) -> str:
    """The Whisper ``model_bin`` as an openai-whisper checkpoint at ``target``; returns its sha256."""
    import torch

    checkpoint = whisper_checkpoint(read_model_bin(model_bin))
    checkpoint["model_state_dict"] = {
        k: torch.from_numpy(np.array(v)) for k, v in checkpoint["model_state_dict"].items()
    }
    with atomic_file(target) as out:
        torch.save(checkpoint, out)
    return sha256_file(target)
