"""``subpipe check``: lint a subtitle file against the subtitle rules (shared RULES.md).

SRT, WebVTT, ASS and TTML (IMSC, EBU-TT-D) alike: each format's strict reader
(``formats.Format.inspect``, chosen by what the file starts with) gives the cues and the
file's defects, and the one judge of the rules (``rules.judge_entries``) decides; the
markup of each format is not counted, as ``<i>`` is not.

Unreadable files: ``check_file`` and ``check_bytes`` never raise for a bad file. A
file that can't be read (not UTF-8, UTF-16, binary, text without SRT cues, can't be
opened, a named pipe) comes back as a ``Report`` with ``unreadable`` set to a one-line reason;
``exit_status`` gives 2 and ``format_text`` prints that one line. They raise
``UsageError`` only for bad arguments (unknown ``lang``, no rules for it, fps <= 0).
An empty file (0 bytes or blank lines) is a valid track with no cues: a warning.

Exit status: 0 clean or warnings only, 1 any rule broken or structural error, 2
unreadable.
"""

from __future__ import annotations

import json
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from subpipe.errors import UsageError
from subpipe.findings import ERROR, WARNING, Finding
from subpipe.formats import format_of
from subpipe.formats.base import Parsed, Unreadable
from subpipe.formats.names import track_code
from subpipe.rules import (
    Layout,
    Rules,
    bilingual,
    judge_entries,
    monolingual,
    number,
    timestamp,
    untranscribed,
)
from subpipe.script import line_lang, script_counts
from subpipe.types import Entry


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


# ---- public entry points -------------------------------------------------------

def check_file(path: Path, rules: Mapping[str, Rules], *, lang: str | None = None,
               fps: float | None = None, audio_end: float | None = None,
               speech: Sequence[tuple[float, float]] | None = None) -> Report:
    """Check one subtitle file (SRT, WebVTT, ASS, TTML). ``rules`` maps language to Rules
    (from the config).

    ``lang`` is ``zh``/``ur``/``en``, a bilingual pair such as ``ur-zh``, or None (or
    ``auto``) to guess from the text; the report says which. ``fps``, ``audio_end``
    and ``speech`` (voice activity) come from the video: speech that no cue covers
    for a second or more is reported, whoever made the file.
    """
    if Path(path).exists() and not Path(path).is_file() and not Path(path).is_dir():
        # Reading a named pipe waits for a writer that may never come.
        return _unreadable(str(path), "not a regular file (a named pipe or a device)")
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        return _unreadable(str(path), f"cannot open: {exc.strerror or exc}")
    return check_bytes(data, rules, name=str(path), lang=lang, fps=fps, audio_end=audio_end, speech=speech)


def check_bytes(data: bytes, rules: Mapping[str, Rules], *, name: str = "<input>",
                lang: str | None = None, fps: float | None = None,
                audio_end: float | None = None, speech: Sequence[tuple[float, float]] | None = None) -> Report:
    """Check a subtitle file's bytes; see ``check_file``."""
    _check_fps(fps)
    try:
        parsed = format_of(data).inspect(data)
    except Unreadable as exc:
        return _unreadable(name, exc.reason)
    lang, source = _resolve_lang(lang, parsed, rules, name)
    rules = {code: r.with_fps(fps) if fps else r for code, r in rules.items()}
    timing, layout = _rules_for(lang, rules)
    findings = _reader_findings(parsed) + _index_findings(parsed.cues)
    if not parsed.cues:
        findings.append(Finding("no_cues", "no cues: an empty track, as for a film without speech", WARNING,
                                line=1, measured=0))
    findings += judge_entries(parsed.cues, timing, layout, audio_end)
    ordered = sorted(findings, key=lambda f: f.line or 0)
    if speech is not None:
        ordered += untranscribed([c.to_cue() for c in parsed.cues if c.timed], speech)
    return Report(name, lang, source, timing.fps, len(parsed.cues), tuple(ordered))


def exit_status(report: Report) -> int:
    """0 clean or warnings only, 1 any error, 2 unreadable."""
    if report.unreadable is not None:
        return 2
    return 1 if any(f.severity == ERROR for f in report.findings) else 0


