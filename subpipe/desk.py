"""The editor's desk: one film's tracks opened for editing from the review page.

The page (``review_page.html`` in edit mode) keeps the cues while the editor works and
asks this module three things: what the one judge of the rules (``check``) finds in a
track as it stands, to save tracks, and to translate again what a saved source changed.
Nothing here speaks HTTP (``desk_server`` does); every name a request may give is a
track's language code, looked up among the film's own tracks, never a path.

A save is a commit of the run's kind (``outputs.OutputSet``): under the outputs' lock,
atomic, recorded in the manifest, but as *edited in review*, so that a later ``run``
refuses the file unless ``--force``. A save made from an older version than the one on
disk is refused with the difference (``Stale``): never merged.
"""

from __future__ import annotations

import difflib
import hashlib
import logging
import math
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .bilingual import bilingual_tracks
from .check import check_bytes
from .config import Config
from .errors import OverwriteRefused, PipelineFailed, UsageError
from .findings import Finding
from .formats import FORMATS, chosen
from .formats.names import proxy_name, track_code, track_name
from .formats.srt import laid_out, read_track
from .formats.srt_strict import shown, unshown
from .glossary import Glossary, load_glossary
from .listen import load_transcriber, speech_of
from .manifest import EDITED_IN_REVIEW
from .media import SAMPLE_RATE, MediaInfo, Samples, choose_stream, probe, read_audio
from .outputs import OutputSet
from .pipeline import track_from_json, track_json
from .review import build_page, find_tracks, make_proxy, page_data, proxy_is_fresh, record_signoff, signoff
from .rules import judge_track
from .script import unmarked
from .translate.engine import Hearing
from .types import Cue, Track

log = logging.getLogger(__name__)

# A cue's text beyond this is no subtitle (and a page sending more is not an editor).
MAX_CUE_CHARS = 2000
MAX_CUES = 20_000
# Peaks per second of the waveform strip under the video.
PEAKS_PER_SECOND = 50


class DeskError(UsageError):
    """Bad input from the page (a cue ending before it starts, an unknown track): a
    clear message in the page, nothing written."""


class Stale(OverwriteRefused):
    """The page saved from an older version of a track than the one on disk."""

    def __init__(self, message: str, diff: str):
        super().__init__(message)
        self.diff = diff


@dataclass(frozen=True)
class Saved:
    """What a save wrote, and the versions the page continues from."""

    paths: tuple[Path, ...]
    versions: dict[str, str]
    retranslate: bool = False  # a source was saved and has tracks translated from it
    kept: tuple[str, ...] = ()  # edited target cues left as the editor wrote them
    notices: tuple[str, ...] = ()


