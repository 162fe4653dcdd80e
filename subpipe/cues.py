"""Shape word-timed recognition into subtitle cues that obey the rules (shared RULES.md).

Stages: clean the words, drop invented text (outside voice activity, blocklisted credit
lines, repetition loops), choose where cues break (dynamic programming over word
boundaries, legal cues first), then place the cues in time. Times are planned in whole
milliseconds with a millisecond of margin on each limit, so the written SRT passes a
checker that compares the limits exactly.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import lru_cache

from subpipe.findings import INFO, SCRIPT, SYNC, Finding
from subpipe.linebreak import Measure, break_lines, measure, units_of
from subpipe.rules import Rules, judge, line_length
from subpipe.script import (
    CJK_MARKS,
    CLAUSE_ENDS,
    ELLIPSIS,
    FULL_STOPS,
    HAN,
    LOOP_REPEATS,
    char_class,
    comparable,
    foreign_letters,
    normalize,
    repeated,
)
from subpipe.types import Cue, Word

# RULES.md: in-time within 3 frames of the speech onset; out-time may trail by 12 frames.
LEAD_FRAMES = 3
TRAIL_FRAMES = 12
# A silence this long always ends a cue (a cue spanning it would show text over nothing).
HARD_PAUSE = 2.0
# With voice activity given, this much non-speech between two words always ends a cue.
HARD_NON_SPEECH = 1.0
# Voice activity marks speech tightly (no padding); a word this close to it (ms) is
# Whisper's timing being loose, not invented text.
SPEECH_TOLERANCE = 200
# A cue never plans more words than this (bounds the search on pathological input).
MAX_WORDS_PER_CUE = 200

# An ellipsis at the end of a cue is a good place for it to end, as a full stop is.
SENTENCE_END = FULL_STOPS | {ELLIPSIS}
_CJK = char_class(CJK_MARKS + HAN)
_CJK_SPACE = re.compile(rf"(?<=[{_CJK}]) (?=[{_CJK}])")
_INF = 10**12


@dataclass(frozen=True)
class ShapeResult:
    """The cues, the rules some of them could not meet, and the text left out on purpose.

    ``problems``: findings whose kind is a rule the judge names (``rules.RULE_NAMES``; a
    pair of cues too close is blamed on the earlier one), ``sync`` (timing moved off the
    speech) or ``script`` (Urdu not in Arabic script), each message the rule and the
    likely reason. ``dropped``: text left out (``speech``, ``blocklist``, ``repeat``), as
    findings of severity ``info`` with the words' times; ``dropped_words`` the indices
    of those words among the words given. ``spans[k]`` is the half-open span of input
    word indices that cue ``k`` holds.
    """

    cues: tuple[Cue, ...]
    problems: tuple[Finding, ...] = ()
    dropped: tuple[Finding, ...] = ()
    spans: tuple[tuple[int, int], ...] = ()
    dropped_words: tuple[int, ...] = ()


@dataclass(frozen=True)
class _Tok:
    """A word in whole milliseconds, with the index of the input word it came from."""

    start: int
    end: int
    text: str
    source: int


@dataclass(frozen=True)
class _Limits:
    """The rules in milliseconds, each with a millisecond of margin."""

    min_dur: int
    max_dur: int
    gap: int
    lead: int
    trail: int
    audio_end: int
    max_cps: float
    max_lines: int
    max_chars: float
    chain: int = 0
    hold: int = 0

    @classmethod
    def of(cls, rules: Rules, audio_end: float | None, chain_frames: int = 0,
           hold_frames: int = 0) -> "_Limits":
        frame = 1000.0 / rules.fps
        return cls(
            min_dur=math.floor(rules.min_duration * 1000) + 1,
            max_dur=math.ceil(rules.max_duration * 1000) - 1,
            gap=math.floor(rules.min_gap * 1000) + 1,
            lead=math.floor(LEAD_FRAMES * frame),
            trail=math.floor(TRAIL_FRAMES * frame),
            audio_end=_INF if audio_end is None else max(0, math.floor(audio_end * 1000)),
            max_cps=rules.max_cps,
            max_lines=rules.max_lines,
            max_chars=rules.max_chars_per_line,
            chain=math.floor(chain_frames * frame),
            hold=math.floor(hold_frames * frame),
        )

    def reading_time(self, chars: float) -> int:
        """Milliseconds needed to read ``chars`` at the reading speed (with margin)."""
        if self.max_cps <= 0:
            return 0
        return math.ceil(chars * 1000 / self.max_cps) + 1


@dataclass(frozen=True)
class _Context:
    """Everything one shaping run needs, passed down instead of many arguments."""

    lang: str
    rules: Rules
    limits: _Limits
    speech: tuple[tuple[int, int], ...] | None


# ---- public API -----------------------------------------------------------------

def shape(
    words: Sequence[Word],
    lang: str,
    rules: Rules,
    *,
    speech: Sequence[tuple[float, float]] | None = None,
    audio_end: float | None = None,
    blocklist: Sequence[str] = (),
    close_gaps_frames: int = 0,
    hold_in_sentence_frames: int = 0,
) -> ShapeResult:
    """Group ``words`` into cues that obey ``rules``; report what can't be met.

    Deterministic. Every word that survives the hallucination guards ends up in a cue;
    a cue that breaks a rule is still emitted and named in ``problems``. Gaps shorter
    than ``close_gaps_frames`` are closed to the minimum gap (0: left as they fall), and
    a cue that ends mid-sentence is held through pauses under ``hold_in_sentence_frames``.
    Lines are plain text: direction marks are the written file's business (formats.srt.laid_out).
    """
    limits = _Limits.of(rules, audio_end, close_gaps_frames, hold_in_sentence_frames)
    ctx = _Context(lang, rules, limits, _speech_ms(speech))
    toks = _prepare(words, ctx)
    toks, dropped, gone = _drop_invented(toks, ctx, blocklist)
    groups = _plan(toks, ctx)
    groups, repeats, looped = _drop_repeated_cues(toks, groups, ctx)
    groups, times = _place_all(toks, groups, ctx)
    texts = [_group_text(toks[a:b], lang) for a, b in groups]
    cues = tuple(Cue(a / 1000, b / 1000, tuple(break_lines(t, lang, rules))) for t, (a, b) in zip(texts, times))
    spans = tuple((toks[a].source, toks[b - 1].source + 1) for a, b in groups)
    problems = _problems(cues, [toks[a:b] for a, b in groups], texts, ctx, audio_end)
    if toks and not cues:
        problems.append(_problem(ctx, "past_audio_end", "no room for any cue before the end of the audio",
                                 toks[0].start / 1000, max(t.end for t in toks) / 1000))
    return ShapeResult(cues, tuple(problems), tuple(dropped + repeats), spans, tuple(sorted(gone | looped)))


def kept_words(words: Sequence[Word], lang: str, rules: Rules, *, speech: Sequence[tuple[float, float]] | None = None,
               blocklist: Sequence[str] = ()) -> list[Word]:
    """The words the guards against invented text keep: what cues can show.

    The same guards ``shape`` runs: no word outside voice activity, no blocklisted
    credit line, no repetition loop.
    """
    ctx = _Context(lang, rules, _Limits.of(rules, None), _speech_ms(speech))
    toks, _, _ = _drop_invented(_prepare(words, ctx), ctx, blocklist)
    return [words[i] for i in sorted({t.source for t in toks})]


# ---- cleaning -------------------------------------------------------------------

def _speech_ms(speech: Sequence[tuple[float, float]] | None) -> tuple[tuple[int, int], ...] | None:
    if speech is None:
        return None
    spans = sorted((round(a * 1000), round(b * 1000)) for a, b in speech if b > a)
    merged: list[tuple[int, int]] = []
    for a, b in spans:
        if merged and a <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], b))
        else:
            merged.append((a, b))
    return tuple(merged)


def _prepare(words: Sequence[Word], ctx: _Context) -> list[_Tok]:
    """Normalised, time-ordered tokens inside the audio; pseudo-words split up."""
    toks: list[_Tok] = []
    last_start = 0
    for index, word in enumerate(words):
        text = normalize(word.text, ctx.lang)
        if not text.strip() or not (math.isfinite(word.start) and math.isfinite(word.end)):
            continue
        # Keep starts non-decreasing and every word inside [0, audio_end].
        start = min(max(round(word.start * 1000), last_start, 0), ctx.limits.audio_end)
        end = min(max(round(word.end * 1000), start), ctx.limits.audio_end)
        last_start = start
        toks.extend(_split_pseudo_word(_Tok(start, end, text, index), ctx))
    return toks


def _split_pseudo_word(tok: _Tok, ctx: _Context) -> list[_Tok]:
    """A segment without word times, split into words with times shared by length."""
    spaced = ctx.lang != "zh"
    if spaced and " " not in tok.text.strip():
        return [tok]
    if not spaced and line_length(tok.text, ctx.rules) <= ctx.rules.max_chars_per_line / 2:
        return [tok]
    pieces = units_of(tok.text, ctx.lang)
    if len(pieces) < 2:
        return [tok]
    if spaced:
        pieces = [" " + p.lstrip() for p in pieces]
    weights = [max(1, len(p.strip())) for p in pieces]
    total, span, done = sum(weights), tok.end - tok.start, 0
    out: list[_Tok] = []
    for piece, weight in zip(pieces, weights):
        start = tok.start + span * done // total
        done += weight
        out.append(_Tok(start, tok.start + span * done // total, piece, tok.source))
    return out


def _drop_invented(toks: list[_Tok], ctx: _Context,
                   blocklist: Sequence[str]) -> tuple[list[_Tok], list[Finding], set[int]]:
    """Remove words over non-speech, blocklisted credit lines and repetition loops; what
    was removed, as findings and as input word indices."""
    keys = [comparable(t.text) for t in toks]
    reasons: dict[int, tuple[str, str]] = {}
    if ctx.speech is not None:
        for i, tok in enumerate(toks):
            if not _overlaps_speech(tok, ctx.speech, SPEECH_TOLERANCE):
                reasons[i] = ("speech", "words outside voice activity (likely invented)")
    for i in _blocked(keys, blocklist):
        reasons.setdefault(i, ("blocklist", "text matches the blocklist"))
    alive = [i for i in range(len(toks)) if i not in reasons]
    for i in repeated([keys[i] for i in alive]):
        reasons[alive[i]] = ("repeat", "the same words repeated in a loop")
    # Punctuation left behind by a dropped word goes with it.
    for i in range(1, len(toks)):
        if i not in reasons and not keys[i] and i - 1 in reasons:
            reasons[i] = reasons[i - 1]
    # A word goes whole or not at all: what is dropped is reported by word, and a loop
    # that ends inside a longer word ("我们 我们 ... 我们今天去北京") must not take half of it.
    pieces: dict[int, list[int]] = {}
    for i, tok in enumerate(toks):
        pieces.setdefault(tok.source, []).append(i)
    for indices in pieces.values():
        if any(i not in reasons for i in indices):
            for i in indices:
                reasons.pop(i, None)
    kept = [t for i, t in enumerate(toks) if i not in reasons]
    if ctx.speech is not None:
        kept = _snap_to_speech(kept, ctx.speech, ctx.limits)
    return kept, _dropped_spans(toks, reasons, ctx.lang), {toks[i].source for i in reasons}


def _snap_to_speech(toks: list[_Tok], speech: tuple[tuple[int, int], ...], lim: _Limits) -> list[_Tok]:
    """Put the first and last word of each stretch of speech on its onset and end.

    Whisper's cross-attention timing often starts a phrase's first word in the silence
    before it, or ends the last one early or late; voice activity is the sharper
    measure of where speech starts and stops. Word order is kept.
    """
    out = list(toks)
    owner = [_region_of(tok, speech) for tok in out]
    for i, region in enumerate(owner):
        if region is None:
            continue
        onset, offset = speech[region]
        start, end = out[i].start, out[i].end
        if i == 0 or owner[i - 1] != region:
            # First word: never before the onset, and pulled back onto it when just late.
            if start < onset or start - onset <= lim.lead:
                start = onset
        if i + 1 == len(out) or owner[i + 1] != region:
            # Last word: never past the end, and held to it when it stops just short.
            if end > offset or offset - end <= lim.trail:
                end = offset
        if i + 1 < len(out):
            start = min(start, out[i + 1].start)  # never past the next word's start
        out[i] = replace(out[i], start=start, end=max(end, start))
    return out


def _region_of(tok: _Tok, speech: tuple[tuple[int, int], ...]) -> int | None:
    """The speech region a word overlaps most, if any."""
    best, most = None, 0
    for k, (a, b) in enumerate(speech):
        if a > tok.end:
            break
        shared = min(b, tok.end) - max(a, tok.start)
        if shared > most:
            best, most = k, shared
    return best


def _overlaps_speech(tok: _Tok, speech: tuple[tuple[int, int], ...], tolerance: int = 0) -> bool:
    if tok.end == tok.start:
        return any(a - tolerance <= tok.start <= b + tolerance for a, b in speech)
    return any(min(b + tolerance, tok.end) > max(a - tolerance, tok.start) for a, b in speech)


def _blocked(keys: list[str], blocklist: Sequence[str]) -> set[int]:
    """Indices of words at least half covered by a blocklisted text (compared normalised)."""
    owner = [i for i, key in enumerate(keys) for _ in key]
    joined = "".join(keys)
    covered: dict[int, int] = {}
    for entry in blocklist:
        needle = comparable(entry)
        pos = joined.find(needle) if needle else -1
        while pos >= 0:
            for c in range(pos, pos + len(needle)):
                covered[owner[c]] = covered.get(owner[c], 0) + 1
            pos = joined.find(needle, pos + len(needle))
    return {i for i, n in covered.items() if 2 * n >= len(keys[i])}


def _dropped_spans(toks: list[_Tok], reasons: dict[int, tuple[str, str]], lang: str) -> list[Finding]:
    """Runs of dropped words of one kind (next to each other in the input), one finding each."""
    runs: list[list] = []  # [kind, reason, first token, last token]
    for i in sorted(reasons):
        kind, reason = reasons[i]
        last = runs[-1] if runs else None
        if last is not None and last[0] == kind and toks[last[3]].source + 1 >= toks[i].source:
            last[3] = i
        else:
            runs.append([kind, reason, i, i])
    return [_left_out(toks[a:b + 1], kind, reason, lang) for kind, reason, a, b in runs]


def _left_out(toks: Sequence[_Tok], kind: str, reason: str, lang: str) -> Finding:
    return Finding(kind, reason, INFO, track=lang, start=toks[0].start / 1000, end=max(t.end for t in toks) / 1000)


# ---- planning where cues break ----------------------------------------------------

def _plan(toks: list[_Tok], ctx: _Context) -> list[tuple[int, int]]:
    """Half-open token spans, one per cue."""
    groups: list[tuple[int, int]] = []
    for lo, hi in _chunks(toks, ctx):
        groups += _plan_chunk(toks, lo, hi, ctx)
    return groups


def _chunks(toks: list[_Tok], ctx: _Context) -> list[tuple[int, int]]:
    """Stretches between silences long enough that no cue may span them."""
    out: list[tuple[int, int]] = []
    lo, reach = 0, 0
    for k, tok in enumerate(toks):
        if k and _hard_break(reach, tok.start, ctx):
            out.append((lo, k))
            lo = k
        reach = max(reach, tok.end) if k > lo else tok.end
    if toks:
        out.append((lo, len(toks)))
    return out


def _hard_break(prev_end: int, next_start: int, ctx: _Context) -> bool:
    if next_start - prev_end >= HARD_PAUSE * 1000:
        return True
    if ctx.speech is None or next_start <= prev_end:
        return False
    inside = sum(max(0, min(b, next_start) - max(a, prev_end)) for a, b in ctx.speech)
    return (next_start - prev_end) - inside >= HARD_NON_SPEECH * 1000


def _plan_chunk(toks: list[_Tok], lo: int, hi: int, ctx: _Context) -> list[tuple[int, int]]:
    """Best split of toks[lo:hi]: fewest and smallest rule breaks first, then style."""
    clean = _clean_boundaries(toks, lo, hi, ctx.lang)
    size = hi - lo
    best: list[tuple[float, float]] = [(math.inf, math.inf)] * (size + 1)
    back = [0] * (size + 1)
    best[0] = (0.0, 0.0)
    capacity = ctx.limits.max_lines * ctx.limits.max_chars
    for i in range(lo, hi):
        base = best[i - lo]
        for j in range(i + 1, min(hi, i + MAX_WORDS_PER_CUE) + 1):
            text = _group_text(toks[i:j], ctx.lang)
            bad, style = _cue_cost(toks, i, j, hi, text, clean, ctx)
            total = (base[0] + bad, base[1] + style)
            if total < best[j - lo]:
                best[j - lo], back[j - lo] = total, i
            if line_length(text, ctx.rules) > capacity or (
                    toks[j - 1].start - toks[i].start > ctx.limits.max_dur):
                break
    spans: list[tuple[int, int]] = []
    j = hi
    while j > lo:
        i = back[j - lo]
        spans.append((i, j))
        j = i
    return spans[::-1]


def _clean_boundaries(toks: list[_Tok], lo: int, hi: int, lang: str) -> set[int]:
    """Token indices before which a cue may start without cutting a word (or jieba word)."""
    unit_starts: set[int] = set()
    count = 0
    for unit in units_of(_group_text(toks[lo:hi], lang), lang):
        unit_starts.add(count)
        count += sum(1 for ch in unit if not ch.isspace())
    clean: set[int] = set()
    count = 0
    for k in range(lo, hi):
        if count in unit_starts:
            clean.add(k)
        count += sum(1 for ch in toks[k].text if not ch.isspace())
    return clean


def _cue_cost(toks: list[_Tok], i: int, j: int, hi: int, text: str, clean: set[int],
              ctx: _Context) -> tuple[float, float]:
    """(rule breaks, style cost) of one candidate cue toks[i:j]."""
    lim = ctx.limits
    size = measure(text, ctx.lang, ctx.rules)
    chars = size.chars
    start = toks[i].start
    speech_end = max(t.end for t in toks[i:j])
    cap = min(toks[j].start - lim.gap if j < len(toks) else lim.audio_end, lim.audio_end)
    end = min(max(speech_end + lim.trail, start + lim.min_dur), cap, start + lim.max_dur)
    bad = _badness(end - start, size, speech_end - start, lim)
    style = 1.0 + 0.5 * (chars / max(1.0, lim.max_lines * lim.max_chars)) ** 2
    style += 2.0 * sum(1 for t in toks[i:j - 1] if _ends(t.text, SENTENCE_END))
    if j < hi:
        style += _break_cost(toks, j, speech_end, j in clean)
    return bad, style


def _badness(duration: int, size: Measure, speech: int, lim: _Limits) -> float:
    """How badly a cue with this much time and text breaks the rules (0 = legal)."""
    bad = 0.0
    if duration <= 0:
        bad += 100.0
    else:
        if duration < lim.min_dur:
            bad += 1.0 + (lim.min_dur - duration) / lim.min_dur
        need = lim.reading_time(size.chars)
        if duration < need:
            bad += 1.0 + min(3.0, need / duration - 1.0)
    if size.lines > lim.max_lines:
        bad += 1.0 + (size.lines - lim.max_lines)
    if size.overlong:
        bad += 1.0
    if speech > lim.max_dur:
        bad += 1.0
    return bad


def _break_cost(toks: list[_Tok], j: int, speech_end: int, clean: bool) -> float:
    """Style cost of ending a cue before toks[j]: punctuation and pauses are good places."""
    if not clean:
        return 5.0
    text = toks[j - 1].text
    cost = 0.0 if _ends(text, SENTENCE_END) else 0.4 if _ends(text, CLAUSE_ENDS) else 1.2
    pause = max(0, toks[j].start - speech_end) / 1000
    return max(0.0, cost - min(pause, 1.0))


def _ends(text: str, marks: frozenset[str]) -> bool:
    stripped = text.rstrip()
    return bool(stripped) and stripped[-1] in marks


def _drop_repeated_cues(toks: list[_Tok], groups: list[tuple[int, int]],
                        ctx: _Context) -> tuple[list[tuple[int, int]], list[Finding], set[int]]:
    """Keep the first of LOOP_REPEATS+ consecutive cues with the same text."""
    keys = [comparable(_group_text(toks[a:b], ctx.lang)) for a, b in groups]
    kept: list[tuple[int, int]] = []
    dropped: list[Finding] = []
    gone: set[int] = set()
    for k, (a, b) in enumerate(groups):
        run_start = k
        while run_start > 0 and keys[run_start - 1] == keys[k]:
            run_start -= 1
        run_end = k
        while run_end + 1 < len(keys) and keys[run_end + 1] == keys[k]:
            run_end += 1
        if keys[k] and run_end - run_start + 1 >= LOOP_REPEATS and k > run_start:
            dropped.append(_left_out(toks[a:b], "repeat", "the same cue repeated in a loop", ctx.lang))
            gone.update(t.source for t in toks[a:b])
        else:
            kept.append((a, b))
    return kept, dropped, gone


# ---- placing cues in time -----------------------------------------------------------

def _place_all(toks: list[_Tok], groups: list[tuple[int, int]],
               ctx: _Context) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """Times for every cue; cues that can't get a positive duration merge with a neighbour."""
    while groups:
        times = _place(toks, groups, ctx)
        short = next((k for k, (a, b) in enumerate(times) if b <= a), None)
        if short is None:
            return groups, times
        if len(groups) == 1:
            return [], []
        k = short if short + 1 < len(groups) else short - 1
        groups = groups[:k] + [(groups[k][0], groups[k + 1][1])] + groups[k + 2:]
    return [], []


