"""A sentence's translation spread over the cues it came from, in proportion to their
share of the source text, each part fitting its cue's lines where the text allows."""

from __future__ import annotations

import re
from typing import Callable, Sequence

from ..linebreak import CLOSING, units_of
from ..rules import Rules
from ..script import visible
from ..types import Cue

FILLER = "…"


def distribute(
    text: str, shares: Sequence[float], lang: str, measure: Callable[[str], float] | None = None,
    fits: Callable[[str], bool] | None = None,
) -> list[str]:
    """Split ``text`` into ``len(shares)`` non-empty parts sized like ``shares``.

    Cuts fall between words (en, ur) or between jieba words and then characters (zh);
    a part that gets no text at all holds ``FILLER``. With ``fits`` (does a part fit
    its cue's lines?), cuts move off the shares when that makes every part fit.
    """
    n = len(shares)
    if n == 0:
        return []
    units = pieces(text, lang)
    if lang == "zh" and len(units) < n:
        units = _chars(text)
    sizes = [(measure or _length)(u) for u in units]
    cuts = _cuts(sizes, shares)
    if fits is not None and not all(fits("".join(units[a:b])) for a, b in zip(cuts, cuts[1:])):
        cuts = _fitting_cuts(units, sizes, shares, fits) or cuts
    parts = ["".join(units[a:b]).strip() for a, b in zip(cuts, cuts[1:])]
    return [part if visible(part).strip() else FILLER for part in parts]


def budget(cues: Sequence[Cue], rules: Rules) -> float:
    """The characters ``cues`` can show in a language with ``rules``: each cue's reading
    speed over its duration, at most its lines' width."""
    return sum(min(rules.max_cps * (c.end - c.start), rules.max_lines * rules.max_chars_per_line) for c in cues)


def _fitting_cuts(units: Sequence[str], sizes: Sequence[float], shares: Sequence[float],
                  fits: Callable[[str], bool]) -> list[int] | None:
    """Cuts where every part fits and is not empty, closest to the shares; None if there are none."""
    n, m = len(shares), len(units)
    if m < n:
        return None
    weights = [max(0.0, float(s)) for s in shares]
    weights = weights if sum(weights) > 0 else [1.0] * n
    cum = [0.0]
    for size in sizes:
        cum.append(cum[-1] + size)
    goals = [sum(weights[:k]) / sum(weights) * cum[-1] for k in range(n + 1)]
    inf = float("inf")
    # best[k][c]: the least distance from the shares of k parts that end at unit c.
    best = [[inf] * (m + 1) for _ in range(n + 1)]
    back = [[0] * (m + 1) for _ in range(n + 1)]
    best[0][0] = 0.0
    for k in range(1, n + 1):
        for c in range(k, m - (n - k) + 1):
            for b in range(k - 1, c):
                if best[k - 1][b] < inf and fits("".join(units[b:c])):
                    cost = best[k - 1][b] + abs(cum[c] - goals[k])
                    if cost < best[k][c]:
                        best[k][c], back[k][c] = cost, b
    if best[n][m] == inf:
        return None
    cuts = [m]
    for k in range(n, 0, -1):
        cuts.append(back[k][cuts[-1]])
    return cuts[::-1]


def _length(unit: str) -> float:
    return len(visible(unit).strip())


def pieces(text: str, lang: str) -> list[str]:
    """Unbreakable pieces, each with the space that follows it (so joining restores text)."""
    text = re.sub(r"\s+", " ", text).strip()
    out: list[str] = []
    pos = 0
    for unit in units_of(text, lang):
        found = text.find(unit, pos)
        if found < 0:  # the breaker normalised something: fall back to spaces
            return re.findall(r"\S+\s*", text)
        if out:
            out[-1] += text[pos:found]
        out.append(unit)
        pos = found + len(unit)
    if out:
        out[-1] += text[pos:]
    return out


def _chars(text: str) -> list[str]:
    """Characters, with punctuation kept on the character before it."""
    out: list[str] = []
    for ch in re.sub(r"\s+", " ", text).strip():
        if out and (ch in CLOSING or ch == " "):
            out[-1] += ch
        else:
            out.append(ch)
    return out


def _cuts(sizes: Sequence[float], shares: Sequence[float]) -> list[int]:
    """``len(shares) + 1`` cut points over ``sizes``: every part gets a unit while units last."""
    n, m = len(shares), len(sizes)
    weights = [max(0.0, float(s)) for s in shares]
    if sum(weights) <= 0:
        weights = [1.0] * n
    total_w, total = sum(weights), sum(sizes)
    cum = [0.0]
    for size in sizes:
        cum.append(cum[-1] + size)
    cuts, goal = [0], 0.0
    for k in range(1, n):
        goal += weights[k - 1] / total_w * total
        low = min(cuts[-1] + 1, m)
        high = max(low, m - (n - k)) if m >= n else low
        best = min(range(low, high + 1), key=lambda c: (abs(cum[c] - goal), c))
        cuts.append(best)
    cuts.append(m)
    return cuts
