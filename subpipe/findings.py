"""One finding: something in a track, a film or a file that an editor (or a tool) should know.

Every stage says what it found with this one type: speech accounting (speech no word
covers), the audio (stretches that could not be decoded), cue shaping (a rule a cue
can't meet, times moved off the speech, the wrong script, text left out on purpose),
translation (a cue with no words of its own, a translation cleaned of a loop, a
glossary term lost) and ``check`` (rule breaks, a file's defects). The review page,
the manifest and batch's report read the same values.

``kind`` names what it is: a rule of ``rules.RULE_NAMES`` or a file defect for what
``check`` reports, else one of the kinds below. ``message`` is one line for people,
without the where, which the other fields hold: the track's language code, the cue's
number (1-based, as a file numbers it), the file line, the stretch of film time.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Sequence

ERROR = "error"
WARNING = "warning"
INFO = "info"

# Kinds that are not rule names.
UNTRANSCRIBED = "untranscribed_speech"  # also a rule of ``check --video``
DAMAGED_AUDIO = "damaged_audio"
SYNC = "sync"  # a cue's times moved off the speech it shows
SCRIPT = "script"  # text in another script than the track's
FILLER_CUE = "filler"  # a translated cue with no words of its own
CLEANED = "cleaned"  # a translation with another script or a loop cut out
UNFAITHFUL = "unfaithful"  # a translation that dropped or invented text, kept for an editor
GLOSSARY = "glossary_term"  # a glossary term that did not come through

# How a run counts what it found, in this order: its summary line, the manifest's
# ``findings.counts`` and batch's report. Every kind not named here is a rule break.
CATEGORIES = ("rule", "untranscribed", "media", "timing", "script", "translation")
_CATEGORY_OF = {UNTRANSCRIBED: "untranscribed", DAMAGED_AUDIO: "media", SYNC: "timing", "past_audio_end": "timing",
                SCRIPT: "script", FILLER_CUE: "translation", CLEANED: "translation", GLOSSARY: "translation",
                UNFAITHFUL: "translation"}


@dataclass(frozen=True)
class Finding:
    kind: str
    message: str
    severity: str = ERROR
    track: str | None = None
    cue: int | None = None
    line: int | None = None
    start: float | None = None
    end: float | None = None
    measured: float | None = None
    limit: float | None = None

    @property
    def seconds(self) -> float:
        return (self.end - self.start) if self.start is not None and self.end is not None else 0.0

    def described(self) -> str:
        """One line for a log: the track and cue it is about, then the message."""
        where = [self.track] if self.track else []
        if self.cue is not None:
            where.append(f"cue {self.cue}")
        return ": ".join([*where, self.message])


def category(finding: Finding) -> str:
    """The run's word for ``finding`` (``CATEGORIES``)."""
    return _CATEGORY_OF.get(finding.kind, "rule")


def record(findings: Sequence[Finding]) -> dict:
    """What the manifest (and batch's report) keeps of a run's findings: counts by
    category, and the stretches of speech with no subtitle and of damaged audio."""
    counted = Counter(category(f) for f in findings)
    return {
        "counts": {name: counted[name] for name in CATEGORIES if counted[name]},
        "untranscribed": [[f.start, f.end] for f in findings if f.kind == UNTRANSCRIBED],
        "damaged_audio": [[f.start, f.end] for f in findings if f.kind == DAMAGED_AUDIO],
    }
