"""`subpipe check` through the CLI: exit statuses, formats, and the video's facts."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from subpipe.cli import main

DATA = Path(__file__).parent / "data" / "check"


def invoke(*args: str | Path):
    return CliRunner().invoke(main, [str(a) for a in args])


def test_clean_file_exits_0() -> None:
    result = invoke("check", DATA / "good_zh.srt", "--lang", "zh")
    assert result.exit_code == 0, result.output
    assert result.stdout.endswith("no problems found\n")


def test_broken_rules_exit_1_with_one_line_each() -> None:
    result = invoke("check", DATA / "long_line_zh.srt", "--lang", "zh")
    assert result.exit_code == 1
    findings = [line for line in result.stdout.splitlines() if line.startswith("cue ")]
    assert findings and all("chars_per_line" in line and "> 16" in line for line in findings)


def test_json_for_tools() -> None:
    result = invoke("check", DATA / "overlap.srt", "--format", "json")
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert report["status"] == 1
    assert "overlap" in {f["rule"] for f in report["findings"]}


def test_unreadable_file_is_one_error_line_and_exit_2() -> None:
    result = invoke("check", DATA / "binary.srt")
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and "cannot read" in lines[0]


def test_missing_file_exits_2() -> None:
    result = invoke("check", DATA / "nope.srt")
    assert result.exit_code == 2
    assert result.stderr.startswith("Error: ")


def test_video_sets_the_audio_end(media: Path, tmp_path: Path) -> None:
    srt_file = tmp_path / "tone.en.srt"
    srt_file.write_text("1\n00:00:01,000 --> 00:00:03,000\nhello there\n\n2\n00:00:03,500 --> 00:00:05,000\ntoo late\n")
    result = invoke("check", srt_file, "--lang", "en", "--video", media / "tone.mp4")
    assert result.exit_code == 1
    assert "past_audio_end" in result.stdout and "cue 2" in result.stdout
    assert "cue 1" not in result.stdout


# ---- issue 12 --------------------------------------------------------------------

def test_the_track_of_a_silent_film_passes_check(tmp_path: Path) -> None:
    track = tmp_path / "silent.zh.srt"
    track.write_bytes(b"")  # what `subpipe run` writes for a film without speech
    result = invoke("check", track)
    assert result.exit_code == 0, result.output
    assert "warning: no cues" in result.stdout
    assert result.stderr == ""


@pytest.mark.parametrize("name, reason", [
    ("binary.srt", "binary data or UTF-16 without BOM (NUL byte at offset 8)"),
    ("nope.srt", "cannot open: No such file or directory"),
])
def test_json_is_printed_for_an_unreadable_file_too(name: str, reason: str) -> None:
    result = invoke("check", DATA / name, "--format", "json")
    assert result.exit_code == 2
    report = json.loads(result.stdout)
    assert (report["status"], report["unreadable"], report["findings"]) == (2, reason, [])
    assert result.stderr == f"Error: {DATA / name}: cannot read: {reason}\n"


def test_a_named_pipe_is_refused_without_waiting_for_a_writer(tmp_path: Path) -> None:
    fifo = tmp_path / "live.srt"
    os.mkfifo(fifo)
    result = invoke("check", fifo)
    assert result.exit_code == 2
    assert result.stderr == f"Error: {fifo}: cannot read: not a regular file (a named pipe or a device)\n"
