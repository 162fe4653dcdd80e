"""``subpipe check``: lint an SRT file against the subtitle rules (shared RULES.md).

Unreadable files: ``check_file`` and ``check_bytes`` never raise for a bad file. A
file that can't be read (not UTF-8, UTF-16, binary, empty, no SRT cues, can't be
opened) comes back as a ``Report`` with ``unreadable`` set to a one-line reason;
``exit_status`` gives 2 and ``format_text`` prints that one line. They raise
``UsageError`` only for bad arguments (unknown ``lang``, no rules for it, fps <= 0).

Exit status: 0 clean or warnings only, 1 any rule broken or structural error, 2
unreadable.
"""

from __future__ import annotations

import json
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from subpipe import srtstrict
from subpipe.errors import UsageError
from subpipe.rules import Rules, line_length, visible
from subpipe.srtstrict import SrtCue, SrtFile, UnreadableSrt
from subpipe.types import Cue

ERROR = "error"
WARNING = "warning"
# Times are written at millisecond precision, so a value that equals a limit may
# be off by up to a millisecond; it must still pass.
EPS = 0.001
# Overlaps and zero durations are judged exactly, but floats from arithmetic on
# in-memory cues must not count as a microsecond overlap.
_TINY = 1e-6


@dataclass(frozen=True)
class Finding:
    """One broken rule or structural defect.

    ``cue`` is the cue number as written in the file (1-based position for in-memory
    cues; None when the file gives none); ``line`` is the file line (None in memory).
    """

    cue: int | None
    start: float | None
    rule: str
    measured: float | None
    limit: float | None
    severity: str
    message: str
    line: int | None = None


@dataclass(frozen=True)
class Report:
    """The result of checking one file; ``unreadable`` set means nothing was checked."""

    path: str
    lang: str | None
    lang_source: str
    fps: float | None
    cue_count: int
    findings: tuple[Finding, ...]
    unreadable: str | None = None


@dataclass(frozen=True)
class _Entry:
    """A cue as the checks see it, from a file or from memory."""

    number: int | None
    line: int | None
    start: float | None
    end: float | None
    lines: tuple[str, ...]


@dataclass(frozen=True)
class _Group:
    """The lines of one cue in one language, with that language's rules."""

    lang: str | None
    rules: Rules
    lines: tuple[str, ...]
    positions: tuple[int, ...]  # 1-based line numbers within the cue


_Layout = Callable[[tuple[str, ...]], list[_Group]]


# ---- public entry points -------------------------------------------------------

def check_file(path: Path, rules: Mapping[str, Rules], *, lang: str | None = None,
               fps: float | None = None, audio_end: float | None = None) -> Report:
    """Check one SRT file. ``rules`` maps language to Rules (from the config).

    ``lang`` is ``zh``/``ur``/``en``, a bilingual pair such as ``ur-zh``, or None (or
    ``auto``) to guess from the text; the report says which. ``fps`` and
    ``audio_end`` come from probing the video.
    """
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        return _unreadable(str(path), f"cannot open: {exc.strerror or exc}")
    return check_bytes(data, rules, name=str(path), lang=lang, fps=fps, audio_end=audio_end)


def check_bytes(data: bytes, rules: Mapping[str, Rules], *, name: str = "<input>",
                lang: str | None = None, fps: float | None = None,
                audio_end: float | None = None) -> Report:
    """Check SRT bytes; see ``check_file``."""
    _check_fps(fps)
    try:
        srt = srtstrict.read_bytes(data)
    except UnreadableSrt as exc:
        return _unreadable(name, exc.reason)
    lang, source = _resolve_lang(lang, srt, rules)
    rules = {code: r.with_fps(fps) if fps else r for code, r in rules.items()}
    timing, layout = _rules_for(lang, rules)
    findings = _reader_findings(srt) + _index_findings(srt.cues)
    findings += _check_entries([_from_srt(c) for c in srt.cues], timing, layout, audio_end)
    ordered = sorted(findings, key=lambda f: f.line or 0)
    return Report(name, lang, source, timing.fps, len(srt.cues), tuple(ordered))


