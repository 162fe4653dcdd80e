"""Issue 22, the second hostile round, as an operator meets it: a worker killed mid-film,
manifests that point at the film, an editor's file after a crash, names that look like
options, full disks, hostile settings and files. Each case: one `Error:` line where it
fails, the right exit status, the input untouched and nothing partial left.

Tests that need a full disk mount a small tmpfs of their own (root only; skipped else).
Nothing here depends on speed: the timeouts only guard against a hang.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pytest
from children import stop_signals_default
from click.testing import CliRunner, Result

from subpipe.cli import main
from subpipe.manifest import Manifest
from subpipe.outputs import OutputSet

REPO = Path(__file__).resolve().parent.parent


def invoke(*args: str | Path) -> Result:
    return CliRunner().invoke(main, [str(a) for a in args])


def subpipe(tmp_path: Path, *args: str | Path, crash_at: str = "", cwd: Path = REPO,
            env: dict[str, str] | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    """subpipe in a process of its own (a crash point kills it, as kill -9 would)."""
    environment = dict(os.environ, SUBPIPE_CACHE=str(tmp_path / "cache"), PYTHONPATH=str(REPO), **(env or {}))
    environment.pop("SUBPIPE_CRASH_AT", None)
    if crash_at:
        environment["SUBPIPE_CRASH_AT"] = crash_at
    return subprocess.run([sys.executable, "-m", "subpipe.cli", *map(str, args)], cwd=cwd, env=environment,
                          capture_output=True, text=True, timeout=timeout)


def error_line(stderr: str) -> str:
    lines = [line for line in stderr.strip().splitlines() if not line.startswith("Warning: ")]
    assert len(lines) == 1, stderr
    assert lines[0].startswith("Error: "), stderr
    assert "Traceback" not in stderr, stderr
    return lines[0]


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def hidden(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


@pytest.fixture()
def film(media: Path, tmp_path: Path) -> Path:
    (tmp_path / "films").mkdir()
    return Path(shutil.copy(media / "tone.wav", tmp_path / "films" / "film.wav"))


@contextmanager
def full_disk(where: Path, size: str = "256k") -> Iterator[Path]:
    """A small tmpfs at ``where``, filled to the last block."""
    where.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
                                           capture_output=True).returncode != 0:
        pytest.skip("mounting a small tmpfs needs root")
    try:
        fd = os.open(where / ".filler", os.O_WRONLY | os.O_CREAT)
        try:
            while True:
                os.write(fd, b"\0" * 4096)
        except OSError:
            pass
        finally:
            os.close(fd)
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=True)


# ---- case 2: the source film is never renamed over or removed -------------------------

def test_a_manifest_whose_pending_names_the_film_never_touches_it(film: Path, tiny_config: Path) -> None:
    before = sha(film)
    stray = film.with_name(".film.wav.x1.tmp")
    stray.write_text("a temporary file, or so the manifest says\n")
    (film.parent / "film.subpipe.json").write_text(json.dumps(
        {"version": 1, "files": {}, "pending": {"film.wav": stray.name}}))
    result = invoke("run", film, "--lang", "ur", "--config", tiny_config)
    assert result.exit_code == 0, result.stderr
    assert sha(film) == before
    assert stray.exists()  # not one of subpipe's: left where it was
    assert "pending" not in json.loads((film.parent / "film.subpipe.json").read_text())


def test_no_rename_or_removal_reaches_an_input_whatever_the_manifest_says(tmp_path: Path) -> None:
    # translate's input is a track of the same stem: a hostile pending entry names it.
    source = tmp_path / "film.en.srt"
    source.write_text("1\n00:00:01,000 --> 00:00:02,000\nthe editor's text\n")
    before = sha(source)
    (tmp_path / ".film.en.srt.h0st1le.tmp").write_text("junk\n")
    manifest = Manifest(tmp_path / "film.subpipe.json")
    manifest.pending, manifest.replaces = {"film.en.srt": ".film.en.srt.h0st1le.tmp"}, {"film.en.srt": before}
    manifest.save()
    # A link to the input under a leftover's name is not removed either.
    os.link(source, tmp_path / ".film.zh.srt.l1nk.tmp")
    with OutputSet(tmp_path, "film", inputs=(source,)):
        pass
    assert sha(source) == before
    assert (tmp_path / ".film.zh.srt.l1nk.tmp").exists()
    assert "pending" not in json.loads((tmp_path / "film.subpipe.json").read_text())


def test_an_output_that_is_the_input_itself_is_refused(tmp_path: Path) -> None:
    from subpipe.errors import OutputError

    source = tmp_path / "film.en.srt"
    source.write_text("1\n00:00:01,000 --> 00:00:02,000\nhi\n")
    with OutputSet(tmp_path, "film", inputs=(source,)) as outputs, pytest.raises(OutputError) as info:
        outputs.commit({source: "x"}, {"model": "", "backend": "", "settings": {}}, force=True)
    assert "is the input itself" in str(info.value)
    assert source.read_text().endswith("hi\n")


def test_review_never_writes_its_page_over_the_film(film: Path, tiny_config: Path) -> None:
    assert invoke("run", film, "--lang", "ur", "--config", tiny_config).exit_code == 0
    before = sha(film)
    result = invoke("review", film, "-o", film)
    assert result.exit_code == 2, result.stderr
    assert error_line(result.stderr).startswith(f"Error: {film} is the film under review")
    assert sha(film) == before


def test_a_batch_report_never_replaces_a_film(film: Path, tiny_config: Path, tmp_path: Path) -> None:
    before = sha(film)
    result = invoke("batch", film, "--lang", "ur", "--config", tiny_config, "--report", film)
    assert result.exit_code == 2, result.stderr
    assert error_line(result.stderr) == f"Error: report {film} is one of the batch's inputs: give another --report"
    assert sha(film) == before


# ---- case 3: finishing a stopped commit never replaces an editor's change ------------------

def test_an_edit_after_a_crash_mid_commit_is_refused_not_overwritten(film: Path, tiny_asr: str,
                                                                      tmp_path: Path) -> None:
    base = tiny_asr + "[vad]\nenabled = false\n"
    old_config, new_config = tmp_path / "old.toml", tmp_path / "new.toml"
    old_config.write_text(base + '[output]\nurdu_direction_marks = "rle"\n')
    new_config.write_text(base + '[output]\nurdu_direction_marks = "rlm"\n')
    run = ("run", film, "--lang", "ur", "--to", "en")
    first = subpipe(tmp_path, *run, "--config", old_config)
    assert first.returncode == 0, first.stderr
    # Stopped after the first track of the new set was renamed: the rest still old.
    crashed = subpipe(tmp_path, *run, "--config", new_config, crash_at="commit.renamed:1")
    assert crashed.returncode == -9, crashed.stderr
    assert "pending" in json.loads((film.parent / "film.subpipe.json").read_text())
    edited = film.parent / "film.en.srt"
    edited.write_text(edited.read_text(encoding="utf-8") + "\n2\n00:00:03,000 --> 00:00:04,000\nan editor's line\n",
                      encoding="utf-8")
    mine = edited.read_bytes()

    again = subpipe(tmp_path, *run, "--config", new_config)
    assert again.returncode == 3, again.stderr
    assert error_line(again.stderr) == "Error: film.en.srt was changed since subpipe wrote it: use --force to overwrite"
    assert edited.read_bytes() == mine
    record = json.loads((film.parent / "film.subpipe.json").read_text())
    assert "pending" not in record and "replaces" not in record
    for name in ("film.ur.srt", "film.ur-en.srt"):  # the rest of the set was finished
        assert sha(film.parent / name) == record["files"][name]["sha256"]
    assert hidden(film.parent) == []


# ---- case 1: a worker killed mid-film (as by the OOM killer) never hangs a batch ------------

def holder(lock: Path) -> int | None:
    """The pid in a film's lock file: the worker that is running that film."""
    try:
        text = lock.read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