def _place(toks: list[_Tok], groups: list[tuple[int, int]], ctx: _Context) -> list[tuple[int, int]]:
    """Forward: sit on speech, extend to the minimum and reading time; backward: fit the audio."""
    lim = ctx.limits
    spans = [(toks[a].start, max(t.end for t in toks[a:b])) for a, b in groups]
    needs = [lim.reading_time(_reading_chars(_group_text(toks[a:b], ctx.lang), ctx))
             for a, b in groups]
    times: list[tuple[int, int]] = []
    prev_end: int | None = None
    for k, (s, e) in enumerate(spans):
        floor = max(0, s - lim.lead) if prev_end is None else max(prev_end + lim.gap, s - lim.lead)
        start = max(s, floor)
        cap = min(spans[k + 1][0] - lim.gap if k + 1 < len(spans) else lim.audio_end, lim.audio_end)
        need = max(lim.min_dur, needs[k])
        want = max(e, start + lim.min_dur, min(start + need, e + lim.trail))
        end = min(want, cap, start + lim.max_dur)
        if end - start < need:  # lead in by up to 3 frames before giving up
            start = max(floor, min(start, end - need))
        if end - start < lim.min_dur:  # keep the minimum; the next cue starts later
            end = min(start + lim.min_dur, lim.audio_end)
        times.append((start, end))
        prev_end = end
    open_ended = [not _ends(_group_text(toks[a:b], ctx.lang), SENTENCE_END) for a, b in groups]
    return _chain(_fit_backward(times, lim), [e for _, e in spans], open_ended, lim)