def check_track(cues: Sequence[Cue], rules: Rules, *,
                audio_end: float | None = None) -> list[Finding]:
    """Rule and timing findings for in-memory cues of one language. Pure.

    Cue numbers in the findings are 1-based positions.
    """
    entries = [_from_cue(i, cue) for i, cue in enumerate(cues)]
    return _check_entries(entries, rules, _monolingual(rules), audio_end)


def check_bilingual_track(cues: Sequence[Cue], rules: Mapping[str, Rules],
                          pair: tuple[str, str], *,
                          audio_end: float | None = None) -> list[Finding]:
    """Like ``check_track`` for source-above-target cues (``pair`` = (source, target)).

    Each line is measured with its own language's rules (detected by script); each
    language may use its own ``max_lines``, so a cue may hold both. Timing follows
    the source language's rules.
    """
    entries = [_from_cue(i, cue) for i, cue in enumerate(cues)]
    return _check_entries(entries, rules[pair[0]], _bilingual(rules, pair), audio_end)


def exit_status(report: Report) -> int:
    """0 clean or warnings only, 1 any error, 2 unreadable."""
    if report.unreadable is not None:
        return 2
    return 1 if any(f.severity == ERROR for f in report.findings) else 0


def guess_lang(cue_lines: Iterable[tuple[str, ...]]) -> str:
    """``zh`` for Han, ``ur`` for Arabic script, else ``en``; a pair such as ``ur-zh``
    when at least half of the cues hold lines of two scripts."""
    texts = [lines for lines in cue_lines if any(_line_lang(x) for x in lines)]
    pair = _bilingual_pair(texts)
    if pair is not None:
        return f"{pair[0]}-{pair[1]}"
    counts = _script_counts("".join("".join(lines) for lines in texts))
    if counts["zh"] and counts["zh"] >= counts["ur"]:
        return "zh"
    return "ur" if counts["ur"] else "en"


# ---- formatting ------------------------------------------------------------------

def format_text(report: Report) -> str:
    """Human report: a header, one line per finding, a summary (one line if unreadable)."""
    if report.unreadable is not None:
        return f"{report.path}: cannot read: {report.unreadable}"
    how = "given" if report.lang_source == "given" else "assumed from the text"
    cues = f"{report.cue_count} cue{'s' * (report.cue_count != 1)}"
    lines = [f"{report.path}: {cues}, language {report.lang} ({how}),"
             f" {_num(report.fps)} fps"]
    lines += [format_finding(f) for f in report.findings]
    lines.append(_summary(report.findings))
    return "\n".join(lines)


def format_finding(finding: Finding) -> str:
    """One line, e.g. ``cue 12 (00:01:02,300): chars_per_line 19.5 > 16``."""
    level = "warning: " if finding.severity == WARNING else ""
    return f"{_where(finding)}: {level}{finding.message}"


def format_json(report: Report) -> str:
    """JSON for tools; keys always in the same order."""
    doc = {
        "path": report.path,
        "status": exit_status(report),
        "unreadable": report.unreadable,
        "lang": report.lang,
        "lang_source": report.lang_source,
        "fps": report.fps,
        "cues": report.cue_count,
        "findings": [_finding_json(f) for f in report.findings],
    }
    return json.dumps(doc, ensure_ascii=False, indent=2)


def _finding_json(f: Finding) -> dict[str, object]:
    return {
        "cue": f.cue,
        "line": f.line,
        "start": f.start,
        "time": None if f.start is None else timestamp(f.start),
        "rule": f.rule,
        "severity": f.severity,
        "measured": f.measured,
        "limit": f.limit,
        "message": f.message,
    }


def _where(f: Finding) -> str:
    if f.start is not None:
        label = f"cue {f.cue}" if f.cue is not None else f"line {f.line}"
        return f"{label} ({timestamp(f.start)})"
    if f.cue is not None:
        return f"cue {f.cue}" + (f" (line {f.line})" if f.line is not None else "")
    return f"line {f.line}" if f.line is not None else "file"


