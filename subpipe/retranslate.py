"""Re-translation after an editor saved a source track: only what changed.

The source is read as sentences (``translate.sentences``), before and after the edit.
A sentence of the new source whose cues (times and text) are exactly those of a
sentence before keeps its target cues as they are; every other sentence is translated
again, on its own, cue for cue as ``run`` does (``translate.track``). Target cues an
editor wrote (recorded by their times when saved) are kept as they stand, and listed.
The bilingual tracks are made again from the new tracks.

Where no engine reads text for a direction, Whisper's speech translation (the run's own
fallback) listens to the film again. It reads the audio, not the text: a sentence whose
text alone changed would come out the same, so only those whose times changed are
redone, and the editor is told.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Callable

from .bilingual import bilingual_tracks
from .config import Config
from .errors import ModelError, UsageError
from .glossary import Glossary
from .translate.engine import Hearing
from .translate.routes import check_models, make_translator
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
                config: Config, glossary: Glossary | None, *, translator: Any = None,
                listen: Callable[[], Hearing] | None = None) -> Redone:
    """``tracks`` (code -> plain track; the first the saved source) with the sentences of
    the source that differ from ``before`` (what the targets were made from) translated again.

    ``listen`` gives the film's recogniser and samples, for Whisper's speech translation
    where no text engine serves a direction (asked for only then: loading takes seconds)."""
    source = next(iter(tracks.values()))
    targets = [code for code in tracks if code != source.lang and "-" not in code]
    pairs = [code for code in tracks if "-" in code]
    if not targets:
        raise UsageError(f"there is no track translated from {source.lang} to make again")
    hearing, notices = Hearing(False), []
    if translator is None:
        try:
            check_models(source.lang, targets, config, can_listen=False)
        except ModelError:
            if listen is None:
                raise
            hearing = listen()
    by_text = not hearing.can_listen  # Whisper hears no text: only new times make a new translation
    old = {_key(before, s, by_text): s for s in sentences(before, config.translate)}
    plan = sentences(source, config.translate)
    changed = [s for s in plan if _key(source, s, by_text) not in old]
    if not by_text:
        notices.append("Whisper's speech translation listens to the film, not to the text: only the "
                       f"{len(changed)} sentence(s) whose times changed were translated again")
    if translator is None and changed:
        translator, made = make_translator(source.lang, targets, config, hearing)
        notices += made
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
                first = old[_key(source, s, by_text)].first
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


def _key(track: Track, sentence: Sentence, by_text: bool = True) -> tuple:
    """What makes a sentence's translation: its cues' times, and their text unless the engine hears no text."""
    return tuple((round(c.start, 3), round(c.end, 3)) + ((c.lines,) if by_text else ())
                 for c in track.cues[sentence.first:sentence.last + 1])


def _at(track: Track, cue: Cue) -> Cue | None:
    """The cue of ``track`` with ``cue``'s times, if it has one."""
    return next((c for c in track.cues if abs(c.start - cue.start) < 0.0005 and abs(c.end - cue.end) < 0.0005),
                None)
