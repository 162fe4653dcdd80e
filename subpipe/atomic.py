"""Whole-or-nothing file writes: a crash leaves the old file or the new one, never half.

Temporary files are named ``.<target name>.<random>.tmp`` beside their target, and their
writer holds an ``flock`` on each until it is renamed, so whoever comes later can tell a
killed writer's leftovers (``remove_leftovers``) from a live writer's work.
"""

from __future__ import annotations

import fcntl
import os
import re
import signal
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import IO, BinaryIO, Iterator

from .errors import OutputError

# Where $SUBPIPE_CRASH_AT names a point, how many times each point has been passed.
_passes: dict[str, int] = {}


@contextmanager
def atomic_file(target: Path) -> Iterator[BinaryIO]:
    """Write to a temporary file beside ``target``; rename it over ``target`` only on success."""
    with _temporary(target) as (f, tmp):
        yield f
        _finish(f, tmp)
        crash_point("atomic.before_rename")
        os.replace(tmp, target)


def write_bytes(target: Path, data: bytes) -> None:
    with atomic_file(target) as f:
        f.write(data)


def write_text(path: Path, text: str) -> None:
    """Write ``text`` (UTF-8) so that a crash leaves the old file or the new one, never half."""
    try:
        write_bytes(path, text.encode("utf-8"))
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {exc.strerror}") from None


def stage_bytes(target: Path, data: bytes) -> Path:
    """``data`` in a temporary file beside ``target``, flushed to disk, for the caller to
    rename over it. Unlocked once written: the caller's own lock guards it from then on."""
    with _temporary(target) as (f, tmp):
        f.write(data)
        _finish(f, tmp)
    return tmp


@contextmanager
def staging(target: Path) -> Iterator[Path]:
    """A temporary file beside ``target`` for another program to write (ffmpeg), locked
    while it does, flushed to disk after, removed if anything fails; the caller renames
    or commits it, its own lock guarding it from then on."""
    with _temporary(target) as (f, tmp):
        yield tmp
        _finish(f, tmp)


def is_temporary(name: str, target: str) -> bool:
    """Whether the file ``name`` is one of ours on the way to ``target`` (a file name)."""
    return re.fullmatch(rf"\.{re.escape(target)}\.[^./]+\.tmp", name) is not None


def remove_leftovers(target: Path) -> None:
    """Remove the temporary files of ``target`` that no live writer holds (a killed one's)."""
    for entry in os.scandir(target.parent):
        if is_temporary(entry.name, target.name):
            remove_unless_held(Path(entry.path))


def remove_unless_held(path: Path) -> None:
    """Remove ``path`` unless a live process holds an flock on it."""
    try:
        fd = try_lock(path, create=False)
    except FileNotFoundError:
        return
    if fd is None:
        return  # being written
    try:
        path.unlink(missing_ok=True)
    finally:
        os.close(fd)


def try_lock(path: Path, *, create: bool = True) -> int | None:
    """An open descriptor of ``path`` holding an exclusive ``flock`` on it, or None while
    a live process holds one; nothing waits. The kernel drops the lock when its process
    dies, even by ``kill -9``, so a lock never outlives its holder.

    ``create``: make the file when it is missing (else FileNotFoundError). A lock on a
    file its last holder removed locks nothing, so the lock taken is on the file that is
    at ``path`` now.
    """
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644) if create else os.open(path, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        try:
            if os.stat(path).st_ino == os.fstat(fd).st_ino:
                return fd
        except FileNotFoundError:
            pass
        os.close(fd)
        if not create:
            raise FileNotFoundError(path)


@contextmanager
def exclusive(lock: IO) -> Iterator[None]:
    """An exclusive ``flock`` on the open ``lock`` file while the block runs; the file is
    closed after. The kernel drops the lock if the process dies: it never outlives a run."""
    with lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def sync_folder(folder: Path) -> None:
    """Make the renames in ``folder`` durable (a power cut after this keeps them)."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def crash_point(name: str) -> None:
    """A test hook: the process kills itself (SIGKILL, as ``kill -9``) at the point that
    ``$SUBPIPE_CRASH_AT`` names, ``name`` or ``name:N`` for its Nth pass."""
    wanted = os.environ.get("SUBPIPE_CRASH_AT")
    if not wanted or not wanted.startswith(name):
        return
    _passes[name] = _passes.get(name, 0) + 1
    if wanted in (name, f"{name}:{_passes[name]}"):
        os.kill(os.getpid(), signal.SIGKILL)


@contextmanager
def _temporary(target: Path) -> Iterator[tuple[BinaryIO, Path]]:
    """A new temporary file beside ``target``, open and locked; removed if anything fails."""
    target.parent.mkdir(parents=True, exist_ok=True)
    while True:
        fd, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            if os.stat(name).st_ino == os.fstat(fd).st_ino:
                break
        except FileNotFoundError:
            pass
        os.close(fd)  # taken for a leftover between its making and its locking: make another
    tmp = Path(name)
    try:
        with os.fdopen(fd, "wb") as f:
            yield f, tmp
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _finish(f: BinaryIO, tmp: Path) -> None:
    f.flush()
    os.fsync(f.fileno())
    # mkstemp makes 0600 files; outputs are for sharing, so honour the umask.
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
