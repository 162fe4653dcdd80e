"""Issue 12, case 1: SIGTERM (systemd, docker stop, timeout) and SIGHUP stop `run` and
`batch --jobs N` as Ctrl-C does: workers stopped, nothing partial left, one line, and
exit 128 + the signal's number. Each test ends only the processes it started."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from children import stop_signals_default, transcript_chunks

REPO = Path(__file__).resolve().parent.parent


def long_film(path: Path, seconds: int = 40) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-f", "lavfi", "-i",
                    f"sine=frequency=220:sample_rate=16000:duration={seconds}", str(path)], check=True)
    return path


@pytest.fixture()
def chunked(tiny_asr: str, tmp_path: Path) -> Path:
    """The tiny model in one-second chunks: a 40 s film is long enough to be stopped."""
    config = tmp_path / "chunked.toml"
    config.write_text(tiny_asr + "chunk_seconds = 1.0\n[vad]\nenabled = false\n")
    return config


def start(tmp_path: Path, *args: str | Path) -> subprocess.Popen:
    env = dict(os.environ, SUBPIPE_CACHE=str(tmp_path / "cache"))
    return subprocess.Popen([sys.executable, "-m", "subpipe.cli", *map(str, args)], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=stop_signals_default)


def wait_until(proc: subprocess.Popen, ready, what: str) -> None:  # noqa: ANN001 - a predicate
    deadline = time.time() + 300
    while not ready():
        if proc.poll() is not None or time.time() > deadline:
            proc.kill()
            pytest.fail(f"the run ended or stalled before {what}: {proc.communicate()[1]}")
        time.sleep(0.2)


def workers_of(pid: int) -> list[int]:
    """The multiprocessing workers whose parent is ``pid``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            cmdline = (entry / "cmdline").read_bytes()
        except (OSError, IndexError, ValueError):
            continue
        if ppid == pid and b"spawn_main" in cmdline:
            found.append(int(entry.name))
    return found


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"


def test_sigterm_stops_a_batch_and_its_workers(chunked: Path, tmp_path: Path) -> None:
    films = tmp_path / "films"
    for name in ("a", "b", "c"):
        long_film(films / f"{name}.wav")
    out = tmp_path / "out"
    proc = start(tmp_path, "batch", films, "--jobs", "2", "--out", out, "--lang", "ur", "--config", chunked)
    wait_until(proc, lambda: transcript_chunks(tmp_path / "cache") >= 2 and len(workers_of(proc.pid)) == 2,
               "both workers were transcribing")
    workers = workers_of(proc.pid)
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 143, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in stderr, stderr
    assert re.fullmatch(rf"Error: interrupted by SIGTERM: (\d) of 3 file\(s\) finished \(listed in "
                        rf"{re.escape(str(out / 'subpipe-batch.json'))}\); nothing partial was left", lines[0])
    deadline = time.time() + 10
    while any(alive(pid) for pid in workers) and time.time() < deadline:
        time.sleep(0.2)
    assert not any(alive(pid) for pid in workers), "a worker outlived the batch"
    report = json.loads((out / "subpipe-batch.json").read_text())
    assert report["interrupted"] == "SIGTERM"
    finished = [Path(f["file"]).stem for f in report["files"] if f["status"] == "ok"]
    assert len(finished) + len(report["not_run"]) == 3
    written = sorted(p.name for p in out.iterdir())
    time.sleep(2)  # nothing more is written once the batch has gone
    assert sorted(p.name for p in out.iterdir()) == written
    assert written == sorted(["subpipe-batch.json", *(f"{s}.ur.srt" for s in finished),
                              *(f"{s}.subpipe.json" for s in finished)])


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGHUP])
def test_sigterm_and_sighup_stop_a_run(chunked: Path, tmp_path: Path, stop: signal.Signals) -> None:
    film = long_film(tmp_path / "long.wav")
    out = tmp_path / "out"
    proc = start(tmp_path, "run", film, "--out", out, "--lang", "ur", "--config", chunked)
    # The lock is taken as the run starts; a moment later it is listening.
    wait_until(proc, lambda: (out / ".long.subpipe.lock").exists(), "it started")
    time.sleep(1.5)
    proc.send_signal(stop)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 128 + stop, stderr
    assert stderr.strip().splitlines() == [
        f"Error: interrupted by {stop.name}: outputs already written are whole, and nothing partial was left"]
    assert stdout == ""
    assert sorted(p.name for p in out.iterdir()) == []  # no track, no temporary file, no lock
