"""``subpipe review``: the editor's desk, one HTML page per film, and the sign-off.

The page is self-contained so it works opened from disk with no server and no
network: the cues travel inside it as JSON (browsers refuse subtitle files loaded
from ``file://``), the CSS and script are inline, and the video is a small H.264
proxy beside it (browsers can't play MXF, ProRes or TS). Cue text is data: the page
only ever puts it on screen with ``textContent``, and a Content-Security-Policy that
admits nothing but the page's own script (by hash) backs that up.

The editor's approvals and flags stay in the browser and come back as a JSON export;
``apply_notes`` reads that export against the page and records it in the manifest.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import logging
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .atomic import write_text
from .check import check_file, guess_lang
from .config import Config
from .errors import InputError, OutputError, UsageError
from .findings import Finding
from .formats.names import manifest_name, proxy_name, review_name, stem_of_manifest, track_code, track_name
from .formats.srt import read_track
from .formats.srt_strict import shown
from .glossary import Glossary, load_glossary
from .manifest import Manifest, manifest_path
from .media import MediaInfo, check_readable, last_line, probe, require_ffmpeg, url
from .outputs import OutputSet
from .rules import timestamp
from .textfile import read_small
from .types import LANGUAGES, Track

log = logging.getLogger(__name__)

TEMPLATE = Path(__file__).resolve().parent / "review_page.html"
NOTES_FORMAT = "subpipe-review-notes"
# A page with every track of a feature film is a few MB; notes are smaller. A file past
# this is neither (and a named pipe or /dev/zero is refused before it is read).
MAX_PAGE_BYTES = 256 << 20
STATUSES = ("approved", "flagged", "pending")
# The proxy: small enough to scrub on a laptop, and what every browser plays.
PROXY_HEIGHT = 480
# A keyframe every second keeps clicking from cue to cue quick.
PROXY_KEYFRAME_S = 1.0
_DATA_RE = re.compile(
    r'<script type="application/json" id="review-data">(.*?)</script>', re.DOTALL)
_SCRIPT_RE = re.compile(r"<script>(.*?)</script>", re.DOTALL)
_SLOT_RE = re.compile(r"\{\{([A-Z]+)\}\}")
# Tells apart times that SRT writes at millisecond precision.
_SAME_TIME = 0.0005


@dataclass(frozen=True)
class NoteEntry:
    """One cue the editor approved or flagged (or left a note on)."""

    track: str
    cue: int
    start: float
    status: str
    note: str = ""

    def line(self) -> str:
        """``film.zh.srt cue 3 (00:00:04,200): note`` on one line."""
        note = " ".join(self.note.split()) or "(no note)"
        return f"{self.track} cue {self.cue} ({timestamp(self.start)}): {note}"


@dataclass(frozen=True)
class Gap:
    """A stretch of speech with no subtitle on the page, and what the editor said of it."""

    n: int
    start: float
    end: float
    status: str = "pending"
    note: str = ""

    def line(self) -> str:
        note = " ".join(self.note.split())
        return (f"untranscribed speech {timestamp(self.start)} to {timestamp(self.end)}: {self.status}"
                + (f": {note}" if note else "") + " (approve it once it is subtitled, or is not speech)")


@dataclass(frozen=True)
class SignOff:
    """What an export of the page says, checked against the page it came from.

    Sign-off passes only when no cue is flagged and every stretch of speech with no
    subtitle (``gaps``) is approved: an open gap is speech the film still lacks.
    """

    page: str
    key: str
    approved: int
    flagged: int
    pending: int
    entries: tuple[NoteEntry, ...]
    gaps: tuple[Gap, ...] = ()

    @property
    def flagged_entries(self) -> tuple[NoteEntry, ...]:
        return tuple(e for e in self.entries if e.status == "flagged")

    @property
    def open_gaps(self) -> tuple[Gap, ...]:
        return tuple(g for g in self.gaps if g.status != "approved")

    def as_manifest(self) -> dict[str, Any]:
        """Deterministic (no who, no when): the same export always records the same."""
        return {
            "page": self.page,
            "cues_key": self.key,
            "approved": self.approved,
            "flagged": self.flagged,
            "pending": self.pending,
            "notes": [{"track": e.track, "cue": e.cue, "time": timestamp(e.start),
                       "status": e.status, "note": e.note} for e in self.entries],
            "untranscribed": [{"from": timestamp(g.start), "to": timestamp(g.end), "status": g.status,
                               "note": g.note} for g in self.gaps],
        }


# ---- the commands the CLI calls ----------------------------------------------------

def review_command(video: Path, tracks: list[Path] | None, output: Path | None, config: Config,
                   *, tracks_dir: Path | None = None) -> list[Path]:
    """Write the review page for tracks on disk, and the proxy beside it; returns [page, proxy].

    ``tracks`` None means every ``<stem>.<lang>.srt`` and ``<stem>.<src>-<tgt>.srt``
    in ``tracks_dir`` (default: beside the video). The files are read as strictly as
    ``subpipe check`` reads them.
    """
    video = Path(video)
    info = probe(video)
    folder = Path(tracks_dir) if tracks_dir else video.parent
    paths = list(tracks) if tracks else find_tracks(folder, video.stem)
    loaded = load_tracks(paths)
    findings = {name: _check(path, track, config, info.fps, info.audio_end)
                for (name, track), path in zip(loaded.items(), paths)}
    glossary = load_glossary(config.translate.glossary_path)
    sidecar = manifest_path(Path(paths[0]).parent, video.stem)
    return write_review(info, loaded, findings, glossary, output, sidecar, _recorded_gaps(sidecar))


def _recorded_gaps(sidecar: Path) -> list[tuple[float, float]]:
    """The untranscribed speech the run recorded in the film's manifest."""
    spans = Manifest(sidecar).extra.get("findings", {}).get("untranscribed", [])
    return [(float(a), float(b)) for a, b in spans if isinstance(a, (int, float)) and isinstance(b, (int, float))]