def _summary(findings: Sequence[Finding]) -> str:
    errors = sum(f.severity == ERROR for f in findings)
    warnings = len(findings) - errors
    if not findings:
        return "no problems found"
    return f"{errors} error{'s' * (errors != 1)}, {warnings} warning{'s' * (warnings != 1)}"


def timestamp(seconds: float) -> str:
    """``HH:MM:SS,mmm`` for a time in seconds."""
    millis = max(0, round(seconds * 1000))
    hours, rest = divmod(millis, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs, millis = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d},{millis:03d}"


def _num(value: float | None) -> str:
    if value is None:
        return "?"
    return f"{value:.3f}".rstrip("0").rstrip(".")


# ---- language --------------------------------------------------------------------

_HAN = ((0x3400, 0x4DBF), (0x4E00, 0x9FFF), (0xF900, 0xFAFF), (0x20000, 0x2FA1F))
_ARABIC = ((0x0600, 0x06FF), (0x0750, 0x077F), (0x08A0, 0x08FF), (0xFB50, 0xFDFF),
           (0xFE70, 0xFEFF))


def _in(ranges: tuple[tuple[int, int], ...], ch: str) -> bool:
    return any(lo <= ord(ch) <= hi for lo, hi in ranges)


def _script_counts(text: str) -> dict[str, int]:
    counts = {"zh": 0, "ur": 0, "en": 0}
    for ch in text:
        if _in(_HAN, ch):
            counts["zh"] += 1
        elif _in(_ARABIC, ch):
            counts["ur"] += 1
        elif ch.isalpha() and ord(ch) < 0x250:
            counts["en"] += 1
    return counts


def _line_lang(line: str) -> str | None:
    """The language a line's script points to, or None (digits, punctuation)."""
    counts = _script_counts(line)
    best = max(counts, key=lambda code: counts[code])
    return best if counts[best] else None


def _cue_langs(lines: tuple[str, ...]) -> list[str]:
    found: list[str] = []
    for line in lines:
        lang = _line_lang(line)
        if lang is not None and lang not in found:
            found.append(lang)
    return found


def _bilingual_pair(cue_lines: Sequence[tuple[str, ...]]) -> tuple[str, str] | None:
    mixed = [langs for langs in map(_cue_langs, cue_lines) if len(langs) >= 2]
    if not mixed or 2 * len(mixed) < len(cue_lines):
        return None
    return mixed[0][0], mixed[0][1]


def _resolve_lang(lang: str | None, srt: SrtFile,
                  rules: Mapping[str, Rules]) -> tuple[str, str]:
    if lang is None or lang == "auto":
        lang, source = guess_lang(c.lines for c in srt.cues), "text"
    else:
        source = "given"
    parts = lang.split("-")
    unknown = [p for p in parts if p not in rules]
    if unknown or len(parts) > 2 or len(set(parts)) != len(parts):
        known = ", ".join(sorted(rules))
        raise UsageError(f"no subtitle rules for language '{lang}' (known: {known},"
                         " or a pair such as ur-zh)")
    return lang, source


def _rules_for(lang: str, rules: Mapping[str, Rules]) -> tuple[Rules, _Layout]:
    parts = lang.split("-")
    if len(parts) == 2:
        return rules[parts[0]], _bilingual(rules, (parts[0], parts[1]))
    return rules[lang], _monolingual(rules[lang])


def _monolingual(rules: Rules) -> _Layout:
    return lambda lines: [_Group(None, rules, lines, tuple(range(1, len(lines) + 1)))]


def _bilingual(rules: Mapping[str, Rules], pair: tuple[str, str]) -> _Layout:
    def split(lines: tuple[str, ...]) -> list[_Group]:
        by_lang: dict[str, list[int]] = {pair[0]: [], pair[1]: []}
        for pos, line in enumerate(lines, 1):
            lang = _line_lang(line)
            # Lines with no letters (a lone "..." or number) go with the source.
            by_lang[lang if lang in by_lang else pair[0]].append(pos)
        return [_Group(code, rules[code], tuple(lines[p - 1] for p in group), tuple(group))
                for code, group in by_lang.items() if group]

    return split


