"""Films travel to Ray workers that can't see the driver's disk: a server on the driver's
node reads each film in parts, and a worker elsewhere fetches them one after another
into a folder of its own, hashing as they arrive. No film is ever one Ray object, so
films of several GB stay within Ray's limits, and a worker holds two parts at most.

A worker on the driver's node reads the film where it lies. A worker's folder is locked
for as long as it lives, so a later worker on the node can tell a dead one's copies
from a live one's and remove them (``remove_stale``).
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from ..atomic import try_lock
from ..errors import InputError

log = logging.getLogger(__name__)

FOLDER_PREFIX = "subpipe-ray-worker-"
LOCK_NAME = ".subpipe-ray-worker.lock"


@dataclass(frozen=True)
class MediaRef:
    """Where a worker gets film ``index`` from: the driver's path and node, the server
    that reads it there, and the size of the parts."""

    index: int
    path: str
    size: int
    node_id: str
    server: Any  # a MediaServer actor handle
    part_bytes: int


class MediaServer:
    """On the driver's node: reads the batch's films (and no other file) in parts."""

    def __init__(self, files: dict[int, str]):
        self.files = files

    def read(self, index: int, offset: int, size: int) -> bytes:
        with open(self.files[index], "rb") as f:
            f.seek(offset)
            return f.read(size)


class WorkFolder:
    """A worker's own folder under the node's temporary folder, locked while it lives."""

    def __init__(self) -> None:
        remove_stale()
        self.path = Path(tempfile.mkdtemp(prefix=FOLDER_PREFIX))
        self._lock = try_lock(self.path / LOCK_NAME)  # held while the worker lives

    def remove(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)


def remove_stale(root: Path | None = None) -> list[Path]:
    """Remove the folders of dead workers on this node (their lock is free); returns them.

    Only a folder with a worker's lock file in it is ever removed: a folder of the same
    name made by someone else is not ours to judge. (A worker killed between making its
    folder and locking it leaves an empty folder behind, which costs nothing.)
    """
    removed = []
    for folder in sorted(Path(root or tempfile.gettempdir()).glob(f"{FOLDER_PREFIX}*")):
        try:
            lock = try_lock(folder / LOCK_NAME, create=False)
        except OSError:
            continue  # no lock file: not a worker's folder
        if lock is None:
            continue  # a live worker's
        os.close(lock)
        shutil.rmtree(folder, ignore_errors=True)
        removed.append(folder)
    return removed


@contextmanager
def received(media: MediaRef, folder: WorkFolder, node_id: str) -> Iterator[tuple[Path, str]]:
    """The film on this node's disk, and its sha256 when it was sent ('' when it was read
    where it lies). A copy is removed when the block ends, however it ends."""
    if node_id == media.node_id and Path(media.path).is_file():
        yield Path(media.path), ""
        return
    import ray

    target = folder.path / str(media.index) / Path(media.path).name
    target.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    try:
        with open(target, "wb") as out:
            offsets = range(0, media.size, media.part_bytes)
            # The next part is on its way while this one is written.
            coming = media.server.read.remote(media.index, 0, media.part_bytes) if media.size else None
            for offset in offsets:
                part = ray.get(coming)
                nxt = offset + media.part_bytes
                coming = media.server.read.remote(media.index, nxt, media.part_bytes) if nxt < media.size else None
                digest.update(part)
                out.write(part)
        if target.stat().st_size != media.size:
            raise InputError(f"{media.path} changed while it was sent: {target.stat().st_size} of the "
                             f"{media.size} bytes it had arrived")
        log.info("%s: sent to this node in %d part(s)", media.path, len(offsets))
        yield target, digest.hexdigest()
    finally:
        shutil.rmtree(target.parent, ignore_errors=True)


def this_node() -> tuple[str, str]:
    """This node's Ray id, and its address (how the operator knows it)."""
    import ray

    return ray.get_runtime_context().get_node_id(), ray.util.get_node_ip_address()