@pytest.mark.parametrize("retries", [1, 0])
def test_a_worker_killed_mid_film_is_retried_or_failed_and_the_batch_ends(media: Path, tiny_config: Path,
                                                                          tmp_path: Path, retries: int) -> None:
    config = tmp_path / "retries.toml"
    config.write_text(tiny_config.read_text() + f"[batch]\nretries = {retries}\n")
    films, out = tmp_path / "films", tmp_path / "out"
    films.mkdir()
    for name in ("a", "b"):
        shutil.copy(media / "tone.wav", films / f"{name}.wav")
    env = dict(os.environ, SUBPIPE_CACHE=str(tmp_path / "cache"), PYTHONPATH=str(REPO))
    proc = subprocess.Popen([sys.executable, "-m", "subpipe.cli", "batch", str(films), "--jobs", "2", "--out",
                             str(out), "--lang", "ur", "--config", str(config), "--no-cache"], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=stop_signals_default)
    # The worker that holds film a's lock is running it (lock, model, audio, ...).
    deadline = time.time() + 300
    while not holder(out / ".a.subpipe.lock"):
        if proc.poll() is not None or time.time() > deadline:
            proc.kill()
            pytest.fail(f"the batch ended or stalled before film a was under way: {proc.communicate()[1]}")
        time.sleep(0.05)
    victim = holder(out / ".a.subpipe.lock")
    os.kill(victim, signal.SIGKILL)
    try:
        _, stderr = proc.communicate(timeout=900)  # a hang guard: the batch must end on its own
    except subprocess.TimeoutExpired:
        proc.kill()
        pytest.fail("the batch hung after its worker was killed")
    report = json.loads((out / "subpipe-batch.json").read_text())
    files = {Path(f["file"]).name: f for f in report["files"]}
    note = f"its worker (pid {victim}) died mid-film (killed by SIGKILL)"
    assert files["a.wav"]["retried"] == [note]
    assert report["retried"] == [str(films / "a.wav")]
    assert files["b.wav"]["status"] == "ok"
    if retries:
        assert proc.returncode == 0, stderr
        assert files["a.wav"]["status"] == "ok"
        assert f"Warning: {films / 'a.wav'}: {note}: running it again on another worker" in stderr
    else:
        assert proc.returncode == 1, stderr
        assert files["a.wav"]["error"] == f"{note} (1 times; [batch] retries = 0)"
        assert not (out / "a.ur.srt").exists()
    assert "Traceback" not in stderr and "Exception ignored" not in stderr, stderr
    assert hidden(out) == []  # no lock file, no temporary file


