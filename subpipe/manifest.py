"""The sidecar manifest: what subpipe wrote, with what, and its sha256.

subpipe may replace its own unchanged outputs; a file that differs from its record
(an editor changed it) or that subpipe never wrote is refused unless forced.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable

from .digest import sha256_file, sha256_text
from .errors import OverwriteRefused
from .srtio import write_text

VERSION = 1


@dataclass(frozen=True)
class Record:
    sha256: str
    model: str
    backend: str
    settings: dict[str, Any] = field(default_factory=dict)


def manifest_path(out_dir: Path, stem: str) -> Path:
    return out_dir / f"{stem}.subpipe.json"


class Manifest:
    """The records of one input's outputs, kept beside them as ``<stem>.subpipe.json``."""

    def __init__(self, path: Path):
        self.path = path
        self.records: dict[str, Record] = {}
        self.extra: dict[str, Any] = {}
        if path.is_file():
            self._load()

    def _load(self) -> None:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            files = data.get("files", {})
            self.records = {name: Record(**rec) for name, rec in files.items()}
            self.extra = {k: v for k, v in data.items() if k not in ("version", "files")}
        except (json.JSONDecodeError, TypeError, AttributeError):
            # A damaged manifest vouches for nothing: every existing output is then refused.
            self.records = {}

    def refusals(self, paths: Iterable[Path]) -> list[Path]:
        """Existing files among ``paths`` that we may not replace without --force."""
        refused = []
        for path in paths:
            if not path.exists():
                continue
            record = self.records.get(path.name)
            if record is None or not path.is_file() or sha256_file(path) != record.sha256:
                refused.append(path)
        return refused

    def guard(self, paths: Iterable[Path], force: bool) -> None:
        """Raise OverwriteRefused unless every existing output is ours and unchanged."""
        if force:
            return
        refused = self.refusals(paths)
        if refused:
            names = ", ".join(p.name for p in refused)
            raise OverwriteRefused(
                f"{names} {'was' if len(refused) == 1 else 'were'} changed since subpipe wrote "
                f"{'it' if len(refused) == 1 else 'them'} (or not written by subpipe): use --force to overwrite"
            )

    def record(self, path: Path, text: str, *, model: str, backend: str, settings: dict[str, Any]) -> None:
        self.records[path.name] = Record(sha256_text(text), model, backend, settings)

    def save(self) -> None:
        data = {"version": VERSION, "files": {k: asdict(v) for k, v in sorted(self.records.items())}, **self.extra}
        write_text(self.path, json.dumps(data, indent=2, ensure_ascii=False, sort_keys=True) + "\n")