@dataclass
class Desk:
    """The film ``video``, its tracks in ``folder``, the settings they are judged by."""

    video: Path
    config: Config
    folder: Path
    info: MediaInfo
    paths: dict[str, Path]  # language code -> the track's SRT, source first
    glossary: Glossary
    speech: tuple[tuple[float, float], ...] = ()
    peaks: tuple[float, ...] = ()
    audio: Samples | None = None  # the film's samples, for Whisper's speech translation
    lock: threading.Lock = field(default_factory=threading.Lock)
    _texts: dict[str, str] = field(default_factory=dict)  # sha256 -> a version the page was given

    @property
    def stem(self) -> str:
        return self.video.stem

    @property
    def source(self) -> str:
        return next(iter(self.paths))

    @property
    def proxy(self) -> Path:
        return self.folder / proxy_name(self.stem)

    # ---- the page ------------------------------------------------------------------

    def page(self, token: str) -> str:
        """The review page in edit mode, built from the tracks as they are on disk now."""
        tracks, versions = self._current()
        names = {self.paths[code].name: track for code, track in tracks.items()}
        findings = {self.paths[code].name: self.judge(track) for code, track in tracks.items()}
        rules = self.config.rules_at(self.info.fps)
        edit = {"token": token, "versions": versions, "source": self.source,
                "fps": self.info.fps or rules[self.source.split("-")[0]].fps,
                "gaps": {code: rules[code.split("-")[0]].min_gap for code in tracks},
                "speech": [[round(a, 3), round(b, 3)] for a, b in self.speech],
                "peaks": list(self.peaks), "peaks_per_second": PEAKS_PER_SECOND,
                "duration": round(self.info.duration, 3)}
        return build_page(self.video.name, "proxy", names, findings, self.glossary, edit=edit)

    def page_data(self) -> dict[str, Any]:
        tracks, _ = self._current()
        return page_data(self.video.name, "proxy", {self.paths[c].name: t for c, t in tracks.items()}, {}, None)

    def _current(self) -> tuple[dict[str, Track], dict[str, str]]:
        tracks, versions = {}, {}
        for code, path in self.paths.items():
            data = path.read_bytes()
            version = _sha(data)
            self._texts[version] = data.decode("utf-8-sig", "replace")
            tracks[code], versions[code] = editable(read_track(path, code, as_written=True)), version
        return tracks, versions

    # ---- judging ---------------------------------------------------------------------

    def judge(self, track: Track) -> list[Finding]:
        """What ``subpipe check`` would say of ``track`` written as subpipe writes it."""
        try:
            text = FORMATS["srt"].compose(self._written(track), None)
        except ValueError:
            # A cue no file can hold (ends before it starts): the judge still names it.
            return judge_track(track, self.config.rules_at(self.info.fps), audio_end=self.info.audio_end)
        report = check_bytes(text.encode("utf-8"), self.config.rules, lang=track.lang, fps=self.info.fps,
                             audio_end=self.info.audio_end)
        return list(report.findings)

    def track_from(self, code: Any, cues: Any) -> Track:
        """A track as the page sent it, checked for shape (DeskError when it is not one)."""
        if code not in self.paths:
            raise DeskError(f"no track {str(code)[:20]!r} on this desk")
        if not isinstance(cues, list) or len(cues) > MAX_CUES:
            raise DeskError(f"{code}: the cues must be a list of at most {MAX_CUES}")
        return Track(code, tuple(_cue(item, n, code) for n, item in enumerate(cues, 1)))

    # ---- saving ----------------------------------------------------------------------

    def save(self, edits: Mapping[str, tuple[str, Track]]) -> Saved:
        """Write each edited track (code -> (version the page had, track)) as one set."""
        if not edits:
            raise DeskError("nothing to save")
        for code, (_, track) in edits.items():
            require_writable(track)
        with self.lock, OutputSet(self.folder, self.stem, inputs=(self.video,)) as outputs:
            self._refuse_stale({code: version for code, (version, _) in edits.items()})
            desk = outputs.manifest.extra.setdefault("desk", {})
            if self.source in edits and "translated_from" not in desk and len(self.paths) > 1:
                # What the other tracks were translated from: what re-translation compares with.
                desk["translated_from"] = track_json(self._plain(self.source))
            for code, (_, track) in edits.items():
                if code != self.source:
                    _note_edited(desk, code, self._plain(code), track)
            tracks = {code: track for code, (_, track) in edits.items()}
            paths = self._commit(outputs, {**tracks, **self._bilingual(tracks)})
            versions = {code: _sha(self.paths[code].read_bytes()) for code in self.paths}
            return Saved(paths, versions, retranslate="translated_from" in desk)

    def retranslate(self, translator: Any = None) -> Saved:
        """Translate again the sentences of the saved source whose text or times changed
        since its translations were made; the other cues of each target stay as they
        are, and target cues an editor edited are kept (and listed)."""
        from . import retranslate as redo

        with self.lock, OutputSet(self.folder, self.stem, inputs=(self.video,)) as outputs:
            desk = outputs.manifest.extra.setdefault("desk", {})
            if "translated_from" not in desk:
                raise DeskError("the source has not changed since its translations were made")
            before = track_from_json(desk["translated_from"])
            current = {code: self._plain(code) for code in self.paths}
            done = redo.retranslate(before, current, desk.get("edited", {}), self.config, self.glossary,
                                    translator=translator, listen=self._hearing)
            del desk["translated_from"]
            paths = self._commit(outputs, done.tracks)
            versions = {code: _sha(self.paths[code].read_bytes()) for code in self.paths}
            return Saved(paths, versions, kept=done.kept, notices=done.notices)

    def _hearing(self) -> Hearing:
        """The film heard again, for a direction only Whisper's speech translation serves."""
        return Hearing(True, load_transcriber(self.config), self.audio)

    def sign_off(self, doc: Mapping[str, Any]) -> dict[str, Any]:
        """Record the page's approvals and flags in the manifest, as ``review --notes`` does."""
        with self.lock:
            result = signoff(doc, self.page_data(), notes_name="the page", page_name=f"{self.stem} (desk)")
            record_signoff(self.folder, self.stem, result)
        return {"approved": result.approved, "flagged": result.flagged, "pending": result.pending,
                "open": len(result.open_gaps)}

    def _refuse_stale(self, versions: Mapping[str, str]) -> None:
        for code, version in versions.items():
            text = self.paths[code].read_bytes()
            if _sha(text) == version:
                continue
            before = self._texts.get(version, "")
            diff = "".join(difflib.unified_diff(before.splitlines(True), text.decode("utf-8-sig", "replace")
                                                .splitlines(True), f"{self.paths[code].name} (your page)",
                                                f"{self.paths[code].name} (on disk)"))
            raise Stale(f"{self.paths[code].name} changed on disk since this page loaded it: reload the page "
                        "(your edits are not saved) and make them again", diff)

    def _commit(self, outputs: OutputSet, tracks: Mapping[str, Track]) -> tuple[Path, ...]:
        formats = chosen(self.config.output.formats)
        texts = {self.folder / track_name(self.stem, code, fmt.extension): fmt.compose(self._written(t), None)
                 for code, t in tracks.items() for fmt in formats}
        # The SRT's version was checked; a file in another format an editor changed by hand is theirs.
        refused = [(p, why) for p, why in outputs.manifest.refusals(texts) if why != "edited"
                   and p.suffix != ".srt"]
        if refused:
            raise OverwriteRefused(f"{', '.join(p.name for p, _ in refused)} changed outside subpipe: "
                                   "not written over from the desk")
        meta = {"model": "", "backend": EDITED_IN_REVIEW, "settings": {"edited_in_review": True}}
        return outputs.commit(texts, meta, force=True)

    def _bilingual(self, edited: Mapping[str, Track]) -> dict[str, Track]:
        """The bilingual tracks made again from the edited single-language ones (those an
        editor did not edit themselves). While the source and a target are out of step
        (a cue split, not yet re-translated) their pair waits for re-translation."""
        plain = {code: Track(code, tuple(Cue(c.start, c.end, tuple(unshown(line) for line in c.lines))
                                         for c in t.cues)) for code, t in edited.items()}
        made = {}
        for pair in (code for code in self.paths if "-" in code and code not in edited):
            src, _, tgt = pair.partition("-")
            if src not in plain and tgt not in plain:
                continue
            both = {code: plain.get(code) or self._plain(code) for code in (src, tgt) if code in self.paths}
            try:
                made.update(bilingual_tracks(both, [pair]))
            except PipelineFailed:
                log.info("%s waits for re-translation: %s and %s are out of step", pair, src, tgt)
        return made

    def _written(self, track: Track) -> Track:
        raw = Track(track.lang, tuple(Cue(c.start, c.end, tuple(unshown(line) for line in c.lines))
                                      for c in track.cues))
        return laid_out(raw, self.config.output.urdu_direction_marks)

    def _plain(self, code: str) -> Track:
        return Track(code, tuple(Cue(c.start, c.end, tuple(unmarked(line) for line in c.lines))
                                 for c in read_track(self.paths[code], code, as_written=True).cues))


