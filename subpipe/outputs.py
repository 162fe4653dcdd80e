"""One input's outputs in one folder, written as a set: locked while a run writes them,
and committed together with their record, so that after a crash at any instant the set
on disk is the old one or the new one, and the next run never refuses it falsely.

The commit (``OutputSet.commit``):

1. each new file is written to a temporary name beside its output
   (``.<name>.<random>.tmp``) and flushed to disk;
2. the manifest is replaced, atomically, by one that records the new files' sha256 and
   lists under ``pending`` which temporary file becomes which output. This rename is
   the commit point;
3. each temporary file is renamed over its output;
4. the manifest is written again without ``pending``.

Whoever next holds the lock finishes what a killed run left (``recover``): after the
commit point it renames what is still pending (roll forward); before it, it only removes
the temporary files, and the old set and its record stand untouched. Either way every
output then matches its record and no temporary file is left. An exception on the way
(Ctrl-C, SIGTERM, a full disk) runs the same recovery at once.

Rolling forward replaces only what the stopped run would have: each file is checked
against the sha256 the manifest says it had at the commit point (``replaces``). A file
an editor changed since is kept, and then refused as changed, as at any other time.
Whatever a manifest says, a rename lands only on one of this input's tracks and a
removal only takes this set's temporary files, and neither ever touches the input
itself (``inputs``): a damaged or hand-written manifest can't reach a film.

The lock is an ``flock`` on ``.<stem>.subpipe.lock`` beside the manifest. The kernel
releases it when its process dies, even by ``kill -9``, so it never outlives a run; the
file itself is removed when the run ends (or by the next run, after a kill).
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path
from typing import Any, Iterable, Mapping

from .atomic import crash_point, is_temporary, remove_unless_held, stage_bytes, sync_folder, try_lock
from .digest import sha256_file
from .errors import OutputBusy, OutputError, OverwriteRefused, SubpipeError
from .formats.names import is_committed, is_output, lock_name
from .manifest import Manifest, manifest_path

log = logging.getLogger(__name__)


class OutputSet:
    """The outputs of the input ``stem`` in ``folder``; use it as a context manager,
    which takes the lock (or raises OutputBusy at once) and recovers a killed run's work."""

    def __init__(self, folder: Path, stem: str, inputs: Iterable[Path] = ()):
        self.folder = folder
        self.stem = stem
        self.inputs = tuple(inputs)  # files read to make the outputs: never written or removed
        self.lock_path = folder / lock_name(stem)
        self.manifest_path = manifest_path(folder, stem)
        self.manifest = Manifest(self.manifest_path)  # read again once locked
        self._committing: set[str] = set()
        self._fd: int | None = None

    def __enter__(self) -> "OutputSet":
        self._lock()
        try:
            self.recover()
        except BaseException:
            self._unlock()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self._unlock()

    def guard(self, paths: Iterable[Path], force: bool) -> None:
        """Refuse, before any work, outputs we may not replace: a folder where a file goes
        (OutputError, even with --force), an edited file (OverwriteRefused, unless forced)."""
        paths = list(paths)
        for path in [*paths, self.manifest_path]:
            if self._is_input(path):
                raise OutputError(f"{path} is where subpipe would write an output, and it is the input itself: "
                                  "choose another --out")
            if path.exists() and not path.is_file():
                kind = "a folder" if path.is_dir() else "not a regular file"
                raise OutputError(f"{path} is {kind}, where subpipe writes an output: move it away, "
                                  "or choose another --out")
        self.manifest.guard(paths, force)

    def commit(self, texts: Mapping[Path, str], meta: dict[str, Any], force: bool) -> tuple[Path, ...]:
        """Write every file of ``texts`` and its record as one set (the protocol above)."""
        self.guard(texts, force)
        try:
            pending = {}
            for path, text in texts.items():
                pending[path.name] = self._staged(path, text).name
                self.manifest.record(path, text, **meta)
                crash_point("commit.staged")
            kept = self._commit_pending(pending)
        except BaseException:
            self._recover_after_failure()
            raise
        _refuse(kept)
        return tuple(texts)

    def commit_staged(self, staged: Mapping[Path, Path], meta: dict[str, Any], force: bool) -> tuple[Path, ...]:
        """Commit files already written to temporary names beside their outputs
        (``atomic.staging``; ffmpeg's, say) as one set with their record, as ``commit`` does."""
        self.guard(staged, force)
        try:
            for path, tmp in staged.items():
                self.manifest.record_sha256(path, sha256_file(tmp), **meta)
            kept = self._commit_pending({path.name: tmp.name for path, tmp in staged.items()})
        except BaseException:
            self._recover_after_failure()
            raise
        _refuse(kept)
        return tuple(staged)

    def _commit_pending(self, pending: dict[str, str]) -> list[str]:
        """Record what each temporary file becomes, and the sha256 of what it replaces,
        then rename them; returns the outputs kept because they changed meanwhile."""
        self.manifest.pending = pending
        self._committing = set(pending)  # named by this run (burn's -o may name any file)
        self.manifest.replaces = {name: _sha256_or_none(self.folder / name) for name in pending}
        self.manifest.save()  # the commit point
        crash_point("commit.recorded")
        return self._finish()

    def save_manifest(self) -> None:
        """Write the manifest alone (e.g. a review's sign-off recorded in ``extra``)."""
        self.manifest.save()

    def recover(self) -> None:
        """Finish or undo what a killed run left: roll a committed set forward, remove
        the temporary files of one that was not."""
        self.manifest = Manifest(self.manifest_path)
        if self.manifest.pending:
            log.info("%s: finishing the outputs a stopped run had committed", self.manifest_path)
            for name in self._finish():
                log.warning("%s was changed after a stopped run recorded its replacement: kept, not "
                            "replaced", self.folder / name)
        for entry in os.scandir(self.folder):
            if self._leftover(entry.name) and not self._is_input(Path(entry.path)):
                remove_unless_held(Path(entry.path))

    def _staged(self, path: Path, text: str) -> Path:
        try:
            return stage_bytes(path, text.encode("utf-8"))
        except OSError as exc:
            raise OutputError(f"cannot write {path}: {exc.strerror}") from None

    def _finish(self) -> list[str]:
        """Rename every pending file over its output, then record that none is pending;
        returns the outputs kept because they changed after the commit point."""
        kept = []
        try:
            for name, tmp in self.manifest.pending.items():
                target, staged = self.folder / name, self.folder / tmp
                if not self._may_replace(name, tmp) or not staged.exists():
                    continue
                if target.exists() and _sha256_or_none(target) != self.manifest.replaces.get(name):
                    kept.append(name)  # its temporary file goes with the other leftovers
                    continue
                os.replace(staged, target)
                crash_point("commit.renamed")
            sync_folder(self.folder)
        except OSError as exc:
            raise OutputError(f"cannot finish writing the outputs in {self.folder}: {exc.strerror}") from None
        self.manifest.pending, self.manifest.replaces = {}, {}
        self.manifest.save()
        crash_point("commit.done")
        return kept

    def _may_replace(self, name: str, tmp: str) -> bool:
        """Whether a rename of ``tmp`` over ``name`` stays among this set's own files
        (the manifest checked as much when it was read; this is the last word)."""
        ours = (is_committed(name, self.stem) or name in self._committing) and is_temporary(tmp, name)
        if not ours or self._is_input(self.folder / name) or self._is_input(self.folder / tmp):
            log.warning("%s: not renaming %s over %s, which is not one of its outputs", self.manifest_path, tmp, name)
            return False
        return True

    def _is_input(self, path: Path) -> bool:
        for source in self.inputs:
            try:
                if os.path.samefile(source, path):
                    return True
            except OSError:
                continue  # one of the two does not exist
        return False

    def _recover_after_failure(self) -> None:
        try:
            self.recover()
        except (OSError, SubpipeError) as exc:
            # The first failure is the one to report; the next run recovers again.
            log.warning("could not tidy up %s: %s", self.folder, exc)

    def _leftover(self, name: str) -> bool:
        """A temporary file on its way to one of this set's outputs."""
        match = re.fullmatch(r"\.(.+)\.[^./]+\.tmp", name)
        if match is None:
            return False
        return is_output(match.group(1), self.stem)

    def _lock(self) -> None:
        try:
            # The last holder removes the file as it lets go (``_unlock``).
            fd = try_lock(self.lock_path)
        except OSError as exc:
            raise OutputError(f"cannot create the lock file {self.lock_path}: {exc.strerror}") from None
        if fd is None:
            holder = _holder(self.lock_path)
            who = f"another subpipe run (pid {holder})" if holder.isdigit() else "another subpipe run"
            raise OutputBusy(f"{who} is writing the outputs of {self.stem} in {self.folder}: "
                             "wait for it to finish, or choose another --out")
        try:
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode("ascii"))
        except OSError as exc:  # a full disk: the file is made, its few bytes are not
            self.lock_path.unlink(missing_ok=True)  # ours: we hold its lock
            os.close(fd)
            raise OutputError(f"cannot write the lock file {self.lock_path}: {exc.strerror}") from None
        self._fd = fd
        crash_point("lock.taken")

    def _unlock(self) -> None:
        if self._fd is None:
            return
        self.lock_path.unlink(missing_ok=True)
        os.close(self._fd)
        self._fd = None


def _holder(lock_path: Path) -> str:
    """The pid a live run wrote in its lock file ('' when it can't be read)."""
    try:
        with open(lock_path, "rb") as f:
            return f.read(32).decode("ascii", "replace").strip()
    except OSError:
        return ""


def _sha256_or_none(path: Path) -> str | None:
    """The file's sha256; None when there is none (a folder where it goes is no file)."""
    return sha256_file(path) if path.is_file() else None


def _refuse(kept: list[str]) -> None:
    if kept:
        raise OverwriteRefused(f"{', '.join(kept)} changed while subpipe wrote its outputs, and was kept: "
                               "use --force to overwrite")
