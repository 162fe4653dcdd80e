"""`subpipe batch --engine ray`: on a Ray of subpipe's own, and on a real two-node cluster.

Every run is a real `subpipe` process (Ray's own signal handlers and atexit hooks stay
out of the test process). The cluster is two `ray start --block` processes on this
machine (tests/raycluster.py), one CPU each, whose workers see only their own stage
cache and temporary folder; the films reach the second node in parts, through Ray.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

pytest.importorskip("ray")

from children import stop_signals_default, transcript_chunks  # noqa: E402
from raycluster import RayCluster, ray_env  # noqa: E402

REPO = Path(__file__).resolve().parent.parent


def subpipe(*args: str | Path, env: dict[str, str], timeout: float = 600) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "subpipe.cli", *map(str, args)]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout, cwd=REPO)


def started(*args: str | Path, env: dict[str, str]) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "subpipe.cli", *map(str, args)]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO,
                            start_new_session=True, preexec_fn=stop_signals_default)


def tracks(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*.srt"))}


def report_of(folder: Path) -> dict:
    return json.loads((folder / "subpipe-batch.json").read_text())


def marked(mark: str, name: bytes = b"") -> list[int]:
    """Live processes whose environment carries ``mark`` (so: started by this test)."""
    found = []
    needle = f"SUBPIPE_TEST_MARK={mark}".encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes().split(b"\0")
            cmdline = (entry / "cmdline").read_bytes()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if needle in environ and name in cmdline and state != "Z":
            found.append(int(entry.name))
    return found


@pytest.fixture()
def films(media: Path, tmp_path: Path) -> Path:
    """Four films (one with a damaged middle) and a file that is not media."""
    root = tmp_path / "films"
    (root / "ep1").mkdir(parents=True)
    shutil.copy(media / "tone.wav", root / "ep1" / "a.wav")
    shutil.copy(media / "tone.mkv", root / "ep1" / "b.mkv")
    shutil.copy(media / "tone.mp4", root / "c.mp4")
    shutil.copy(media / "damaged.mp4", root / "d.mp4")
    shutil.copy(media / "text.mp4", root / "broken.mp4")
    return root


def chunked_film(folder: Path, tiny_asr: str, seconds: int) -> tuple[Path, Path]:
    """A film of ``seconds`` cut into 1 s chunks, and its settings: one chunk at a time."""
    film = folder / "long" / "long.wav"
    film.parent.mkdir()
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-f", "lavfi", "-i",
                    f"sine=frequency=220:sample_rate=16000:duration={seconds}", str(film)], check=True)
    config = folder / "chunked.toml"
    config.write_text(tiny_asr + "chunk_seconds = 1.0\n[vad]\nenabled = false\n")
    return film, config


@pytest.fixture()
def long_film(tmp_path: Path, tiny_asr: str) -> tuple[Path, Path]:
    """A 40 s film in 40 chunks: one that takes a while, for the limits and signals."""
    return chunked_film(tmp_path, tiny_asr, 40)


@pytest.fixture()
def film_to_kill(tmp_path: Path, tiny_asr: str) -> tuple[Path, Path]:
    """A 16 s film in 16 chunks: a worker is killed two chunks in, and the film is made
    three times (locally for the comparison, the killed try, the retry elsewhere)."""
    return chunked_film(tmp_path, tiny_asr, 16)


@pytest.fixture()
def env(tmp_path: Path) -> dict[str, str]:
    """The environment of a subpipe run: its own stage cache, and a mark on every process
    it starts (Ray's too), so that the test can find them, and only them."""
    return ray_env(dict(os.environ, SUBPIPE_CACHE=str(tmp_path / "cache"), SUBPIPE_TEST_MARK=uuid.uuid4().hex))


@pytest.fixture(scope="module")
def ray_cluster(tmp_path_factory: pytest.TempPathFactory) -> RayCluster:
    started_cluster = RayCluster(tmp_path_factory.mktemp("cluster"))
    try:
        yield started_cluster.start()
    finally:
        started_cluster.stop()


@pytest.fixture()
def cluster(ray_cluster: RayCluster) -> RayCluster:
    """The cluster, its nodes' stage caches emptied: each test's films are new to it."""
    for node in ray_cluster.nodes:
        shutil.rmtree(node.cache / "stages", ignore_errors=True)
    return ray_cluster


def joined(cluster: RayCluster, env: dict[str, str]) -> dict[str, str]:
    # The driver shares the cluster's token; its own stage cache is never the nodes'.
    return dict(env, RAY_AUTH_TOKEN=cluster.env["RAY_AUTH_TOKEN"], RAY_AUTH_MODE="token")


def test_on_a_two_node_cluster_films_travel_in_parts_and_a_rerun_skips_done_ones(
        cluster: RayCluster, films: Path, tiny_asr: str, tmp_path: Path, env: dict[str, str]) -> None:
    config = tmp_path / "parts.toml"
    # Parts of 10 kB: every film reaches the second node in several.
    config.write_text(tiny_asr + "[vad]\nenabled = false\n[batch]\npart_mb = 0.01\n")
    local = subpipe("batch", films, "--out", tmp_path / "local", "--lang", "zh", "--config", config, env=env)
    assert local.returncode == 1, local.stderr  # broken.mp4
    env = joined(cluster, env)
    args = ["batch", films, "--out", tmp_path / "ray", "--lang", "zh", "--config", config, "--engine", "ray",
            "--address", cluster.address, "--jobs", "2"]
    first = subpipe("-v", *args, env=env)
    assert first.returncode == 1, first.stderr
    assert tracks(tmp_path / "ray") == tracks(tmp_path / "local")
    report = report_of(tmp_path / "ray")
    nodes = {f["node"] for f in report["files"] if f["status"] == "ok"}
    assert len(nodes) == 2, report  # both nodes made films
    assert " part(s)" in first.stderr and "sent to this node in" in first.stderr
    # What a worker checked of the weights on its node is said on the driver.
    assert "Whisper" in first.stderr and "checked" in first.stderr
    # Nothing was left on the nodes: their copies of films are gone.
    for node in cluster.nodes:
        assert not list(node.tmp.glob("subpipe-ray-*/*/*")), node.name
    second = subpipe(*args, env=env)
    assert second.returncode == 1, second.stderr
    assert second.stdout == ""  # nothing written again
    again = report_of(tmp_path / "ray")
    assert again["already_done"] == 4 and tracks(tmp_path / "ray") == tracks(tmp_path / "local")


def test_a_worker_killed_mid_film_has_its_film_run_again_elsewhere(
        cluster: RayCluster, film_to_kill: tuple[Path, Path], tmp_path: Path, env: dict[str, str]) -> None:
    film, config = film_to_kill
    local = subpipe("batch", film, "--out", tmp_path / "local", "--lang", "zh", "--config", config, env=env)
    assert local.returncode == 0, local.stderr
    env = joined(cluster, env)
    proc = started("batch", film, "--out", tmp_path / "ray", "--lang", "zh", "--config", config,
                   "--engine", "ray", "--address", cluster.address, "--jobs", "1", env=env)
    victim = _wait_mid_film(cluster, proc)
    os.kill(victim, signal.SIGKILL)
    stdout, stderr = proc.communicate(timeout=600)
    assert proc.returncode == 0, stderr
    assert stdout.split() == [str(tmp_path / "ray" / "long.zh.srt")]  # written once
    assert tracks(tmp_path / "ray") == tracks(tmp_path / "local")
    (result,) = report_of(tmp_path / "ray")["files"]
    assert result["status"] == "ok" and len(result["retried"]) == 1
    assert f"pid {victim}" in result["retried"][0] and "died mid-film" in result["retried"][0]
    assert "running it again on another worker" in stderr


def test_a_film_past_its_time_limit_fails_and_the_cluster_is_freed(
        cluster: RayCluster, long_film: tuple[Path, Path], tmp_path: Path, env: dict[str, str]) -> None:
    film, config = long_film
    limited = tmp_path / "limited.toml"
    limited.write_text(config.read_text() + "[batch]\nfilm_timeout = 3\n")
    result = subpipe("batch", film, "--out", tmp_path / "out", "--lang", "zh", "--config", limited,
                     "--engine", "ray", "--address", cluster.address, env=joined(cluster, env))
    assert result.returncode == 1, result.stderr
    (failed,) = report_of(tmp_path / "out")["files"]
    assert failed["status"] == "failed" and "stopped after 3 s" in failed["error"]
    assert not list((tmp_path / "out").glob("*.srt"))
    assert _no_worker_left(cluster)


@pytest.mark.parametrize("token", ["none", "wrong"])
def test_a_cluster_that_wants_a_token_says_authentication(cluster: RayCluster, films: Path, tmp_path: Path,
                                                           env: dict[str, str], token: str) -> None:
    # Issue 22: Ray alone retried for 20 s, a line of its log each second, then "failed to connect".
    if token == "none":
        env = {k: v for k, v in env.items() if k not in ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN")}
    result = subpipe("batch", films / "ep1", "--out", tmp_path / "out", "--lang", "zh", "--engine", "ray",
                     "--address", cluster.address, env=env)
    assert result.returncode == 2, result.stderr
    given = "this driver has no token" if token == "none" else "refused the token given"
    assert result.stderr.splitlines() == [
        f"Error: the Ray cluster at {cluster.address} requires authentication and {given}: set RAY_AUTH_MODE=token "
        "and the cluster's token in RAY_AUTH_TOKEN (or ~/.ray/auth_token)"]
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").rglob("*.srt"))


def test_sigterm_on_the_driver_cancels_the_clusters_work(
        cluster: RayCluster, long_film: tuple[Path, Path], tmp_path: Path, env: dict[str, str]) -> None:
    film, config = long_film
    env = joined(cluster, env)
    proc = started("batch", film, "--out", tmp_path / "out", "--lang", "zh", "--config", config,
                   "--engine", "ray", "--address", cluster.address, env=env)
    _wait_mid_film(cluster, proc)
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 143, stderr
    assert stderr.strip().splitlines()[-1].startswith("Error: ")
    assert not list((tmp_path / "out").glob("*.srt")) if (tmp_path / "out").exists() else True
    report = report_of(tmp_path / "out")
    assert report["interrupted"] and [Path(f).name for f in report["not_run"]] == ["long.wav"]
    assert _no_worker_left(cluster)


def test_an_address_where_no_cluster_answers_is_a_usage_error(films: Path, tiny_config: Path, tmp_path: Path,
                                                                 env: dict[str, str]) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    started_at = time.monotonic()
    result = subpipe("batch", films, "--out", tmp_path / "out", "--config", tiny_config, "--engine", "ray",
                     "--address", f"127.0.0.1:{port}", env=env)
    assert result.returncode == 2 and time.monotonic() - started_at < 60
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(f"Error: no Ray cluster answers at 127.0.0.1:{port}")
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").rglob("*.srt"))


def test_address_is_only_for_the_ray_engine(films: Path, tiny_config: Path, env: dict[str, str]) -> None:
    result = subpipe("batch", films, "--config", tiny_config, "--address", "127.0.0.1:6379", env=env)
    assert result.returncode == 2 and "--address is for --engine ray" in result.stderr


def test_a_ray_of_its_own_gives_the_local_engines_outputs_and_is_gone_after(
        cluster: RayCluster, films: Path, tiny_asr: str, tmp_path: Path, env: dict[str, str]) -> None:
    # A cluster runs on this machine (the test's), and RAY_ADDRESS is not set: subpipe
    # must start a Ray of its own, not join that one by accident.
    env.pop("RAY_ADDRESS", None)
    config = tmp_path / "ray.toml"
    config.write_text(tiny_asr + "[vad]\nenabled = false\n[batch]\nengine = \"ray\"\n")
    local = subpipe("batch", films, "--out", tmp_path / "local", "--lang", "zh", "--config", config,
                    "--jobs", "2", "--engine", "local", env=env)
    ray = subpipe("batch", films, "--out", tmp_path / "ray", "--lang", "zh", "--config", config,
                  "--jobs", "2", env=env)
    assert (local.returncode, ray.returncode) == (1, 1), ray.stderr  # broken.mp4 fails in both
    assert tracks(tmp_path / "ray") == tracks(tmp_path / "local") and len(tracks(tmp_path / "local")) == 4
    assert sorted(ray.stdout.split()) == [str(tmp_path / "ray" / name) for name in tracks(tmp_path / "ray")]
    report = report_of(tmp_path / "ray")
    assert report["engine"] == "ray" and (report["ok"], report["failed"]) == (4, 1)
    broken = next(f for f in report["files"] if f["file"].endswith("broken.mp4"))
    assert "not a media file ffmpeg can read" in broken["error"]
    # The workers' warnings reach the driver's stderr: d.mp4's damaged audio.
    assert f"{films / 'd.mp4'}" in ray.stderr or "d.mp4: " in ray.stderr
    assert "damaged" in ray.stderr.lower()
    # Ray started for the run is stopped with it: no process it started is left.
    deadline = time.time() + 20
    while marked(env["SUBPIPE_TEST_MARK"]) and time.time() < deadline:
        time.sleep(0.5)
    assert marked(env["SUBPIPE_TEST_MARK"]) == []
    assert all(transcript_chunks(node.cache) == 0 for node in cluster.nodes)  # the cluster made nothing


def _wait_mid_film(cluster: RayCluster, proc: subprocess.Popen, timeout: float = 300) -> int:
    """The pid of the worker making a film once two of the film's chunks are done (in its
    node's stage cache); the batch must still be running."""
    counts = {node.name: transcript_chunks(node.cache) for node in cluster.nodes}
    deadline = time.time() + timeout
    while True:
        assert proc.poll() is None, proc.communicate()[1]
        assert time.time() < deadline, "no worker got two chunks into the film"
        for pid, name in cluster.worker_processes().items():
            if transcript_chunks(cluster.node(name).cache) >= counts[name] + 2:
                return pid
        time.sleep(0.2)


def _no_worker_left(cluster: RayCluster, wait: float = 30) -> bool:
    """Whether every subpipe actor of the cluster has ended (within ``wait`` seconds)."""
    deadline = time.time() + wait
    while cluster.worker_processes() and time.time() < deadline:
        time.sleep(0.5)
    return not cluster.worker_processes()


def test_only_dead_workers_folders_are_removed(tmp_path: Path) -> None:
    """A node's temporary folder is shared: a dead worker's folder goes, a live one's and
    anything else of a similar name stay."""
    import fcntl

    from subpipe.batch.transport import FOLDER_PREFIX, LOCK_NAME, remove_stale

    dead, live, other = (tmp_path / f"{FOLDER_PREFIX}{n}" for n in ("dead", "live", "someone-elses"))
    for folder in (dead, live, other):
        (folder / "0").mkdir(parents=True)
        (folder / "0" / "film.mp4").write_bytes(b"film")
    (dead / LOCK_NAME).touch()
    with open(live / LOCK_NAME, "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        assert remove_stale(tmp_path) == [dead]
    assert not dead.exists() and (live / "0" / "film.mp4").exists() and (other / "0" / "film.mp4").exists()