def open_desk(video: Path, config: Config, *, tracks_dir: Path | None = None) -> Desk:
    """The desk for ``video``'s tracks (beside it, or in ``tracks_dir``), with its proxy
    made when missing and the film's voice activity for snapping cues to speech."""
    video = Path(video)
    info = probe(video)
    folder = Path(tracks_dir) if tracks_dir else video.parent
    paths = {track_code(p.name): p for p in find_tracks(folder, video.stem)}
    desk = Desk(video, config, folder, info, paths, load_glossary(config.translate.glossary_path))
    if not proxy_is_fresh(desk.proxy, video):
        make_proxy(video, desk.proxy)
    desk.audio = read_audio(info, choose_stream(info, None, desk.source.split("-")[0])).samples
    desk.speech = speech_of(desk.audio, config) or ()
    desk.peaks = peaks(desk.audio)
    return desk


def peaks(samples: Samples) -> tuple[float, ...]:
    """The loudest sample of each 1/PEAKS_PER_SECOND s, 0 to 1: the waveform strip."""
    import numpy as np

    step = SAMPLE_RATE // PEAKS_PER_SECOND
    found: list[float] = []
    for piece in samples.pieces(60.0):  # a whole number of steps: only the film's last piece is cut short
        usable = len(piece) // step * step
        top = np.abs(piece[:usable]).reshape(-1, step).max(axis=1)
        found += (round(float(v), 3) for v in np.minimum(top, 1.0))
    return tuple(found)


