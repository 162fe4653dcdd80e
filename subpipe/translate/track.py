"""Translate a subtitle track cue for cue, with any engine that follows the protocol.

Cues are merged into sentences so the model sees whole sentences; each translation is
then spread back over the cues it came from (fit.py). The target track therefore has
the source's cue count and times by construction. Urdu <-> Mandarin goes through
English, and the English middle is returned as well.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Callable, Mapping, Sequence

from ..config import TranslateSettings
from ..errors import PipelineFailed
from ..findings import FILLER_CUE, GLOSSARY, WARNING, Finding
from ..glossary import Checked, Glossary, GlossaryMiss, GlossaryUse, Slot, check, fill, protect
from ..linebreak import break_lines, measure
from ..rules import Rules, judge, rule_breaks
from ..script import normalize, visible
from ..types import Cue, Track
from .engine import Span, Translator, engine_name, run_candidates
from .fit import FILLER, budget, distribute
from .sanity import Expected, flaws, sane
from .sentences import Sentence, cue_text, sentences

PIVOT = "en"


@dataclass(frozen=True)
class TranslationResult:
    """The target track (same cue count and times as the source) and what to report.

    ``flags``: target cues kept but worth an editor's look, in cue order: ``filler`` (no
    words of their own), ``cleaned`` (another script or a loop cut out). The rules the
    track breaks are judged where it is written, once.
    """

    track: Track
    source_lang: str
    engine: str
    glossary_uses: tuple[GlossaryUse, ...] = ()
    glossary_misses: tuple[GlossaryMiss, ...] = ()
    flags: tuple[Finding, ...] = ()


def findings(result: TranslationResult) -> list[Finding]:
    """The translation's own findings (not rule breaks): its flags, then the glossary
    terms that did not come through."""
    lang = result.track.lang
    return list(result.flags) + [
        Finding(GLOSSARY, f"glossary term {m.term!r} {m.reason} (cues {_cue_range(m.cues)})", WARNING, track=lang)
        for m in result.glossary_misses]


FILLER_MESSAGE = "got no words of its own: the translation is shorter than its sentence's cues"


def _cue_range(cues: Sequence[int]) -> str:
    if not cues:
        return "?"
    return f"{cues[0] + 1}" if len(cues) == 1 else f"{cues[0] + 1}-{cues[-1] + 1}"


@dataclass(frozen=True)
class _Translated:
    """One direction's sentence outputs; ``texts`` still hold clean placeholders."""

    src: str
    tgt: str
    texts: tuple[str, ...]
    slots: tuple[tuple[Slot, ...], ...]
    uses: tuple[GlossaryUse, ...]
    misses: tuple[GlossaryMiss, ...]
    engine: str
    flags: tuple[Finding, ...] = ()

    def filled(self) -> list[str]:
        return [fill(text, slots) for text, slots in zip(self.texts, self.slots)]


def translate_track(
    track: Track,
    tgt: str,
    translator: Translator,
    rules_for_tgt: Rules,
    glossary: Glossary | None = None,
    *,
    options: TranslateSettings = TranslateSettings(),
) -> TranslationResult:
    """``track`` in ``tgt``, cue for cue: same count, same times, no empty cue."""
    plan = sentences(track, options)
    budgets = _budgets(track, plan, rules_for_tgt)
    done = _translate(plan, [s.text for s in plan], track.lang, tgt, translator, glossary, budgets,
                      _breaks(track, plan, tgt, rules_for_tgt))
    return _result(track, plan, done, tgt, rules_for_tgt)


