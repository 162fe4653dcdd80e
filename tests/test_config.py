"""Settings from TOML: defaults, a project file on top, unknown keys named."""

from __future__ import annotations

from pathlib import Path

import pytest

from dataclasses import replace

from subpipe.config import Config, load_config
from subpipe.errors import ConfigError


def test_defaults_follow_the_rules_document() -> None:
    config = load_config()
    assert config.asr.backend == "faster-whisper"
    assert config.project.languages == ("ur", "zh", "en")
    zh, en = config.rules["zh"], config.rules["en"]
    assert (zh.max_chars_per_line, zh.max_cps, zh.halfwidth_counts_half) == (16, 9.0, True)
    assert (en.max_chars_per_line, en.max_cps, en.max_duration) == (42, 20.0, 7.0)
    assert config.rules_for("zh", fps=50).min_gap == pytest.approx(0.04)


def test_the_settings_defaults_are_the_shipped_defaults() -> None:
    # One home for each default: the dataclasses (used by the library's callers) hold
    # configs/default.toml's values, rules apart (they exist per language only there).
    config = load_config()
    assert replace(config, rules={}) == Config()


def test_project_file_overrides_single_keys(tmp_path: Path) -> None:
    path = tmp_path / "p.toml"
    path.write_text('[rules.zh]\nmax_cps = 7.0\n[asr]\nbeam_size = 1\n')
    config = load_config(path)
    assert config.rules["zh"].max_cps == 7.0
    assert config.rules["zh"].max_chars_per_line == 16
    assert config.asr.beam_size == 1


@pytest.mark.parametrize(
    "text, key",
    [
        ("[asr]\nbeam_sise = 3\n", "asr.beam_sise"),
        ("[rules.fr]\nmax_cps = 3\n", "rules.fr"),
        ("[transcribe]\nx = 1\n", "transcribe"),
        ("[rules.zh]\nmax_cpl = 3\n", "rules.zh.max_cpl"),
    ],
)
def test_unknown_keys_are_named(tmp_path: Path, text: str, key: str) -> None:
    path = tmp_path / "p.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=f"unknown key '{key}'"):
        load_config(path)


def test_bad_values_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "p.toml"
    path.write_text('[project]\nlanguages = ["ur", "th"]\n')
    with pytest.raises(ConfigError, match="project.languages"):
        load_config(path)
    path.write_text("not = toml = at all")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(path)