def editable(track: Track) -> Track:
    """``track`` (as written) as the page edits it: without the direction marks subpipe
    adds on writing, hidden controls written out (``<U+202E>``) so they are seen, not obeyed."""
    return Track(track.lang, tuple(Cue(c.start, c.end, tuple(shown(unmarked(line)) for line in c.lines))
                                   for c in track.cues))


def require_writable(track: Track) -> None:
    """DeskError unless ``track`` can be written as it is: cues in order, none
    overlapping, none ending before it starts, text that stays text in an SRT file."""
    previous: Cue | None = None
    for n, cue in enumerate(track.cues, 1):
        where = f"{track.lang} cue {n}"
        if not cue.start < cue.end:
            raise DeskError(f"{where}: it ends before it starts (or lasts no time)")
        if previous is not None and cue.start < previous.end:
            raise DeskError(f"{where}: it starts before cue {n - 1} ends (cues may not overlap)")
        if not any(line.strip() for line in cue.lines):
            raise DeskError(f"{where}: it has no text (delete the cue instead)")
        if any(not line.strip() for line in cue.lines):
            raise DeskError(f"{where}: an empty line would end the cue in an SRT file")
        if any("-->" in line for line in cue.lines):
            raise DeskError(f"{where}: a line with '-->' would read as a cue's times in an SRT file")
        previous = cue


def _cue(item: Any, n: int, code: str) -> Cue:
    if not isinstance(item, dict):
        raise DeskError(f"{code} cue {n}: not a cue")
    start, end, text = item.get("start"), item.get("end"), item.get("text")
    for value in (start, end):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
                or not 0 <= value < 360_000:
            raise DeskError(f"{code} cue {n}: its times must be seconds from 0 to 100 hours")
    if not isinstance(text, str) or len(text) > MAX_CUE_CHARS:
        raise DeskError(f"{code} cue {n}: its text must be a string of at most {MAX_CUE_CHARS} characters")
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    return Cue(round(float(start), 3), round(float(end), 3), tuple(lines))


def _note_edited(desk: dict, code: str, before: Track, after: Track) -> None:
    """Remember which target cues the editor wrote (by their times), so re-translation keeps them."""
    old = {(round(c.start, 3), round(c.end, 3)): c.lines for c in before.cues}
    edited = {tuple(x) for x in desk.get("edited", {}).get(code, [])}
    now = {(round(c.start, 3), round(c.end, 3)) for c in after.cues}
    edited = {t for t in edited if t in now}
    edited |= {(round(c.start, 3), round(c.end, 3)) for c in after.cues
               if old.get((round(c.start, 3), round(c.end, 3))) != tuple(unshown(line) for line in c.lines)}
    desk.setdefault("edited", {})[code] = sorted([a, b] for a, b in edited)


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
