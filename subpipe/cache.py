"""A content-addressed cache per stage: extracted audio, transcripts, translations.

Each entry is keyed on what made it (the input's hash, the model, the settings of that
stage), so rerunning after a crash, or after changing only a later stage's settings,
redoes only what changed. Entries are written atomically under a lock and carry their
own sha256: a corrupted entry is detected on read, dropped and rebuilt. A cache that
can't be used (a file where its folder goes, a full disk) is an OutputError that names
the cache, so the operator looks there and not at the outputs; an entry that is no
file (a folder, a link put there) is dropped and rebuilt like a corrupt one.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator, TypeVar

from .atomic import exclusive, remove_leftovers, write_bytes
from .digest import sha256_file
from .errors import ModelError, OutputError
from .textfile import file_kind

log = logging.getLogger(__name__)

T = TypeVar("T")


def cache_root() -> Path:
    """``$SUBPIPE_CACHE``, else ``$XDG_CACHE_HOME/subpipe``, else ``~/.cache/subpipe``.

    Model weights live under ``models/``, stage results under ``stages/``.
    """
    if os.environ.get("SUBPIPE_CACHE"):
        return Path(os.environ["SUBPIPE_CACHE"])
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "subpipe"


def key_of(*parts: Any) -> str:
    """A stable key for JSON-able ``parts`` (settings dicts, hashes, names)."""
    text = json.dumps(parts, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class StageCache:
    """Entries of every stage under ``root/stages/<stage>/<key>``; ``enabled=False`` stores nothing."""

    def __init__(self, root: Path | None = None, enabled: bool = True):
        self.root = (root or cache_root()) / "stages"
        self.enabled = enabled

    def get_or_make(self, stage: str, key: str, make: Callable[[], T],
                    dump: Callable[[T], bytes], load: Callable[[bytes], T]) -> T:
        """The cached value of (stage, key), or ``make()``'s, which is then stored."""
        if not self.enabled:
            return make()
        path = self._path(stage, key)
        with self._locked(path):
            data = self._read(path)
            if data is not None:
                try:
                    return load(data)
                except (ValueError, KeyError, TypeError, EOFError) as exc:
                    log.warning("cache entry %s/%s can't be read (%s); rebuilding it", stage, key[:12], exc)
            value = make()
            self._write(path, dump(value))
            return value

    def input_hash(self, path: Path) -> str:
        """sha256 of a media file, remembered by its path and stat so films are read once.

        Size and mtime alone are not enough: a film copied over another with ``cp -p``
        or ``touch -r`` keeps both. The inode and the ctime (which no one can set back)
        change whenever a file is replaced or written."""
        stat = path.stat()
        if not self.enabled:
            return sha256_file(path)
        memo = self._path("input-hash", key_of("input", str(path.resolve()), *file_identity(stat)))
        with self._locked(memo):
            known = self._read(memo)
            if known is not None:
                return known.decode("ascii")
            value = sha256_file(path)
            self._write(memo, value.encode("ascii"))
            return value

    def check(self) -> None:
        """Fail now, naming the cache, when it can't be written (before hours of work)."""
        if self.enabled:
            with self._failing_as_unusable():
                self.root.mkdir(parents=True, exist_ok=True)
                with tempfile.TemporaryFile(dir=self.root):
                    pass

    def clean(self) -> int:
        """Remove every entry; returns the bytes freed."""
        if not self.root.exists():
            return 0
        size = sum(p.stat().st_size for p in self.root.rglob("*") if p.is_file())
        shutil.rmtree(self.root)
        return size

    def _path(self, stage: str, key: str) -> Path:
        return self.root / stage / key[:2] / key

    def _read(self, path: Path) -> bytes | None:
        """The entry's bytes when its recorded sha256 matches, else None (and it's removed)."""
        with self._failing_as_unusable():
            try:
                kind = file_kind(path.lstat().st_mode)
            except FileNotFoundError:
                return None
            if kind:
                # Not ours as we wrote it (a folder, a link, a pipe that would hang the read).
                log.warning("cache entry %s is %s; rebuilding it", path, kind)
                if kind == "a folder":
                    shutil.rmtree(path)
                else:
                    path.unlink()
                return None
            blob = path.read_bytes()
            recorded, _, data = blob.partition(b"\n")
            if hashlib.sha256(data).hexdigest().encode("ascii") != recorded:
                log.warning("cache entry %s is corrupt; rebuilding it", path)
                path.unlink(missing_ok=True)
                return None
            return data

    def _write(self, path: Path, data: bytes) -> None:
        with self._failing_as_unusable():
            remove_leftovers(path)  # of a writer killed before it could rename
            write_bytes(path, hashlib.sha256(data).hexdigest().encode("ascii") + b"\n" + data)

    @contextmanager
    def _locked(self, path: Path) -> Iterator[None]:
        # Two processes on the same film wait for each other instead of both working.
        with self._failing_as_unusable():
            path.parent.mkdir(parents=True, exist_ok=True)
            lock = open(path.with_suffix(".lock"), "w")
        with exclusive(lock):
            yield

    @contextmanager
    def _failing_as_unusable(self) -> Iterator[None]:
        try:
            yield
        except OSError as exc:
            raise OutputError(f"the stage cache {self.root} can't be used: {exc.strerror or exc} (free space "
                              "there, set SUBPIPE_CACHE to another folder, or use --no-cache)") from None


def file_identity(stat: os.stat_result) -> tuple[int, int, int, int, int]:
    """What tells a file's content is unchanged without reading it: device, inode,
    size, mtime and ctime."""
    return stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns


class ModelStore:
    """One model's folder in the user cache, ``<cache>/models/<name>``: the files built
    there are recorded with their sha256 in ``checksums.json`` and checked before use,
    and one process at a time builds them (make -j8 starts many at once)."""

    def __init__(self, name: str, root: Path | None = None):
        self.dir = (root or cache_root()) / "models" / name
        self.record = self.dir / "checksums.json"

    def key_of(self, path: Path) -> str:
        """The record's name for ``path``: its place in the folder."""
        return path.relative_to(self.dir).as_posix()

    def recorded(self) -> dict[str, str]:
        try:
            return json.loads(self.record.read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return {}

    def verified(self, path: Path) -> str | None:
        """The file's sha256 when it matches its record, else None."""
        expected = self.recorded().get(self.key_of(path))
        if expected is None or not path.is_file():
            return None
        actual = sha256_file(path)
        if actual != expected:
            log.warning("%s fails its checksum; it will be rebuilt", path)
            return None
        return actual

    def remember(self, path: Path, sha: str, **about: str) -> None:
        """Record ``path``'s sha256 (and ``about`` it, such as where it came from)."""
        record = self.recorded()
        record[self.key_of(path)] = sha
        record.update(about)
        write_bytes(self.record, json.dumps(record, indent=2, sort_keys=True).encode())

    @contextmanager
    def locked(self) -> Iterator[None]:
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            lock = open(self.dir / ".lock", "w")
        except OSError as exc:
            raise self.unusable(exc) from None
        with exclusive(lock):
            yield

    def unusable(self, exc: OSError) -> ModelError:
        return ModelError(f"the model cache {self.dir} can't be used: {exc.strerror} "
                          "(set SUBPIPE_CACHE to a folder that can be written)")
