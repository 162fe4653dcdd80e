"""SRT through the ``srt`` library: a track composed as text, and read back leniently
(as players read them; ``srt_strict`` is the checker's reader).

``srt.compose`` silently drops empty cues and re-sorts by default, which would put a
translated track out of step with its source, so tracks are validated first.

In memory a track's text is plain; Urdu lines carry direction marks only in files:
``laid_out`` adds them for writing and ``read_track`` takes them off.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import srt

from ..bilingual import split_pair
from ..errors import InputError
from ..script import mark_rtl, visible
from ..textfile import NotRegularFile, read_small
from ..types import Cue, Track
from .base import Delivery, languages, millis, require_valid

# A feature film's track is well under a megabyte; a file past this is no track.
MAX_SRT_BYTES = 64 << 20


def compose(track: Track, delivery: Delivery | None = None) -> str:
    """The track as SRT text (UTF-8, ``\\n`` line ends); raises ValueError on a bad cue.
    SRT holds neither the picture nor a style: ``delivery`` changes nothing."""
    require_valid(track)
    subtitles = [srt.Subtitle(number, _td(cue.start), _td(cue.end), cue.text)
                 for number, cue in enumerate(track.cues, start=1)]
    return srt.compose(subtitles, reindex=False, start_index=1, strict=True)


def laid_out(track: Track, rtl_marks: str) -> Track:
    """``track`` as it is written: each Urdu line wrapped in direction marks (``[output]
    urdu_direction_marks``), so players place its punctuation right; in a bilingual track
    (``ur-zh``), the Urdu lines of each cue."""
    langs = languages(track.lang)
    if "ur" not in langs:
        return track
    if len(langs) == 1:
        return Track(track.lang, tuple(Cue(c.start, c.end, tuple(mark_rtl(line, rtl_marks) for line in c.lines))
                                       for c in track.cues))
    return Track(track.lang, tuple(
        Cue(c.start, c.end, tuple(mark_rtl(line, rtl_marks) if lang == "ur" else line
                                  for lang, lines in split_pair(c.lines, langs) for line in lines))
        for c in track.cues))


def read_track(path: Path, lang: str, *, as_written: bool = False) -> Track:
    """A track from an SRT file (leniently, as players read them), direction marks taken
    off unless ``as_written``."""
    try:
        text = read_small(path, MAX_SRT_BYTES).decode("utf-8-sig")
    except FileNotFoundError:
        raise InputError(f"{path} does not exist") from None
    except IsADirectoryError:
        raise InputError(f"{path} is a directory, not an SRT file") from None
    except NotRegularFile as exc:  # a named pipe would hang the read, /dev/zero never end it
        raise InputError(f"{path} is {exc.strerror}, not an SRT file") from None
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise InputError(f"{path} is not UTF-8 text: save it as UTF-8 and try again") from None
    try:
        subs = list(srt.parse(text))
    except srt.SRTParseError as exc:
        raise InputError(f"{path} is not a valid SRT file: {exc}; run 'subpipe check' on it") from None
    plain = (lambda line: line) if as_written else visible
    cues = tuple(
        Cue(s.start.total_seconds(), s.end.total_seconds(), tuple(plain(line) for line in s.content.split("\n")))
        for s in subs
    )
    return Track(lang=lang, cues=cues)



def _td(seconds: float) -> timedelta:
    return timedelta(milliseconds=millis(seconds))
