"""Shared fixtures: real media made by ffmpeg, a tiny random-weight Whisper, configs.

Tests never touch the network or the user's cache.
"""

from __future__ import annotations

import os
import sys
from dataclasses import asdict
from pathlib import Path

import pytest

# Set before anything imports transformers or the resolver: a hub name must fail at once.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["SUBPIPE_OFFLINE"] = "1"

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"
sys.path.insert(0, str(REPO / "fixtures"))


@pytest.fixture(scope="session", autouse=True)
def _private_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model cache of the test session's own (the real weights are rebuilt into it)."""
    cache = tmp_path_factory.mktemp("subpipe-cache")
    os.environ["SUBPIPE_CACHE"] = str(cache)
    # Tests never convert the real 253 MB Gemma weights, installed or not: routing takes
    # the Whisper fallback as on a machine without them (tests/test_lm.py builds a tiny model).
    os.environ["SUBPIPE_LM_PACKAGES"] = "0"
    return cache


@pytest.fixture(scope="session")
def media(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Small real media files (tones, silence, broken files) made with ffmpeg."""
    import make_media

    out = tmp_path_factory.mktemp("media")
    make_media.make_all(out)
    return out


@pytest.fixture(scope="session")
def sample_zh() -> Path:
    return REPO / "fixtures" / "sample_zh.mp4"


def build_tiny_whisper(path: Path, text_positions: int = 448) -> Path:
    """An openai-whisper checkpoint with random weights and the real multilingual vocabulary,
    its decoder ``text_positions`` tokens long (Whisper's 448; fewer reach the limit sooner)."""
    import torch
    from whisper.model import ModelDimensions, Whisper

    dims = ModelDimensions(
        n_mels=80, n_audio_ctx=1500, n_audio_state=64, n_audio_head=2, n_audio_layer=1,
        n_vocab=51865, n_text_ctx=text_positions, n_text_state=64, n_text_head=2, n_text_layer=1,
    )
    torch.manual_seed(0)
    model = Whisper(dims)
    # Default init leaves logits nearly tied, so the argmax (and the output) flips with
    # the thread count. Wide random weights give clear winners: the same text every run.
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for parameter in model.parameters():
            if parameter.dim() >= 2:
                parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.5)
    torch.save({"dims": asdict(dims), "model_state_dict": model.state_dict()}, path)
    return path


@pytest.fixture(scope="session")
def tiny_whisper(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An openai-whisper checkpoint with random weights and the real multilingual vocabulary."""
    return build_tiny_whisper(tmp_path_factory.mktemp("tiny") / "tiny-whisper.pt")


@pytest.fixture(scope="session")
def tiny_resolved(tiny_whisper: Path):
    """The tiny checkpoint as the weights resolver hands it to a backend."""
    from subpipe.asr.weights import ResolvedModel
    from subpipe.digest import sha256_file

    return ResolvedModel("tiny-random", tiny_whisper, "explicit", sha256_file(tiny_whisper), tiny_whisper.stat().st_size)


@pytest.fixture(scope="session")
def tiny_asr(tiny_whisper: Path) -> str:
    """The [asr] section that points the resolver at the tiny model, greedy and quick.

    The backend is pinned; the glossary prompt is on because, primed with it, the
    random model writes a few words per second of tone instead of over a hundred,
    which the shaper would spend minutes planning.
    """
    return f'[asr]\nmodel_path = "{tiny_whisper}"\nbeam_size = 1\ntemperatures = [0.0]\nbackend = "openai-whisper"\nglossary_prompt = true\n'


@pytest.fixture(scope="session")
def tiny_config(tmp_path_factory: pytest.TempPathFactory, tiny_asr: str) -> Path:
    """A project config for the tiny model (``tiny_asr``), with voice activity off.

    The test media are tones, and the point is the structure of what a model's output
    becomes, not speech detection (tested on its own).
    """
    path = tmp_path_factory.mktemp("config") / "tiny.toml"
    path.write_text(tiny_asr + "[vad]\nenabled = false\n")
    return path


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Tiny random-weight MarianMT models for ur-en, en-ur, zh-en, en-zh (real tokenizers)."""
    from marian_tiny import build_pairs

    return build_pairs(tmp_path_factory.mktemp("marian"))
