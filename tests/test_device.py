"""`--device cpu|cuda|cuda:N|auto` and `[asr] device`: resolved before any work, the GPU's
settings in force there, and the device in the manifest."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_cli_run import error_line, invoke

from subpipe.asr import device as devices
from subpipe.asr.device import gpu_count, placed, resolve_device
from subpipe.config import AsrSettings, load_config, with_overrides
from subpipe.errors import ConfigError, UsageError

MISSING = f"cuda:{gpu_count()}"  # one past the last GPU: missing on every machine


def test_a_missing_gpu_is_one_line_exit_2_before_any_work(media: Path, tiny_config: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = invoke("run", media / "tone.wav", "--lang", "zh", "--out", out, "--config", tiny_config,
                    "--device", MISSING)
    assert result.exit_code == 2
    assert f"device '{MISSING}' asked for" in error_line(result)
    assert not out.exists()


def test_a_missing_gpu_stops_a_batch_before_its_first_file(media: Path, tiny_config: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = invoke("batch", media / "tone.wav", "--out", out, "--config", tiny_config, "--device", MISSING)
    assert result.exit_code == 2
    assert f"device '{MISSING}' asked for" in error_line(result)
    assert not out.exists()


def test_a_config_that_asks_for_a_missing_gpu_stops_a_batch_too(media: Path, tiny_asr: str, tmp_path: Path) -> None:
    config = tmp_path / "gpu.toml"
    config.write_text(tiny_asr + f'device = "{MISSING}"\n')
    result = invoke("batch", media / "tone.wav", "--out", tmp_path / "out", "--config", config)
    assert result.exit_code == 2
    assert f"device '{MISSING}'" in error_line(result)


def test_an_unknown_device_is_refused_by_name(media: Path, tiny_config: Path, tmp_path: Path) -> None:
    result = invoke("run", media / "tone.wav", "--out", tmp_path, "--config", tiny_config, "--device", "tpu")
    assert result.exit_code == 2
    assert "unknown device 'tpu': choose cpu, cuda, cuda:N or auto" in error_line(result)
    config = tmp_path / "bad.toml"
    config.write_text('[asr]\ndevice = "gpu"\n')
    with pytest.raises(ConfigError, match='asr.device = "gpu"'):
        load_config(config)


@pytest.mark.skipif(gpu_count() > 0, reason="auto takes the GPU on this machine")
def test_auto_without_a_gpu_runs_on_the_cpu_and_the_manifest_says_so(media: Path, tiny_config: Path,
                                                                     tmp_path: Path) -> None:
    result = invoke("run", media / "tone.wav", "--lang", "zh", "--out", tmp_path, "--config", tiny_config,
                    "--device", "auto")
    assert result.exit_code == 0, result.stderr
    record = json.loads((tmp_path / "tone.subpipe.json").read_text())["files"]["tone.zh.srt"]
    assert record["settings"]["asr"]["device"] == "cpu"
    assert record["backend"] == "openai-whisper"  # the CPU's backend, from the config
    assert record["settings"]["asr"]["beam_size"] == 1


@pytest.mark.skipif(gpu_count() > 0, reason="this machine has a GPU")
def test_cuda_without_a_gpu_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="torch sees no usable GPU here: use cpu or auto"):
        resolve_device("cuda")
    assert resolve_device("auto") == "cpu"


def test_on_a_gpu_the_gpu_settings_hold(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(devices, "gpu_count", lambda: 2)
    asr = AsrSettings(device="auto", backend="faster-whisper", beam_size=3, batch_size=8)
    on_gpu = placed(asr)
    assert (on_gpu.device, on_gpu.backend, on_gpu.beam_size, on_gpu.batch_size) == ("cuda", "transformers", 1, 64)
    assert placed(on_gpu) == on_gpu  # placing settings already placed changes nothing
    assert placed(AsrSettings(device="cuda:1")).device == "cuda:1"
    with pytest.raises(UsageError, match=r"torch sees 2 GPU\(s\) \(cuda:0 to cuda:1\)"):
        placed(AsrSettings(device="cuda:2"))
    on_cpu = placed(AsrSettings(device="cpu", backend="faster-whisper", beam_size=3))
    assert (on_cpu.backend, on_cpu.beam_size, on_cpu.batch_size) == ("faster-whisper", 3, 8)


def test_a_backend_named_on_the_command_line_holds_on_the_gpu_too() -> None:
    config = with_overrides(load_config(), backend="openai-whisper", device="cuda")
    asr = config.asr
    assert (asr.backend, asr.gpu_backend, asr.device) == ("openai-whisper", "openai-whisper", "cuda")
