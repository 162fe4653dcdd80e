"""`subpipe run` end to end through the CLI: real ffmpeg, the real resolver and
transcription code on a tiny random-weight Whisper, and every bad input."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import srt
from click.testing import CliRunner, Result

from subpipe.cli import main


def invoke(*args: str | Path) -> Result:
    return CliRunner().invoke(main, [str(a) for a in args])


def error_line(result: Result) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: ")
    return lines[0]


def assert_no_outputs(folder: Path) -> None:
    assert not folder.exists() or sorted(p.name for p in folder.iterdir()) == []


def parse_track(path: Path) -> list[srt.Subtitle]:
    return list(srt.parse(path.read_text(encoding="utf-8")))


def assert_structure(subs: list[srt.Subtitle], duration: float) -> None:
    previous_end = 0.0
    for number, sub in enumerate(subs, start=1):
        start, end = sub.start.total_seconds(), sub.end.total_seconds()
        assert sub.index == number
        assert previous_end <= start < end <= duration + 0.001
        assert sub.content.strip()
        previous_end = end


@pytest.mark.parametrize("container", ["mkv", "wav", "mxf"])
def test_tiny_model_writes_a_valid_track(media: Path, tiny_config: Path, tmp_path: Path, container: str) -> None:
    result = invoke("run", media / f"tone.{container}", "--lang", "zh", "--out", tmp_path, "--config", tiny_config)
    assert result.exit_code == 0, result.stderr
    out = tmp_path / "tone.zh.srt"
    assert result.stdout.strip().splitlines() == [str(out)]
    subs = parse_track(out)
    assert subs, "the tiny model's output should make at least one cue"
    assert_structure(subs, duration=4.0)
    manifest = json.loads((tmp_path / "tone.subpipe.json").read_text())
    record = manifest["files"]["tone.zh.srt"]
    assert record["backend"] == "openai-whisper"
    assert record["settings"]["asr"]["model_path"].endswith("tiny-whisper.pt")
    import hashlib

    assert record["sha256"] == hashlib.sha256(out.read_bytes()).hexdigest()


def test_same_input_gives_the_same_bytes(media: Path, tiny_config: Path, tmp_path: Path) -> None:
    for name in ("a", "b"):
        result = invoke("run", media / "tone.mkv", "--lang", "ur", "--out", tmp_path / name, "--config", tiny_config)
        assert result.exit_code == 0, result.stderr
    assert (tmp_path / "a" / "tone.ur.srt").read_bytes() == (tmp_path / "b" / "tone.ur.srt").read_bytes()


def test_no_cue_over_sound_that_is_not_speech(media: Path, tiny_asr: str, tmp_path: Path) -> None:
    config = tmp_path / "vad.toml"
    config.write_text(tiny_asr)
    result = invoke("run", media / "tone.mkv", "--lang", "zh", "--out", tmp_path / "o", "--config", config)
    assert result.exit_code == 0, result.stderr
    # Whatever the random model invents over a tone, voice activity finds no speech there.
    assert (tmp_path / "o" / "tone.zh.srt").read_bytes() == b""
    assert "no speech was recognised" in result.stderr


def test_auto_picks_only_among_the_project_languages(media: Path, tiny_config: Path, tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text(tiny_config.read_text() + '[project]\nlanguages = ["ur"]\n')
    result = invoke("run", media / "tone.wav", "--out", tmp_path / "o", "--config", config)
    assert result.exit_code == 0, result.stderr
    assert (tmp_path / "o" / "tone.ur.srt").is_file()


def test_audio_stream_is_chosen_by_language_tag_and_by_flag(media: Path, tiny_config: Path, tmp_path: Path) -> None:
    result = invoke("run", media / "two_streams.mkv", "--lang", "ur", "--out", tmp_path / "a",
                    "--config", tiny_config)
    assert result.exit_code == 0, result.stderr
    result = invoke("run", media / "two_streams.mkv", "--lang", "ur", "--audio-stream", "1",
                    "--out", tmp_path / "b", "--config", tiny_config)
    assert result.exit_code == 0, result.stderr
    # The Urdu-tagged stream is stream 1: the default and the explicit choice agree.
    assert (tmp_path / "a" / "two_streams.ur.srt").read_bytes() == (tmp_path / "b" / "two_streams.ur.srt").read_bytes()


def test_silent_audio_gives_an_empty_track_and_a_warning(media: Path, tiny_config: Path, tmp_path: Path) -> None:
    result = invoke("run", media / "silent.mp4", "--lang", "zh", "--out", tmp_path, "--config", tiny_config)
    assert result.exit_code == 0
    assert "Warning:" in result.stderr and "silent" in result.stderr
    assert (tmp_path / "silent.zh.srt").read_bytes() == b""


def test_own_outputs_are_replaced_but_edited_ones_are_refused(media: Path, tiny_config: Path, tmp_path: Path) -> None:
    args = ("run", media / "tone.mkv", "--lang", "zh", "--out", tmp_path, "--config", tiny_config)
    assert invoke(*args).exit_code == 0
    assert invoke(*args).exit_code == 0  # unchanged since we wrote it: replaced
    track = tmp_path / "tone.zh.srt"
    edited = track.read_text(encoding="utf-8").replace("\n\n", "\n\n", 1) + "\n"
    track.write_text(edited, encoding="utf-8")
    result = invoke(*args)
    assert result.exit_code == 3
    assert "tone.zh.srt was changed since subpipe wrote it" in error_line(result)
    assert track.read_text(encoding="utf-8") == edited
    result = invoke(*args, "--force")
    assert result.exit_code == 0, result.stderr
    assert track.read_text(encoding="utf-8") != edited


def test_a_file_subpipe_never_wrote_is_refused(media: Path, tiny_config: Path, tmp_path: Path) -> None:
    (tmp_path / "tone.zh.srt").write_text("1\n00:00:01,000 --> 00:00:02,000\nhand made\n")
    result = invoke("run", media / "tone.mkv", "--lang", "zh", "--out", tmp_path, "--config", tiny_config)
    assert result.exit_code == 3
    assert (tmp_path / "tone.zh.srt").read_text() == "1\n00:00:01,000 --> 00:00:02,000\nhand made\n"


@pytest.mark.parametrize(
    "name, extra, message",
    [
        ("missing.mp4", (), "missing.mp4 does not exist"),
        (".", (), "is a directory"),
        ("empty.mp4", (), "empty.mp4 is empty (0 bytes)"),
        ("text.mp4", (), "text.mp4 is not a media file ffmpeg can read"),
        ("truncated.mp4", (), "truncated.mp4 is not a media file ffmpeg can read"),
        ("no_audio.mp4", (), "no_audio.mp4 has no audio stream"),
        ("two_streams.mkv", ("--audio-stream", "2"), "has no audio stream 2: it has 2 (use --audio-stream 0 to 1)"),
        ("tone.wav", ("--lang", "fr"), "Invalid value for '--lang': 'fr' is not one of"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_no_output(media: Path, tiny_config: Path, tmp_path: Path,
                                                    name: str, extra: tuple[str, ...], message: str) -> None:
    out = tmp_path / "out"
    result = invoke("run", media / name, "--out", out, "--config", tiny_config, *extra)
    assert result.exit_code == 2
    assert message in error_line(result)
    assert_no_outputs(out)


def test_unwritable_output_folder(media: Path, tiny_config: Path, tmp_path: Path) -> None:
    if os.geteuid() == 0:
        locked = Path("/sys")  # root ignores permission bits; sysfs refuses new files even to root
    else:
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o555)
    result = invoke("run", media / "tone.wav", "--lang", "zh", "--out", locked, "--config", tiny_config)
    assert result.exit_code == 2
    assert f"output folder {locked} is not writable" in error_line(result)
    assert not (locked / "tone.zh.srt").exists()


def test_config_with_an_unknown_key_is_named(media: Path, tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text("[asr]\nbeam_sise = 2\n")
    result = invoke("run", media / "tone.wav", "--lang", "zh", "--out", tmp_path / "out", "--config", config)
    assert result.exit_code == 2
    assert "unknown key 'asr.beam_sise'" in error_line(result)
    assert_no_outputs(tmp_path / "out")


def test_weights_that_fail_their_checksum(media: Path, tiny_whisper: Path, tmp_path: Path) -> None:
    config = tmp_path / "pinned.toml"
    config.write_text(f'[asr]\nmodel_path = "{tiny_whisper}"\nmodel_sha256 = "{"0" * 64}"\n')
    result = invoke("run", media / "tone.wav", "--lang", "zh", "--out", tmp_path / "out", "--config", config)
    assert result.exit_code == 2
    assert "fail their checksum" in error_line(result)
    assert not (tmp_path / "out" / "tone.zh.srt").exists()
