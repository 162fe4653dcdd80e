"""Facts about text in our three languages, each in one place: which characters belong to
which script, which are invisible, which end a sentence; and the normalisation per
language (Simplified Chinese, Urdu letters, direction marks)."""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from typing import Sequence

from subpipe.errors import ConfigError

RTL_MODES = ("rle", "rlm", "none")
_RLE, _PDF, _RLM = "\u202b", "\u202c", "\u200f"

# Direction marks and other invisible format characters never count as characters.
INVISIBLE = frozenset("\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200b\u200c\u200d\ufeff")

# Code point ranges of the scripts our languages are written in.
HAN = ((0x3400, 0x4DBF), (0x4E00, 0x9FFF), (0xF900, 0xFAFF), (0x20000, 0x2FA1F))
# Arabic, Supplement, Extended-B and -A, Presentation Forms A and B.
ARABIC = ((0x0600, 0x06FF), (0x0750, 0x077F), (0x0870, 0x08FF), (0xFB50, 0xFDFF), (0xFE70, 0xFEFF))
# Latin letters, accented ones included (Basic Latin to Latin Extended-B).
LATIN_END = 0x250
# Chinese punctuation and full-width forms, which sit between Han characters without spaces.
CJK_MARKS = ((0x3000, 0x303F), (0xFF00, 0xFFEF))

# Sentence-final punctuation in the three languages (Urdu: ۔ and ؟).
FULL_STOPS = frozenset(".!?。！？۔؟")
ELLIPSIS = "…"
CLAUSE_ENDS = frozenset(",;:，、；：،؛")

# A block of words repeated this many times in a row is a loop (a recogniser's or a
# translator's)...
LOOP_REPEATS = 3
# ...when the block holds at least this many letters ("no, no, no" is real speech).
LOOP_MIN_CHARS = 4
LOOP_MAX_WORDS = 40

# Whisper often writes Arabic yeh/kaf where Urdu uses its own letters.
_URDU_LETTERS = str.maketrans({"\u064a": "\u06cc", "\u0643": "\u06a9", "\u0649": "\u06cc"})
# Half-width punctuation after a CJK character becomes its full-width form.
_FULLWIDTH = {",": "，", "!": "！", "?": "？", ";": "；", ":": "：", ".": "。"}
_SPACE = re.compile(r"\s+")
# A mark repeated three times or more is a decoder's loop ("۔۔۔۔..." at the end of a long
# Urdu passage, ur_dev_long at beam 5), never text: it keeps one (an ellipsis keeps three).
_MARK_RUN = re.compile(r"([^\w\s])\1{2,}")


def char_class(ranges: tuple[tuple[int, int], ...]) -> str:
    """A regular expression character class body for ``ranges``."""
    return "".join(f"{chr(lo)}-{chr(hi)}" for lo, hi in ranges)


_CJK_HALF_PUNCT = re.compile(rf"(?<=[{char_class(HAN)}])([,!?;:.])(?![0-9])")


def in_ranges(ch: str, ranges: tuple[tuple[int, int], ...]) -> bool:
    code = ord(ch)
    return any(lo <= code <= hi for lo, hi in ranges)


def visible(text: str) -> str:
    """The text without invisible direction and format marks."""
    return "".join(ch for ch in text if ch not in INVISIBLE)


# Formatting that players apply and never show: the tags <i> <b> <u> <s> <font ...> and
# their ends; WebVTT's <c.class>, <v Speaker>, <lang ur>, <ruby>, <rt> and timestamps
# (<00:01.500>); ASS override blocks such as {\an8} (position) or {\i1}.
_MARKUP = re.compile(r"</?(?:[ibus]|font|c|v|lang|ruby|rt)(?:[.\s][^<>]*)?>|<(?:\d+:)?\d{2}:\d{2}\.\d{3}>"
                     r"|\{\\[^{}]*\}", re.IGNORECASE)


def shown(text: str) -> str:
    """The text a viewer sees: without formatting markup and invisible marks. What the
    subtitle rules measure."""
    return visible(_MARKUP.sub("", text))


def script_counts(text: str) -> dict[str, int]:
    """Letters of ``text`` per language its script points to: zh (Han), ur (Arabic), en (Latin)."""
    counts = {"zh": 0, "ur": 0, "en": 0}
    for ch in text:
        if in_ranges(ch, HAN):
            counts["zh"] += 1
        elif in_ranges(ch, ARABIC):
            counts["ur"] += 1
        elif ch.isalpha() and ord(ch) < LATIN_END:
            counts["en"] += 1
    return counts