def write_review(info: MediaInfo, tracks: Mapping[str, Track], findings: Mapping[str, Sequence[Finding]],
                 glossary: Glossary | None, output: Path | None, manifest: Path,
                 gaps: Sequence[tuple[float, float]] = ()) -> list[Path]:
    """The page for ``tracks`` (by file name) with their ``findings``, the speech no cue
    covers (``gaps``, rows an editor must close), and the proxy beside it.

    An existing proxy newer than the video is kept.
    """
    video = info.path
    output = Path(output) if output else video.with_name(review_name(video.stem))
    if not output.parent.is_dir():
        raise OutputError(f"cannot write {output}: {output.parent} is not a folder")
    proxy = output.parent / proxy_name(video.stem)
    for path in (output, proxy):
        if path.exists() and os.path.samefile(path, video):
            raise OutputError(f"{path} is the film under review: write the page elsewhere (-o PAGE.html)")
    if not proxy_is_fresh(proxy, video):
        make_proxy(video, proxy)
    page = build_page(video.name, proxy.name, tracks, findings, glossary,
                      manifest=os.path.relpath(manifest, output.parent), gaps=gaps)
    write_text(output, page)
    return [output, proxy]


def notes_command(notes: Path, page: Path) -> tuple[int, list[str]]:
    """Apply an export; returns (exit status, one line per flagged cue and open gap).

    Status 1 when any cue is flagged or any stretch of untranscribed speech is still
    open (like findings from ``check``), else 0.
    """
    result = apply_notes(notes, page)
    lines = [entry.line() for entry in result.flagged_entries] + [gap.line() for gap in result.open_gaps]
    return (1 if lines else 0), lines


# ---- tracks ------------------------------------------------------------------------

def find_tracks(folder: Path, stem: str) -> list[Path]:
    """The film's tracks in ``folder``: the source first, then targets, then pairs."""
    found: dict[str, Path] = {}
    for path in folder.glob(f"{_glob_escape(stem)}.*.srt"):
        code = track_code(path.name)
        # "film.v2.ur.srt" belongs to film.v2, not to film.
        if code is not None and path.name == track_name(stem, code):
            found[code] = path
    if not found:
        raise InputError(f"no subtitle tracks for {stem} in {folder} (looked for"
                         f" {stem}.<lang>.srt); run 'subpipe run' first or name them with --tracks")
    return [found[code] for code in _track_order(found)]


