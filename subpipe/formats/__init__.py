"""Subtitle file formats, one module each behind one interface, and the names of an
input's outputs (``names``).

A format composes a track as the text of a file, for the picture and house style of a
``Delivery``; reads such a file back as a track; and reads it strictly for ``check``
(every cue and every defect). ``FORMATS`` registers each by its name. A new format is
a module and one line here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

from ..types import Track
from . import ass, srt, srt_strict, ttml, vtt
from .base import Delivery, Parsed, Unreadable


@dataclass(frozen=True)
class Format:
    """``compose``: a track as the file's text (raises ValueError on a cue the format
    can't hold); ``read``: a file as a track in ``lang``, markup and direction marks
    taken off; ``inspect``: a file's bytes as ``check`` reads them (raises
    ``Unreadable``); ``looks_like``: whether bytes are this format (None: any text,
    the format a file is taken for when no other claims it)."""

    name: str
    extension: str
    compose: Callable[[Track, Delivery], str]
    read: Callable[[Path, str], Track]
    inspect: Callable[[bytes], Parsed]
    looks_like: Callable[[bytes], bool] | None = None


FORMATS: dict[str, Format] = {
    "srt": Format("srt", "srt", srt.compose, srt.read_track, srt_strict.read_bytes),
    "vtt": Format("vtt", "vtt", vtt.compose, vtt.read_track, vtt.read_bytes, vtt.looks_like),
    "ass": Format("ass", "ass", ass.compose, ass.read_track, ass.read_bytes, ass.looks_like),
    "ttml": Format("ttml", "ttml", ttml.compose_imsc, ttml.read_track, ttml.read_bytes, ttml.looks_like),
    "ebu-tt-d": Format("ebu-tt-d", "ebu-tt-d.ttml", ttml.compose_ebu_tt_d, ttml.read_track, ttml.read_bytes,
                       ttml.looks_like),
}
# What a run writes each track as unless asked otherwise (``[output] formats``, --format).
DEFAULT_FORMATS = ("srt",)


def chosen(names: Iterable[str]) -> tuple[Format, ...]:
    """The formats of ``names`` (known ones: config and the CLI check them)."""
    return tuple(FORMATS[name] for name in names)


def format_of(data: bytes) -> Format:
    """The format a file's bytes are in: the first that claims them, else SRT."""
    return next((f for f in FORMATS.values() if f.looks_like is not None and f.looks_like(data)), FORMATS["srt"])


__all__ = ["DEFAULT_FORMATS", "FORMATS", "Delivery", "Format", "Parsed", "Unreadable", "chosen", "format_of"]
