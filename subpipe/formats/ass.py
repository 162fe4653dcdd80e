"""ASS (Advanced SubStation Alpha), for Chinese bilingual releases and for burning in
with libass: composed from a track, and read strictly for ``check``.

The script is made for the film's picture (``PlayResX``/``PlayResY`` its size, so sizes
and margins are in its pixels) and names a style per language, each in the font of
``[output.fonts]`` that carries its script, at the house size times ``[output.font_scale]``
(ASS sizes a font by its whole line height: Nastaliq's is tall). Text sits at the bottom,
centred, inside the title-safe area (10 % in from the sides; 8 % up from the bottom, 20 %
on a portrait picture, clear of a phone app's controls). A bilingual cue is one event:
the source's lines, then ``{\\r<target>}`` and the target's lines in the target's
style, smaller (``target_scale``), below (or above: ``target_above``).

Urdu's style has ``Encoding -1``: libass takes a line's base direction from its text
(VSFilter's charsets would force left-to-right), and the lines keep SRT's direction marks,
so a line that starts with a Latin name still runs right to left. The script's
``Language`` tells libass how to shape it. Times are centiseconds, as ASS writes them.
"""

from __future__ import annotations

import re
from pathlib import Path

from ..bilingual import split_pair
from ..findings import ERROR, Finding
from ..types import Entry, Track
from .base import (
    LANG_TAGS,
    RTL,
    Delivery,
    Parsed,
    Unreadable,
    decode,
    defect,
    languages,
    millis,
    quote,
    require_valid,
    track_from_file,
)

# The house size: a line of text about 5 % of the picture's height.
HOUSE_SIZE = 0.05
STYLE_FIELDS = ("Name", "Fontname", "Fontsize", "PrimaryColour", "SecondaryColour", "OutlineColour", "BackColour",
                "Bold", "Italic", "Underline", "StrikeOut", "ScaleX", "ScaleY", "Spacing", "Angle", "BorderStyle",
                "Outline", "Shadow", "Alignment", "MarginL", "MarginR", "MarginV", "Encoding")
EVENT_FIELDS = ("Layer", "Start", "End", "Style", "Name", "MarginL", "MarginR", "MarginV", "Effect", "Text")
# An editor's SRT markup as ASS overrides; <font> has no place in a styled script.
_TAGS = {"<i>": r"{\i1}", "</i>": r"{\i0}", "<b>": r"{\b1}", "</b>": r"{\b0}", "<u>": r"{\u1}", "</u>": r"{\u0}",
         "<s>": r"{\s1}", "</s>": r"{\s0}"}
_MARKUP = re.compile(r"(</?[ibus]>|</?font(?:\s[^<>]*)?>|\{\\[^{}]*\})", re.IGNORECASE)
# Characters ASS reads as commands in text, shown as their full-width forms instead.
_LITERAL = str.maketrans({"{": "\uff5b", "}": "\uff5d", "\\": "\uff3c"})


def compose(track: Track, delivery: Delivery | None = None) -> str:
    """The track as an ASS script (UTF-8, ``\\n``); raises ValueError on a bad cue."""
    require_valid(track)
    delivery = delivery or Delivery()
    langs = languages(track.lang)
    header = ["[Script Info]", "; written by subpipe", "ScriptType: v4.00+", f"PlayResX: {delivery.width}",
              f"PlayResY: {delivery.height}", "WrapStyle: 0", "ScaledBorderAndShadow: yes", "YCbCr Matrix: None",
              f"Language: {LANG_TAGS[langs[0]]}", "", "[V4+ Styles]", f"Format: {', '.join(STYLE_FIELDS)}"]
    header += [_style(lang, delivery, target=index == 1) for index, lang in enumerate(langs)]
    header += ["", "[Events]", f"Format: {', '.join(EVENT_FIELDS)}"]
    events = [f"Dialogue: 0,{_stamp(cue.start)},{_stamp(cue.end)},{langs[0]},,0,0,0,,"
              f"{_text(cue.lines, langs, delivery)}" for cue in track.cues]
    return "\n".join(header + events) + "\n"


def _style(lang: str, delivery: Delivery, *, target: bool) -> str:
    size = delivery.height * HOUSE_SIZE * delivery.scale(lang) * (delivery.target_scale if target else 1.0)
    portrait = delivery.height > delivery.width
    margin_v = round(delivery.height * (0.20 if portrait else 0.08))
    margin_h = round(delivery.width * 0.10)
    outline, shadow = _number(delivery.height * 0.003), _number(delivery.height * 0.0015)
    values = [lang, delivery.font(lang) or "sans-serif", _number(size), "&H00FFFFFF", "&H000000FF", "&H00000000",
              "&H80000000", "0", "0", "0", "0", "100", "100", "0", "0", "1", outline, shadow, "2",
              str(margin_h), str(margin_h), str(margin_v), "-1" if lang in RTL else "1"]
    return "Style: " + ",".join(values)


def _text(lines: tuple[str, ...], langs: tuple[str, ...], delivery: Delivery) -> str:
    if len(langs) == 1:
        return r"\N".join(_escaped(line) for line in lines)
    groups = list(split_pair(lines, langs))
    if delivery.target_above:
        groups.reverse()
    parts = []
    for index, (lang, group) in enumerate(groups):
        # Each group in its own style: the event's own (the source's) needs no switch.
        switch = "" if index == 0 and lang == langs[0] else f"{{\\r{lang}}}"
        if group:
            parts.append(switch + r"\N".join(_escaped(line) for line in group))
    return r"\N".join(parts)


