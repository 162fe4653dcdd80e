"""What makes a translation unfit for its track, and what is done about it: decoded
again, else cut or flagged, never shipped as it came.

Unfit is what translation models, small language models above all, do wrong: another
script's letters (or a whole sentence in the wrong script), a loop in any spelling
("security security security", "China-US-US-US-…", "8G-S-S-S-…"), a sentence dropped or
much shorter than its source (but not one fitted to the characters its cues allow),
text invented beyond the source, a glossary term lost.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Sequence

from ..findings import CLEANED, UNFAITHFUL, WARNING, Finding
from ..glossary import PLACEHOLDER, Slot, check
from ..script import comparable, foreign, normalize, repeated, script_of, visible
from .engine import Span, Translator, run_engine
from .fit import pieces
from .sentences import Sentence

# What a cue shows when nothing of its translation could be kept.
UNTRANSLATED = "[untranslated]"
# Characters of a translation per character of its source, by direction (the dev set's
# 25 human-translated paragraphs, udhr_dev.tsv: en->zh 0.26, zh->en 3.9, ur->en 1.12,
# en->ur 0.89, ur->zh 0.29, zh->ur 3.5).
LENGTH_RATIO = {"en-zh": 0.26, "zh-en": 3.9, "ur-en": 1.12, "en-ur": 0.89, "ur-zh": 0.29, "zh-ur": 3.5}
# Much shorter: under this share of what the source (or, when less, the cues' budget) asks for.
SHORT_SHARE = 1 / 3
# Invented: over this many times what the source asks for, plus a margin for short sentences.
LONG_TIMES, LONG_MARGIN = 2.5, 20
# Sentences asking for fewer characters than this vary too much to call short.
MIN_EXPECTED = 20
# A run of a few characters over and over with nothing between (hahaha, SSSSSS, 的的的的).
_CHAR_LOOP = re.compile(r"(\D{1,12}?)\1{5,}")
# Short pieces joined by marks, over and over (US-US-US-, S-S-S-): cut to one copy.
_MARK_LOOP = re.compile(r"(\w{1,12}[^\w\s]{1,3})\1{2,}")
_PLACEHOLDER = re.compile(PLACEHOLDER.format(r"\d+"))


@dataclass(frozen=True)
class Expected:
    """What a sentence's translation answers to: its ``source`` text (in ``src``), the
    characters its cues allow in the target (``budget``, None: no limit), and the
    glossary ``slots`` whose placeholders must come through."""

    source: str
    src: str
    budget: float | None = None
    slots: tuple[Slot, ...] = ()


def sane(raw: list[str], spans: Sequence[Span | None], plan: Sequence[Sentence], src: str, tgt: str,
         translator: Translator, expected: Sequence[Expected | None] | None = None
         ) -> tuple[list[str], list[Finding]]:
    """Translations fit for a ``tgt`` track.

    A sentence with a flaw is decoded again (a wider beam that may not repeat itself,
    where the engine can); if both tries have flaws, the one with fewer is kept and
    what can be taken out is (other scripts' letters, a loop's repeats: ``cleaned``, a
    visible placeholder where nothing is left); what can't (a sentence dropped or
    invented, ``unfaithful``) is kept for an editor. Either way its cues are flagged.
    A glossary term lost is flagged where the glossary is checked, not here.
    """
    want = list(expected) if expected is not None else [None] * len(raw)
    bad = [i for i, text in enumerate(raw) if spans[i] is not None and flaws(text, tgt, want[i])]
    if not bad:
        return raw, []
    again = run_engine(translator, [spans[i] for i in bad], src, tgt, again=True)
    out, flags = list(raw), []
    for i, text in zip(bad, again):
        text = normalize(text, tgt).strip()
        second = flaws(text, tgt, want[i])
        if not second:
            out[i] = text
            continue
        first = flaws(raw[i], tgt, want[i])
        kept, found = (raw[i], first) if len(first) < len(second) else (text, second)
        fixable = flaws(kept, tgt)
        out[i] = cleaned(kept, tgt) if fixable else kept
        if fixable:
            message = f"the translation {' and '.join(found)}, decoded again and still so: cut to {out[i]!r}"
            flags += [Finding(CLEANED, message, WARNING, track=tgt, cue=cue + 1) for cue in plan[i].cues]
        rest = [f for f in found if f not in fixable and not f.startswith(_LOST)]
        if rest:
            message = f"the translation {' and '.join(rest)}, decoded again and still so: kept for an editor"
            flags += [Finding(UNFAITHFUL, message, WARNING, track=tgt, cue=cue + 1) for cue in plan[i].cues]
    return out, flags


_LOST = "lost the glossary term"


def flaws(text: str, lang: str, expected: Expected | None = None) -> list[str]:
    """What makes ``text`` unfit for a ``lang`` track: letters of another script, a
    loop; with ``expected``, also a sentence dropped, much shorter than its source and
    budget allow, run on beyond its source, or a glossary term lost."""
    found = []
    bare = _PLACEHOLDER.sub(" ", text)
    wrong = foreign(bare, lang)
    if wrong:
        found.append(f"held {', '.join(repr(w) for w in wrong[:3])} (not {lang} script)")
    elif not _mostly_in(bare, lang):
        found.append(f"is not in {lang} script")
    if looped(text, lang):
        found.append("repeated a word or phrase in a loop")
    if expected is not None:
        found += _unfaithful(text, lang, expected)
    return found


def looped(text: str, lang: str) -> bool:
    """Whether ``text`` repeats itself, however the repeats are joined: by spaces, by
    hyphens or other marks ("China-US-US-US"), or by nothing ("SSSSSS")."""
    if repeated([comparable(u) for u in pieces(text, lang)]):
        return True
    if repeated([comparable(u) for u in _units(text, lang)]):
        return True
    return bool(_CHAR_LOOP.search(comparable(text)))


def _units(text: str, lang: str) -> list[str]:
    """``pieces`` cut further at marks inside them ("China-US-US" -> "China-", "US-", "US"),
    each with what follows it, so joining restores the text."""
    return [unit for piece in pieces(text, lang) for unit in re.findall(r"\w+\W*|\W+", piece)]


def _mostly_in(text: str, lang: str) -> bool:
    # A sentence copied from its source in another script (Latin names are allowed in
    # Urdu and Mandarin, so ``foreign`` alone lets a capitalised copy through). Words are
    # counted, a Han character as a word.
    counts: dict[str | None, int] = {}
    for run in re.findall(r"[^\W\d_]+", text):
        for script, part in _by_script(run):
            counts[script] = counts.get(script, 0) + (len(part) if script == "zh" else 1)
    words = sum(counts.values())
    return words == 0 or counts.get(lang, 0) * 2 >= words


def _by_script(run: str) -> list[tuple[str | None, str]]:
    out: list[tuple[str | None, str]] = []
    for ch in run:
        script = script_of(ch)
        if out and out[-1][0] == script:
            out[-1] = (script, out[-1][1] + ch)
        else:
            out.append((script, ch))
    return out


def _unfaithful(text: str, lang: str, expected: Expected) -> list[str]:
    found = []
    size, source = _size(text), _size(expected.source)
    ratio = LENGTH_RATIO.get(f"{expected.src}-{lang}", 1.0)
    asked = source * ratio
    floor = min(asked, expected.budget) if expected.budget is not None else asked
    if source and not size:
        found.append("dropped the sentence")
    elif floor >= MIN_EXPECTED and size < SHORT_SHARE * floor:
        found.append(f"is much shorter than its source ({size} characters where about {round(floor)} fit)")
    elif size > LONG_TIMES * asked + LONG_MARGIN:
        found.append(f"runs on beyond its source ({size} characters for about {round(asked)})")
    dropped = [m.term for m in check(text, expected.slots).misses if m.reason == "dropped"]
    if dropped:
        found.append(f"{_LOST} {', '.join(repr(t) for t in dropped)}")
    return found


def _size(text: str) -> int:
    return len(" ".join(visible(text).split()))


def cleaned(text: str, lang: str) -> str:
    """``text`` without other scripts' letters and without the repeats of a loop."""
    for run in foreign(_PLACEHOLDER.sub(" ", text), lang):
        text = text.replace(run, " ")
    for split in (pieces, _units):
        units = split(text, lang)
        drop = repeated([comparable(u) for u in units])
        text = "".join(u for k, u in enumerate(units) if k not in drop)
    text = _MARK_LOOP.sub(r"\1", _CHAR_LOOP.sub(r"\1", text))
    kept = re.sub(r"\s+", " ", text).strip()
    return kept if any(ch.isalnum() for ch in kept) else UNTRANSLATED