def _check_fps(fps: float | None) -> None:
    if fps is not None and not fps > 0:
        raise UsageError(f"frame rate must be positive, got {fps}")


# ---- file structure --------------------------------------------------------------

def _unreadable(path: str, reason: str) -> Report:
    return Report(path, None, "", None, 0, (), unreadable=reason)


def _reader_findings(srt: SrtFile) -> list[Finding]:
    return [Finding(p.number, None, p.kind, None, None, p.severity, p.message, p.line)
            for p in srt.problems]


def _index_findings(cues: Sequence[SrtCue]) -> list[Finding]:
    """Duplicate and out-of-order cue numbers are errors; numbers never used, a warning."""
    present = sorted({c.number for c in cues if c.number is not None})
    findings: list[Finding] = []
    seen: dict[int, int] = {}  # number -> line where it was first used
    highest = 0
    for cue in cues:
        number = cue.number
        if number is None:
            continue
        if number in seen:
            findings.append(_index(cue, "index_duplicate", None, ERROR,
                                   f"cue number {number} already used on line {seen[number]}"))
            continue
        if number < highest:
            findings.append(_index(cue, "index_order", highest, ERROR,
                                   f"cue number {number} after {highest}"))
        # A swap (1, 3, 2) is one fault, reported once above, not also a gap.
        missing = _never_used(present, highest, number)
        if missing:
            findings.append(_index(cue, "index_gap", highest + 1, WARNING,
                                   f"cue number {number} after {highest} ({missing})"))
        seen[number] = cue.line
        highest = max(highest, number)
    return findings


def _never_used(present: list[int], low: int, high: int) -> str:
    """Describe the numbers between low and high that no cue uses ('' if none)."""
    between = bisect_left(present, high) - bisect_right(present, low)
    count = high - low - 1 - between
    if count <= 0:
        return ""
    if between:
        return f"{count} numbers missing"
    return f"missing {low + 1}" if count == 1 else f"missing {low + 1}-{high - 1}"


def _index(cue: SrtCue, rule: str, limit: int | None, severity: str, message: str) -> Finding:
    return Finding(cue.number, cue.start, rule, cue.number, limit, severity, message, cue.line)


def _from_srt(cue: SrtCue) -> _Entry:
    return _Entry(cue.number, cue.line, cue.start, cue.end, cue.lines)


def _from_cue(i: int, cue: Cue) -> _Entry:
    return _Entry(i + 1, None, cue.start, cue.end, cue.lines)


# ---- rules -----------------------------------------------------------------------

def _check_entries(entries: Sequence[_Entry], timing: Rules, layout: _Layout,
                   audio_end: float | None) -> list[Finding]:
    findings: list[Finding] = []
    latest: _Entry | None = None  # the timed cue that ends last so far
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


def _cue_findings(entry: _Entry, timing: Rules, layout: _Layout,
                  audio_end: float | None) -> list[Finding]:
    assert entry.start is not None and entry.end is not None
    duration = entry.end - entry.start
    findings = _layout_findings(entry, layout)
    if duration <= _TINY:
        findings.append(_finding(entry, "end_before_start", duration, 0.0,
                                 f"end {timestamp(entry.end)} <= start"
                                 f" {timestamp(entry.start)}"))
    else:
        findings += _duration_findings(entry, duration, timing)
        if not _is_empty(entry):
            findings += [f for g in layout(entry.lines)
                         if (f := _reading_finding(entry, g, duration)) is not None]
    if audio_end is not None and entry.end > audio_end + EPS:
        findings.append(_finding(entry, "past_audio_end", entry.end, audio_end,
                                 f"past_audio_end {_num(entry.end)} > {_num(audio_end)} s"))
    return findings


def _is_empty(entry: _Entry) -> bool:
    return not any(visible(line).strip() for line in entry.lines)