def line_lang(line: str) -> str | None:
    """The language a line's script points to, or None (digits, punctuation)."""
    counts = script_counts(shown(line))
    best = max(counts, key=lambda code: counts[code])
    return best if counts[best] else None


def to_simplified(text: str) -> str:
    """Traditional Chinese to Simplified (OpenCC t2s); other text passes through."""
    return _converter().convert(text)


def mark_rtl(line: str, mode: str) -> str:
    """Wrap one Urdu line in direction marks: "rle" (RLE ... PDF), "rlm" (RLM both ends), "none"."""
    if mode not in RTL_MODES:
        raise ConfigError(f"unknown Urdu direction mark mode {mode!r} (expected one of {RTL_MODES})")
    bare = visible(line)  # idempotent: marking a marked line does not double the marks
    if mode == "rle":
        return f"{_RLE}{bare}{_PDF}"
    if mode == "rlm":
        return f"{_RLM}{bare}{_RLM}"
    return bare


def unmarked(line: str) -> str:
    """``line`` without the direction marks ``mark_rtl`` puts around it (and nothing else:
    an override or a joiner an editor must see stays)."""
    return line.strip(_RLE + _PDF + _RLM)


def foreign_letters(text: str) -> str:
    """The letters of ``text`` that are not Arabic script (e.g. Devanagari, Latin)."""
    return "".join(ch for ch in text if ch.isalpha() and not in_ranges(ch, ARABIC))


def normalize(text: str, lang: str) -> str:
    """Clean recognised text for display: NFC, single spaces, script fixes per language."""
    text = unicodedata.normalize("NFC", text)
    text = _SPACE.sub(" ", text)
    text = _MARK_RUN.sub(lambda m: "..." if m.group(1) == "." else m.group(1), text)
    if lang == "zh":
        text = _CJK_HALF_PUNCT.sub(lambda m: _FULLWIDTH[m.group(1)], to_simplified(text))
    elif lang == "ur":
        text = text.translate(_URDU_LETTERS)
    return text


def comparable(text: str) -> str:
    """A key for comparing texts: NFKC, Simplified, casefolded, letters and digits only."""
    text = to_simplified(unicodedata.normalize("NFKC", text)).casefold()
    return "".join(ch for ch in text if ch.isalnum())


def repeated(keys: Sequence[str]) -> set[int]:
    """Indices of the second and later copies of a block of ``keys`` (words, made
    comparable) repeated LOOP_REPEATS or more times in a row."""
    drop: set[int] = set()
    p = 0
    while p < len(keys):
        step = 1
        for width in range(1, min(LOOP_MAX_WORDS, (len(keys) - p) // LOOP_REPEATS) + 1):
            block = keys[p:p + width]
            if len("".join(block)) < LOOP_MIN_CHARS:
                continue
            copies = 1
            while keys[p + copies * width:p + (copies + 1) * width] == block:
                copies += 1
            if copies >= LOOP_REPEATS:
                drop.update(range(p + width, p + copies * width))
                step = copies * width
                break
        p += step
    return drop


def script_of(ch: str) -> str | None:
    """``zh`` (Han), ``ur`` (Arabic), ``en`` (Latin, full-width too), ``other`` for
    letters of other scripts; None for what is not a letter."""
    if not ch.isalpha():
        return None
    if in_ranges(ch, HAN):
        return "zh"
    if in_ranges(ch, ARABIC):
        return "ur"
    if ord(ch) < LATIN_END or 0xFF21 <= ord(ch) <= 0xFF5A:
        return "en"
    return "other"


def foreign(text: str, lang: str) -> list[str]:
    """The runs of letters in ``text`` that a ``lang`` track must not hold.

    Any letters but the language's own script; Latin words are allowed in Urdu and
    Mandarin when they are names or acronyms (a capital letter in the word: Lahore,
    CPEC, iPhone) — digits and punctuation are never foreign.
    """
    runs, current, kind = [], "", None
    for ch in text + " ":
        script = script_of(ch)
        if script is not None and script == kind:
            current += ch
            continue
        if kind is not None and kind != lang and not (kind == "en" and any(c.isupper() for c in current)):
            runs.append(current)
        current, kind = (ch, script) if script is not None else ("", None)
    return runs


@lru_cache(maxsize=1)
def _converter():  # type: ignore[no-untyped-def]
    from opencc import OpenCC

    return OpenCC("t2s")