def _chain(times: list[tuple[int, int]], speech_ends: list[int], open_ended: list[bool],
           lim: _Limits) -> list[tuple[int, int]]:
    """Close short gaps to the minimum gap.

    Broadcast practice: a flicker of blank screen between two cues is tiring to watch,
    so a cue stays up until the next one when the gap is under ``lim.chain``, within
    the allowed trail after its speech. A cue that stops mid-sentence is held through a
    pause of up to ``lim.hold`` (the sentence isn't over). Never past the maximum duration.
    """
    out = list(times)
    for k in range(len(out) - 1):
        start, end = out[k]
        gap = out[k + 1][0] - end
        if gap <= lim.gap:
            continue
        if open_ended[k] and gap < lim.hold:
            target = out[k + 1][0] - lim.gap
        elif gap < lim.chain:
            target = min(out[k + 1][0] - lim.gap, max(end, speech_ends[k] + lim.trail))
        else:
            continue
        out[k] = (start, max(end, min(target, start + lim.max_dur)))
    return out


def _fit_backward(times: list[tuple[int, int]], lim: _Limits) -> list[tuple[int, int]]:
    """Pull cues that run past the audio's end (or into the next cue) earlier."""
    out = list(times)
    limit = lim.audio_end
    for k in range(len(out) - 1, -1, -1):
        start, end = out[k]
        end = min(end, limit)
        if end - start < lim.min_dur:
            start = max(0, min(start, end - lim.min_dur))
        out[k] = (start, end)
        limit = start - lim.gap
    return out


