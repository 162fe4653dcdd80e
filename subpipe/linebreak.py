"""Break one cue's text into balanced lines that fit the rules (shared RULES.md).

Chinese breaks at punctuation or between jieba words, never inside a word; Urdu and
English break at spaces. No line after the first starts with closing punctuation.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from functools import lru_cache

from subpipe.rules import Rules, line_length

# A line never starts with these (kinsoku for Chinese; the same idea for Latin/Urdu).
CLOSING = frozenset("，。！？、；：」』）》〉】〕〗〙〛’”…,.!?;:)]}%›»۔،؟؛")
# ...and never ends with these.
OPENING = frozenset("「『（《〈【〔〖〘〚‘“([{‹«¿¡")
# A break right after these reads naturally.
BREAK_AFTER = frozenset("，。！？、；：,.!?;:…۔،؟؛")

# English function words that read badly at the end of a line.
_WEAK_ENDINGS = frozenset(
    "a an the of to in on at for with by from and or but that this my your his her our their".split()
)
_SPACE = re.compile(r"\s+")


@dataclass(frozen=True)
class _Unit:
    """An unbreakable piece of text and what joins it to the piece before it."""

    text: str
    sep: str  # "" or " "; dropped when a line breaks before this unit


def break_lines(text: str, lang: str, rules: Rules) -> list[str]:
    """Split ``text`` into as few balanced lines as fit ``rules.max_chars_per_line``.

    Returns as many lines as needed (possibly more than ``rules.max_lines``); a single
    unbreakable word longer than a line gets a line of its own.
    """
    return list(_break_cached(text, lang, rules))


@lru_cache(maxsize=8192)
def _break_cached(text: str, lang: str, rules: Rules) -> tuple[str, ...]:
    units = _units(text, lang)
    if not units:
        return ()
    widths = [line_length(u.text, rules) for u in units]
    seps = [line_length(u.sep, rules) for u in units]
    count = _min_lines(widths, seps, rules.max_chars_per_line)
    cuts = _balanced_cuts(units, widths, seps, count, lang, rules.max_chars_per_line)
    return tuple(_join(units[a:b]) for a, b in zip(cuts, cuts[1:]))


@dataclass(frozen=True)
class Measure:
    """What planning needs to know about a text without laying it out."""

    lines: int  # the fewest lines it takes
    chars: float  # characters on screen, counting every space (at most lines - 1 too many)
    overlong: bool  # some unbreakable piece is longer than a line


@lru_cache(maxsize=65536)
def measure(text: str, lang: str, rules: Rules) -> Measure:
    """How many lines ``text`` needs and how many characters it shows (cheap, cached)."""
    units = _units(text, lang)
    if not units:
        return Measure(0, 0.0, False)
    widths = [line_length(u.text, rules) for u in units]
    seps = [line_length(u.sep, rules) for u in units]
    limit = rules.max_chars_per_line
    return Measure(_min_lines(widths, seps, limit), sum(widths) + sum(seps[1:]),
                   any(w > limit for w in widths))


def units_of(text: str, lang: str) -> list[str]:
    """The unbreakable pieces of ``text``, each with the space that precedes it (if any).

    ``"".join(units_of(t, lang))`` is ``t`` with its whitespace collapsed and stripped.
    """
    return [u.sep + u.text for u in _units(text, lang)]


def _units(text: str, lang: str) -> list[_Unit]:
    text = _SPACE.sub(" ", text).strip()
    if not text:
        return []
    pieces = _cjk_pieces(text) if lang == "zh" else _space_pieces(text)
    return _glue(pieces)


def _space_pieces(text: str) -> list[tuple[str, str]]:
    return [(word, " " if i else "") for i, word in enumerate(text.split(" "))]


def _cjk_pieces(text: str) -> list[tuple[str, str]]:
    pieces: list[tuple[str, str]] = []
    sep = ""
    for token in _tokenizer().lcut(text):
        if token.isspace():
            sep = " "  # a space between tokens is a break opportunity, dropped at a break
            continue
        pieces.append((token, sep if pieces else ""))
        sep = ""
    return pieces


def _glue(pieces: list[tuple[str, str]]) -> list[_Unit]:
    """Attach closing punctuation to what precedes it and opening to what follows."""
    units: list[_Unit] = []
    pending_open = ""
    pending_sep = ""
    for token, sep in pieces:
        if units and not pending_open and token[0] in CLOSING:
            last = units[-1]
            units[-1] = _Unit(last.text + sep + token, last.sep)
            continue
        if all(ch in OPENING for ch in token):
            if not pending_open:
                pending_sep = sep
            pending_open += (sep if pending_open else "") + token
            continue
        if pending_open:
            units.append(_Unit(pending_open + sep + token, pending_sep))
            pending_open = ""
        else:
            units.append(_Unit(token, sep if units else ""))
    if pending_open:
        if units:
            last = units[-1]
            units[-1] = _Unit(last.text + pending_sep + pending_open, last.sep)
        else:
            units.append(_Unit(pending_open, ""))
    return units


def _min_lines(widths: list[float], seps: list[float], limit: float) -> int:
    """Greedy first fit: the fewest lines the units can take (an overlong unit alone)."""
    count, current = 1, widths[0]
    for width, sep in zip(widths[1:], seps[1:]):
        if current + sep + width <= limit:
            current += sep + width
        else:
            count, current = count + 1, width
    return count


def _balanced_cuts(
    units: list[_Unit],
    widths: list[float],
    seps: list[float],
    count: int,
    lang: str,
    limit: float,
) -> list[int]:
    """Cut points (0 = c0 < ... < ck = n) minimising imbalance and bad breaks."""
    n = len(units)
    if count == 1:
        return [0, n]
    target = (sum(widths) + sum(seps[1:])) / count
    inf = float("inf")
    # best[k][j]: cost of putting units[:j] on k lines; back[k][j]: where the k-th line starts.
    best = [[inf] * (n + 1) for _ in range(count + 1)]
    back = [[0] * (n + 1) for _ in range(count + 1)]
    best[0][0] = 0.0
    for k in range(1, count + 1):
        for j in range(k, n + 1):
            for i in range(k - 1, j):
                if best[k - 1][i] == inf:
                    continue
                cost = _line_cost(units, widths, seps, i, j, n, count, target, lang, limit)
                if cost is None:
                    continue
                total = best[k - 1][i] + cost
                if total < best[k][j]:
                    best[k][j], back[k][j] = total, i
    cuts = [n]
    for k in range(count, 0, -1):
        cuts.append(back[k][cuts[-1]])
    return cuts[::-1]


def _line_cost(
    units: list[_Unit],
    widths: list[float],
    seps: list[float],
    i: int,
    j: int,
    n: int,
    count: int,
    target: float,
    lang: str,
    limit: float,
) -> float | None:
    width = sum(widths[i:j]) + sum(seps[i + 1 : j])
    if width > limit and j - i > 1:
        return None
    cost = (width - target) ** 2
    # A lone short word on a line looks orphaned; avoid it when other cuts exist.
    if j - i == 1 and n > count:
        cost += (0.35 * limit) ** 2
    if j < n:
        cost += _break_penalty(units[j - 1].text, lang, limit)
    # Prefer the bottom-heavy shape when all else is equal.
    if i == 0:
        cost += 0.01 * width
    return cost


def _break_penalty(last: str, lang: str, limit: float) -> float:
    """Cost of ending a (non-final) line with ``last``: punctuation is the best place."""
    if last[-1] in BREAK_AFTER:
        return 0.0
    if lang == "en" and last.lower() in _WEAK_ENDINGS:
        return (0.35 * limit) ** 2
    return (0.4 * limit) ** 2 if lang == "zh" else (0.25 * limit) ** 2


def _join(units: list[_Unit]) -> str:
    if not units:
        return ""
    return units[0].text + "".join(u.sep + u.text for u in units[1:])


def warm_up(lang: str) -> None:
    """Load what breaking ``lang`` lines needs ahead of time (jieba's dictionary, 0.4 s)."""
    if lang == "zh":
        _tokenizer()


@lru_cache(maxsize=1)
def _tokenizer():  # type: ignore[no-untyped-def]
    """A private jieba tokenizer: quiet, and untouched by words others add globally."""
    import jieba

    jieba.setLogLevel(logging.WARNING)
    tokenizer = jieba.Tokenizer()
    tokenizer.initialize()
    return tokenizer