def _track_order(codes: Sequence[str]) -> list[str]:
    # A pair names the source first; editors read source beside target.
    sources = [code.split("-")[0] for code in codes if "-" in code]
    singles = sorted((c for c in codes if "-" not in c),
                     key=lambda c: (c not in sources, LANGUAGES.index(c)))
    return singles + sorted(c for c in codes if "-" in c)


def _glob_escape(text: str) -> str:
    return re.sub(r"([*?\[])", r"[\1]", text)


def load_tracks(paths: Sequence[Path]) -> dict[str, Track]:
    """Tracks keyed by file name; the language from the name, else from the text."""
    tracks: dict[str, Track] = {}
    for path in map(Path, paths):
        if path.name in tracks:
            raise UsageError(f"two tracks are named {path.name}: give each film's tracks on their own")
        code = track_code(path.name)
        track = read_track(path, code or "", as_written=True)
        tracks[path.name] = track if code else Track(guess_lang(c.lines for c in track.cues), track.cues)
    return tracks


def _check(path: Path, track: Track, config: Config, fps: float | None,
           audio_end: float | None) -> list[Finding]:
    report = check_file(path, config.rules, lang=track.lang, fps=fps, audio_end=audio_end)
    if report.unreadable is not None:
        return [Finding("unreadable", report.unreadable)]
    return list(report.findings)


# ---- the proxy ---------------------------------------------------------------------

def make_proxy(video: Path, out: Path) -> Path:
    """A small H.264/AAC MP4 of ``video`` that any browser plays and seeks; atomic."""
    import ffmpeg

    check_readable(video)
    require_ffmpeg()
    # A temporary name a later run recognises as its own leftover (outputs.py); ffmpeg
    # is told the format, so the name needs no .mp4.
    tmp = out.with_name(f".{out.name}.proxy.tmp")
    scale = f"scale=-2:trunc(min({PROXY_HEIGHT}\\,ih)/2)*2"
    try:
        (ffmpeg.input(url(video))
         .output(url(tmp), vf=f"yadif=deint=interlaced,{scale}", vcodec="libx264",
                 preset="veryfast", crf=28, pix_fmt="yuv420p", acodec="aac", ac=2,
                 force_key_frames=f"expr:gte(t,n_forced*{PROXY_KEYFRAME_S})",
                 movflags="+faststart", sn=None, dn=None, format="mp4")
         .global_args("-nostdin", "-v", "error")
         .overwrite_output()
         .run(capture_stdout=True, capture_stderr=True))
        os.replace(tmp, out)
    except ffmpeg.Error as exc:
        raise InputError(f"could not make a browser proxy of {video}: {last_line(exc.stderr)}") from None
    finally:
        tmp.unlink(missing_ok=True)
    return out


def proxy_is_fresh(proxy: Path, video: Path) -> bool:
    # Re-encoding a feature film takes minutes; a proxy newer than the film is reused.
    return proxy.is_file() and proxy.stat().st_size > 0 and proxy.stat().st_mtime >= video.stat().st_mtime


# ---- the page ----------------------------------------------------------------------

def build_page(video_name: str, proxy_name: str, tracks: Mapping[str, Track],
               findings: Mapping[str, Sequence[Finding]], glossary: Glossary | None,
               *, manifest: str | None = None, gaps: Sequence[tuple[float, float]] = (),
               edit: Mapping[str, Any] | None = None) -> str:
    """The review page as HTML text. Pure: same inputs, same bytes.

    ``edit`` (the desk's token, versions, speech, ...) makes it the editing page that
    ``desk_server`` serves: it then talks to its own origin and nothing else.
    """
    data = page_data(video_name, proxy_name, tracks, findings, glossary, manifest=manifest, gaps=gaps)
    if edit is not None:
        data["edit"] = dict(edit)
    template = TEMPLATE.read_text(encoding="utf-8")
    slots = {
        "TITLE": html.escape(f"{'Edit' if edit is not None else 'Review'}: {video_name}"),
        "CSP": html.escape(content_security_policy(template, served=edit is not None)),
        "DATA": json_for_script(data),
    }
    # One pass, so text put in a slot is never read as a slot itself.
    return _SLOT_RE.sub(lambda m: slots[m.group(1)], template)