def guess_lang(cue_lines: Iterable[tuple[str, ...]]) -> str:
    """``zh`` for Han, ``ur`` for Arabic script, else ``en``; a pair such as ``ur-zh``
    when at least half of the cues hold lines of two scripts."""
    texts = [lines for lines in cue_lines if any(line_lang(x) for x in lines)]
    pair = _bilingual_pair(texts)
    if pair is not None:
        return f"{pair[0]}-{pair[1]}"
    counts = script_counts("".join("".join(lines) for lines in texts))
    if counts["zh"] and counts["zh"] >= counts["ur"]:
        return "zh"
    return "ur" if counts["ur"] else "en"


# ---- formatting ------------------------------------------------------------------

def format_text(report: Report) -> str:
    """Human report: a header, one line per finding, a summary (one line if unreadable)."""
    if report.unreadable is not None:
        return f"{report.path}: cannot read: {report.unreadable}"
    how = {"given": "given", "name": "from the file name"}.get(report.lang_source, "assumed from the text")
    cues = f"{report.cue_count} cue{'s' * (report.cue_count != 1)}"
    lines = [f"{report.path}: {cues}, language {report.lang} ({how}),"
             f" {number(report.fps)} fps"]
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
        "rule": f.kind,
        "severity": f.severity,
        "measured": f.measured,
        "limit": f.limit,
        "message": f.message,
    }


def _where(f: Finding) -> str:
    if f.start is not None:
        if f.cue is None and f.line is None:
            return timestamp(f.start)
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


# ---- language --------------------------------------------------------------------

def _cue_langs(lines: tuple[str, ...]) -> list[str]:
    found: list[str] = []
    for line in lines:
        lang = line_lang(line)
        if lang is not None and lang not in found:
            found.append(lang)
    return found


def _bilingual_pair(cue_lines: Sequence[tuple[str, ...]]) -> tuple[str, str] | None:
    mixed = [langs for langs in map(_cue_langs, cue_lines) if len(langs) >= 2]
    if not mixed or 2 * len(mixed) < len(cue_lines):
        return None
    return mixed[0][0], mixed[0][1]


def _resolve_lang(lang: str | None, parsed: Parsed,
                  rules: Mapping[str, Rules], name: str = "") -> tuple[str, str]:
    if lang is None or lang == "auto":
        lang, source = guess_lang(c.lines for c in parsed.cues), "text"
        # A file with no text to tell (an empty track) goes by its name: x.zh.srt is zh.
        named = track_code(Path(name).name)
        if named and not any(line_lang(x) for c in parsed.cues for x in c.lines):
            lang, source = named, "name"
    else:
        source = "given"
    parts = lang.split("-")
    unknown = [p for p in parts if p not in rules]
    if unknown or len(parts) > 2 or len(set(parts)) != len(parts):
        known = ", ".join(sorted(rules))
        raise UsageError(f"no subtitle rules for language '{lang}' (known: {known},"
                         " or a pair such as ur-zh)")
    return lang, source


def _rules_for(lang: str, rules: Mapping[str, Rules]) -> tuple[Rules, Layout]:
    parts = lang.split("-")
    if len(parts) == 2:
        return rules[parts[0]], bilingual(rules, (parts[0], parts[1]))
    return rules[lang], monolingual(rules[lang])


def _check_fps(fps: float | None) -> None:
    if fps is not None and not fps > 0:
        raise UsageError(f"frame rate must be positive, got {fps}")


# ---- file structure --------------------------------------------------------------

def _unreadable(path: str, reason: str) -> Report:
    return Report(path, None, "", None, 0, (), unreadable=reason)


def _reader_findings(parsed: Parsed) -> list[Finding]:
    return list(parsed.problems)


def _index_findings(cues: Sequence[Entry]) -> list[Finding]:
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


def _index(cue: Entry, rule: str, limit: int | None, severity: str, message: str) -> Finding:
    return Finding(rule, message, severity, cue=cue.number, line=cue.line, start=cue.start, measured=cue.number,
                   limit=limit)


__all__ = [
    "Finding", "Report", "check_file", "check_bytes", "exit_status", "format_text", "format_json",
    "format_finding", "guess_lang",
]
