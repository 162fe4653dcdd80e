"""Re-translation after an editor saved a source track: only what changed.

The source is read as sentences (``translate.sentences``), before and after the edit.
A sentence of the new source whose cues (times and text) are exactly those of a
sentence before keeps its target cues as they are; every other sentence is translated
again, on its own, cue for cue as ``run`` does (``translate.track``). Target cues an
editor wrote (recorded by their times when saved) are kept as they stand, and listed.
The bilingual tracks are made again from the new tracks.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .bilingual import bilingual_tracks
from .config import Config
from .errors import UsageError
from .glossary import Glossary
from .translate.engine import Hearing
from .translate.routes import make_translator
from .translate.sentences import Sentence, sentences
from .translate.track import translate_tracks
from .types import Cue, Track


@dataclass(frozen=True)
class Redone:
    """The tracks to write (by code), the edited target cues kept, what to tell the editor."""

    tracks: dict[str, Track]
    kept: tuple[str, ...]
    notices: tuple[str, ...]
    changed: int  # sentences translated again


def retranslate(before: Track, tracks: Mapping[str, Track], edited: Mapping[str, Sequence[Sequence[float]]],
                config: Config, glossary: Glossary | None, *, translator: Any = None) -> Redone:
    """``tracks`` (code -> plain track; the first the saved source) with the sentences of
    the source that differ from ``before`` (what the targets were made from) translated again."""
    source = next(iter(tracks.values()))
    targets = [code for code in tracks if code != source.lang and "-" not in code]
    pairs = [code for code in tracks if "-" in code]
    if not targets:
        raise UsageError(f"there is no track translated from {source.lang} to make again")
    old = {_key(before, s): s for s in sentences(before, config.translate)}
    plan = sentences(source, config.translate)
    changed = [s for s in plan if _key(source, s) not in old]
    notices: list[str] = []
    if translator is None and changed:
        # Text engines only: the desk has the editor's text, and Whisper's speech translation reads no text.
        translator, notices = make_translator(source.lang, targets, config, Hearing(False))
    redone = {s.first: _translated(source, s, targets, translator, config, glossary) for s in changed}
    out: dict[str, Track] = {source.lang: source}
    kept: list[str] = []
    for code in targets:
        mine = {tuple(t) for t in edited.get(code, [])}
        cues: list[Cue] = []
        for s in plan:
            if s.first in redone:
                for cue, new in zip(source.cues[s.first:s.last + 1], redone[s.first][code].cues):
                    own = _at(tracks[code], cue) if (round(cue.start, 3), round(cue.end, 3)) in mine else None
                    if own is not None:
                        kept.append(f"{code} cue {len(cues) + 1}: kept as the editor wrote it")
                    cues.append(own or new)
            else:
                first = old[_key(source, s)].first
                cues += tracks[code].cues[first:first + s.last - s.first + 1]
        out[code] = Track(code, tuple(cues))
    out.update(bilingual_tracks(out, pairs))
    return Redone({code: t for code, t in out.items() if code != source.lang}, tuple(kept),
                  tuple(notices), len(changed))


def _translated(source: Track, sentence: Sentence, targets: Sequence[str], translator: Any,
                config: Config, glossary: Glossary | None) -> dict[str, Track]:
    """One sentence translated on its own (its cues a track of their own: one sentence)."""
    part = Track(source.lang, source.cues[sentence.first:sentence.last + 1])
    rules = config.rules_at(None)
    results = translate_tracks(part, targets, translator, rules, glossary, options=config.translate)
    return {code: result.track for code, result in results.items()}


def _key(track: Track, sentence: Sentence) -> tuple:
    return tuple((round(c.start, 3), round(c.end, 3), c.lines) for c in track.cues[sentence.first:sentence.last + 1])


def _at(track: Track, cue: Cue) -> Cue | None:
    """The cue of ``track`` with ``cue``'s times, if it has one."""
    return next((c for c in track.cues if abs(c.start - cue.start) < 0.0005 and abs(c.end - cue.end) < 0.0005),
                None)
