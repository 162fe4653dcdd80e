"""A batch's films: collected from folders (recursively) and CSV manifests.

Every input that is not run is listed as skipped, with why; subpipe's own outputs beside
the videos and hidden files are passed over in silence.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

from ..config import load_config
from ..errors import ConfigError, SubpipeError, UsageError
from ..formats import names
from ..media import probe
from ..textfile import file_kind, read_small
from ..types import LANGUAGES

# Containers by extension; files with other extensions are probed (rushes often have none).
MEDIA_EXTENSIONS = {".mp4", ".mkv", ".mov", ".mxf", ".ts", ".m2ts", ".mts", ".avi", ".webm",
                    ".wav", ".mp3", ".m4a", ".aac", ".flac", ".ogg", ".opus", ".mpg", ".mpeg"}
NEVER_MEDIA = {".srt", ".vtt", ".ass", ".ssa", ".ttml", ".dfxp", ".json", ".html", ".txt", ".csv", ".toml", ".md",
               ".py", ".done", ".tmp", ".lock", ".jpg", ".jpeg", ".png", ".pdf", ".xml"}
MANIFEST_COLUMNS = ("path", "lang", "targets", "config")
# A manifest of a whole archive's films is well under this; a bigger file is none.
MAX_MANIFEST_BYTES = 64 << 20


@dataclass(frozen=True)
class Job:
    video: Path
    lang: str = "auto"
    targets: tuple[str, ...] = ()
    config: Path | None = None
    out_dir: Path | None = None
    backend: str | None = None  # --backend, over the config's [asr] backend
    device: str | None = None  # --device, over the config's [asr] device
    strict: bool = False  # --strict: a file with any finding fails
    formats: tuple[str, ...] | None = None  # --format, over the config's [output] formats


@dataclass(frozen=True)
class Skipped:
    """An input that was not run: where it came from and why."""

    where: str
    reason: str


def collect(inputs: Iterable[Path], lang: str, targets: tuple[str, ...], out: Path | None,
            config: Path | None) -> tuple[list[Job], list[Skipped]]:
    """Jobs from folders (recursively) and CSV manifests; what was not run (files that are
    not media, bad rows) comes back as skipped. An input that does not exist is a UsageError."""
    jobs: list[Job] = []
    skipped: list[Skipped] = []
    missing = [str(item) for item in inputs if not _exists(item)]
    if missing:
        raise UsageError(f"{', '.join(missing)}: no such file or folder")
    for item in inputs:
        if item.is_dir():
            for video in _media_in(item, skipped):
                rel_dir = video.parent.relative_to(item)
                jobs.append(Job(video, lang, targets, config, (out / rel_dir) if out else None))
        elif item.suffix.lower() == ".csv":
            rows, bad = _manifest(item, lang, targets, out, config)
            jobs += rows
            skipped += bad
        else:
            jobs.append(Job(item, lang, targets, config, out))
    return _without_clashes(jobs, skipped)


def _exists(path: Path) -> bool:
    try:
        return path.exists()
    except OSError:  # a name too long for the file system names nothing there
        return False


def nothing_to_do(inputs: Iterable[Path], skipped: list[Skipped]) -> str:
    """Why a batch found no job, in words: doing nothing is no success."""
    where = ", ".join(str(i) for i in inputs)
    if not skipped:
        return f"nothing to subtitle: {where} holds no files"
    return f"nothing to subtitle in {where}: {len(skipped)} file(s) or row(s) skipped, listed above"


def _without_clashes(jobs: list[Job], skipped: list[Skipped]) -> tuple[list[Job], list[Skipped]]:
    """Two films whose outputs would share names (film.mp4, film.mov in one folder) can't
    both be written: the second is skipped, never allowed to replace the first's."""
    seen: dict[tuple[Path, str], Path] = {}
    kept = []
    for job in jobs:
        where = ((job.out_dir or job.video.parent).resolve(), job.video.stem)
        if where in seen:
            skipped.append(Skipped(str(job.video), f"its outputs would replace those of {seen[where]}"))
            continue
        seen[where] = job.video
        kept.append(job)
    return kept, skipped


def _media_in(folder: Path, skipped: list[Skipped]) -> Iterator[Path]:
    """Media under ``folder``; every other file is added to ``skipped`` with why, except
    hidden files and the outputs subpipe wrote there itself."""
    for path in sorted(p for p in folder.rglob("*") if not p.name.startswith(".")):
        if not path.is_file():
            reason = _not_a_file(path)
            if reason:
                skipped.append(Skipped(str(path), reason))
            continue
        ext = path.suffix.lower()
        if _written_by_us(path):
            continue
        if ext in MEDIA_EXTENSIONS:
            yield path
        elif ext in NEVER_MEDIA:
            skipped.append(Skipped(str(path), "not media"))
        else:
            reason = _no_audio(path)
            if reason:
                skipped.append(Skipped(str(path), reason))
            else:
                yield path


