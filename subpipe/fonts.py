"""The font files of the families subtitles name, found with fontconfig, so that libass is
handed exactly those (ffmpeg's ``fontsdir``) and a font that is missing is said before
any work, with the Debian package that has it, instead of text drawn in a fallback font
that may not carry the script (boxes for Urdu, or Urdu letters not joined)."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import UsageError

# Where Debian keeps the fonts subpipe names (and a few others that carry our scripts).
DEBIAN_PACKAGES = {
    "WenQuanYi Zen Hei": "fonts-wqy-zenhei",
    "Awami Nastaliq": "fonts-sil-awami-nastaliq",
    "DejaVu Sans": "fonts-dejavu-core",
    "Amiri": "fonts-hosny-amiri",
    "Noto Sans CJK SC": "fonts-noto-cjk",
    "Noto Nastaliq Urdu": "fonts-noto-core",
}


class FontMissing(UsageError):
    """A font a style names is not installed: exit 2, before any work."""


def font_file(family: str) -> Path:
    """The file fontconfig has for ``family``; raises FontMissing when it only offers another."""
    if shutil.which("fc-match") is None:
        raise FontMissing("fontconfig's fc-match is not installed: apt-get install fontconfig")
    done = subprocess.run(["fc-match", "--format", "%{family}\t%{file}", family], capture_output=True, text=True,
                          check=False)
    names, _, path = done.stdout.partition("\t")
    if done.returncode != 0 or family.casefold() not in (n.strip().casefold() for n in names.split(",")):
        package = DEBIAN_PACKAGES.get(family)
        how = f"apt-get install {package}" if package else "install it"
        offered = f" (fontconfig offers {names.split(',')[0]!r} instead)" if names else ""
        raise FontMissing(f"the font {family!r} is not installed{offered}: {how}, or name another in "
                          "[output.fonts]")
    return Path(path)


@contextmanager
def fonts_folder(families: Iterable[str]) -> Iterator[Path]:
    """A temporary folder holding (links to) the files of ``families``: libass's fontsdir."""
    files = {font_file(family) for family in families}
    folder = Path(tempfile.mkdtemp(prefix="subpipe-fonts-"))
    try:
        for index, path in enumerate(sorted(files)):
            os.symlink(path, folder / f"{index}-{path.name}")
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)