def page_data(video_name: str, proxy_name: str, tracks: Mapping[str, Track],
              findings: Mapping[str, Sequence[Finding]], glossary: Glossary | None,
              *, manifest: str | None = None, gaps: Sequence[tuple[float, float]] = ()) -> dict[str, Any]:
    """Everything the page's script needs, as plain JSON values."""
    track_list = [_track_data(name, track, findings.get(name, ())) for name, track in tracks.items()]
    return {
        "format": "subpipe-review",
        "version": 1,
        "video": video_name,
        "stem": Path(video_name).stem,
        "proxy": proxy_name,
        "manifest": manifest or manifest_name(Path(video_name).stem),
        "key": cues_key(tracks, gaps),
        "aligned": aligned(list(tracks.values())),
        "tracks": track_list,
        "gaps": [{"n": k, "start": round(a, 3), "end": round(b, 3), "time": timestamp(a), "until": timestamp(b),
                  "seconds": round(b - a, 1)} for k, (a, b) in enumerate(gaps, 1)],
        "glossary": _glossary_data(glossary),
    }


def cues_key(tracks: Mapping[str, Track], gaps: Sequence[tuple[float, float]] = ()) -> str:
    """A short hash of every cue (and gap): a rebuilt page with other cues gets other storage."""
    doc = [[name, t.lang, [[round(c.start, 3), round(c.end, 3), list(c.lines)] for c in t.cues]]
           for name, t in tracks.items()]
    if gaps:
        doc.append([[round(a, 3), round(b, 3)] for a, b in gaps])
    text = json.dumps(doc, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def aligned(tracks: Sequence[Track]) -> bool:
    """True when every track has the same cue count and times (one row per cue)."""
    if len(tracks) < 2:
        return True
    first = tracks[0].cues
    return all(len(t.cues) == len(first) and all(
        abs(a.start - b.start) < _SAME_TIME and abs(a.end - b.end) < _SAME_TIME
        for a, b in zip(first, t.cues)) for t in tracks[1:])


def json_for_script(data: Any) -> str:
    """JSON that can sit inside ``<script>``: no ``<``, ``>`` or ``&`` left to end it."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
    for raw, escaped in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"),
                         ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):
        text = text.replace(raw, escaped)
    return text


def content_security_policy(template: str, *, served: bool = False) -> str:
    """Only the page's own script runs (by hash): markup smuggled in by a cue is inert.
    A served page (the desk) may talk to its own server, and to nothing else."""
    scripts = _SCRIPT_RE.findall(template)
    hashes = " ".join(f"'sha256-{base64.b64encode(hashlib.sha256(s.encode()).digest()).decode()}'"
                      for s in scripts)
    connect = "connect-src 'self'; " if served else ""
    return ("default-src 'none'; "
            f"script-src {hashes}; style-src 'unsafe-inline'; img-src data:; "
            f"media-src 'self' file: blob:; {connect}base-uri 'none'; form-action 'none'")


def _track_data(name: str, track: Track, findings: Sequence[Finding]) -> dict[str, Any]:
    codes = track.lang.split("-") if track.lang else ["en"]
    judged = findings_data(track, findings)
    return {
        "name": name,
        "lang": track.lang,
        "cues": [{
            "n": i + 1,
            "start": round(cue.start, 3),
            "end": round(cue.end, 3),
            "time": timestamp(cue.start),
            "until": timestamp(cue.end),
            "lines": [shown(line) for line in cue.lines],  # a U+202E shown, not obeyed
            "langs": [_line_lang(line, codes) for line in cue.lines],
            "findings": judged["cues"][i],
        } for i, cue in enumerate(track.cues)],
        "findings": judged["loose"],
    }


def findings_data(track: Track, findings: Sequence[Finding]) -> dict[str, list]:
    """The findings as the page shows them: a list per cue, and those about no one cue."""
    per_cue, loose = _assign(track, findings)
    return {"cues": [[_finding_data(f) for f in per_cue.get(i, ())] for i in range(len(track.cues))],
            "loose": [_finding_data(f) for f in loose]}


def _line_lang(line: str, codes: Sequence[str]) -> str:
    if len(codes) == 1:
        return codes[0]
    guess = guess_lang([(line,)])
    # A line with no letters ("...", a number) goes with the source, as check does.
    return guess if guess in codes else codes[0]


def _assign(track: Track, findings: Sequence[Finding]) -> tuple[dict[int, list[Finding]], list[Finding]]:
    """Findings per cue position; those about no one cue (file structure) apart.

    ``check`` numbers cues as the file does; a file numbered out of step still gets
    its findings on the right cue by matching start times.
    """
    per_cue: dict[int, list[Finding]] = {}
    loose: list[Finding] = []
    for finding in findings:
        index = _cue_index(track, finding)
        if index is None:
            loose.append(finding)
        else:
            per_cue.setdefault(index, []).append(finding)
    return per_cue, loose


def _cue_index(track: Track, finding: Finding) -> int | None:
    by_number = finding.cue - 1 if finding.cue is not None and 0 < finding.cue <= len(track.cues) else None
    if finding.start is None:
        return by_number
    same = [i for i, c in enumerate(track.cues) if abs(c.start - finding.start) < _SAME_TIME]
    if by_number in same or (not same and by_number is not None):
        return by_number
    return same[0] if same else None


def _finding_data(f: Finding) -> dict[str, Any]:
    return {"rule": f.kind, "severity": f.severity, "measured": f.measured,
            "limit": f.limit, "message": f.message}


def _glossary_data(glossary: Glossary | None) -> dict[str, list[dict[str, str]]]:
    """Per language, each term's rendering, longest first so the longest match wins."""
    out: dict[str, list[dict[str, str]]] = {}
    for term in (glossary.terms if glossary else ()):
        for lang, text in term.renderings:
            out.setdefault(lang, []).append({"text": text, "term": term.key, "note": term.note})
    return {lang: sorted(items, key=lambda x: (-len(x["text"]), x["text"])) for lang, items in sorted(out.items())}


# ---- sign-off ----------------------------------------------------------------------

def read_page_data(page: Path) -> dict[str, Any]:
    """The data a review page was built with."""
    try:
        text = read_small(Path(page), MAX_PAGE_BYTES).decode("utf-8")
    except FileNotFoundError:
        raise InputError(f"{page} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read {page}: {getattr(exc, 'strerror', None) or exc}") from None
    match = _DATA_RE.search(text)
    try:
        data = json.loads(match.group(1)) if match else None
    except json.JSONDecodeError:
        data = None
    if not isinstance(data, dict) or data.get("format") != "subpipe-review":
        raise InputError(f"{page} is not a page written by 'subpipe review'")
    return data


def read_notes(notes: Path) -> dict[str, Any]:
    """An export from the page, checked for shape; UsageError (exit 2) if unreadable."""
    try:
        doc = json.loads(read_small(Path(notes), MAX_PAGE_BYTES).decode("utf-8-sig"))
    except FileNotFoundError:
        raise InputError(f"{notes} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read {notes}: {getattr(exc, 'strerror', None) or exc}") from None
    except json.JSONDecodeError as exc:
        raise InputError(f"{notes} is not valid JSON (line {exc.lineno}: {exc.msg})") from None
    if not isinstance(doc, dict) or doc.get("format") != NOTES_FORMAT or not isinstance(doc.get("cues"), list):
        raise InputError(f"{notes} is not a notes export from a subpipe review page")
    return doc


def signoff(doc: Mapping[str, Any], data: Mapping[str, Any], *, notes_name: str = "notes",
            page_name: str = "page") -> SignOff:
    """Judge an export against the page's data. Pure."""
    if doc.get("key") != data["key"]:
        raise InputError(f"{notes_name} was exported from another build of {page_name} (the cues"
                         " have changed since): review the new page and export again")
    order = {t["name"]: (i, t) for i, t in enumerate(data["tracks"])}
    entries = {}
    for item in doc["cues"]:
        entry = _entry(item, order, notes_name)
        entries[(order[entry.track][0], entry.cue)] = entry
    kept = tuple(entries[k] for k in sorted(entries))
    total = sum(len(t["cues"]) for t in data["tracks"])
    approved = sum(e.status == "approved" for e in kept)
    flagged = sum(e.status == "flagged" for e in kept)
    return SignOff(page_name, data["key"], approved, flagged, total - approved - flagged, kept,
                   _gaps(doc.get("gaps", []), data.get("gaps", []), notes_name))


def _gaps(items: Any, page: Sequence[Mapping[str, Any]], notes_name: str) -> tuple[Gap, ...]:
    """Every gap of the page, with the status the export gives it (pending when none)."""
    if not isinstance(items, list):
        raise InputError(f"{notes_name}: 'gaps' must be a list")
    said: dict[int, tuple[str, str]] = {}
    for item in items:
        n = item.get("n") if isinstance(item, dict) else None
        status, note = (item.get("status"), item.get("note", "")) if isinstance(item, dict) else (None, None)
        if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= len(page):
            raise InputError(f"{notes_name}: the page has no untranscribed stretch {n!r}")
        if status not in STATUSES or not isinstance(note, str):
            raise InputError(f"{notes_name}: untranscribed stretch {n}: status must be one of"
                             f" {', '.join(STATUSES)} and note a string")
        said[n] = (status, note)
    return tuple(Gap(g["n"], float(g["start"]), float(g["end"]), *said.get(g["n"], ("pending", ""))) for g in page)


def _entry(item: Any, order: Mapping[str, tuple[int, dict]], notes_name: str) -> NoteEntry:
    if not isinstance(item, dict):
        raise InputError(f"{notes_name}: each cue must be an object, got {item!r}")
    track, cue, status, note = item.get("track"), item.get("cue"), item.get("status"), item.get("note", "")
    if track not in order:
        raise InputError(f"{notes_name}: track {track!r} is not on the page")
    cues = order[track][1]["cues"]
    if not isinstance(cue, int) or isinstance(cue, bool) or not 1 <= cue <= len(cues):
        raise InputError(f"{notes_name}: {track} has no cue {cue!r}")
    if status not in STATUSES or not isinstance(note, str):
        raise InputError(f"{notes_name}: cue {cue} of {track}: status must be one of"
                         f" {', '.join(STATUSES)} and note a string")
    return NoteEntry(track, cue, float(cues[cue - 1]["start"]), status, note)


def apply_notes(notes_path: Path, page_path: Path) -> SignOff:
    """Check an export against its page and record it in the film's manifest."""
    page_path = Path(page_path)
    data = read_page_data(page_path)
    result = signoff(read_notes(notes_path), data, notes_name=Path(notes_path).name,
                     page_name=page_path.name)
    sidecar = page_path.parent / str(data.get("manifest", ""))
    # The page names the manifest; it may name nothing else we would then overwrite.
    stem = stem_of_manifest(sidecar.name)
    if stem is None:
        raise InputError(f"{page_path} names {sidecar.name!r} as its manifest, not a {manifest_name('<stem>')}")
    record_signoff(sidecar.parent, stem, result)
    return result


def record_signoff(folder: Path, stem: str, result: SignOff) -> None:
    """Record a sign-off in the manifest of ``stem``'s outputs in ``folder``."""
    with OutputSet(folder, stem) as outputs:
        outputs.manifest.extra["review"] = result.as_manifest()
        outputs.save_manifest()
    log.info("recorded the sign-off in %s", outputs.manifest_path)
