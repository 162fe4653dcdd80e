"""What makes a translation unfit for its track (another script's letters, a loop), and
what is done about it: decoded again, else cut and flagged, never shipped as it came."""

from __future__ import annotations

import re
from typing import Sequence

from ..findings import CLEANED, WARNING, Finding
from ..script import comparable, foreign, normalize, repeated
from .engine import Span, Translator, run_engine
from .fit import pieces
from .sentences import Sentence

# What a cue shows when nothing of its translation could be kept.
UNTRANSLATED = "[untranslated]"


def sane(raw: list[str], spans: Sequence[Span | None], plan: Sequence[Sentence], src: str, tgt: str,
         translator: Translator) -> tuple[list[str], list[Finding]]:
    """Translations fit for a ``tgt`` track: no other script, no loop.

    A sentence that fails is decoded again (a wider beam that may not repeat itself,
    where the engine can); if it still fails, what is wrong is taken out (a visible
    placeholder where nothing is left) and its cues are flagged (``cleaned``): never
    shipped as it came.
    """
    bad = [i for i, text in enumerate(raw) if flaws(text, tgt)]
    if not bad:
        return raw, []
    again = run_engine(translator, [spans[i] for i in bad], src, tgt, again=True)
    out, flags = list(raw), []
    for i, text in zip(bad, again):
        text = normalize(text, tgt).strip()
        if not flaws(text, tgt):
            out[i] = text
            continue
        found = flaws(text, tgt)
        out[i] = cleaned(text, tgt)
        message = f"the translation {' and '.join(found)}, decoded again and still so: cut to {out[i]!r}"
        flags += [Finding(CLEANED, message, WARNING, track=tgt, cue=cue + 1) for cue in plan[i].cues]
    return out, flags


def flaws(text: str, lang: str) -> list[str]:
    """What makes ``text`` unfit for a ``lang`` track: letters of another script, a loop."""
    found = []
    wrong = foreign(text, lang)
    if wrong:
        found.append(f"held {', '.join(repr(w) for w in wrong[:3])} (not {lang} script)")
    if repeated([comparable(u) for u in pieces(text, lang)]):
        found.append("repeated a word or phrase in a loop")
    return found


def cleaned(text: str, lang: str) -> str:
    """``text`` without other scripts' letters and without the repeats of a loop."""
    for run in foreign(text, lang):
        text = text.replace(run, " ")
    units = pieces(text, lang)
    drop = repeated([comparable(u) for u in units])
    kept = "".join(u for k, u in enumerate(units) if k not in drop)
    kept = re.sub(r"\s+", " ", kept).strip()
    return kept if any(ch.isalnum() for ch in kept) else UNTRANSLATED
