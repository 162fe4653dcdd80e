"""Every name subpipe gives one input's outputs, derived here and nowhere else.

For an input ``film.mp4`` in a folder: the tracks ``film.<code>.<ext>`` (``code`` a
language, ``ur``, or a bilingual pair, ``ur-zh``), the record ``film.subpipe.json``,
its lock ``.film.subpipe.lock``, the review page ``film.review.html`` and its proxy
``film.proxy.mp4``.
"""

from __future__ import annotations

import re

from ..types import LANGUAGES

MANIFEST_SUFFIX = ".subpipe.json"
# A batch's report, in --out (or the folder it runs in).
REPORT_NAME = "subpipe-batch.json"
REVIEW_SUFFIX = ".review.html"
PROXY_SUFFIX = ".proxy.mp4"
TRACK_EXTENSIONS = ("srt",)


def track_name(stem: str, code: str, extension: str = "srt") -> str:
    return f"{stem}.{code}.{extension}"


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


def track_code(name: str) -> str | None:
    """``ur`` from ``film.ur.srt``, ``ur-zh`` from ``film.ur-zh.srt``; None otherwise."""
    parts = name.split(".")
    if len(parts) < 3 or parts[-1].lower() not in TRACK_EXTENSIONS:
        return None
    code = parts[-2]
    langs = code.split("-")
    if len(langs) > 2 or len(set(langs)) != len(langs) or any(x not in LANGUAGES for x in langs):
        return None
    return code


def is_track(name: str, stem: str) -> bool:
    """Whether ``name`` is one of the tracks of ``stem`` (``film.ur.srt``, ``film.ur-zh.srt``)."""
    code = track_code(name)
    return code is not None and name in (track_name(stem, code, ext) for ext in TRACK_EXTENSIONS)


def is_output(name: str, stem: str) -> bool:
    """Whether ``name`` is one the outputs of ``stem`` may have (a track, the record,
    the review page or its proxy)."""
    extensions = "|".join(map(re.escape, TRACK_EXTENSIONS))
    own = (rf"{re.escape(stem)}\.(?:[a-z]{{2}}(?:-[a-z]{{2}})?\.(?:{extensions})"
           rf"|{re.escape(MANIFEST_SUFFIX[1:])}|{re.escape(REVIEW_SUFFIX[1:])}|{re.escape(PROXY_SUFFIX[1:])})")
    return re.fullmatch(own, name) is not None