def _escaped(line: str) -> str:
    out = []
    for token in _MARKUP.split(line):
        if not token:
            continue
        if token.lower() in _TAGS:
            out.append(_TAGS[token.lower()])
        elif token.startswith("{\\"):
            out.append(token)  # already an ASS override (SRT files carry {\an8})
        elif not _MARKUP.fullmatch(token):
            out.append(token.translate(_LITERAL))
    return "".join(out)


def _stamp(seconds: float) -> str:
    centis = (millis(seconds) + 5) // 10
    hours, rest = divmod(centis, 360_000)
    minutes, rest = divmod(rest, 6000)
    secs, cs = divmod(rest, 100)
    return f"{hours}:{minutes:02d}:{secs:02d}.{cs:02d}"


def _number(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")


# ---- reading ---------------------------------------------------------------------------

_SECTION = re.compile(r"\[([^\]]+)\]\s*")
_ASS_STAMP = re.compile(r"(\d+):(\d{2}):(\d{2})\.(\d{2})")
_OVERRIDE = re.compile(r"\{[^{}]*\}")


def looks_like(data: bytes) -> bool:
    """Whether the bytes start as an ASS (or SSA) script does."""
    return data.removeprefix(b"\xef\xbb\xbf").lstrip().lower().startswith(b"[script info]")


def read_track(path: Path, lang: str) -> Track:
    """A track from an ASS script: its events' text as a viewer sees it."""
    return track_from_file(path, lang, read_bytes)


def read_bytes(data: bytes) -> Parsed:
    """An ASS script as ``check`` reads it: each ``Dialogue`` event a cue (events of
    other styles at the same times, a bilingual release's, are one), its text as shown
    (override blocks, ``{...}``, taken off; ``\\N`` a line break), and every defect.
    Raises ``Unreadable`` for what is not an ASS script."""
    text, problems = decode(data)
    if not looks_like(text.encode()):
        raise Unreadable("no [Script Info] section at the start: not an ASS script")
    section, fields, wrap_style = "", EVENT_FIELDS, "0"
    events: list[tuple[Entry, str]] = []
    for number, line in enumerate(text.split("\n"), start=1):
        stripped = line.strip()
        if match := _SECTION.fullmatch(stripped):
            section = match.group(1).lower()
        elif section == "script info" and stripped.lower().startswith("wrapstyle:"):
            wrap_style = stripped.split(":", 1)[1].strip()
        elif section == "events" and stripped.lower().startswith("format:"):
            fields = tuple(f.strip() for f in stripped.split(":", 1)[1].split(","))
        elif section == "events" and stripped.lower().startswith("dialogue:"):
            event = _event(stripped.split(":", 1)[1].lstrip(), fields, number, len(events) + 1, wrap_style, problems)
            if event is not None:
                events.append(event)
    return Parsed(tuple(_merged(events)), tuple(problems))


def _event(body: str, fields: tuple[str, ...], line_no: int, number: int, wrap_style: str,
           problems: list[Finding]) -> tuple[Entry, str] | None:
    values = body.split(",", len(fields) - 1)
    if len(values) < len(fields) or "Text" not in fields:
        problems.append(defect(line_no, "syntax", f"a Dialogue line with {len(values)} of its {len(fields)} fields;"
                                                  " event skipped", ERROR, number))
        return None
    row = dict(zip(fields, values))
    times = []
    for name in ("Start", "End"):
        token = row.get(name, "").strip()
        match = _ASS_STAMP.fullmatch(token)
        if match is None:
            problems.append(defect(line_no, "timestamp", f"{name.lower()} {quote(token)} is not a timestamp"
                                                         " (H:MM:SS.cc)", ERROR, number))
            times.append(None)
            continue
        h, m, s, cs = map(int, match.groups())
        if m > 59 or s > 59:
            problems.append(defect(line_no, "timestamp", f"timestamp {quote(token)}: minutes and seconds run"
                                                         " 00-59", ERROR, number))
            times.append(None)
            continue
        times.append(round(h * 3600 + m * 60 + s + cs / 100, 2))
    soft = r"\N" if wrap_style == "2" else " "
    shown = _OVERRIDE.sub("", row["Text"]).replace(r"\n", soft).replace(r"\h", "\u00a0")
    return Entry(number, times[0], times[1], tuple(shown.split(r"\N")), line_no), row.get("Style", "").strip()


def _merged(events: list[tuple[Entry, str]]):  # noqa: ANN202 - an iterator of entries
    """One cue per event; consecutive events at the same times in other styles are one."""
    merged: list[tuple[Entry, set[str]]] = []
    for entry, style in events:
        if merged and entry.timed and (merged[-1][0].start, merged[-1][0].end) == (entry.start, entry.end) \
                and style not in merged[-1][1]:
            first, styles = merged[-1]
            merged[-1] = (Entry(first.number, first.start, first.end, first.lines + entry.lines, first.line),
                          styles | {style})
        else:
            merged.append((entry, {style}))
    for number, (entry, _) in enumerate(merged, start=1):
        yield Entry(number, entry.start, entry.end, entry.lines, entry.line)

