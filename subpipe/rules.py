"""The subtitle rules (shared RULES.md), how text is measured against them, and the one
judge of cues: every stage that asks "does this cue break a rule?" asks ``judge``.

Cue shaping, translation, the review page and ``subpipe check`` all report the same
findings under the same rule names. A pair of cues too close together (``overlap``,
``min_gap``) is blamed on the earlier cue: it is the one that stays up too long.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace

from subpipe.findings import ERROR, UNTRANSCRIBED, Finding
from subpipe.script import line_lang, shown
from subpipe.timeline import uncovered
from subpipe.types import Cue, Entry, Track

# Times are written at millisecond precision, so a value that equals a limit may
# be off by up to a millisecond; it must still pass.
EPS = 0.001
# Overlaps and zero durations are judged exactly, but floats from arithmetic on
# in-memory cues must not count as a microsecond overlap.
_TINY = 1e-6

# The rules a cue can break, as ``judge`` (and ``subpipe check``) names them.
RULE_NAMES = ("chars_per_line", "lines_per_cue", "reading_speed", "min_duration", "max_duration",
              "min_gap", "overlap", "time_order", "end_before_start", "empty_cue", "past_audio_end",
              "untranscribed_speech")
# Of those, the ones that need the audio (``check --video``): cues against the film.
AUDIO_RULES = frozenset({"past_audio_end", "untranscribed_speech"})


@dataclass(frozen=True)
class Rules:
    """Limits for one language. Every number is configurable per project (configs/)."""

    max_chars_per_line: float
    max_lines: int = 2
    max_cps: float = 20.0
    min_duration: float = 5 / 6
    max_duration: float = 7.0
    min_gap_frames: int = 2
    fps: float = 25.0
    # Half-width characters count 0.5 in Chinese (full-width layout); 1 elsewhere.
    halfwidth_counts_half: bool = False

    @property
    def min_gap(self) -> float:
        return self.min_gap_frames / self.fps

    def with_fps(self, fps: float) -> "Rules":
        return replace(self, fps=fps)


def char_width(ch: str, halfwidth_counts_half: bool) -> float:
    if not halfwidth_counts_half:
        return 1.0
    return 1.0 if unicodedata.east_asian_width(ch) in ("W", "F") else 0.5


def line_length(line: str, rules: Rules) -> float:
    """Characters on one line as the rules count them: those a viewer sees (no markup,
    no direction marks)."""
    return sum(char_width(ch, rules.halfwidth_counts_half) for ch in shown(line))


# ---- judging -----------------------------------------------------------------------

@dataclass(frozen=True)
class Group:
    """The lines of one cue in one language, with that language's rules."""

    lang: str | None
    rules: Rules
    lines: tuple[str, ...]
    positions: tuple[int, ...]  # 1-based line numbers within the cue


Layout = Callable[[tuple[str, ...]], list[Group]]


def judge(cues: Sequence[Cue], rules: Rules, *, audio_end: float | None = None) -> list[Finding]:
    """Every rule the in-memory cues of one language break. Pure.

    Cue numbers in the findings are 1-based positions.
    """
    return judge_entries(_entries(cues), rules, monolingual(rules), audio_end)


def judge_bilingual(cues: Sequence[Cue], rules: Mapping[str, Rules], pair: tuple[str, str], *,
                    audio_end: float | None = None) -> list[Finding]:
    """Like ``judge`` for source-above-target cues (``pair`` = (source, target)).

    Each line is measured with its own language's rules (detected by script); each
    language may use its own ``max_lines``, so a cue may hold both. Timing follows
    the source language's rules.
    """
    return judge_entries(_entries(cues), rules[pair[0]], bilingual(rules, pair), audio_end)


def judge_track(track: Track, rules: Mapping[str, Rules], *, audio_end: float | None = None) -> list[Finding]:
    """``judge`` or ``judge_bilingual``, as the track's language (``zh`` or ``ur-zh``) says."""
    src, _, tgt = track.lang.partition("-")
    if tgt:
        return judge_bilingual(track.cues, rules, (src, tgt), audio_end=audio_end)
    return judge(track.cues, rules[src], audio_end=audio_end)


