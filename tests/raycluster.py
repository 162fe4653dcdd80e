"""A real Ray cluster of two nodes on this machine, for the tests of `--engine ray`.

Each node is a `ray start --block` of its own, in a process group of its own, with one
CPU, its own ports, temporary folder, stage cache and token; the tests join it through
`--address`. Stopping it ends only these two process groups (never `ray stop`, which
ends every Ray process on the machine, other people's too).
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

RAY = Path(sys.executable).with_name("ray")


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def ray_env(base: dict[str, str] | None = None) -> dict[str, str]:
    """What every Ray process of the tests gets: no usage reports, and the token in the
    environment (so nobody's ~/.ray/auth_token is read or written)."""
    env = dict(base if base is not None else os.environ)
    env.update(RAY_USAGE_STATS_ENABLED="0", RAY_AUTH_MODE="token",
               RAY_AUTH_TOKEN=env.get("RAY_AUTH_TOKEN") or secrets.token_hex(16))
    return env


@dataclass
class Node:
    name: str
    folder: Path  # its temporary folder, log and stage cache live here
    process: subprocess.Popen

    @property
    def cache(self) -> Path:
        return self.folder / "cache"

    @property
    def tmp(self) -> Path:
        return self.folder / "tmp"


@dataclass
class RayCluster:
    root: Path
    env: dict[str, str] = field(default_factory=ray_env)
    nodes: list[Node] = field(default_factory=list)
    address: str = ""
    short: Path | None = None  # Ray's own temp folders

    def start(self, timeout: float = 120) -> "RayCluster":
        (gcs,) = free_ports(1)
        self.address = f"127.0.0.1:{gcs}"
        self.nodes.append(self._node("head", ["--head", "--port", str(gcs), "--include-dashboard", "false"]))
        self.nodes.append(self._node("second", ["--address", self.address]))
        self._wait_for_both(timeout)
        return self

    def _node(self, name: str, args: list[str]) -> Node:
        folder = self.root / name
        (folder / "tmp").mkdir(parents=True)
        p = free_ports(9)
        cmd = [str(RAY), "start", "--block", "--num-cpus", "1", "--node-ip-address", "127.0.0.1",
               "--disable-usage-stats", "--temp-dir", str(self._ray_dir(name)),
               "--object-manager-port", str(p[0]), "--node-manager-port", str(p[1]),
               "--metrics-export-port", str(p[2]), "--dashboard-agent-listen-port", str(p[3]),
               "--dashboard-agent-grpc-port", str(p[4]), "--runtime-env-agent-port", str(p[5]),
               "--dashboard-port", str(p[6]), "--min-worker-port", str(p[7]), "--max-worker-port", str(p[7] + 30),
               "--object-store-memory", str(200 << 20), *args]
        # Each node's workers have their own stage cache and temporary folder: what a
        # worker finds on its node's disk is its own.
        env = dict(self.env, SUBPIPE_CACHE=str(folder / "cache"), TMPDIR=str(folder / "tmp"))
        log = open(folder / "node.log", "w")
        process = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   start_new_session=True)
        return Node(name, folder, process)

    def _ray_dir(self, name: str) -> Path:
        # Ray's sockets live under its temp folder, and a socket's path may not be
        # longer than 107 bytes: pytest's folders are too deep for it.
        if self.short is None:
            self.short = Path(tempfile.mkdtemp(prefix="subpipe-test-ray-"))
        return self.short / name

    def _wait_for_both(self, timeout: float) -> None:
        script = ("import ray, sys; ray.init(address=sys.argv[1], logging_level='ERROR'); "
                  "print(sum(n['Alive'] for n in ray.nodes()))")
        deadline = time.time() + timeout
        while time.time() < deadline:
            for node in self.nodes:
                if node.process.poll() is not None:
                    raise RuntimeError(f"ray node {node.name} ended: {(node.folder / 'node.log').read_text()[-2000:]}")
            try:
                probe = subprocess.run([sys.executable, "-c", script, self.address], env=self.env,
                                       capture_output=True, text=True, timeout=30, check=False)
            except subprocess.TimeoutExpired:
                continue
            if probe.returncode == 0 and probe.stdout.strip() == "2":
                return
            time.sleep(1)
        raise RuntimeError(f"the two-node Ray cluster did not come up in {timeout:.0f} s")

    def stop(self) -> None:
        """End the two process groups this cluster started: SIGINT (Ray's quick way
        down), then SIGKILL for what is left after a while."""
        for node in self.nodes:
            _signal_group(node.process.pid, signal.SIGINT)
        deadline = time.time() + 20
        for node in self.nodes:
            try:
                node.process.wait(max(0.1, deadline - time.time()))
            except subprocess.TimeoutExpired:
                pass
        for node in self.nodes:
            _signal_group(node.process.pid, signal.SIGKILL)
            node.process.wait()
        if self.short is not None:
            shutil.rmtree(self.short, ignore_errors=True)

    def node(self, name: str) -> Node:
        return next(node for node in self.nodes if node.name == name)

    def worker_processes(self) -> dict[int, str]:
        """The live subpipe actors of this cluster, pid -> the name of their node."""
        found = {}
        caches = {str(node.cache): node.name for node in self.nodes}
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                cmdline = (entry / "cmdline").read_bytes()
                environ = (entry / "environ").read_bytes().split(b"\0")
            except OSError:
                continue
            if not cmdline.startswith(b"ray::FilmWorker"):
                continue
            for item in environ:
                name = caches.get(item.decode(errors="replace").removeprefix("SUBPIPE_CACHE="))
                if name is not None:
                    found[int(entry.name)] = name
        return found


def _signal_group(pgid: int, signum: int) -> None:
    try:
        os.killpg(pgid, signum)
    except ProcessLookupError:
        pass
