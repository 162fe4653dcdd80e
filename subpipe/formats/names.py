"""Every name subpipe gives one input's outputs, derived here and nowhere else.

For an input ``film.mp4`` in a folder: the tracks ``film.<code>.<ext>`` (``code`` a
language, ``ur``, or a bilingual pair, ``ur-zh``; ``ext`` a format's extension,
``srt``, ``vtt``, ``ebu-tt-d.ttml``), the record ``film.subpipe.json``,
its lock ``.film.subpipe.lock``, the review page ``film.review.html`` and its proxy
``film.proxy.mp4``.
"""

from __future__ import annotations

import re

from ..types import LANGUAGES
from . import FORMATS

MANIFEST_SUFFIX = ".subpipe.json"
# A batch's report, in --out (or the folder it runs in).
REPORT_NAME = "subpipe-batch.json"
REVIEW_SUFFIX = ".review.html"
PROXY_SUFFIX = ".proxy.mp4"
# A film with its subtitles burned in (``subpipe burn``): film.ur.burned.mp4, film.ur.burned-9x16.mp4.
_BURNED = r"(?:[a-z]{2}(?:-[a-z]{2})?)\.burned(?:-[0-9]+x[0-9]+)?\.mp4"
# Longest first, so that ``ebu-tt-d.ttml`` is found before ``ttml``.
TRACK_EXTENSIONS = tuple(sorted({f.extension for f in FORMATS.values()}, key=len, reverse=True))


def track_name(stem: str, code: str, extension: str = "srt") -> str:
    return f"{stem}.{code}.{extension}"


def burned_name(stem: str, code: str, aspect: tuple[int, int] | None = None) -> str:
    """``film.ur.burned.mp4``; ``film.ur.burned-9x16.mp4`` for a picture of another shape."""
    shape = f"-{aspect[0]}x{aspect[1]}" if aspect else ""
    return f"{stem}.{code}.burned{shape}.mp4"


def burned_stem(name: str) -> str | None:
    """``film`` from ``film.ur.burned.mp4``; None for a name no burned-in film has."""
    match = re.fullmatch(rf"(.+)\.{_BURNED}", name)
    return match.group(1) if match else None


def manifest_name(stem: str) -> str:
    return f"{stem}{MANIFEST_SUFFIX}"


def lock_name(stem: str) -> str:
    return f".{stem}.subpipe.lock"


def review_name(stem: str) -> str:
    return f"{stem}{REVIEW_SUFFIX}"


def proxy_name(stem: str) -> str:
    return f"{stem}{PROXY_SUFFIX}"


def stem_of_manifest(name: str) -> str | None:
    """``film`` from ``film.subpipe.json``; None for any other name."""
    return name.removesuffix(MANIFEST_SUFFIX) if name.endswith(MANIFEST_SUFFIX) else None


def split_track(name: str) -> tuple[str, str, str] | None:
    """``("film", "ur-zh", "vtt")`` from ``film.ur-zh.vtt``; None for a name no track has."""
    extension = next((e for e in TRACK_EXTENSIONS if name.lower().endswith(f".{e}")), None)
    if extension is None:
        return None
    stem, _, code = name[:-len(extension) - 1].rpartition(".")
    langs = code.split("-")
    if not stem or len(langs) > 2 or len(set(langs)) != len(langs) or any(x not in LANGUAGES for x in langs):
        return None
    return stem, code, extension


def track_code(name: str) -> str | None:
    """``ur`` from ``film.ur.srt``, ``ur-zh`` from ``film.ur-zh.vtt``; None otherwise."""
    split = split_track(name)
    return split[1] if split else None


def is_track(name: str, stem: str) -> bool:
    """Whether ``name`` is one of the tracks of ``stem`` (``film.ur.srt``, ``film.ur-zh.srt``)."""
    code = track_code(name)
    return code is not None and name in (track_name(stem, code, ext) for ext in TRACK_EXTENSIONS)


def is_committed(name: str, stem: str) -> bool:
    """Whether ``name`` is an output of ``stem`` that is committed by renaming a temporary
    file over it: a track, or a burned-in film."""
    return is_track(name, stem) or burned_stem(name) == stem


def is_output(name: str, stem: str) -> bool:
    """Whether ``name`` is one the outputs of ``stem`` may have (a track, the record,
    the review page or its proxy, a burned-in film)."""
    extensions = "|".join(map(re.escape, TRACK_EXTENSIONS))
    own = (rf"{re.escape(stem)}\.(?:[a-z]{{2}}(?:-[a-z]{{2}})?\.(?:{extensions})"
           rf"|{re.escape(MANIFEST_SUFFIX[1:])}|{re.escape(REVIEW_SUFFIX[1:])}|{re.escape(PROXY_SUFFIX[1:])})")
    return re.fullmatch(own, name) is not None or burned_stem(name) == stem