def rule_breaks(findings: Sequence[Finding]) -> list[Finding]:
    """The errors among ``findings`` that need no audio: what ``subpipe check FILE`` fails on."""
    return [f for f in findings if f.severity == ERROR and f.kind not in AUDIO_RULES]


def monolingual(rules: Rules) -> Layout:
    return lambda lines: [Group(None, rules, lines, tuple(range(1, len(lines) + 1)))]


def bilingual(rules: Mapping[str, Rules], pair: tuple[str, str]) -> Layout:
    def split(lines: tuple[str, ...]) -> list[Group]:
        by_lang: dict[str, list[int]] = {pair[0]: [], pair[1]: []}
        for pos, line in enumerate(lines, 1):
            lang = line_lang(line)
            # Lines with no letters (a lone "..." or number) go with the source.
            by_lang[lang if lang in by_lang else pair[0]].append(pos)
        return [Group(code, rules[code], tuple(lines[p - 1] for p in group), tuple(group))
                for code, group in by_lang.items() if group]

    return split


def judge_entries(entries: Sequence[Entry], timing: Rules, layout: Layout,
                  audio_end: float | None) -> list[Finding]:
    """Findings for cues from a file or memory: ``timing`` rules, lines laid out by ``layout``."""
    findings: list[Finding] = []
    latest: Entry | None = None  # the timed cue that ends last so far
    for entry in entries:
        if entry.start is None or entry.end is None:
            findings += _layout_findings(entry, layout)
            continue
        if latest is not None:
            findings += _pair_findings(latest, entry, timing)
        findings += _cue_findings(entry, timing, layout, audio_end)
        if latest is None or latest.end is None or entry.end >= latest.end:
            latest = entry
    return findings


def untranscribed(cues: Sequence[Cue], speech: Sequence[tuple[float, float]]) -> list[Finding]:
    """Speech (voice activity on the film) that no cue is on screen for, stretch by stretch."""
    return [Finding(UNTRANSCRIBED, f"untranscribed_speech {number(b - a)} s of speech from {timestamp(a)} to "
                    f"{timestamp(b)} has no subtitle", start=a, end=b, measured=round(b - a, 3))
            for a, b in uncovered(speech, [(c.start, c.end) for c in cues])]


def timestamp(seconds: float) -> str:
    """``HH:MM:SS,mmm`` for a time in seconds."""
    millis = max(0, round(seconds * 1000))
    hours, rest = divmod(millis, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs, millis = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d},{millis:03d}"


def number(value: float | None) -> str:
    """A measure as reports print it: up to three decimals, no trailing zeros."""
    if value is None:
        return "?"
    return f"{value:.3f}".rstrip("0").rstrip(".")


def _entries(cues: Sequence[Cue]) -> list[Entry]:
    return [Entry(i + 1, cue.start, cue.end, cue.lines) for i, cue in enumerate(cues)]


def _cue_findings(entry: Entry, timing: Rules, layout: Layout, audio_end: float | None) -> list[Finding]:
    assert entry.start is not None and entry.end is not None
    duration = entry.end - entry.start
    findings = _layout_findings(entry, layout)
    if duration <= _TINY:
        findings.append(_finding(entry, "end_before_start", duration, 0.0,
                                 f"end {timestamp(entry.end)} <= start {timestamp(entry.start)}"))
    else:
        findings += _duration_findings(entry, duration, timing)
        if not _is_empty(entry):
            findings += [f for g in layout(entry.lines) if (f := _reading_finding(entry, g, duration)) is not None]
    if audio_end is not None and entry.end > audio_end + EPS:
        findings.append(_finding(entry, "past_audio_end", entry.end, audio_end,
                                 f"past_audio_end {number(entry.end)} > {number(audio_end)} s"))
    return findings


