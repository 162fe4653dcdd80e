"""Bilingual tracks for review and social clips: source lines above target lines, same times."""

from __future__ import annotations

from typing import Mapping, Sequence

from .errors import PipelineFailed
from .script import line_lang
from .types import Cue, Track

MAX_SOURCE_LINES = 2


def parse_pair(text: str) -> tuple[str, str]:
    """``"ur-zh"`` -> ``("ur", "zh")``."""
    src, sep, tgt = text.strip().partition("-")
    if not sep or not src or not tgt or src == tgt:
        raise ValueError(f"a bilingual pair reads SRC-TGT, like ur-zh: got {text!r}")
    return src, tgt


def default_pairs(source: str, targets: Sequence[str]) -> tuple[str, ...]:
    """Every source -> target pair, e.g. ``("ur-zh", "ur-en")`` (``[bilingual] pairs`` may narrow it)."""
    return tuple(f"{source}-{tgt}" for tgt in dict.fromkeys(targets) if tgt != source)


def bilingual_track(src: Track, tgt: Track) -> Track:
    """Each cue holds ``src``'s lines (at most two) above ``tgt``'s; language ``"src-tgt"``."""
    if len(src.cues) != len(tgt.cues):
        raise PipelineFailed(f"{src.lang} has {len(src.cues)} cues but {tgt.lang} has {len(tgt.cues)}")
    cues = []
    for index, (a, b) in enumerate(zip(src.cues, tgt.cues)):
        if (a.start, a.end) != (b.start, b.end):
            raise PipelineFailed(f"cue {index + 1}: {src.lang} and {tgt.lang} times differ")
        cues.append(Cue(a.start, a.end, _fold(a.lines, src.lang) + tuple(b.lines)))
    return Track(f"{src.lang}-{tgt.lang}", tuple(cues))


def bilingual_tracks(tracks: Mapping[str, Track], pairs: Sequence[str]) -> dict[str, Track]:
    """The bilingual track of each pair whose two languages are both in ``tracks``."""
    out: dict[str, Track] = {}
    for pair in pairs:
        src, tgt = parse_pair(pair)
        if src in tracks and tgt in tracks:
            out[pair] = bilingual_track(tracks[src], tracks[tgt])
    return out


def split_pair(lines: Sequence[str], pair: Sequence[str]) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """A bilingual cue's lines as ``((source, lines), (target, lines))``, as
    ``bilingual_track`` laid them: at most two source lines, the first line after them in
    another script than the source's begins the target (a file's formats style each)."""
    src, tgt = pair
    lines = tuple(lines)
    last = max(1, min(MAX_SOURCE_LINES, len(lines) - 1))
    cut = next((k for k in range(1, last + 1) if line_lang(lines[k]) != src), last) if len(lines) > 1 else 1
    return (src, lines[:cut]), (tgt, lines[cut:])


def _fold(lines: Sequence[str], lang: str) -> tuple[str, ...]:
    # A source cue should already hold two lines at most; fold any extra into the last
    # rather than drop words.
    lines = tuple(line for line in lines if line.strip())
    if len(lines) <= MAX_SOURCE_LINES:
        return lines
    sep = "" if lang == "zh" else " "
    return lines[: MAX_SOURCE_LINES - 1] + (sep.join(lines[MAX_SOURCE_LINES - 1:]),)