def _not_a_file(path: Path) -> str:
    """Why an entry that is no file is not run ('' for a folder, whose files are looked
    at): links to folders are not followed (a loop, or the same films twice)."""
    if path.is_symlink():
        if not path.exists():
            return "a link to nothing (its target is gone)"
        if path.is_dir():
            return "a link to a folder, not followed: give the folder itself"
    if path.is_dir():
        return ""
    return f"{file_kind(path.stat().st_mode)}, not a media file"


def _written_by_us(path: Path) -> bool:
    """An output of an earlier run beside its video: a track, a manifest, a review page
    and its proxy or a burned-in film (media, but never to be subtitled), a batch report."""
    name = path.name
    if name == names.REPORT_NAME or name.endswith((names.MANIFEST_SUFFIX, names.REVIEW_SUFFIX)):
        return True
    if name.endswith(names.PROXY_SUFFIX):
        return path.with_name(names.review_name(name.removesuffix(names.PROXY_SUFFIX))).exists()
    burned = names.burned_stem(name)
    if burned is not None:
        return path.with_name(names.manifest_name(burned)).exists()
    track = names.split_track(name)
    if track is not None:
        return path.with_name(names.manifest_name(track[0])).exists()
    return False


def _no_audio(path: Path) -> str:
    """Why a file of no known extension is no media ('' when it has audio)."""
    try:
        return "" if probe(path).audio_streams else "no audio stream"
    except SubpipeError:
        return "not media (ffmpeg can't read it)"


def _manifest(path: Path, lang: str, targets: tuple[str, ...], out: Path | None,
              config: Path | None) -> tuple[list[Job], list[Skipped]]:
    """Rows ``path,lang,targets[,config]``; paths are relative to the manifest's folder."""
    jobs, skipped = [], []
    try:
        text = read_small(path, MAX_MANIFEST_BYTES).decode("utf-8-sig")
    except UnicodeDecodeError:
        raise UsageError(f"manifest {path} is not UTF-8 text") from None
    except OSError as exc:
        raise UsageError(f"cannot read manifest {path}: {exc.strerror}") from None
    reader = csv.DictReader(io.StringIO(text, newline=""))
    try:
        missing = [c for c in MANIFEST_COLUMNS[:1] if c not in (reader.fieldnames or [])]
        if missing:
            raise UsageError(f"manifest {path} needs a header row with the columns {', '.join(MANIFEST_COLUMNS)}")
        unknown = [c for c in reader.fieldnames or [] if c not in MANIFEST_COLUMNS]
        if unknown:
            raise UsageError(f"manifest {path} has an unknown column '{_short(unknown[0])}'")
        for row in reader:
            where = f"{path}:{reader.line_num}"
            try:
                job, reason = _row(row, path.parent, lang, targets, out, config)
            except OSError as exc:  # a path too long for the file system, ...
                job, reason = None, f"unusable path: {exc.strerror}"
            if job is None:
                skipped.append(Skipped(where, reason))
            else:
                jobs.append(job)
    except csv.Error as exc:  # a field past csv's limit (128 KB), a NUL byte, ...
        raise UsageError(f"manifest {path} line {reader.line_num + 1} is not a CSV row subpipe can read: "
                         f"{_csv_reason(exc)}") from None
    return jobs, skipped


def _csv_reason(exc: csv.Error) -> str:
    text = str(exc)
    return "a field is longer than 128 KB" if "field limit" in text else text


def _short(text: str) -> str:
    return text if len(text) <= 40 else text[:37] + "..."


def _row(row: dict, base: Path, lang: str, targets: tuple[str, ...], out: Path | None,
         config: Path | None) -> tuple[Job | None, str]:
    raw = (row.get("path") or "").strip()
    if not raw:
        return None, "no path"
    video = Path(raw) if Path(raw).is_absolute() else base / raw
    if not video.is_file():
        return None, f"{raw}: no such file"
    row_lang = (row.get("lang") or "").strip() or lang
    if row_lang not in (*LANGUAGES, "auto"):
        return None, f"bad language '{row_lang}' (use {', '.join(LANGUAGES)} or auto)"
    row_targets = tuple(t.strip() for t in (row.get("targets") or "").replace(";", ",").split(",") if t.strip())
    bad = [t for t in row_targets if t not in LANGUAGES]
    if bad:
        return None, f"bad target language '{bad[0]}'"
    row_config = (row.get("config") or "").strip()
    cfg = (base / row_config) if row_config else config
    if cfg is not None and not cfg.is_file():
        return None, f"config {row_config} not found"
    if row_config:
        try:
            load_config(cfg)  # a bad setting is named now, not after the files before it
        except ConfigError as exc:
            return None, str(exc)
    return Job(video, row_lang, row_targets or targets, cfg, out), ""
