"""What every subtitle format shares: the picture and house style a file is made for
(``Delivery``), a file as the checker reads it (``Parsed``, ``Unreadable``), the
language tags files carry, and decoding bytes as text with the warnings on the way.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

from ..errors import InputError, UsageError
from ..findings import ERROR, WARNING, Finding
from ..script import shown
from ..types import Cue, Entry, Track

# BCP 47, as xml:lang, WebVTT's <lang> and players want them: Mandarin is written in
# Simplified characters, which the tag says.
LANG_TAGS = {"zh": "zh-Hans", "ur": "ur", "en": "en"}
# Scripts written right to left.
RTL = frozenset({"ur"})

_UTF8_BOM = b"\xef\xbb\xbf"
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")


@dataclass(frozen=True)
class Delivery:
    """What a file needs beyond its cues: the picture it is shown over (its size and frame
    rate) and the house style (``[output]``: the font of each language, the size of each
    font against the house size, a bilingual cue's target against its source)."""

    width: int = 1920
    height: int = 1080
    fps: float = 25.0
    fonts: dict[str, str] = field(default_factory=dict)
    font_scale: dict[str, float] = field(default_factory=dict)
    target_scale: float = 0.75
    target_above: bool = False

    @property
    def frame_rate(self) -> Fraction:
        """The frame rate as a fraction: 30000/1001 for NTSC's 29.97, as TTML writes it."""
        for base in (24, 30, 60):
            if abs(self.fps - base * 1000 / 1001) < 0.005:
                return Fraction(base * 1000, 1001)
        return Fraction(self.fps).limit_denominator(1001)

    def font(self, lang: str) -> str:
        return self.fonts.get(lang, "")

    def scale(self, lang: str) -> float:
        return self.font_scale.get(lang, 1.0)


class Unreadable(UsageError):
    """A file that can't be read as subtitles at all (not UTF-8, binary, no cues): exit 2."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Parsed:
    """A subtitle file as the checker reads it: every cue in file order, and every
    defect of the file found on the way."""

    cues: tuple[Entry, ...]
    problems: tuple[Finding, ...]


def defect(line: int | None, kind: str, message: str, severity: str = ERROR, number: int | None = None) -> Finding:
    """A defect of the file itself (encoding, structure, a timestamp), as ``check`` reports it."""
    return Finding(kind, message, severity, cue=number, line=line)


def languages(code: str) -> tuple[str, ...]:
    """``("ur",)`` for ``ur``, ``("ur", "zh")`` for the pair ``ur-zh``."""
    return tuple(code.split("-"))


def millis(seconds: float) -> int:
    """A time as whole milliseconds, rounded as every format writes it, so the same floats
    always give the same timestamps."""
    return round(seconds * 1000)


def clock(seconds: float, separator: str = ",") -> str:
    """``HH:MM:SS,mmm`` (SRT) or, with ``separator="."``, ``HH:MM:SS.mmm`` (WebVTT, TTML)."""
    hours, rest = divmod(max(0, millis(seconds)), 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs, ms = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{separator}{ms:03d}"


def require_valid(track: Track) -> None:
    """Raise ValueError on a cue no file should hold: an empty one, one that lasts no time
    or ends before it starts, one that starts before the one above it."""
    previous_start = -1.0
    for number, cue in enumerate(track.cues, start=1):
        if not cue.text.strip():
            raise ValueError(f"cue {number} of the {track.lang} track is empty")
        shown = f"{clock(cue.start)} --> {clock(cue.end)}"
        if not cue.start < cue.end:
            how = "lasts no time" if cue.start == cue.end else "ends before it starts"
            raise ValueError(f"cue {number} of the {track.lang} track ({shown}) {how}")
        if cue.start < previous_start:
            raise ValueError(f"cue {number} of the {track.lang} track ({shown}) starts before the one above it")
        previous_start = cue.start


def track_of(parsed: Parsed, lang: str) -> Track:
    """The timed cues of ``parsed`` as a track in ``lang``: the text a viewer sees, without
    the format's markup or direction marks."""
    return Track(lang, tuple(Cue(e.start, e.end, tuple(shown(line) for line in e.lines))
                             for e in parsed.cues if e.start is not None and e.end is not None))


def decode(data: bytes) -> tuple[str, list[Finding]]:
    """UTF-8 text with ``\\n`` line ends; a BOM or CRLF are only warnings. Raises
    ``Unreadable`` for what is not UTF-8 text."""
    _refuse_undecodable(data)
    problems: list[Finding] = []
    if data.startswith(_UTF8_BOM):
        data = data[len(_UTF8_BOM):]
        problems.append(defect(1, "bom", "UTF-8 byte order mark (BOM) at start of file", WARNING))
    text = data.decode("utf-8")
    crlf = text.count("\r\n")
    if crlf:
        problems.append(defect(1, "crlf", f"CRLF line ends ({crlf} lines)", WARNING))
        text = text.replace("\r\n", "\n")
    if "\r" in text:
        problems.append(defect(1, "cr", "bare CR line ends", WARNING))
        text = text.replace("\r", "\n")
    return text, problems


def _refuse_undecodable(data: bytes) -> None:
    if data[:2] in _UTF16_BOMS:
        raise Unreadable("UTF-16 text (byte order mark at start); re-save as UTF-8")
    nul = data.find(b"\x00")
    if nul >= 0:
        raise Unreadable(f"binary data or UTF-16 without BOM (NUL byte at offset {nul})")
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise Unreadable(
            f"not UTF-8 (byte 0x{data[exc.start]:02x} on line {line}, offset {exc.start}); re-save as UTF-8"
        ) from exc


def quote(text: str, limit: int = 40) -> str:
    """``text`` as a report quotes it, cut short."""
    text = text.strip()
    return repr(text if len(text) <= limit else text[:limit] + "...")


def track_from_file(path: Path, lang: str, read: Callable[[bytes], Parsed]) -> Track:
    """A track in ``lang`` from the file at ``path``, parsed by a format's strict ``read``."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror}") from None
    return track_of(read(data), lang)