def translate_tracks(
    track: Track,
    targets: Sequence[str],
    translator: Translator,
    rules: Mapping[str, Rules],
    glossary: Glossary | None = None,
    *,
    options: TranslateSettings = TranslateSettings(),
) -> dict[str, TranslationResult]:
    """``track`` in every language of ``targets``; Urdu <-> Mandarin through English.

    A pivot's English track is in the result even when English was not asked for.
    """
    plan = sentences(track, options)
    texts = [s.text for s in plan]
    done: dict[str, _Translated] = {}
    for tgt in targets:
        if tgt == track.lang or tgt in done:
            continue
        if track.lang != PIVOT and tgt != PIVOT:
            if PIVOT not in done:
                done[PIVOT] = _translate(plan, texts, track.lang, PIVOT, translator, glossary,
                                         _budgets(track, plan, rules.get(PIVOT)),
                                         _breaks(track, plan, PIVOT, rules.get(PIVOT)))
            middle = done[PIVOT]
            done[tgt] = _chain(middle, _translate(plan, middle.filled(), PIVOT, tgt, translator, glossary,
                                                  _budgets(track, plan, rules.get(tgt)),
                                                  _breaks(track, plan, tgt, rules.get(tgt))))
        else:
            done[tgt] = _translate(plan, texts, track.lang, tgt, translator, glossary,
                                   _budgets(track, plan, rules.get(tgt)), _breaks(track, plan, tgt, rules.get(tgt)))
    return {lang: _result(track, plan, d, lang, rules[lang]) for lang, d in done.items()}


def _chain(first: _Translated, second: _Translated) -> _Translated:
    # The middle's glossary misses and flags matter to the end track too: it was made from them.
    return replace(second, src=first.src, misses=first.misses + second.misses,
                   engine=f"{first.engine} + {second.engine}", flags=first.flags + second.flags)


def _translate(
    plan: Sequence[Sentence],
    texts: Sequence[str],
    src: str,
    tgt: str,
    translator: Translator,
    glossary: Glossary | None,
    budgets: Sequence[float | None] | None = None,
    breaks: "Breaks | None" = None,
) -> _Translated:
    protected = [protect(text, src, tgt, glossary) for text in texts]
    todo = [i for i, p in enumerate(protected) if p.text.strip()]
    allowed = list(budgets) if budgets is not None else [None] * len(texts)
    spans = [Span(protected[i].text, plan[i].start, plan[i].end, allowed[i]) for i in todo]
    expected = [Expected(p.text, src, allowed[i], p.slots) for i, p in enumerate(protected)]
    raw = [""] * len(texts)
    # Models write Traditional characters and half-width CJK punctuation now and then.
    beams = {i: [normalize(text, tgt).strip() for text in beam]
             for i, beam in zip(todo, run_candidates(translator, spans, src, tgt))}
    judged = {i: None if breaks is None else _judged(breaks, i, protected[i].slots) for i in todo}
    for i in todo:
        raw[i] = _fitting(beams[i], tgt, expected[i], judged[i])
    # A sentence whose every translation breaks a rule is asked for again condensed,
    # where the engine can (a language model shown condensed examples).
    long = [i for i in todo if judged[i] is not None and judged[i](raw[i]) > 0]
    shorter = run_candidates(translator, [spans[todo.index(i)] for i in long], src, tgt, condense=True)
    for i, beam in zip(long, shorter):
        if beam:
            beams[i] += [normalize(text, tgt).strip() for text in beam]
            raw[i] = _fitting(beams[i], tgt, expected[i], judged[i])
    raw, flags = sane(raw, [spans[todo.index(i)] if i in todo else None for i in range(len(raw))], plan,
                       src, tgt, translator, expected)
    checked = [check(text, p.slots) for text, p in zip(raw, protected)]
    return _Translated(
        src, tgt,
        tuple(c.text for c in checked),
        tuple(p.slots for p in protected),
        _with_cues(plan, checked, "uses"),
        _with_cues(plan, checked, "misses"),
        engine_name(translator, src, tgt),
        tuple(flags),
    )


# How many rule breaks (and cues left with no words) sentence i's cues would have with a text.
Breaks = Callable[[int, str, Sequence[Slot]], int]