def _is_empty(entry: Entry) -> bool:
    return not any(shown(line).strip() for line in entry.lines)


def _layout_findings(entry: Entry, layout: Layout) -> list[Finding]:
    if _is_empty(entry):
        return [_finding(entry, "empty_cue", None, None, "empty cue (no visible text)")]
    findings: list[Finding] = []
    for group in layout(entry.lines):
        findings += _lines_findings(entry, group)
        findings += _width_findings(entry, group)
    return findings


def _lines_findings(entry: Entry, group: Group) -> list[Finding]:
    count = len(group.lines)
    if count <= group.rules.max_lines:
        return []
    message = f"lines_per_cue {count} > {group.rules.max_lines}{_detail(group.lang)}"
    return [_finding(entry, "lines_per_cue", count, group.rules.max_lines, message)]


def _width_findings(entry: Entry, group: Group) -> list[Finding]:
    findings: list[Finding] = []
    limit = group.rules.max_chars_per_line
    for line, pos in zip(group.lines, group.positions):
        # Spaces at the line ends never show on screen.
        width = line_length(line.strip(), group.rules)
        if width > limit + _TINY:
            where = f"line {pos}" if len(entry.lines) > 1 else None
            message = f"chars_per_line {number(width)} > {number(limit)}{_detail(group.lang, where)}"
            findings.append(_finding(entry, "chars_per_line", width, limit, message))
    return findings


def _reading_finding(entry: Entry, group: Group, duration: float) -> Finding | None:
    rules = group.rules
    chars = sum(line_length(line.strip(), rules) for line in group.lines)
    # Allow the cue a millisecond more so a cue timed exactly at the limit passes.
    if chars <= rules.max_cps * (duration + EPS) + _TINY:
        return None
    cps = chars / duration
    message = f"reading_speed {number(cps)} > {number(rules.max_cps)} chars/s{_detail(group.lang)}"
    return _finding(entry, "reading_speed", cps, rules.max_cps, message)


def _duration_findings(entry: Entry, duration: float, rules: Rules) -> list[Finding]:
    if duration < rules.min_duration - EPS:
        return [_finding(entry, "min_duration", duration, rules.min_duration,
                         f"min_duration {number(duration)} < {number(rules.min_duration)} s")]
    if duration > rules.max_duration + EPS:
        return [_finding(entry, "max_duration", duration, rules.max_duration,
                         f"max_duration {number(duration)} > {number(rules.max_duration)} s")]
    return []


def _pair_findings(before: Entry, entry: Entry, rules: Rules) -> list[Finding]:
    """Order, overlap and gap between a cue and the cue that ends last before it."""
    assert before.start is not None and before.end is not None and entry.start is not None
    if entry.start < before.start - _TINY:
        return [_finding(entry, "time_order", entry.start, before.start,
                         f"starts before cue {_label(before)} ({timestamp(before.start)})")]
    gap = entry.start - before.end
    if gap < -_TINY:
        return [_finding(before, "overlap", -gap, 0.0, f"overlap {number(-gap)} s with cue {_label(entry)}")]
    if gap < rules.min_gap - EPS:
        return [_finding(before, "min_gap", gap, rules.min_gap,
                         f"min_gap {number(gap)} < {number(rules.min_gap)} s (to cue {_label(entry)})")]
    return []


def _label(entry: Entry) -> str:
    if entry.number is not None:
        return str(entry.number)
    return f"at line {entry.line}"


def _detail(*parts: str | None) -> str:
    named = [p for p in parts if p]
    return f" ({', '.join(named)})" if named else ""


def _finding(entry: Entry, rule: str, measured: float | None, limit: float | None, message: str) -> Finding:
    # Rounded to the millisecond precision of SRT so reports and JSON are stable.
    return Finding(rule, message, ERROR, cue=entry.number, line=entry.line, start=entry.start,
                   measured=_round(measured), limit=_round(limit))


def _round(value: float | None) -> float | None:
    return None if value is None else round(float(value), 3)