def _layout_findings(entry: _Entry, layout: _Layout) -> list[Finding]:
    if _is_empty(entry):
        return [_finding(entry, "empty_cue", None, None, "empty cue (no visible text)")]
    findings: list[Finding] = []
    for group in layout(entry.lines):
        findings += _lines_findings(entry, group)
        findings += _width_findings(entry, group)
    return findings


def _lines_findings(entry: _Entry, group: _Group) -> list[Finding]:
    count = len(group.lines)
    if count <= group.rules.max_lines:
        return []
    message = f"lines_per_cue {count} > {group.rules.max_lines}{_detail(group.lang)}"
    return [_finding(entry, "lines_per_cue", count, group.rules.max_lines, message)]


def _width_findings(entry: _Entry, group: _Group) -> list[Finding]:
    findings: list[Finding] = []
    limit = group.rules.max_chars_per_line
    for line, pos in zip(group.lines, group.positions):
        # Spaces at the line ends never show on screen.
        width = line_length(line.strip(), group.rules)
        if width > limit + _TINY:
            where = f"line {pos}" if len(entry.lines) > 1 else None
            message = f"chars_per_line {_num(width)} > {_num(limit)}{_detail(group.lang, where)}"
            findings.append(_finding(entry, "chars_per_line", width, limit, message))
    return findings


def _reading_finding(entry: _Entry, group: _Group, duration: float) -> Finding | None:
    rules = group.rules
    chars = sum(line_length(line.strip(), rules) for line in group.lines)
    # Allow the cue a millisecond more so a cue timed exactly at the limit passes.
    if chars <= rules.max_cps * (duration + EPS) + _TINY:
        return None
    cps = chars / duration
    message = (f"reading_speed {_num(cps)} > {_num(rules.max_cps)} chars/s"
               f"{_detail(group.lang)}")
    return _finding(entry, "reading_speed", cps, rules.max_cps, message)


def _duration_findings(entry: _Entry, duration: float, rules: Rules) -> list[Finding]:
    if duration < rules.min_duration - EPS:
        return [_finding(entry, "min_duration", duration, rules.min_duration,
                         f"min_duration {_num(duration)} < {_num(rules.min_duration)} s")]
    if duration > rules.max_duration + EPS:
        return [_finding(entry, "max_duration", duration, rules.max_duration,
                         f"max_duration {_num(duration)} > {_num(rules.max_duration)} s")]
    return []


def _pair_findings(before: _Entry, entry: _Entry, rules: Rules) -> list[Finding]:
    """Order, overlap and gap between a cue and the cue that ends last before it."""
    assert before.start is not None and before.end is not None and entry.start is not None
    if entry.start < before.start - _TINY:
        return [_finding(entry, "time_order", entry.start, before.start,
                         f"starts before cue {_label(before)}"
                         f" ({timestamp(before.start)})")]
    gap = entry.start - before.end
    if gap < -_TINY:
        return [_finding(before, "overlap", -gap, 0.0,
                         f"overlap {_num(-gap)} s with cue {_label(entry)}")]
    if gap < rules.min_gap - EPS:
        return [_finding(before, "min_gap", gap, rules.min_gap,
                         f"min_gap {_num(gap)} < {_num(rules.min_gap)} s"
                         f" (to cue {_label(entry)})")]
    return []


def _label(entry: _Entry) -> str:
    if entry.number is not None:
        return str(entry.number)
    return f"at line {entry.line}"


def _detail(*parts: str | None) -> str:
    shown = [p for p in parts if p]
    return f" ({', '.join(shown)})" if shown else ""


def _finding(entry: _Entry, rule: str, measured: float | None, limit: float | None,
             message: str) -> Finding:
    # Rounded to the millisecond precision of SRT so reports and JSON are stable.
    return Finding(entry.number, entry.start, rule, _round(measured), _round(limit), ERROR,
                   message, entry.line)


def _round(value: float | None) -> float | None:
    return None if value is None else round(float(value), 3)


__all__ = [
    "ERROR", "WARNING", "EPS", "Finding", "Report", "check_file", "check_bytes",
    "check_track", "check_bilingual_track", "exit_status", "format_text", "format_json",
    "format_finding", "guess_lang", "timestamp",
]