# ---- case 4: names that start with '-' are never options to ffprobe or ffmpeg ----------------

def test_names_that_start_with_a_dash_reach_ffmpeg_as_files(media: Path, tiny_config: Path, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "films"
    folder.mkdir()
    shutil.copy(media / "tone.wav", folder / "-dash.wav")
    (folder / "-version").write_text("notes about the shoot, no media\n")
    monkeypatch.chdir(folder)  # relative names, as a shell passes them

    result = invoke("run", "--lang", "ur", "--config", tiny_config, "--review", "--", "-dash.wav")
    assert result.exit_code == 0, result.stderr
    assert (folder / "-dash.ur.srt").is_file() and (folder / "-dash.proxy.mp4").stat().st_size > 0

    result = invoke("run", "--lang", "ur", "--config", tiny_config, "--", "-version")
    assert result.exit_code == 2
    assert error_line(result.stderr).startswith("Error: -version is not a media file ffmpeg can read: ")

    result = invoke("batch", ".", "--lang", "ur", "--config", tiny_config, "--out", tmp_path / "out")
    assert result.exit_code == 0, result.stderr
    assert "Warning: skipped -version: not media (ffmpeg can't read it)" in result.stderr
    assert (tmp_path / "out" / "-dash.ur.srt").is_file()


# ---- case 5: what crashed with a traceback is one Error: line ----------------------------------

def test_a_full_disk_when_the_lock_is_taken(film: Path, tiny_config: Path, tmp_path: Path) -> None:
    with full_disk(tmp_path / "full") as full:
        result = invoke("run", film, "--lang", "ur", "--config", tiny_config, "--out", full)
        assert result.exit_code == 2, result.stderr
        assert error_line(result.stderr) == (f"Error: cannot write the lock file {full / '.film.subpipe.lock'}: "
                                             "No space left on device")
        assert hidden(full) == [".filler"]  # no empty lock file left behind


def test_no_room_for_the_decoded_audio(film: Path, tiny_config: Path, tmp_path: Path,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 22 case 6 keeps a film's samples on disk: a full disk there is one Error: line
    that names the folder and what to do, and nothing is written."""
    with full_disk(tmp_path / "full", size="64k") as full:
        monkeypatch.setenv("TMPDIR", str(full))
        result = invoke("run", film, "--lang", "ur", "--config", tiny_config, "--out", tmp_path / "out")
        assert result.exit_code == 2, result.stderr
        assert error_line(result.stderr) == (
            f"Error: the decoded audio of {film.name} can't be kept in {full} (no space left on device): free "
            "space there, or set TMPDIR to a folder with room (2 MB a minute of film)")
        assert not (tmp_path / "out").exists() or not list((tmp_path / "out").glob("*.srt"))


def test_a_model_cache_on_a_full_disk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from subpipe.asr.weights import WEIGHT_PACKAGES, _package_parts

    if all(_package_parts(p) is None for p in WEIGHT_PACKAGES):
        pytest.skip("no weight package installed to build the cache from")
    with full_disk(tmp_path / "full", size="1m") as full:
        monkeypatch.setenv("SUBPIPE_CACHE", str(full))
        result = invoke("models", "--prepare")
        assert result.exit_code == 2, result.stderr
        assert error_line(result.stderr) == (f"Error: the model cache {full / 'models' / 'whisper-base'} can't be "
                                             "used: No space left on device (set SUBPIPE_CACHE to a folder that can "
                                             "be written)")
        assert not [p for p in full.rglob("*") if p.is_file() and p.stat().st_size and p.name != ".filler"]


@pytest.mark.parametrize("address", ["127.0.0.1", "127.0.0.1:abc", "head:70000"])
def test_an_address_that_is_no_host_and_port(film: Path, address: str) -> None:
    result = invoke("batch", film, "--engine", "ray", "--address", address)
    assert result.exit_code == 2, result.stderr
    assert error_line(result.stderr) == (f"Error: --address {address!r} is not the HOST:PORT of a Ray cluster's "
                                         "head (such as 10.0.0.5:6379)")


def test_an_integer_of_400_digits_in_a_config_and_in_a_rows_config(film: Path, tmp_path: Path) -> None:
    huge = tmp_path / "huge.toml"
    huge.write_text(f"[rules.zh]\nmax_cps = {'9' * 400}\n")
    result = invoke("run", film, "--config", huge)
    assert result.exit_code == 2, result.stderr
    assert error_line(result.stderr) == f"Error: rules.zh.max_cps = {'9' * 57}... in {huge}: must be a number above " \
                                        "0, at most 1000"
    rows = tmp_path / "jobs.csv"
    rows.write_text(f"path,lang,config\n{film},ur,huge.toml\n")
    result = invoke("batch", rows)
    assert result.exit_code == 2, result.stderr  # the only row is skipped: nothing to subtitle
    assert f"Warning: skipped {rows}:2: rules.zh.max_cps = {'9' * 57}... in {huge}" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_model_path_that_is_no_checkpoint_is_named_at_once(film: Path, tmp_path: Path) -> None:
    config = tmp_path / "passwd.toml"
    config.write_text('[asr]\nmodel_path = "/etc/passwd"\n[vad]\nenabled = false\n')
    result = invoke("run", film, "--lang", "ur", "--config", config)
    assert result.exit_code == 2, result.stderr
    assert error_line(result.stderr) == ("Error: model_path /etc/passwd is not an openai-whisper checkpoint "
                                         "(a .pt file saved by torch)")
    assert [p.name for p in film.parent.iterdir()] == ["film.wav"]


def test_a_csv_field_over_128_kb(film: Path, tmp_path: Path) -> None:
    rows = tmp_path / "jobs.csv"
    rows.write_text(f"path,lang\n{film},ur\n{'x' * 200_000},ur\n")
    result = invoke("batch", rows)
    assert result.exit_code == 2, result.stderr
    assert error_line(result.stderr) == (f"Error: manifest {rows} line 3 is not a CSV row subpipe can read: "
                                         "a field is longer than 128 KB")


def test_a_config_that_is_a_device_or_a_named_pipe(film: Path, tmp_path: Path) -> None:
    result = invoke("run", film, "--config", "/dev/zero")
    assert result.exit_code == 2
    assert error_line(result.stderr) == "Error: config file /dev/zero is a device, not a file"
    fifo = tmp_path / "config.toml"
    os.mkfifo(fifo)
    # A subprocess, so that a hang is a timeout and not a stuck test run.
    result = subpipe(tmp_path, "run", film, "--config", fifo, timeout=120)
    assert result.returncode == 2
    assert error_line(result.stderr) == f"Error: config file {fifo} is a named pipe, not a file"
    big = tmp_path / "big.toml"
    big.write_bytes(b"# " + b"x" * (2 << 20) + b"\n")
    result = invoke("run", film, "--config", big)
    assert error_line(result.stderr) == f"Error: config file {big} is not a config: it is larger than 1 MB"


# ---- case 7: the smaller ones -------------------------------------------------------------

def test_lang_auto_on_silence_writes_no_track_in_a_language_nobody_spoke(media: Path, tiny_config: Path,
                                                                         tmp_path: Path) -> None:
    result = invoke("run", media / "silent.mp4", "--out", tmp_path / "out", "--config", tiny_config)
    assert result.exit_code == 2, result.stderr
    assert error_line(result.stderr) == ("Error: audio stream 0 of silent.mp4 is silent, so its language can't be "
                                         "told: give --lang ur|zh|en to write an empty track")
    assert not list((tmp_path / "out").glob("*.srt"))
    # A silent first stream, the speech on the second.
    two = tmp_path / "two.mkv"
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-f", "lavfi", "-i", "anullsrc=r=16000:cl=mono",
                    "-i", str(media / "tone.wav"), "-map", "0:a", "-map", "1:a", "-t", "4", "-c:a", "flac", str(two)],
                   check=True)
    result = invoke("run", two, "--out", tmp_path / "out", "--config", tiny_config)
    assert result.exit_code == 2, result.stderr
    assert error_line(result.stderr) == ("Error: audio stream 0 of two.mkv is silent, so its language can't be told: "
                                         "give --lang ur|zh|en to write an empty track, or choose another of its 2 "
                                         "audio streams with --audio-stream")
    assert not list((tmp_path / "out").glob("*.srt"))


def test_links_to_folders_and_dangling_links_are_listed_as_skipped(tmp_path: Path) -> None:
    rushes, elsewhere = tmp_path / "rushes", tmp_path / "elsewhere"
    rushes.mkdir()
    elsewhere.mkdir()
    (rushes / "day2").symlink_to(elsewhere)
    (rushes / "take.mov").symlink_to(tmp_path / "gone.mov")
    result = invoke("batch", rushes)
    assert result.exit_code == 2
    assert result.stderr.splitlines()[:2] == [
        f"Warning: skipped {rushes / 'day2'}: a link to a folder, not followed: give the folder itself",
        f"Warning: skipped {rushes / 'take.mov'}: a link to nothing (its target is gone)"]


def test_a_film_replaced_by_one_of_the_same_size_and_mtime_is_hashed_again(media: Path, tmp_path: Path) -> None:
    from subpipe.cache import StageCache

    film = tmp_path / "film.wav"
    shutil.copy(media / "tone.wav", film)
    cache = StageCache(tmp_path / "cache")
    first = cache.input_hash(film)
    stat = film.stat()
    other = bytearray(film.read_bytes())
    other[-100:] = bytes(100)  # another take, byte for byte as long
    film.write_bytes(bytes(other))  # in place: the same inode
    os.utime(film, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert (film.stat().st_size, film.stat().st_mtime_ns) == (stat.st_size, stat.st_mtime_ns)
    assert cache.input_hash(film) == hashlib.sha256(bytes(other)).hexdigest() != first


def test_control_characters_in_a_cue_are_findings_and_shown_as_text(tmp_path: Path) -> None:
    from subpipe.review import page_data
    from subpipe.types import Cue, Track

    track = tmp_path / "film.en.srt"
    track.write_text("1\n00:00:01,000 --> 00:00:03,000\nabc\u202edef\n\n"
                     "2\n00:00:04,000 --> 00:00:06,000\nring\x07 \x1b[31mred\n", encoding="utf-8")
    result = invoke("check", track)
    assert result.exit_code == 1, result.stdout
    found = [line for line in result.stdout.splitlines() if "U+" in line]
    assert found == [
        "cue 1 (line 3): U+202E (RIGHT-TO-LEFT OVERRIDE) in the text: players act on it or show the line reordered; "
        "remove it",
        "cue 2 (line 7): U+0007 (BEL) in the text: players act on it or show the line reordered; remove it",
        "cue 2 (line 7): U+001B (ESC) in the text: players act on it or show the line reordered; remove it"]
    data = page_data("film.mp4", "film.proxy.mp4", {track.name: Track("en", (Cue(1.0, 3.0, ("abc\u202edef",)),))},
                     {}, None)
    assert data["tracks"][0]["cues"][0]["lines"] == ["abc<U+202E>def"]


def test_a_glossary_rendering_that_is_no_text_is_refused(film: Path, tmp_path: Path) -> None:
    glossary = tmp_path / "terms.toml"
    glossary.write_text('[[term]]\nterm = "CPEC"\nen = 5\n')
    config = tmp_path / "g.toml"
    config.write_text(f'[translate]\nglossary = "{glossary}"\n')
    result = invoke("run", film, "--lang", "ur", "--config", config)
    assert result.exit_code == 2
    assert error_line(result.stderr) == f"Error: glossary {glossary}: en = 5 must be text in quotes"


def test_a_cache_entry_replaced_by_a_folder_is_rebuilt(tmp_path: Path) -> None:
    from subpipe.cache import StageCache

    cache = StageCache(tmp_path / "cache")
    made = []

    def make() -> bytes:
        made.append(1)
        return b"words"

    assert cache.get_or_make("transcript", "k" * 64, make, bytes, bytes) == b"words"
    entry = next(p for p in (tmp_path / "cache").rglob("k" * 64))
    entry.unlink()
    (entry / "inside").mkdir(parents=True)
    assert cache.get_or_make("transcript", "k" * 64, make, bytes, bytes) == b"words"
    assert len(made) == 2 and entry.is_file()


def test_check_on_an_empty_track_takes_the_language_from_its_name(tmp_path: Path) -> None:
    track = tmp_path / "x.zh.srt"
    track.write_bytes(b"")
    result = invoke("check", track)
    assert result.exit_code == 0
    assert result.stdout.splitlines()[0] == f"{track}: 0 cues, language zh (from the file name), 25 fps"


@pytest.mark.parametrize("command", ["translate", "notes"])
def test_files_read_whole_are_refused_when_they_are_devices(tmp_path: Path, command: str) -> None:
    # Read whole, /dev/zero never ends (a MemoryError at last) and a named pipe waits for a writer.
    args = (["translate", "/dev/zero", "--lang", "en", "--to", "zh"] if command == "translate"
            else ["review", "--notes", tmp_path / "notes.json", "/dev/zero"])
    result = invoke(*args)
    assert result.exit_code == 2, result.stderr
    assert error_line(result.stderr) == ("Error: /dev/zero is a device, not an SRT file" if command == "translate"
                                         else "Error: cannot read /dev/zero: a device")
