"""WebVTT, for the web and players: composed from a track, and read strictly for ``check``.

Every line is wrapped in a language span (``<lang zh-Hans>``, ``<lang ur>``), so the
file itself says what it holds, line by line in a bilingual file; a page's ``<track
srclang>`` says it once more. Urdu lines keep the direction marks SRT has
(``formats.srt.laid_out``): a browser lays each cue out by its first strong character,
and the marks make an Urdu line right-to-left whatever it starts with, its punctuation
at its left end. Text is escaped (``&amp;``, ``&lt;``), so a cue can never hold a tag or
an arrow by accident; an editor's ``<i>``, ``<b>``, ``<u>`` pass through, ``<font>``
and ASS blocks (``{\\an8}``), which WebVTT has no use for, are left out.
"""

from __future__ import annotations

import html
import re
from pathlib import Path

from ..bilingual import split_pair
from ..findings import ERROR, WARNING, Finding
from ..types import Entry, Track
from .base import (
    LANG_TAGS,
    Delivery,
    Parsed,
    Unreadable,
    clock,
    decode,
    defect,
    languages,
    quote,
    require_valid,
    track_from_file,
)

MAGIC = "WEBVTT"
_ARROW = "-->"
# What an SRT line may hold besides text: the tags WebVTT shares, and those it has no use for.
_KEPT = re.compile(r"</?[ibu]>", re.IGNORECASE)
_DROPPED = re.compile(r"</?(?:s|font)(?:\s[^<>]*)?>|\{\\[^{}]*\}", re.IGNORECASE)
_TOKENS = re.compile(f"({_KEPT.pattern}|{_DROPPED.pattern})", re.IGNORECASE)
# hh:mm:ss.ttt or mm:ss.ttt; the fields' widths are checked apart, to name what is wrong.
_STAMP = re.compile(r"(?:(\d+):)?(\d+):(\d+)\.(\d+)")
_BLOCK_WORDS = ("NOTE", "STYLE", "REGION")


def compose(track: Track, delivery: Delivery | None = None) -> str:
    """The track as WebVTT (UTF-8, ``\\n``); raises ValueError on a bad cue. Cues are
    numbered from 1, as in the SRT, so an editor can go from one to the other."""
    require_valid(track)
    langs = languages(track.lang)
    blocks = [MAGIC]
    for number, cue in enumerate(track.cues, start=1):
        groups = split_pair(cue.lines, langs) if len(langs) == 2 else ((langs[0], cue.lines),)
        text = "\n".join(f"<lang {LANG_TAGS[lang]}>{_escaped(line)}</lang>"
                         for lang, lines in groups for line in lines if line.strip())
        blocks.append(f"{number}\n{clock(cue.start, '.')} {_ARROW} {clock(cue.end, '.')}\n{text}")
    return "\n\n".join(blocks) + "\n"


def _escaped(line: str) -> str:
    parts = []
    for token in _TOKENS.split(line):
        if _KEPT.fullmatch(token):
            parts.append(token.lower())
        elif not _DROPPED.fullmatch(token):
            parts.append(html.escape(token, quote=False))
    return "".join(parts)


def read_track(path: Path, lang: str) -> Track:
    """A track from a WebVTT file: its timed cues, markup and direction marks taken off."""
    return track_from_file(path, lang, read_bytes)


def looks_like(data: bytes) -> bool:
    """Whether the bytes start as WebVTT does (after a byte order mark)."""
    head = data.removeprefix(b"\xef\xbb\xbf")
    return head.startswith(MAGIC.encode()) and head[len(MAGIC):len(MAGIC) + 1] in (b"", b" ", b"\t", b"\n", b"\r")


def read_bytes(data: bytes) -> Parsed:
    """Read WebVTT strictly, as ``check`` does: every cue (text with its markup, character
    references resolved) and every defect, the reader going on past each. Raises
    ``Unreadable`` for what is not WebVTT at all."""
    text, problems = decode(data)
    lines = text.split("\n")
    if not looks_like(lines[0].encode()):
        raise Unreadable(f"no WEBVTT header (the first line is {quote(lines[0])})")
    cues: list[Entry] = []
    blocks = _blocks(lines)
    next(blocks, None)  # the header: WEBVTT and whatever lines follow it
    for block in blocks:
        entry = _cue(block, len(cues) + 1, problems)
        if entry is not None:
            cues.append(entry)
    return Parsed(tuple(cues), tuple(problems))


def _blocks(lines: list[str]):  # noqa: ANN202 - an iterator of blocks
    """Blocks of (line number, text), separated by blank lines."""
    block: list[tuple[int, str]] = []
    for number, line in enumerate(lines, start=1):
        if line.strip():
            block.append((number, line))
        elif block:
            yield block
            block = []
    if block:
        yield block


def _cue(block: list[tuple[int, str]], number: int, problems: list[Finding]) -> Entry | None:
    first_no, first = block[0]
    if first.split(maxsplit=1)[0] in _BLOCK_WORDS and _ARROW not in first:
        return None  # a comment, a style sheet or a region: not a cue
    rest = block if _ARROW in first else block[1:]
    if not rest or _ARROW not in rest[0][1]:
        problems.append(defect(first_no, "syntax", f"expected a timing line, found {quote(first)}; block skipped"))
        return None
    timing_no, timing = rest[0]
    start, end = _timing(timing_no, timing, number, problems)
    text = tuple(html.unescape(line) for _, line in rest[1:])
    return Entry(number, start, end, text, first_no)


def _timing(line_no: int, line: str, number: int, problems: list[Finding]) -> tuple[float | None, float | None]:
    left, right = line.split(_ARROW, 1)
    words = right.split()
    stamps = [left.strip(), words[0] if words else ""]
    times = []
    for token in stamps:
        seconds, message = _stamp(token)
        if message:
            problems.append(defect(line_no, "timestamp", message, ERROR, number))
        times.append(seconds)
    if not (right.startswith((" ", "\t")) and left.endswith((" ", "\t"))):
        problems.append(defect(line_no, "timestamp", "the arrow needs a space on each side", WARNING, number))
    return times[0], times[1]


def _stamp(token: str) -> tuple[float | None, str]:
    """Seconds from ``hh:mm:ss.ttt`` or ``mm:ss.ttt``, and what is wrong with it ('' if nothing)."""
    match = _STAMP.fullmatch(token)
    if match is None:
        what = "time missing" if not token else f"{quote(token)} is not a timestamp (hh:mm:ss.ttt)"
        return None, what
    hours, minutes, seconds, millis = match.groups()
    wrong = [f"{name} need {width} digits" for name, field, width in
             (("minutes", minutes, 2), ("seconds", seconds, 2), ("milliseconds", millis, 3)) if len(field) != width]
    wrong += [f"{name} {field} out of range 00-59" for name, field in (("minutes", minutes), ("seconds", seconds))
              if len(field) == 2 and int(field) > 59]
    if hours is not None and len(hours) < 2:
        wrong.append("hours need 2 digits or more")
    if wrong:
        return None, f"timestamp {quote(token)}: {', '.join(wrong)}"
    value = int(hours or 0) * 3600 + int(minutes) * 60 + int(seconds) + int(millis) / 1000
    return round(value, 3), ""