# ---- building and checking cues --------------------------------------------------

@lru_cache(maxsize=65536)
def _joined(texts: tuple[str, ...], lang: str) -> str:
    text = " ".join("".join(texts).split())
    return _CJK_SPACE.sub("", text) if lang == "zh" else text


def _group_text(toks: Sequence[_Tok], lang: str) -> str:
    return _joined(tuple(t.text for t in toks), lang)


def _reading_chars(text: str, ctx: _Context) -> float:
    return sum(line_length(line, ctx.rules) for line in break_lines(text, ctx.lang, ctx.rules))


def _problems(cues: Sequence[Cue], toks: Sequence[Sequence[_Tok]], texts: Sequence[str], ctx: _Context,
              audio_end: float | None) -> list[Finding]:
    """Every rule the finished cues break (the judge's findings, each with its likely
    reason), and what only the shaper can tell: timing moved off the speech, and Urdu
    not in Arabic script. In cue order."""
    per_cue: list[list[Finding]] = [[] for _ in cues]
    for finding in judge(cues, ctx.rules, audio_end=audio_end):
        k = (finding.cue or 1) - 1
        per_cue[k].append(_problem(ctx, finding.kind, _reason(finding, cues[k], toks[k], ctx), cues[k].start,
                                   cues[k].end, k + 1))
    for k, cue in enumerate(cues):
        found = _sync_problems(cue, toks[k], ctx)
        if ctx.lang == "ur" and foreign_letters(texts[k]):
            found.append((SCRIPT, f"Urdu text not in Arabic script: {foreign_letters(texts[k])[:20]!r}"))
        per_cue[k] += [_problem(ctx, kind, reason, cue.start, cue.end, k + 1) for kind, reason in found]
    return [p for problems in per_cue for p in problems]


