"""Issue 12, as an operator meets it through the CLI: unusable paths and caches, damaged
state, doing nothing, two runs at once, and messages that say what is actually wrong.
Each case: one `Error:` line, the right exit status, and no partial output."""

from __future__ import annotations

import errno
import json
import os
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from subpipe.cli import main
from subpipe.outputs import OutputSet


def invoke(*args: str | Path) -> Result:
    return CliRunner().invoke(main, [str(a) for a in args])


def error_line(result: Result) -> str:
    lines = [line for line in result.stderr.strip().splitlines() if not line.startswith("Warning: ")]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: "), result.stderr
    return lines[0]


def files_in(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*")) if folder.exists() else []


def never_transcribe(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make any transcription fail loudly: a test that passes proves none was started."""
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("transcription started")

    monkeypatch.setattr("subpipe.listen.plan_chunks", refuse)


def unwritable(tmp_path: Path) -> Path:
    if os.geteuid() == 0:
        return Path("/sys")  # root ignores permission bits; sysfs refuses new files even to root
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o555)
    return locked


@pytest.fixture()
def film(media: Path, tmp_path: Path) -> Path:
    shutil.copy(media / "tone.wav", tmp_path / "tone.wav")
    return tmp_path / "tone.wav"


# ---- case 2 and 8: a damaged manifest, a folder where an output goes ---------------------

def test_a_damaged_manifest_is_named_and_force_rewrites_it(film: Path, tiny_config: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    args = ("run", film, "--lang", "ur", "--out", out, "--config", tiny_config)
    assert invoke(*args).exit_code == 0
    track = (out / "tone.ur.srt").read_bytes()
    (out / "tone.subpipe.json").write_bytes("{\x00\x01 editor junk".encode("utf-16"))
    result = invoke(*args)
    assert result.exit_code == 3
    assert error_line(result) == ("Error: tone.ur.srt exists, and tone.subpipe.json is not valid JSON, "
                                  "so it vouches for nothing: use --force to overwrite")
    result = invoke(*args, "--force")
    assert result.exit_code == 0, result.stderr
    assert (out / "tone.ur.srt").read_bytes() == track
    assert json.loads((out / "tone.subpipe.json").read_text())["files"]["tone.ur.srt"]["sha256"]
    assert invoke(*args).exit_code == 0  # and it vouches again


def test_a_missing_manifest_is_named(film: Path, tiny_config: Path, tmp_path: Path,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "out"
    args = ("run", film, "--lang", "ur", "--out", out, "--config", tiny_config)
    assert invoke(*args).exit_code == 0
    (out / "tone.subpipe.json").unlink()
    never_transcribe(monkeypatch)
    result = invoke(*args)
    assert result.exit_code == 3
    assert error_line(result) == ("Error: tone.ur.srt exists, and there is no tone.subpipe.json to say that "
                                  "subpipe wrote it: use --force to overwrite")


def test_a_folder_where_an_output_goes_is_named_before_any_work(film: Path, tiny_config: Path, tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "out"
    (out / "tone.ur.srt").mkdir(parents=True)
    never_transcribe(monkeypatch)
    result = invoke("run", film, "--lang", "ur", "--out", out, "--config", tiny_config, "--force")
    assert result.exit_code == 2
    assert error_line(result) == (f"Error: {out / 'tone.ur.srt'} is a folder, where subpipe writes an output: "
                                  "move it away, or choose another --out")
    assert files_in(out) == ["tone.ur.srt"]


def test_with_lang_auto_an_edited_output_is_refused_before_the_transcription(
        film: Path, tiny_asr: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "ur.toml"
    config.write_text(tiny_asr + '[vad]\nenabled = false\n[project]\nlanguages = ["ur"]\n')
    out = tmp_path / "out"
    out.mkdir()
    (out / "tone.ur.srt").write_text("1\n00:00:01,000 --> 00:00:02,000\nhand made\n")
    never_transcribe(monkeypatch)  # the language is detected, then the run stops
    result = invoke("run", film, "--lang", "auto", "--out", out, "--config", config)
    assert result.exit_code == 3, result.output
    assert "tone.ur.srt exists, and there is no tone.subpipe.json" in error_line(result)
    assert (out / "tone.ur.srt").read_text() == "1\n00:00:01,000 --> 00:00:02,000\nhand made\n"


# ---- case 6: two runs of one input into one folder ---------------------------------------

def test_the_second_of_two_runs_says_at_once_that_the_first_is_writing(
        film: Path, tiny_config: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "out"
    out.mkdir()
    never_transcribe(monkeypatch)
    with OutputSet(out, "tone"):  # the first run, in the middle of its work
        result = invoke("run", film, "--lang", "ur", "--out", out, "--config", tiny_config)
    assert result.exit_code == 3
    assert error_line(result) == (f"Error: another subpipe run (pid {os.getpid()}) is writing the outputs of tone "
                                  f"in {out}: wait for it to finish, or choose another --out")
    assert files_in(out) == []


# ---- case 2 and 8: inputs and paths that can't be used ------------------------------------

def test_a_named_pipe_is_no_empty_file(tmp_path: Path, tiny_config: Path) -> None:
    fifo = tmp_path / "live.ts"
    os.mkfifo(fifo)
    result = invoke("run", fifo, "--lang", "ur", "--out", tmp_path / "out", "--config", tiny_config)
    assert result.exit_code == 2
    assert error_line(result) == (f"Error: {fifo} is a named pipe: subpipe reads a media file more than once, "
                                  "so save the stream to a file first")
    assert files_in(tmp_path / "out") == []


@pytest.mark.parametrize("srt_text, problem", [
    ("1\n00:00:04,000 --> 00:00:06,000\nb\n\n2\n00:00:01,000 --> 00:00:02,000\na\n",
     "cue 2 of the ur track (00:00:01,000 --> 00:00:02,000) starts before the one above it"),
    ("1\n00:00:05,000 --> 00:00:04,000\na\n",
     "cue 1 of the ur track (00:00:05,000 --> 00:00:04,000) ends before it starts"),
    ("1\n00:00:05,000 --> 00:00:05,000\na\n", "cue 1 of the ur track (00:00:05,000 --> 00:00:05,000) lasts no time"),
])
def test_translate_names_the_cue_it_cant_keep(tmp_path: Path, srt_text: str, problem: str) -> None:
    source = tmp_path / "film.ur.srt"
    source.write_text(srt_text, encoding="utf-8")
    result = invoke("translate", source, "--to", "en")
    assert result.exit_code == 2
    assert error_line(result) == (f"Error: {source}: {problem}: correct it first "
                                  f"('subpipe check {source}' lists every such cue)")
    assert files_in(tmp_path) == ["film.ur.srt"]


@pytest.mark.parametrize("kind", ["file", "read-only"])
def test_batch_out_that_cant_hold_outputs_is_refused_before_any_work(film: Path, tiny_config: Path, tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch,
                                                                     kind: str) -> None:
    if kind == "file":
        out = tmp_path / "out"
        out.write_text("a file, not a folder\n")
        message = f"Error: output folder {out} is not a folder"
    else:
        out = unwritable(tmp_path)
        message = f"Error: output folder {out} is not writable"
    never_transcribe(monkeypatch)
    result = invoke("batch", film, "--lang", "ur", "--out", out, "--config", tiny_config)
    assert result.exit_code == 2
    assert error_line(result).startswith(message)


def test_a_report_that_cant_be_written_is_refused_before_any_work(film: Path, tiny_config: Path, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    never_transcribe(monkeypatch)
    folder = tmp_path / "report.json"
    folder.mkdir()
    result = invoke("batch", film, "--lang", "ur", "--out", tmp_path / "out", "--report", folder,
                    "--config", tiny_config)
    assert result.exit_code == 2
    assert error_line(result) == f"Error: report {folder} is a folder: give a file name with --report"
    locked = unwritable(tmp_path)
    result = invoke("batch", film, "--lang", "ur", "--report", locked / "r.json", "--config", tiny_config)
    assert result.exit_code == 2
    assert error_line(result).startswith(f"Error: report folder {locked} is not writable")


def test_when_the_report_fails_at_the_end_the_summary_is_still_printed(film: Path, tiny_config: Path,
                                                                       tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    from subpipe.errors import OutputError

    def disk_full(path: Path, text: str) -> None:
        raise OutputError(f"cannot write {path}: No space left on device")

    monkeypatch.setattr("subpipe.batch.report.write_text", disk_full)
    out = tmp_path / "out"
    result = invoke("batch", film, "--lang", "ur", "--out", out, "--config", tiny_config)
    assert result.exit_code == 2
    lines = result.stderr.splitlines()
    assert lines[0].split() == ["FILE", "DURATION", "LANG", "CUES", "FINDINGS", "SECONDS", "STATUS", "ERROR"]
    assert lines[-1] == f"Error: cannot write {out / 'subpipe-batch.json'}: No space left on device"
    assert sum(line.startswith("Error: ") for line in lines) == 1
    assert (out / "tone.ur.srt").is_file()


def test_a_cache_that_is_a_file_is_named_before_any_work(film: Path, tiny_config: Path, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    cache = tmp_path / "cache"
    cache.write_text("not a folder\n")
    monkeypatch.setenv("SUBPIPE_CACHE", str(cache))
    never_transcribe(monkeypatch)
    result = invoke("batch", film, "--lang", "ur", "--out", tmp_path / "out", "--config", tiny_config)
    assert result.exit_code == 2
    assert error_line(result) == (f"Error: the stage cache {cache / 'stages'} can't be used: Not a directory "
                                  "(free space there, set SUBPIPE_CACHE to another folder, or use --no-cache)")
    result = invoke("models", "--prepare")
    assert result.exit_code == 2
    assert error_line(result) == (f"Error: the model cache {cache / 'models' / 'whisper-base'} can't be used: "
                                  "Not a directory (set SUBPIPE_CACHE to a folder that can be written)")


def test_a_full_stage_cache_is_named_in_each_failure(media: Path, tiny_config: Path, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SUBPIPE_CACHE", str(tmp_path / "cache"))
    for name in ("a.wav", "b.wav"):
        shutil.copy(media / "tone.wav", tmp_path / name)

    def full(path: Path, data: bytes) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr("subpipe.cache.write_bytes", full)
    out = tmp_path / "out"
    result = invoke("batch", tmp_path / "a.wav", tmp_path / "b.wav", "--lang", "ur", "--out", out,
                    "--config", tiny_config)
    assert result.exit_code == 1
    report = json.loads((out / "subpipe-batch.json").read_text())
    assert [f["error"] for f in report["files"]] == [
        f"the stage cache {tmp_path / 'cache' / 'stages'} can't be used: No space left on device "
        "(free space there, set SUBPIPE_CACHE to another folder, or use --no-cache)"] * 2
    assert [p for p in files_in(out) if p.endswith(".srt")] == []


# ---- case 5: doing nothing is not success; case 8: what was skipped is listed -------------

def test_batch_on_a_missing_folder(tmp_path: Path) -> None:
    result = invoke("batch", tmp_path / "rushes")
    assert result.exit_code == 2
    assert error_line(result) == f"Error: {tmp_path / 'rushes'}: no such file or folder"


def test_batch_on_an_empty_folder(tmp_path: Path) -> None:
    (tmp_path / "rushes").mkdir()
    result = invoke("batch", tmp_path / "rushes", "--out", tmp_path / "out")
    assert result.exit_code == 2
    assert error_line(result) == f"Error: nothing to subtitle: {tmp_path / 'rushes'} holds no files"
    assert not (tmp_path / "out").exists()


def test_batch_on_a_folder_of_no_media_lists_each_file(tmp_path: Path) -> None:
    rushes = tmp_path / "rushes"
    rushes.mkdir()
    (rushes / "notes.txt").write_text("call sheet\n")
    (rushes / "take_07").write_text("not media either\n")  # no extension: probed
    (rushes / ".DS_Store").write_bytes(b"\0")  # hidden: not ours to mention
    result = invoke("batch", rushes)
    assert result.exit_code == 2
    assert f"Warning: skipped {rushes / 'notes.txt'}: not media" in result.stderr
    assert f"Warning: skipped {rushes / 'take_07'}: not media (ffmpeg can't read it)" in result.stderr
    assert ".DS_Store" not in result.stderr
    assert error_line(result) == f"Error: nothing to subtitle in {rushes}: 2 file(s) or row(s) skipped, listed above"


def test_batch_on_a_csv_whose_rows_are_all_skipped(tmp_path: Path) -> None:
    jobs = tmp_path / "jobs.csv"
    jobs.write_text("path,lang\nmissing.mp4,zh\nother.mp4,fr\n")
    result = invoke("batch", jobs)
    assert result.exit_code == 2
    assert f"Warning: skipped {jobs}:2: missing.mp4: no such file" in result.stderr
    assert error_line(result) == f"Error: nothing to subtitle in {jobs}: 2 file(s) or row(s) skipped, listed above"


def test_a_row_with_a_bad_config_is_skipped_naming_the_setting(film: Path, tmp_path: Path) -> None:
    bad = tmp_path / "fast.toml"
    bad.write_text('[rules.zh]\nmax_cps = "fast"\n')
    jobs = tmp_path / "jobs.csv"
    jobs.write_text("path,lang,targets,config\ntone.wav,zh,,fast.toml\n")
    result = invoke("batch", jobs)
    assert result.exit_code == 2
    assert (f'Warning: skipped {jobs}:2: rules.zh.max_cps = "fast" in {bad}: must be a number above 0'
            in result.stderr)


def test_batch_lists_what_it_skipped_but_not_its_own_outputs(media: Path, tiny_config: Path, tmp_path: Path) -> None:
    rushes = tmp_path / "rushes"
    rushes.mkdir()
    shutil.copy(media / "tone.wav", rushes / "tone.wav")
    (rushes / "notes.txt").write_text("call sheet\n")
    args = ("batch", rushes, "--lang", "ur", "--config", tiny_config, "--review", "--report", tmp_path / "r.json")
    assert invoke(*args).exit_code == 0
    assert (rushes / "tone.ur.srt").is_file() and (rushes / "tone.proxy.mp4").is_file()  # beside the video
    result = invoke(*args)
    assert result.exit_code == 0, result.stderr
    skipped = [line for line in result.stderr.splitlines() if line.startswith("Warning: skipped")]
    assert skipped == [f"Warning: skipped {rushes / 'notes.txt'}: not media"]
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["skipped"] == [{"where": str(rushes / "notes.txt"), "reason": "not media"}]
    assert [Path(f["file"]).name for f in report["files"]] == ["tone.wav"]  # not its proxy


# ---- case 7: whatever subpipe writes passes its own check ---------------------------------

def test_the_track_of_a_silent_film_passes_check(media: Path, tiny_config: Path, tmp_path: Path) -> None:
    result = invoke("run", media / "silent.mp4", "--lang", "zh", "--out", tmp_path, "--config", tiny_config)
    assert result.exit_code == 0, result.stderr
    assert (tmp_path / "silent.zh.srt").read_bytes() == b""
    result = invoke("check", tmp_path / "silent.zh.srt", "--video", media / "silent.mp4")
    assert result.exit_code == 0, result.output
