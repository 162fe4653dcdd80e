"""`subpipe batch`, the stage cache and chunked transcripts, on real media and the tiny Whisper."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from children import stop_signals_default
from click.testing import CliRunner, Result

from subpipe.asr import plan_chunks
from subpipe.cli import main


def invoke(*args: str | Path) -> Result:
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.fixture()
def season(media: Path, tmp_path: Path) -> Path:
    """Two films with the same name in two folders, one broken file, one note."""
    root = tmp_path / "season"
    (root / "ep1").mkdir(parents=True)
    (root / "ep2" / "raw").mkdir(parents=True)
    shutil.copy(media / "tone.wav", root / "ep1" / "film.wav")
    shutil.copy(media / "tone.mkv", root / "ep2" / "film.mkv")
    shutil.copy(media / "tone.mp4", root / "ep2" / "raw" / "take_07")  # no extension: found by probing
    shutil.copy(media / "text.mp4", root / "ep2" / "broken.mp4")
    (root / "ep2" / "notes.txt").write_text("not media\n")
    return root


def entries(cache: Path, stage: str) -> dict[Path, int]:
    folder = cache / "stages" / stage
    return {p: p.stat().st_mtime_ns for p in folder.rglob("*") if p.is_file() and p.suffix != ".lock"}


def test_a_failing_file_does_not_stop_the_rest(season: Path, tiny_config: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = invoke("batch", season, "--out", out, "--lang", "zh", "--config", tiny_config)
    assert result.exit_code == 1
    written = sorted(Path(line).relative_to(out).as_posix() for line in result.stdout.split())
    assert written == ["ep1/film.zh.srt", "ep2/film.zh.srt", "ep2/raw/take_07.zh.srt"]
    report = json.loads((out / "subpipe-batch.json").read_text())
    status = {Path(f["file"]).relative_to(season).as_posix(): f["status"] for f in report["files"]}
    assert status == {"ep1/film.wav": "ok", "ep2/film.mkv": "ok", "ep2/raw/take_07": "ok", "ep2/broken.mp4": "failed"}
    assert (report["ok"], report["failed"]) == (3, 1)
    broken = next(f for f in report["files"] if f["file"].endswith("broken.mp4"))
    assert "not a media file ffmpeg can read" in broken["error"]
    header = next(line for line in result.stderr.splitlines() if line.startswith("FILE"))
    assert header.split() == ["FILE", "DURATION", "LANG", "CUES", "FINDINGS", "SECONDS", "STATUS", "ERROR"]


def test_manifest_rows_are_checked_and_bad_ones_skipped_by_line(media: Path, tiny_config: Path,
                                                                 tmp_path: Path) -> None:
    shutil.copy(media / "tone.wav", tmp_path / "a.wav")
    shutil.copy(media / "tone.mkv", tmp_path / "b.mkv")
    manifest = tmp_path / "jobs.csv"
    manifest.write_text(
        "path,lang,targets\n"
        "a.wav,zh,\n"
        "missing.mp4,zh,\n"
        "b.mkv,fr,\n"
        "b.mkv,ur,de\n"
        "b.mkv,en,\n"
    )
    result = invoke("batch", manifest, "--out", tmp_path / "out", "--config", tiny_config)
    assert result.exit_code == 0, result.stderr
    assert "skipped" in result.stderr
    assert f"{manifest}:3: missing.mp4: no such file" in result.stderr
    assert f"{manifest}:4: bad language 'fr'" in result.stderr
    assert f"{manifest}:5: bad target language 'de'" in result.stderr
    assert sorted(p.name for p in (tmp_path / "out").glob("*.srt")) == ["a.zh.srt", "b.en.srt"]


def test_second_run_reuses_every_stage(season: Path, tiny_config: Path, tmp_path: Path,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    cache = tmp_path / "cache"
    monkeypatch.setenv("SUBPIPE_CACHE", str(cache))
    args = ("batch", season / "ep1", "--out", tmp_path / "out", "--lang", "zh", "--config", tiny_config)
    assert invoke(*args).exit_code == 0
    first = tmp_path / "out" / "film.zh.srt"
    before = first.read_bytes()
    transcript = entries(cache, "transcript")
    assert len(transcript) == 1
    # The audio is decoded again each time (seconds for hours): cached, it would pass through memory whole.
    assert entries(cache, "audio") == {}
    assert invoke(*args).exit_code == 0
    assert first.read_bytes() == before
    # Nothing was rebuilt: the entries are the very same files.
    assert entries(cache, "transcript") == transcript


def test_changing_only_translation_settings_redoes_only_translation(
        media: Path, tiny_models: dict[str, Path], tiny_asr: str, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    cache = tmp_path / "cache"
    monkeypatch.setenv("SUBPIPE_CACHE", str(cache))
    shutil.copy(media / "tone.mkv", tmp_path / "film.mkv")
    models = "\n".join(f'"{pair}" = "{path}"' for pair, path in tiny_models.items())
    config = tmp_path / "c.toml"

    def write_config(batch_size: int) -> None:
        config.write_text(tiny_asr + "[vad]\nenabled = false\n"
                          f"[translate]\nmax_new_tokens = 6\nbatch_size = {batch_size}\n[translate.models]\n{models}\n")

    args = ("batch", tmp_path / "film.mkv", "--out", tmp_path / "out", "--lang", "zh", "--to", "en",
            "--config", config)
    write_config(16)
    assert invoke(*args).exit_code == 0
    transcript, translation = entries(cache, "transcript"), entries(cache, "translation")
    write_config(4)
    assert invoke(*args).exit_code == 0
    assert entries(cache, "transcript") == transcript
    assert len(entries(cache, "translation")) == len(translation) + 1


def test_a_corrupt_cache_entry_is_rebuilt(season: Path, tiny_config: Path, tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    cache = tmp_path / "cache"
    monkeypatch.setenv("SUBPIPE_CACHE", str(cache))
    args = ("batch", season / "ep1", "--out", tmp_path / "out", "--lang", "zh", "--config", tiny_config)
    assert invoke(*args).exit_code == 0
    track = (tmp_path / "out" / "film.zh.srt").read_bytes()
    (entry,) = entries(cache, "transcript")
    data = bytearray(entry.read_bytes())
    data[-5] ^= 0x20
    entry.write_bytes(bytes(data))
    result = invoke(*args)
    assert result.exit_code == 0
    assert "corrupt; rebuilding it" in result.stderr
    assert (tmp_path / "out" / "film.zh.srt").read_bytes() == track


def test_no_cache_and_cache_clean(season: Path, tiny_config: Path, tmp_path: Path,
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    cache = tmp_path / "cache"
    monkeypatch.setenv("SUBPIPE_CACHE", str(cache))
    args = ("batch", season / "ep1", "--out", tmp_path / "out", "--lang", "zh", "--config", tiny_config)
    assert invoke(*args, "--no-cache").exit_code == 0
    assert not (cache / "stages").exists()
    assert invoke(*args).exit_code == 0
    assert entries(cache, "transcript")
    result = invoke("cache", "clean")
    assert result.exit_code == 0 and "removed" in result.stderr
    assert not (cache / "stages").exists()


def test_long_audio_is_cut_in_pauses() -> None:
    speech = [(float(s), s + 7.0) for s in range(0, 3600, 10)]  # 7 s of speech, 3 s pauses
    chunks = [(c.start, c.end) for c in plan_chunks(3600.0, speech, 600.0)]
    assert chunks[0][0] == 0.0 and chunks[-1][1] == 3600.0
    assert all(a < b for a, b in chunks) and all(x[1] == y[0] for x, y in zip(chunks, chunks[1:]))
    for _, cut in chunks[:-1]:
        assert not any(a < cut < b for a, b in speech)  # never inside speech
    assert all(abs((b - a) - 600) <= 150 for a, b in chunks[:-1])
    (whole,) = plan_chunks(500.0, speech, 600.0)
    assert (whole.start, whole.end) == (0.0, 500.0)
    assert whole.regions == tuple(r for r in speech if r[1] <= 500.0)


def test_a_crash_resumes_from_the_last_finished_chunk(media: Path, tiny_asr: str, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    cache = tmp_path / "cache"
    monkeypatch.setenv("SUBPIPE_CACHE", str(cache))
    config = tmp_path / "chunked.toml"
    config.write_text(tiny_asr + "chunk_seconds = 1.0\n[vad]\nenabled = false\n")
    args = ("batch", media / "tone.wav", "--out", tmp_path / "out", "--lang", "zh", "--config", config)
    assert invoke(*args).exit_code == 0
    chunks = entries(cache, "transcript")
    assert len(chunks) >= 3
    track = (tmp_path / "out" / "tone.zh.srt").read_bytes()
    # As if the run had died before its last chunk: only that one is transcribed again.
    newest = max(chunks, key=lambda p: chunks[p])
    newest.unlink()
    assert invoke(*args).exit_code == 0
    after = entries(cache, "transcript")
    assert {p: t for p, t in after.items() if p != newest} == {p: t for p, t in chunks.items() if p != newest}
    assert newest in after
    assert (tmp_path / "out" / "tone.zh.srt").read_bytes() == track


def test_batch_with_two_workers_and_review_pages(season: Path, tiny_config: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = invoke("batch", season / "ep1", season / "ep2" / "raw", "--jobs", "2", "--out", out,
                    "--lang", "zh", "--config", tiny_config, "--review")
    assert result.exit_code == 0, result.stderr
    names = sorted(Path(line).name for line in result.stdout.split())
    assert names == ["film.proxy.mp4", "film.review.html", "film.zh.srt",
                     "take_07.proxy.mp4", "take_07.review.html", "take_07.zh.srt"]
    page = (out / "film.review.html").read_text(encoding="utf-8")
    assert "film.proxy.mp4" in page and (out / "film.proxy.mp4").stat().st_size > 0


def test_films_whose_outputs_would_clash_are_not_both_run(season: Path, tiny_config: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = invoke("batch", season / "ep1" / "film.wav", season / "ep2" / "film.mkv", "--out", out,
                    "--lang", "zh", "--config", tiny_config)
    assert result.exit_code == 0, result.stderr
    assert f"skipped {season / 'ep2' / 'film.mkv'}: its outputs would replace those of" in result.stderr
    assert [Path(line).name for line in result.stdout.split()] == ["film.zh.srt"]


def test_ctrl_c_leaves_no_partial_output_and_the_next_run_resumes(tiny_asr: str, tmp_path: Path) -> None:
    import os
    import signal
    import subprocess
    import sys
    import time

    # 16 chunks of 1 s: stopped two chunks in, the next run does the other fourteen.
    film = tmp_path / "long.wav"
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-f", "lavfi", "-i",
                    "sine=frequency=220:sample_rate=16000:duration=16", str(film)], check=True)
    config = tmp_path / "chunked.toml"
    config.write_text(tiny_asr + "chunk_seconds = 1.0\n[vad]\nenabled = false\n")
    env = dict(os.environ, SUBPIPE_CACHE=str(tmp_path / "cache"))
    cmd = [sys.executable, "-m", "subpipe.cli", "batch", str(film), "--out", str(tmp_path / "out"),
           "--lang", "zh", "--config", str(config)]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=stop_signals_default)
    deadline = time.time() + 300
    while len(entries(tmp_path / "cache", "transcript") if (tmp_path / "cache" / "stages" / "transcript").exists()
              else {}) < 2:
        assert proc.poll() is None and time.time() < deadline, "the run ended before it could be interrupted"
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    assert stderr.strip().splitlines()[-1].startswith("Error: interrupted")
    out = tmp_path / "out"
    assert not out.exists() or not [p for p in out.rglob("*") if p.suffix in (".srt", ".tmp")]
    done = entries(tmp_path / "cache", "transcript")
    again = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr
    after = entries(tmp_path / "cache", "transcript")
    assert all(after[p] == t for p, t in done.items())  # finished chunks were not redone
    assert (out / "long.zh.srt").is_file()


def test_backend_flag_wins_over_the_config(season: Path, tiny_whisper: Path, tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SUBPIPE_CACHE", str(tmp_path / "cache"))
    config = tmp_path / "t.toml"
    config.write_text(f'[asr]\nmodel_path = "{tiny_whisper}"\nbeam_size = 1\ntemperatures = [0.0]\n'
                      'backend = "transformers"\nglossary_prompt = true\n[vad]\nenabled = false\n')
    args = ("batch", season / "ep1", "--out", tmp_path / "out", "--lang", "zh", "--config", config)
    assert invoke(*args, "--backend", "kaldi").exit_code == 2
    result = invoke(*args, "--backend", "openai-whisper")
    assert result.exit_code == 0, result.stderr
    record = json.loads((tmp_path / "out" / "film.subpipe.json").read_text())
    assert {entry["backend"] for entry in record["files"].values()} == {"openai-whisper"}


def test_a_film_past_its_time_limit_fails_and_the_rest_go_on(media: Path, tiny_asr: str, tmp_path: Path) -> None:
    import subprocess

    film = tmp_path / "films" / "long.wav"
    film.parent.mkdir()
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-f", "lavfi", "-i",
                    "sine=frequency=220:sample_rate=16000:duration=40", str(film)], check=True)
    shutil.copy(media / "tone.wav", film.parent / "short.wav")
    # A limit no film can meet on any machine (starting ffprobe alone takes longer): the
    # verdict never hangs on the machine's speed. The batch goes on to the next film.
    config = tmp_path / "limited.toml"
    config.write_text(tiny_asr + "chunk_seconds = 1.0\n[vad]\nenabled = false\n[batch]\nfilm_timeout = 0.01\n")
    out = tmp_path / "out"
    result = invoke("batch", film.parent, "--out", out, "--lang", "zh", "--config", config)
    assert result.exit_code == 1, result.stderr
    report = {Path(f["file"]).name: f for f in json.loads((out / "subpipe-batch.json").read_text())["files"]}
    assert set(report) == {"long.wav", "short.wav"}  # the rest went on
    for name in report:
        assert report[name]["status"] == "failed"
        assert report[name]["error"] == "stopped after 0.01 s, the time one film may take ([batch] film_timeout)"
    assert not list(out.glob("*.srt")) and not list(out.glob(".*.tmp"))


def test_batch_progress_counts_files_hours_and_the_rate(monkeypatch: pytest.MonkeyPatch) -> None:
    from subpipe import cli
    from subpipe.batch.report import JobResult

    clock = iter([100.0, 400.0])
    monkeypatch.setattr(cli.time, "monotonic", lambda: next(clock))
    progress = cli._BatchProgress(4)
    progress.shown = False  # the arithmetic only; it draws on a terminal
    progress.add(JobResult("a.mp4", "ok", duration=5400.0))
    progress.add(JobResult("b.mp4", "ok", duration=1800.0, already_done=True))  # nothing heard this run
    assert progress.line() == "2/4 files done, 1.50 h of audio, 18.0x real time"
