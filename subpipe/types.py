"""Plain values that flow between the stages. Times are seconds (floats)."""

from __future__ import annotations

from dataclasses import dataclass, field

LANGUAGES = ("ur", "zh", "en")


@dataclass(frozen=True)
class Word:
    """One recognised word (or, for Chinese, a run of characters) with its timing."""

    start: float
    end: float
    text: str
    probability: float = 1.0


@dataclass(frozen=True)
class Transcript:
    """Everything the recogniser said about one audio stream: its words, in film time."""

    lang: str
    words: tuple[Word, ...]
    duration: float


@dataclass(frozen=True)
class Cue:
    """One subtitle on screen: at most a few lines, shown from start to end."""

    start: float
    end: float
    lines: tuple[str, ...]

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


@dataclass(frozen=True)
class Entry:
    """A cue as a file has it: its number and first line there (None when it gives
    none, or for a cue in memory), and times that may be unusable (None)."""

    number: int | None
    start: float | None
    end: float | None
    lines: tuple[str, ...]
    line: int | None = None

    @property
    def timed(self) -> bool:
        return self.start is not None and self.end is not None

    def to_cue(self) -> Cue:
        """The cue as a plain ``Cue`` (only for timed entries)."""
        assert self.start is not None and self.end is not None
        return Cue(self.start, self.end, self.lines)


@dataclass(frozen=True)
class Track:
    """A subtitle track in one language (or a bilingual pair such as ``ur-zh``)."""

    lang: str
    cues: tuple[Cue, ...] = field(default_factory=tuple)
