"""Translation through the CLI on tiny random-weight MarianMT models: `subpipe translate`
and `subpipe run --to`, cue counts and times kept, bilingual files, overwrite rules."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import srt
from click.testing import CliRunner, Result

from subpipe.cli import main

URDU = (
    "1\n00:00:01,000 --> 00:00:03,000\n\u202bہر شخص کو اپنی جان،\u202c\n\n"
    "2\n00:00:03,080 --> 00:00:05,500\n\u202bآزادی اور ذاتی تحفّظ کا حق ہے۔\u202c\n\n"
    "3\n00:00:07,000 --> 00:00:09,000\n\u202bپی ٹی وی پر خبریں۔\u202c\n"
)


def invoke(*args: str | Path) -> Result:
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.fixture(scope="module")
def marian_config(tmp_path_factory: pytest.TempPathFactory, tiny_models: dict[str, Path],
                  tiny_asr: str) -> Path:
    models = "\n".join(f'"{pair}" = "{path}"' for pair, path in tiny_models.items())
    path = tmp_path_factory.mktemp("config") / "marian.toml"
    path.write_text(
        tiny_asr + "[vad]\nenabled = false\n"
        f"[translate]\nmax_new_tokens = 8\n[translate.models]\n{models}\n"
    )
    return path


def cues(path: Path) -> list[srt.Subtitle]:
    return list(srt.parse(path.read_text(encoding="utf-8")))


def times(subs: list[srt.Subtitle]) -> list[tuple[float, float]]:
    return [(s.start.total_seconds(), s.end.total_seconds()) for s in subs]


def test_translate_writes_targets_pivot_and_bilingual(marian_config: Path, tmp_path: Path) -> None:
    source = tmp_path / "film.ur.srt"
    source.write_text(URDU, encoding="utf-8")
    result = invoke("translate", source, "--to", "zh", "--config", marian_config)
    assert result.exit_code == 0, result.stderr
    names = [Path(line).name for line in result.stdout.split()]
    # English is the pivot of ur->zh: written because it was computed.
    assert names == ["film.en.srt", "film.zh.srt", "film.ur-zh.srt"]
    src = cues(source)
    for name in ("film.en.srt", "film.zh.srt", "film.ur-zh.srt"):
        subs = cues(tmp_path / name)
        assert times(subs) == times(src), name
        assert all(s.content.strip() for s in subs)
    for bi, ur in zip(cues(tmp_path / "film.ur-zh.srt"), src):
        assert bi.content.startswith(ur.content + "\n")  # Urdu above, Chinese below
    assert source.read_text(encoding="utf-8") == URDU  # the editor's source is never touched
    # The manifest says which engine made each direction (routing decides it per machine).
    record = json.loads((tmp_path / "film.subpipe.json").read_text(encoding="utf-8"))["files"]["film.zh.srt"]
    engines = record["settings"]["translation_engines"]
    assert sorted(engines) == ["en-zh", "ur-en"] and all(e.startswith("marian:") for e in engines.values())


def test_translate_refuses_to_overwrite_an_edited_output(marian_config: Path, tmp_path: Path) -> None:
    source = tmp_path / "film.ur.srt"
    source.write_text(URDU, encoding="utf-8")
    assert invoke("translate", source, "--to", "en", "--config", marian_config).exit_code == 0
    assert invoke("translate", source, "--to", "en", "--config", marian_config).exit_code == 0
    english = tmp_path / "film.en.srt"
    english.write_text(english.read_text(encoding="utf-8").replace("\n1\n", "\n1\n", 1) + "\n", encoding="utf-8")
    edited = english.read_bytes()
    result = invoke("translate", source, "--to", "en", "--config", marian_config)
    assert result.exit_code == 3
    assert "film.en.srt was changed since subpipe wrote it" in result.stderr
    assert english.read_bytes() == edited
    assert invoke("translate", source, "--to", "en", "--config", marian_config, "--force").exit_code == 0


def test_missing_model_says_how_to_get_it_and_writes_nothing(tmp_path: Path) -> None:
    source = tmp_path / "film.ur.srt"
    source.write_text(URDU, encoding="utf-8")
    result = invoke("translate", source, "--to", "zh")
    assert result.exit_code == 2
    line = result.stderr.strip()
    assert line.startswith("Error: MarianMT model for ur-en not found") and "huggingface-cli download" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["film.ur.srt"]


def test_translate_needs_a_language(tmp_path: Path) -> None:
    source = tmp_path / "notes.srt"
    source.write_text(URDU, encoding="utf-8")
    result = invoke("translate", source, "--to", "en")
    assert result.exit_code == 2
    assert "can't tell the language of notes.srt" in result.stderr
    result = invoke("translate", source, "--to", "fr", "--lang", "ur")
    assert result.exit_code == 2 and "'fr' is not one of ur, zh, en" in result.stderr


def test_run_to_translates_the_transcript(media: Path, marian_config: Path, tmp_path: Path) -> None:
    result = invoke("run", media / "tone.mkv", "--lang", "zh", "--to", "ur,en", "--out", tmp_path,
                    "--config", marian_config)
    assert result.exit_code == 0, result.stderr
    names = sorted(Path(line).name for line in result.stdout.split())
    assert names == ["tone.en.srt", "tone.ur.srt", "tone.zh-en.srt", "tone.zh-ur.srt", "tone.zh.srt"]
    source = cues(tmp_path / "tone.zh.srt")
    assert source
    for name in names:
        assert times(cues(tmp_path / name)) == times(source), name


def test_without_marian_english_comes_from_whisper(media: Path, tiny_asr: str, tmp_path: Path) -> None:
    config = tmp_path / "fallback.toml"
    config.write_text(tiny_asr + "[vad]\nenabled = false\n")
    result = invoke("run", media / "tone.mkv", "--lang", "zh", "--to", "en", "--out", tmp_path / "o",
                    "--config", config)
    assert result.exit_code == 0, result.stderr
    assert "made by Whisper's speech translation (whisper-translate:base)" in result.stderr
    record = json.loads((tmp_path / "o" / "tone.subpipe.json").read_text(encoding="utf-8"))["files"]["tone.en.srt"]
    assert record["settings"]["translation_engines"] == {"zh-en": "whisper-translate:base"}
    source, english = cues(tmp_path / "o" / "tone.zh.srt"), cues(tmp_path / "o" / "tone.en.srt")
    assert times(english) == times(source) and english
    assert (tmp_path / "o" / "tone.zh-en.srt").is_file()


def test_without_marian_other_targets_fail_before_any_work(media: Path, tiny_whisper: Path, tmp_path: Path) -> None:
    config = tmp_path / "fallback.toml"
    config.write_text(f'[asr]\nmodel_path = "{tiny_whisper}"\n[vad]\nenabled = false\n')
    result = invoke("run", media / "tone.mkv", "--lang", "zh", "--to", "ur", "--out", tmp_path / "o",
                    "--config", config)
    assert result.exit_code == 2
    assert "MarianMT model for en-ur not found" in result.stderr
    assert not (tmp_path / "o").exists() or not list((tmp_path / "o").iterdir())
