"""A strict SRT reader for checking files, which reports what it had to forgive.

The ``srt`` library is deliberately lenient (it accepts ``.`` separators, missing
numbers, stray text), so a checker needs its own reader. This one never raises on
a file that has SRT structure: every defect becomes a ``Finding`` and the reader
keeps going. A file with no text at all (0 bytes, or only blank lines) is a track
with no cues, as subpipe writes for a film without speech. Only a file it cannot read
at all (not UTF-8, binary, text without cues) raises ``Unreadable``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from ..findings import Finding
from ..types import Entry
from .base import Parsed, Unreadable, decode, defect, quote

# Digit runs are bounded so that int() never meets a hostile 5000-digit "number".
_INDEX = re.compile(r"[0-9]{1,9}")
# Loose on purpose: it finds timestamps so that their defects can be named.
_STAMP = re.compile(r"(\d{1,9}):(\d{1,9}):(\d{1,9})(?:([,.:])(\d{1,9}))?")
_ARROW = "-->"
# Characters no cue should hold: control characters (BEL, ESC: a terminal or a player's
# parser acts on them) and the bidi overrides, which make a player show the text
# reordered, unlike the embeddings (U+202A/B ... U+202C) subpipe writes around Urdu.
_OVERRIDES = {"\u202d": "LEFT-TO-RIGHT OVERRIDE", "\u202e": "RIGHT-TO-LEFT OVERRIDE"}
_SHOWN = re.compile(r"<U\+([0-9A-F]{4})>")
_CONTROL_NAMES = {"\x07": "BEL", "\x08": "BACKSPACE", "\x1b": "ESC", "\x7f": "DEL"}


@dataclass(frozen=True)
class _Stamp:
    seconds: float | None
    problems: tuple[str, ...]


def read_bytes(data: bytes) -> Parsed:
    """Decode and parse SRT bytes. Raises ``Unreadable``."""
    text, problems = decode(data)
    parsed = parse(text)
    if not parsed.cues and text.strip():
        raise Unreadable("no SRT cues found (no cue number followed by a timing line)")
    return Parsed(parsed.cues, tuple(problems) + parsed.problems)


def parse(text: str) -> Parsed:
    """Parse decoded SRT text; never raises. Blocks without a timing line are skipped."""
    lines = text.split("\n")
    cues: list[Entry] = []
    problems: list[Finding] = []
    for block in _blocks(lines, problems):
        cue = _parse_block(block, problems)
        if cue is not None:
            cues.append(cue)
    return Parsed(tuple(cues), tuple(problems))


def _blocks(lines: list[str], problems: list[Finding]) -> Iterator[list[tuple[int, str]]]:
    """Blank-line separated blocks of (line number, text); also splits run-on cues."""
    block: list[tuple[int, str]] = []
    for i, line in enumerate(lines):
        if not line.strip():
            if block:
                yield block
            block = []
            continue
        # A number followed by a timing line inside a block is a new cue whose blank
        # line was lost; reading it as text would hide the cue.
        if block and _is_index(line) and _looks_timing(_at(lines, i + 1)):
            problems.append(defect(i + 1, "syntax", "missing blank line before this cue",
                                    number=int(line.strip())))
            yield block
            block = []
        block.append((i + 1, line))
    if block:
        yield block


def _at(lines: list[str], i: int) -> str:
    return lines[i] if i < len(lines) else ""


def _is_index(line: str) -> bool:
    return _INDEX.fullmatch(line.strip()) is not None


def _looks_timing(line: str) -> bool:
    return _ARROW in line or len(_STAMP.findall(line)) >= 2


def _parse_block(block: list[tuple[int, str]], problems: list[Finding]) -> Entry | None:
    first_no, first = block[0]
    number: int | None = None
    rest = block
    if _is_index(first):
        number = int(first.strip())
        if first != first.strip():
            problems.append(defect(first_no, "index", "spaces around the cue number",
                                    "warning", number))
        rest = block[1:]
    elif not _looks_timing(first):
        problems.append(defect(first_no, "syntax",
                                f"expected a cue number, found {quote(first)}; block skipped"))
        return None
    else:
        problems.append(defect(first_no, "index", "cue number missing"))
    if not rest or not _looks_timing(rest[0][1]):
        found = quote(rest[0][1]) if rest else "nothing"
        problems.append(defect(first_no, "timestamp",
                                f"expected a timing line, found {found}; block skipped",
                                number=number))
        return None
    timing_no, timing = rest[0]
    start, end = _parse_timing(timing_no, timing, number, problems)
    text = tuple(line for _, line in rest[1:])
    for line_no, line in rest[1:]:
        for ch in dict.fromkeys(c for c in line if is_hidden_control(c)):
            problems.append(defect(line_no, "control_character",
                                   f"{control_name(ch)} in the text: players act on it or show the line "
                                   "reordered; remove it", number=number))
    return Entry(number, start, end, text, first_no)


def is_hidden_control(ch: str) -> bool:
    """Whether ``ch`` is a control character or a bidi override (tab apart)."""
    return ch in _OVERRIDES or (ch != "\t" and (ord(ch) < 0x20 or 0x7F <= ord(ch) <= 0x9F))


def control_name(ch: str) -> str:
    """``U+202E (RIGHT-TO-LEFT OVERRIDE)``, ``U+001B (ESC)``: a hidden character named."""
    name = _OVERRIDES.get(ch) or _CONTROL_NAMES.get(ch) or "a control character"
    return f"U+{ord(ch):04X} ({name})"


def shown(text: str) -> str:
    """``text`` with each hidden control written out as its code (``<U+202E>``), so that
    a page shows what the file holds instead of obeying it."""
    return "".join(f"<U+{ord(c):04X}>" if is_hidden_control(c) else c for c in text)


def unshown(text: str) -> str:
    """``shown`` undone: each ``<U+202E>`` that ``shown`` writes for a hidden control
    becomes that character again, so text edited on the page keeps what it did not touch."""
    def back(match: re.Match) -> str:
        ch = chr(int(match.group(1), 16))
        return ch if is_hidden_control(ch) else match.group(0)

    return _SHOWN.sub(back, text)


def _parse_timing(line_no: int, line: str, number: int | None,
                  problems: list[Finding]) -> tuple[float | None, float | None]:
    def report(message: str, severity: str = "error") -> None:
        problems.append(defect(line_no, "timestamp", message, severity, number))

    if _ARROW in line:
        left, right = line.split(_ARROW, 1)
    else:
        report(f"timing line {quote(line)} has no '-->'")
        # _looks_timing guarantees two stamps here; whatever sits between them is the
        # broken arrow.
        stamps = list(_STAMP.finditer(line))
        left, right = stamps[0].group(), line[stamps[1].start():]
    start, end = _stamp(left.strip()), _end_stamp(right, report)
    for stamp in (start, end):
        for message in stamp.problems:
            report(message)
    return start.seconds, end.seconds


def _end_stamp(right: str, report: Callable[[str, str], None]) -> _Stamp:
    words = right.split()
    if not words:
        return _Stamp(None, ("end time missing",))
    if len(words) > 1:
        # Players ignore what follows the end time (old position tags X1:...).
        report(f"text after the end time ignored: {quote(' '.join(words[1:]))}", "warning")
    return _stamp(words[0])


def _stamp(token: str) -> _Stamp:
    """Seconds from ``HH:MM:SS,mmm``; unambiguous defects keep the value."""
    match = _STAMP.fullmatch(token)
    if match is None:
        return _Stamp(None, (f"{quote(token)} is not a timestamp (HH:MM:SS,mmm)",))
    hours, minutes, seconds, sep, millis = match.groups()
    fatal = _fatal_stamp_problems(token, minutes, seconds, millis)
    mild = _mild_stamp_problems(token, hours, sep)
    if fatal:
        return _Stamp(None, fatal + mild)
    value = int(hours) * 3600 + int(minutes) * 60 + int(seconds) + int(millis) / 1000
    return _Stamp(round(value, 3), mild)


def _fatal_stamp_problems(token: str, minutes: str, seconds: str,
                          millis: str | None) -> tuple[str, ...]:
    found: list[str] = []
    for name, field in (("minutes", minutes), ("seconds", seconds)):
        if len(field) != 2:
            found.append(f"timestamp {quote(token)}: {name} need 2 digits")
        elif int(field) > 59:
            found.append(f"timestamp {quote(token)}: {name} {field} out of range 00-59")
    if millis is None:
        found.append(f"timestamp {quote(token)}: milliseconds missing")
    elif len(millis) != 3:
        found.append(f"timestamp {quote(token)}: milliseconds need 3 digits")
    return tuple(found)


def _mild_stamp_problems(token: str, hours: str, sep: str | None) -> tuple[str, ...]:
    found: list[str] = []
    if len(hours) != 2:
        found.append(f"timestamp {quote(token)}: hours need 2 digits")
    if sep is not None and sep != ",":
        found.append(f"timestamp {quote(token)}: '{sep}' before milliseconds; SRT needs ','")
    return tuple(found)

