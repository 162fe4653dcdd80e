"""Subtitle timing and layout rules (see shared RULES.md) and how text is measured."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

# Direction marks and other invisible format characters never count as characters.
_INVISIBLE = {"\u200e", "\u200f", "\u202a", "\u202b", "\u202c", "\u202d", "\u202e",
              "\u2066", "\u2067", "\u2068", "\u2069", "\u200b", "\u200c", "\u200d", "\ufeff"}


@dataclass(frozen=True)
class Rules:
    """Limits for one language. Every number is configurable per project (configs/)."""

    max_chars_per_line: float
    max_lines: int = 2
    max_cps: float = 20.0
    min_duration: float = 5 / 6
    max_duration: float = 7.0
    min_gap_frames: int = 2
    fps: float = 25.0
    # Half-width characters count 0.5 in Chinese (full-width layout); 1 elsewhere.
    halfwidth_counts_half: bool = False

    @property
    def min_gap(self) -> float:
        return self.min_gap_frames / self.fps

    def with_fps(self, fps: float) -> "Rules":
        from dataclasses import replace

        return replace(self, fps=fps)


def visible(text: str) -> str:
    """The text without invisible direction and format marks."""
    return "".join(ch for ch in text if ch not in _INVISIBLE)


def char_width(ch: str, halfwidth_counts_half: bool) -> float:
    if not halfwidth_counts_half:
        return 1.0
    return 1.0 if unicodedata.east_asian_width(ch) in ("W", "F") else 0.5


def line_length(line: str, rules: Rules) -> float:
    """Characters on one line as the rules count them."""
    return sum(char_width(ch, rules.halfwidth_counts_half) for ch in visible(line))


def reading_chars(text: str, rules: Rules) -> float:
    """Characters that count for reading speed: all lines, without line breaks."""
    return sum(line_length(line, rules) for line in text.split("\n"))
