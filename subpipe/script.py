"""Text normalisation per language: Simplified Chinese, Urdu letters and direction marks."""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

from subpipe.errors import ConfigError
from subpipe.rules import visible

RTL_MODES = ("rle", "rlm", "none")
_RLE, _PDF, _RLM = "\u202b", "\u202c", "\u200f"

# Arabic-script blocks (Arabic, Supplement, Extended-A/B, Presentation Forms A/B).
_ARABIC_RANGES = ((0x0600, 0x06FF), (0x0750, 0x077F), (0x0870, 0x08FF),
                  (0xFB50, 0xFDFF), (0xFE70, 0xFEFF))
# Whisper often writes Arabic yeh/kaf where Urdu uses its own letters.
_URDU_LETTERS = str.maketrans({"\u064a": "\u06cc", "\u0643": "\u06a9", "\u0649": "\u06cc"})
# Half-width punctuation after a CJK character becomes its full-width form.
_FULLWIDTH = {",": "，", "!": "！", "?": "？", ";": "；", ":": "：", ".": "。"}
_CJK_HALF_PUNCT = re.compile(r"(?<=[\u3400-\u9fff\uf900-\ufaff])([,!?;:.])(?![0-9])")
_SPACE = re.compile(r"\s+")


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


def is_arabic_script(text: str) -> bool:
    """True when every letter in ``text`` is Arabic script (digits and punctuation ignored)."""
    return not foreign_letters(text)


def foreign_letters(text: str) -> str:
    """The letters of ``text`` that are not Arabic script (e.g. Devanagari, Latin)."""
    return "".join(ch for ch in text if ch.isalpha() and not _is_arabic(ch))


def normalize(text: str, lang: str) -> str:
    """Clean recognised text for display: NFC, single spaces, script fixes per language."""
    text = unicodedata.normalize("NFC", text)
    text = _SPACE.sub(" ", text)
    if lang == "zh":
        text = _CJK_HALF_PUNCT.sub(lambda m: _FULLWIDTH[m.group(1)], to_simplified(text))
    elif lang == "ur":
        text = text.translate(_URDU_LETTERS)
    return text


def comparable(text: str) -> str:
    """A key for comparing texts: NFKC, Simplified, casefolded, letters and digits only."""
    text = to_simplified(unicodedata.normalize("NFKC", text)).casefold()
    return "".join(ch for ch in text if ch.isalnum())


def _is_arabic(ch: str) -> bool:
    code = ord(ch)
    return any(lo <= code <= hi for lo, hi in _ARABIC_RANGES)


@lru_cache(maxsize=1)
def _converter():  # type: ignore[no-untyped-def]
    from opencc import OpenCC

    return OpenCC("t2s")