def _problem(ctx: _Context, kind: str, reason: str, start: float, end: float, cue: int | None = None) -> Finding:
    """A rule a cue can't meet (or what moved it off the speech), and the likely reason."""
    return Finding(kind, f"{kind}: {reason}", track=ctx.lang, cue=cue, start=start, end=end)


def _reason(finding: Finding, cue: Cue, toks: Sequence[_Tok], ctx: _Context) -> str:
    """Why the shaper could not meet the rule, from what it knows of the words."""
    rule = finding.kind
    if rule == "chars_per_line":
        over = [line for line in cue.lines if line_length(line.strip(), ctx.rules) > ctx.rules.max_chars_per_line]
        alone = bool(over) and all(len(units_of(line, ctx.lang)) == 1 for line in over)
        return "a single word longer than a line" if alone else "a line longer than the limit"
    if rule == "lines_per_cue":
        return _crowded_reason(toks)
    return _REASONS.get(rule, "the shaper could not place this cue within the rules")


_REASONS = {
    "reading_speed": "speech faster than the reading speed",
    "min_duration": "no room before the next cue or the end of the audio",
    "max_duration": "a cue longer than the maximum",
    "overlap": "cues crowded into too little time",
    "min_gap": "cues crowded into too little time",
    "past_audio_end": "the cue runs past the end of the audio",
}


def _crowded_reason(toks: Sequence[_Tok]) -> str:
    if len({t.start for t in toks}) == 1:
        return "all these words share one time: they can't go in separate cues"
    return "too much text for the time available: smaller cues would break other rules"


def _sync_problems(cue: Cue, toks: Sequence[_Tok], ctx: _Context) -> list[tuple[str, str]]:
    """Where the cue's times had to leave the speech they show (RULES.md: timing to speech)."""
    lim, found = ctx.limits, []
    start_ms, end_ms = round(cue.start * 1000), round(cue.end * 1000)
    first, last = toks[0].start, max(t.end for t in toks)
    if start_ms < first - lim.lead or start_ms > first + lim.gap:
        found.append((SYNC, "in-time moved off the speech onset to make room"))
    if last - toks[0].start > lim.max_dur:
        found.append((SYNC, "speech in one cue lasts longer than the maximum duration"))
    elif end_ms < last - lim.gap - 1:
        found.append((SYNC, "out-time before the speech ends, to make room for the next cue"))
    return found
