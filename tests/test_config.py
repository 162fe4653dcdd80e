"""Settings from TOML: defaults, a project file on top, unknown keys named."""

from __future__ import annotations

import json
import math
import os
import re
import tomllib
import typing
from dataclasses import fields, replace
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from subpipe.config import ALLOWED, Config, load_config
from subpipe.errors import ConfigError

REPO = Path(__file__).resolve().parent.parent


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


# ---- issue 12: every setting is checked when it is loaded -----------------------------

DEFAULTS = tomllib.loads((REPO / "configs" / "default.toml").read_text(encoding="utf-8"))


def settings_of(table: dict, prefix: str = "") -> list[tuple[str, object]]:
    """Every (dotted key, default value) of default.toml; translate.models and the
    output's tables of fonts and their sizes are one setting each."""
    found = []
    for key, value in table.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and name not in ("translate.models", "output.fonts", "output.font_scale"):
            found += settings_of(value, f"{name}.")
        else:
            found.append((name, value))
    return found


def toml(value: object) -> str:
    """A value as TOML writes it (enough for the tests' values)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ", ".join(toml(v) for v in value) + "]"
    assert isinstance(value, dict)
    return "{" + ", ".join(f"{json.dumps(k)} = {toml(v)}" for k, v in value.items()) + "}"


def project_file(tmp_path: Path, key: str, value: object) -> Path:
    table, _, name = key.rpartition(".")
    path = tmp_path / "p.toml"
    path.write_text(f"[{table}]\n{json.dumps(name)} = {toml(value)}\n", encoding="utf-8")
    return path


def wrong_type(value: object) -> object:
    return 3 if isinstance(value, (str, list, dict)) else "three"


@pytest.mark.parametrize("key, default", settings_of(DEFAULTS), ids=lambda v: v if isinstance(v, str) else "")
def test_every_setting_refuses_a_value_of_the_wrong_type(tmp_path: Path, key: str, default: object) -> None:
    bad = wrong_type(default)
    with pytest.raises(ConfigError) as info:
        load_config(project_file(tmp_path, key, bad))
    assert str(info.value).startswith(f"{key} = {json.dumps(bad)} in {tmp_path / 'p.toml'}: must be ")


def test_every_number_has_a_range() -> None:
    numbers = [k for k, v in settings_of(DEFAULTS) if isinstance(v, (int, float)) and not isinstance(v, bool)]
    general = {re.sub(r"^rules\.[^.]+\.", "rules.*.", k) for k in numbers}
    assert general <= set(ALLOWED), sorted(general - set(ALLOWED))


@pytest.mark.parametrize("key, value, message", [
    ("rules.zh.max_cps", "fast", 'rules.zh.max_cps = "fast" in {p}: must be a number above 0, at most 1000'),
    ("rules.zh.fps", "25", 'rules.zh.fps = "25" in {p}: must be a number above 0, at most 1000'),
    ("asr.beam_size", "three", 'asr.beam_size = "three" in {p}: must be a whole number from 1 to 32'),
    ("vad.threshold", "high", 'vad.threshold = "high" in {p}: must be a number from 0 to 1'),
    ("vad.threshold", 1.5, "vad.threshold = 1.5 in {p}: must be a number from 0 to 1"),
    ("asr.beam_size", 0, "asr.beam_size = 0 in {p}: must be a whole number from 1 to 32"),
    ("asr.beam_size", 2.5, "asr.beam_size = 2.5 in {p}: must be a whole number from 1 to 32"),
    ("asr.beam_size", True, "asr.beam_size = true in {p}: must be a whole number from 1 to 32"),
    ("rules.en.max_cps", 0, "rules.en.max_cps = 0 in {p}: must be a number above 0, at most 1000"),
    ("rules.en.max_cps", float("nan"), "rules.en.max_cps = NaN in {p}: must be a number above 0, at most 1000"),
    ("rules.ur.min_gap_frames", -1, "rules.ur.min_gap_frames = -1 in {p}: must be a whole number from 0 to 1000"),
    ("rules.ur.max_lines", 0, "rules.ur.max_lines = 0 in {p}: must be a whole number from 1 to 100"),
    ("asr.temperatures", [], "asr.temperatures = [] in {p}: must be a list of numbers, one to ten, each from 0 to 2"),
    ("asr.temperatures", [0.0, "hot"], 'asr.temperatures = [0.0, "hot"] in {p}: must be a list of numbers, '
                                       "one to ten, each from 0 to 2"),
    ("asr.backend", "kaldi", 'asr.backend = "kaldi" in {p}: must be one of openai-whisper, faster-whisper, '
                             "transformers, auto"),
    ("asr.device", "gpu", 'asr.device = "gpu" in {p}: must be cpu, cuda, cuda:N or auto'),
    ("asr.model_sha256", "abc", 'asr.model_sha256 = "abc" in {p}: must be empty or 64 hexadecimal digits'),
    ("vad.enabled", 1, "vad.enabled = 1 in {p}: must be true or false"),
    ("translate.max_sentence_gap", -0.5, "translate.max_sentence_gap = -0.5 in {p}: must be a number from 0 to 3600"),
    ("project.languages", ["ur", "ur"], 'project.languages = ["ur", "ur"] in {p}: must be a list of some of '
                                        "ur, zh, en, each once"),
    ("bilingual.pairs", ["ur"], 'bilingual.pairs = ["ur"] in {p}: must be a list of language pairs such as ur-zh'),
    ("output.urdu_direction_marks", "ltr", 'output.urdu_direction_marks = "ltr" in {p}: must be one of rle, rlm, none'),
    ("batch.engine", "dask", 'batch.engine = "dask" in {p}: must be one of local, ray'),
    ("batch.address", "ray://head:10001", 'batch.address = "ray://head:10001" in {p}: must be empty, auto, or the '
                                          "HOST:PORT of a Ray cluster's head"),
    ("batch.retries", -1, "batch.retries = -1 in {p}: must be a whole number from 0 to 100"),
    ("batch.part_mb", 0, "batch.part_mb = 0 in {p}: must be a number from 0.01 to 1024"),
    # Issue 22: upper bounds, and numbers of hundreds of digits.
    ("asr.beam_size", 10**400, f"asr.beam_size = {str(10**400)[:57]}... in {{p}}: must be a whole number from 1 to 32"),
    ("rules.zh.max_cps", 10**400, f"rules.zh.max_cps = {str(10**400)[:57]}... in {{p}}: must be a number above 0, "
                                  "at most 1000"),
    ("vad.threads", 100_000_000, f"vad.threads = 100000000 in {{p}}: must be a whole number from 0 to "
                                 f"{4 * (os.cpu_count() or 1)}"),
    ("translate.num_beams", 1000, "translate.num_beams = 1000 in {p}: must be a whole number from 1 to 32"),
    ("asr.temperatures", [0.0] * 11, f"asr.temperatures = {json.dumps([0.0] * 11)} in {{p}}: must be a list of "
                                     "numbers, one to ten, each from 0 to 2"),
])
def test_bad_settings_name_the_key_the_value_and_what_is_allowed(tmp_path: Path, key: str, value: object,
                                                                 message: str) -> None:
    path = project_file(tmp_path, key, value)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value) == message.format(p=path)


def test_minimum_duration_must_be_below_the_maximum(tmp_path: Path) -> None:
    path = tmp_path / "p.toml"
    path.write_text("[rules.zh]\nmin_duration = 7.0\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value) == f"rules.zh.min_duration = 7 in {path}: must be below rules.zh.max_duration (7)"


def test_whole_numbers_are_fine_where_numbers_go(tmp_path: Path) -> None:
    path = tmp_path / "p.toml"
    path.write_text("[rules.zh]\nmax_cps = 8\nfps = 24\n[vad]\nthreshold = 1\n")
    config = load_config(path)
    assert (config.rules["zh"].max_cps, config.rules["zh"].fps, config.vad.threshold) == (8.0, 24.0, 1.0)
    assert isinstance(config.rules["zh"].max_cps, float)


@pytest.mark.parametrize("encoding", ["utf-8-sig", "utf-16"])
def test_a_config_with_a_byte_order_mark_is_read(tmp_path: Path, encoding: str) -> None:
    path = tmp_path / "p.toml"
    path.write_bytes('# 项目\n[rules.zh]\nmax_cps = 7.0\n'.encode(encoding))
    assert path.read_bytes()[:2] in (b"\xef\xbb", b"\xff\xfe", b"\xfe\xff")
    assert load_config(path).rules["zh"].max_cps == 7.0


def test_a_config_nested_too_deeply_is_named(tmp_path: Path) -> None:
    path = tmp_path / "p.toml"
    path.write_text("x = " + "[" * 20_000 + "]" * 20_000 + "\n")
    with pytest.raises(ConfigError, match=f"config file {path} is not a config: its values are nested too deeply"):
        load_config(path)


def test_a_config_that_is_not_text_is_named(tmp_path: Path) -> None:
    path = tmp_path / "p.toml"
    path.write_bytes(b"[asr]\nmodel = \"\xff\xfe\xfd\"\n")
    with pytest.raises(ConfigError, match=f"config file {path} is not UTF-8 text"):
        load_config(path)


# ---- properties -------------------------------------------------------------------

KEYS = [key for key, _ in settings_of(DEFAULTS)]
WORDS = st.sampled_from(["", "cpu", "cuda", "auto", "rle", "rlm", "none", "ur", "zh", "en", "ur-zh", "zh-en",
                         "base", "int8", "faster-whisper", "0" * 64, "fast", "три", "ج"])
SCALARS = st.one_of(st.booleans(), st.integers(-(2 ** 63), 2 ** 63 - 1), st.integers(-3, 30),
                    st.floats(allow_nan=True, allow_infinity=True), st.floats(-1, 30), WORDS)
VALUES = st.one_of(SCALARS, st.lists(SCALARS, max_size=4), st.dictionaries(WORDS, SCALARS, max_size=3))


def holds_its_type_and_range(config: Config) -> None:
    """What every loaded config promises, written independently of the loader."""
    for section in (config.project, config.asr, config.output, config.cues, config.vad, config.translate,
                    config.bilingual, config.batch, *config.rules.values()):
        for f in fields(section):
            value, kind = getattr(section, f.name), typing.get_type_hints(type(section))[f.name]
            origin = typing.get_origin(kind) or kind
            assert isinstance(value, origin), (f.name, value)
            assert kind is bool or not isinstance(value, bool), (f.name, value)
            if isinstance(value, float):
                assert math.isfinite(value), (f.name, value)
    asr, vad, tr = config.asr, config.vad, config.translate
    assert asr.beam_size >= 1 and asr.batch_size >= 1 and asr.seed >= 0 and asr.chunk_seconds >= 1
    assert asr.temperatures and all(t >= 0 for t in asr.temperatures)
    assert 0 <= vad.threshold <= 1 and min(vad.min_speech_ms, vad.min_silence_ms, vad.pad_ms, vad.decode_pad_ms) >= 0
    assert min(tr.batch_size, tr.num_beams, tr.max_new_tokens, tr.max_cues_per_sentence) >= 1
    assert tr.max_sentence_gap >= 0
    assert config.project.languages and set(config.project.languages) <= {"ur", "zh", "en"}
    b = config.batch
    assert b.engine in ("local", "ray") and b.film_timeout >= 0 and b.retries >= 0 and b.cpus_per_actor >= 1
    assert b.gpus_per_actor > 0 and 0.01 <= b.part_mb <= 1024
    assert b.address in ("", "auto") or re.fullmatch(r"[^\s/:]+:[0-9]+", b.address)
    for rules in config.rules.values():
        assert rules.max_chars_per_line > 0 and rules.max_lines >= 1 and rules.max_cps > 0 and rules.fps > 0
        assert 0 <= rules.min_duration < rules.max_duration and rules.min_gap_frames >= 0


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(KEYS), VALUES, max_size=6))
def test_any_settings_load_within_their_ranges_or_are_refused(tmp_path_factory: pytest.TempPathFactory,
                                                              overrides: dict[str, object]) -> None:
    tables: dict[str, list[str]] = {}
    for key, value in overrides.items():
        table, _, name = key.rpartition(".")
        tables.setdefault(table, []).append(f"{json.dumps(name)} = {toml(value)}")
    path = tmp_path_factory.mktemp("p") / "p.toml"
    path.write_text("".join(f"[{t}]\n" + "\n".join(lines) + "\n" for t, lines in tables.items()), encoding="utf-8")
    try:
        config = load_config(path)
    except ConfigError as exc:
        assert str(exc).count("\n") == 0 and str(path) in str(exc)
        return
    holds_its_type_and_range(config)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200) | st.text(max_size=200).map(str.encode))
def test_any_bytes_give_a_config_or_a_config_error(tmp_path_factory: pytest.TempPathFactory, data: bytes) -> None:
    path = tmp_path_factory.mktemp("p") / "p.toml"
    path.write_bytes(data)
    try:
        holds_its_type_and_range(load_config(path))
    except ConfigError as exc:
        assert "\n" not in str(exc) and str(path) in str(exc)  # one line that names the file


@pytest.mark.parametrize("text, name, hint", [
    ('"asr.beam_size" = 3\n', "asr.beam_size", "write asr.beam_size without quotes, or beam_size under [asr]"),
    ('[rules]\n"zh.max_cps" = 7.0\n', "rules.zh.max_cps",
     "write rules.zh.max_cps without quotes, or max_cps under [rules.zh]"),
])
def test_a_quoted_dotted_key_gets_a_hint(tmp_path: Path, text: str, name: str, hint: str) -> None:
    path = tmp_path / "p.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value) == (f"unknown key '{name}' in config file {path} (a quoted key with a dot is one name "
                               f"to TOML: {hint})")


def test_a_number_of_thousands_of_digits_is_named(tmp_path: Path) -> None:
    path = tmp_path / "p.toml"
    path.write_text(f"[asr]\nbeam_size = {'9' * 5000}\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value) == f"config file {path} is not a config: it holds a number thousands of digits long"
