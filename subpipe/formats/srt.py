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

from ..errors import InputError
from ..script import mark_rtl, visible
from ..textfile import NotRegularFile, read_small
from ..types import Cue, Track

# A feature film's track is well under a megabyte; a file past this is no track.
MAX_SRT_BYTES = 64 << 20


def compose(track: Track) -> str:
    """The track as SRT text (UTF-8, ``\\n`` line ends); raises ValueError on a bad cue."""
    subtitles = []
    previous_start = -1.0
    for number, cue in enumerate(track.cues, start=1):
        if not cue.text.strip():
            raise ValueError(f"cue {number} of the {track.lang} track is empty")
        if not cue.start < cue.end:
            how = "lasts no time" if cue.start == cue.end else "ends before it starts"
            raise ValueError(f"cue {number} of the {track.lang} track ({_shown(cue)}) {how}")
        if cue.start < previous_start:
            raise ValueError(f"cue {number} of the {track.lang} track ({_shown(cue)}) starts before the one above it")
        previous_start = cue.start
        subtitles.append(srt.Subtitle(number, _td(cue.start), _td(cue.end), cue.text))
    return srt.compose(subtitles, reindex=False, start_index=1, strict=True)


def laid_out(track: Track, rtl_marks: str) -> Track:
    """``track`` as it is written: each line of an Urdu track wrapped in direction marks
    (``[output] urdu_direction_marks``), so players place its punctuation right."""
    if track.lang != "ur":
        return track
    return Track(track.lang, tuple(Cue(c.start, c.end, tuple(mark_rtl(line, rtl_marks) for line in c.lines))
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


def _shown(cue: Cue) -> str:
    return f"{srt.timedelta_to_srt_timestamp(_td(cue.start))} --> {srt.timedelta_to_srt_timestamp(_td(cue.end))}"


def _td(seconds: float) -> timedelta:
    # Round to whole milliseconds so the same floats always print the same timestamps.
    return timedelta(milliseconds=round(seconds * 1000))
