"""The sidecar manifest: what subpipe wrote, with what, and its sha256.

subpipe may replace its own unchanged outputs; a file that differs from its record
(an editor changed it) or that subpipe never wrote is refused unless forced.

The reader takes whatever a disk or an editor left: UTF-8 or UTF-16 with a byte-order
mark, damaged records beside good ones, binary junk, JSON nested a million deep. What it
can't read vouches for nothing, and says why in ``damage``: a run then refuses the files
it can't vouch for, naming the reason, and ``--force`` rewrites the manifest.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable

from .atomic import is_temporary, write_text
from .digest import sha256_file, sha256_text
from .errors import OverwriteRefused
from .formats.names import is_committed, manifest_name, stem_of_manifest
from .textfile import decode_text

VERSION = 1
# The backend a record names when an editor saved the file in ``subpipe review --edit``:
# the file is subpipe's own writing but the editor's work, so a run refuses it like any edit.
EDITED_IN_REVIEW = "review"
# No manifest of ours comes near this; a bigger file is not one.
MAX_BYTES = 16 << 20
_SHA256 = re.compile(r"[0-9a-f]{64}")
# Why an existing output is refused, for one file and for several.
_REASONS = {
    "changed": ("was changed since subpipe wrote it", "were changed since subpipe wrote them"),
    "edited": ("was edited in review ({manifest} records the editor's save)",
               "were edited in review ({manifest} records the editor's saves)"),
    "no record": ("was not written by subpipe ({manifest} has no record of it)",
                  "were not written by subpipe ({manifest} has no record of them)"),
    "no manifest": ("exists, and there is no {manifest} to say that subpipe wrote it",
                    "exist, and there is no {manifest} to say that subpipe wrote them"),
    "damaged": ("exists, and {manifest} {damage}, so it vouches for nothing",
                "exist, and {manifest} {damage}, so it vouches for nothing"),
}


@dataclass(frozen=True)
class Record:
    sha256: str
    model: str
    backend: str
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def edited(self) -> bool:
        """Saved by an editor from the review desk, not made by a run."""
        return self.backend == EDITED_IN_REVIEW


def manifest_path(out_dir: Path, stem: str) -> Path:
    return out_dir / manifest_name(stem)


class Manifest:
    """The records of one input's outputs, kept beside them as ``<stem>.subpipe.json``.

    ``pending`` maps an output's name to the temporary file that becomes it while a set
    of outputs is being committed (see outputs.py), and ``replaces`` each such output's
    sha256 as it was then (None: there was no file), so that whoever finishes the commit
    can tell a file an editor changed since; ``damage`` says why the file could not be
    read whole (None when it could, or when there is none).
    """

    def __init__(self, path: Path):
        self.path = path
        self.records: dict[str, Record] = {}
        self.pending: dict[str, str] = {}
        self.replaces: dict[str, str | None] = {}
        self.extra: dict[str, Any] = {}
        self.damage: str | None = None
        self.exists = path.exists()
        if self.exists:
            self._load()

    def _load(self) -> None:
        if not self.path.is_file():
            self.damage = "is not a file"
            return
        try:
            if self.path.stat().st_size > MAX_BYTES:
                self.damage = f"is larger than {MAX_BYTES >> 20} MB"
                return
            data = self.path.read_bytes()
        except OSError as exc:
            self.damage = f"can't be read ({exc.strerror})"
            return
        self.damage = self._parse(data)

    def _parse(self, data: bytes) -> str | None:
        """Take what can be read from ``data``; the reason it is damaged, or None."""
        try:
            doc = json.loads(decode_text(data))
        except UnicodeDecodeError:
            return "is not UTF-8 or UTF-16 text"
        except RecursionError:
            return "is JSON nested too deeply"
        except ValueError:
            return "is not valid JSON"
        if not isinstance(doc, dict) or not isinstance(doc.get("files"), dict):
            return "is not a subpipe manifest (no table of files)"
        if doc.get("version") != VERSION:
            return f"has version {_short(doc.get('version'))}, which this subpipe can't read"
        damaged = []
        for name, raw in doc["files"].items():
            record = _record(raw)
            if record is None:
                damaged.append(name)
            else:
                self.records[name] = record
        pending = doc.get("pending", {})
        stem = stem_of_manifest(self.path.name)
        for name, tmp in (pending.items() if isinstance(pending, dict) else [("pending", None)]):
            # Only a track of this manifest's own input is ever committed: a name such as
            # the film's own (damage, or a hand-written pending) is never renamed over.
            if isinstance(tmp, str) and _plain(name) and stem is not None and is_committed(name, stem) \
                    and is_temporary(tmp, name):
                self.pending[name] = tmp
            else:
                damaged.append(name)
        replaces = doc.get("replaces", {})
        for name, sha in (replaces.items() if isinstance(replaces, dict) else [("replaces", 0)]):
            if sha is None or (isinstance(sha, str) and _SHA256.fullmatch(sha)):
                self.replaces[name] = sha
            else:
                damaged.append(name)
        self.extra = {k: v for k, v in doc.items() if k not in ("version", "files", "pending", "replaces")}
        if damaged:
            return f"has damaged records ({', '.join(_short(n) for n in damaged[:3])})"
        return None

    def refusals(self, paths: Iterable[Path]) -> list[tuple[Path, str]]:
        """Existing files among ``paths`` that we may not replace without --force, each
        with why (a key of ``_REASONS``)."""
        refused = []
        for path in paths:
            if not path.exists():
                continue
            record = self.records.get(path.name)
            if record is not None:
                if not path.is_file() or sha256_file(path) != record.sha256:
                    refused.append((path, "changed"))
                elif record.edited:
                    refused.append((path, "edited"))
            elif not self.exists:
                refused.append((path, "no manifest"))
            elif self.damage is not None:
                refused.append((path, "damaged"))
            else:
                refused.append((path, "no record"))
        return refused

    def guard(self, paths: Iterable[Path], force: bool) -> None:
        """Raise OverwriteRefused unless every existing output is ours and unchanged."""
        if force:
            return
        by_reason: dict[str, list[str]] = {}
        for path, reason in self.refusals(paths):
            by_reason.setdefault(reason, []).append(path.name)
        if by_reason:
            parts = [", ".join(names) + " " + _REASONS[reason][len(names) > 1].format(
                manifest=self.path.name, damage=self.damage) for reason, names in by_reason.items()]
            raise OverwriteRefused(f"{'; '.join(parts)}: use --force to overwrite")

    def record(self, path: Path, text: str, *, model: str, backend: str, settings: dict[str, Any]) -> None:
        self.record_sha256(path, sha256_text(text), model=model, backend=backend, settings=settings)

    def record_sha256(self, path: Path, sha256: str, *, model: str, backend: str, settings: dict[str, Any]) -> None:
        self.records[path.name] = Record(sha256, model, backend, settings)

    def save(self) -> None:
        data: dict[str, Any] = {"version": VERSION, "files": {k: asdict(v) for k, v in sorted(self.records.items())},
                                **self.extra}
        if self.pending:
            data["pending"] = dict(sorted(self.pending.items()))
            data["replaces"] = {name: self.replaces.get(name) for name in sorted(self.pending)}
        write_text(self.path, json.dumps(data, indent=2, ensure_ascii=False, sort_keys=True) + "\n")
        self.exists, self.damage = True, None


def _record(raw: Any) -> Record | None:
    """A record when ``raw`` is a whole one, else None."""
    if not isinstance(raw, dict) or set(raw) - {"sha256", "model", "backend", "settings"}:
        return None
    sha, model, backend = raw.get("sha256"), raw.get("model", ""), raw.get("backend", "")
    settings = raw.get("settings", {})
    if not (isinstance(sha, str) and _SHA256.fullmatch(sha) and isinstance(model, str)
            and isinstance(backend, str) and isinstance(settings, dict)):
        return None
    return Record(sha, model, backend, settings)


def _plain(name: str) -> bool:
    """A file name in the manifest's own folder (a damaged or hostile manifest may say more)."""
    return "/" not in name and "\0" not in name and name not in ("", ".", "..")


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
