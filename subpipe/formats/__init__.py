"""Subtitle file formats, one module each behind one interface, and the names of an
input's outputs (``names``).

A format composes a track as the text of a file and reads such a file back as a
track; ``FORMATS`` registers each by its name. A new format is a module and one line
here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..types import Track
from . import srt


@dataclass(frozen=True)
class Format:
    """``compose``: a track as the file's text (raises ValueError on a cue the format
    can't hold); ``read``: a file as a track in ``lang``, direction marks taken off."""

    name: str
    extension: str
    compose: Callable[[Track], str]
    read: Callable[[Path, str], Track]


FORMATS: dict[str, Format] = {
    "srt": Format("srt", "srt", srt.compose, srt.read_track),
}
# What a run writes each track as.
WRITTEN: tuple[Format, ...] = (FORMATS["srt"],)