def _fitting(beam: Sequence[str], tgt: str, expected: Expected, breaks: Callable[[str], int] | None) -> str:
    """The translation a subtitler would take from an engine's beam: of those without a
    flaw (sanity.py), the ones whose cues break the fewest rules, and of these the
    longest, which keeps the most of the source (zh_dev, LM: chrF 31.3 against 30.4 for
    the likeliest, no rule broken either way). With one translation, or none without a
    flaw, the likeliest (the sanity checks then deal with it)."""
    sound = [text for text in beam if not flaws(text, tgt, expected)]
    if len(beam) == 1 or not sound or breaks is None:
        return beam[0]
    counts = [breaks(text) for text in sound]
    fewest = [text for text, count in zip(sound, counts) if count == min(counts)]
    return max(fewest, key=len)


def _judged(breaks: Breaks, i: int, slots: Sequence[Slot]) -> Callable[[str], int]:
    return lambda text: breaks(i, text, slots)


def _breaks(track: Track, plan: Sequence[Sentence], tgt: str, rules: Rules | None) -> Breaks | None:
    if rules is None:
        return None
    # A text is judged once: the beam's choice, the question whether it still breaks a
    # rule, and the choice again with condensed translations all ask about the same texts.
    judged: dict[tuple[int, str], int] = {}

    def breaks(i: int, text: str, slots: Sequence[Slot]) -> int:
        if (i, text) not in judged:
            cues, fillers = _sentence_cues(track, plan[i], text, slots, tgt, rules)
            judged[i, text] = len(rule_breaks(judge(cues, rules))) + len(fillers)
        return judged[i, text]

    return breaks


def _budgets(track: Track, plan: Sequence[Sentence], rules: Rules | None) -> list[float | None]:
    """Each sentence's characters in the target, from its cues' times and the target's rules."""
    return [None if rules is None else budget(track.cues[s.first:s.last + 1], rules) for s in plan]


def _with_cues(plan: Sequence[Sentence], checked: Sequence[Checked], what: str) -> tuple:
    return tuple(replace(item, cues=tuple(s.cues)) for s, c in zip(plan, checked) for item in getattr(c, what))


def _result(track: Track, plan: Sequence[Sentence], done: _Translated, tgt: str, rules: Rules) -> TranslationResult:
    cues: list[Cue] = []
    flags = [replace(f, track=tgt) for f in done.flags]
    for sentence, text, slots in zip(plan, done.texts, done.slots):
        made, fillers = _sentence_cues(track, sentence, text, slots, tgt, rules)
        flags += [Finding(FILLER_CUE, FILLER_MESSAGE, WARNING, track=tgt, cue=sentence.first + offset + 1)
                  for offset in fillers]
        cues += made
    out = Track(tgt, tuple(cues))
    _assert_aligned(track, out)
    flags.sort(key=lambda f: f.cue)
    return TranslationResult(out, done.src, done.engine, done.uses, done.misses, tuple(flags))


def _sentence_cues(track: Track, sentence: Sentence, text: str, slots: Sequence[Slot], tgt: str,
                   rules: Rules) -> tuple[list[Cue], list[int]]:
    """A sentence's translation spread over its source cues (their times), and the
    offsets of the cues that got no words of their own."""
    source = track.cues[sentence.first:sentence.last + 1]
    shares = [len(re.sub(r"\s", "", cue_text(c, track.lang))) for c in source]
    parts = distribute(text, shares, tgt, _measure(slots),
                       lambda part: measure(fill(part, slots), tgt, rules).lines <= rules.max_lines)
    cues = [Cue(cue.start, cue.end, tuple(break_lines(fill(part, slots), tgt, rules) or [FILLER]))
            for cue, part in zip(source, parts)]
    return cues, [offset for offset, part in enumerate(parts) if part == FILLER]


def _measure(slots: Sequence[Slot]) -> Callable[[str], float]:
    def measure(unit: str) -> float:
        return len(visible(fill(unit, slots)).strip())

    return measure


def _assert_aligned(source: Track, target: Track) -> None:
    # Alignment is the contract editors rely on; fail loudly rather than write a shifted track.
    same = len(source.cues) == len(target.cues) and all(
        (a.start, a.end) == (b.start, b.end) and any(visible(l).strip() for l in b.lines)
        for a, b in zip(source.cues, target.cues)
    )
    if not same:
        raise PipelineFailed(f"translated {target.lang} track fell out of step with the {source.lang} source")
