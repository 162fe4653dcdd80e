"""``subpipe burn``: a film with its subtitles burned in, for social media and screeners.

The track (an SRT, WebVTT or TTML, or an ASS script used as it is) is composed as ASS
for the output's picture (its size, the house style's fonts and title-safe margins) and
drawn by libass through ffmpeg, the fonts found with fontconfig and handed over as its
``fontsdir`` (a font that is missing is an error before any work). The output is
H.264 and AAC in MP4, written to a temporary name and committed with its record in the
film's manifest under the outputs' lock, so the overwrite rules hold as for tracks; the
source video is only read.

``aspect`` (e.g. 9:16 for vertical clips) makes a picture of that shape at the
source's height: ``crop`` fills it from the middle of the picture, ``pad`` fits the whole
picture and fills the rest in black (where the subtitles then sit, 20 % up from the
bottom, clear of a phone app's controls).
"""

from __future__ import annotations

import subprocess
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

from .atomic import staging
from .check import guess_lang
from .config import Config
from .errors import InputError, OutputError, UsageError
from .fonts import fonts_folder
from .formats import FORMATS, Delivery, format_of
from .formats.ass import looks_like as is_ass
from .formats.names import burned_name, split_track
from .formats.srt import laid_out
from .media import MediaInfo, last_line, probe, require_ffmpeg
from .outputs import OutputSet
from .pipeline import delivery_of, writable_folder
from .types import Track

FITS = ("crop", "pad")


@dataclass(frozen=True)
class BurnRequest:
    video: Path
    track: Path | None = None  # default: the film's one track (or pair, with bilingual) beside it
    bilingual: bool = False
    aspect: tuple[int, int] | None = None  # width:height of the output's picture; None: the source's
    fit: str = "pad"
    output: Path | None = None  # default: <stem>.<code>.burned.mp4 beside the video
    force: bool = False


def burn(request: BurnRequest, config: Config, *, progress: Callable[[float], Callable[[float], None] | None]
         = lambda total: None) -> Path:
    """Burn the track into the film; returns the path written. ``progress(total)`` may
    return a callable that hears the seconds of film done."""
    require_ffmpeg()
    info = probe(request.video)
    if info.size is None:
        raise InputError(f"{request.video} has no picture to burn subtitles into")
    track_path = request.track or find_track(request.video, request.bilingual)
    code = _code(track_path)
    if request.bilingual and "-" not in code:
        raise UsageError(f"--bilingual: {track_path.name} is not a bilingual track (<stem>.<src>-<tgt>.srt)")
    width, height = _picture(info.size, request.aspect)
    out = request.output or request.video.parent / burned_name(request.video.stem, code, request.aspect)
    if out.suffix.lower() != ".mp4":
        raise UsageError(f"{out.name}: the burned film is an MP4; name it <name>.mp4")
    if out.resolve() == request.video.resolve():
        raise UsageError(f"{out} is the source video: burning never writes over it")
    writable_folder(out.parent, create=request.output is not None, what="output folder")
    delivery = replace(delivery_of(config, info, code), width=width, height=height)
    script = _script(track_path, code, delivery, config)
    meta = {"model": "", "backend": "burn", "settings": {
        "track": track_path.name, "aspect": list(request.aspect) if request.aspect else None, "fit": request.fit,
        "fonts": dict(config.output.fonts)}}
    # The fonts of the track's languages; an ASS script of its own may name any of ours.
    families = config.output.fonts.values() if is_ass(_bytes(track_path)) else \
        [config.output.fonts[lang] for lang in code.split("-")]
    with OutputSet(out.parent, request.video.stem) as outputs:
        outputs.guard([out], request.force)
        with fonts_folder(families) as fonts, tempfile.TemporaryDirectory(prefix="subpipe-burn-") as work:
            ass_file = Path(work) / "subtitles.ass"
            ass_file.write_text(script, encoding="utf-8")
            with staging(out) as tmp:
                _ffmpeg(info, _filters(info.size, (width, height), request.fit, ass_file, fonts), tmp,
                        progress(info.duration))
        try:
            outputs.commit_staged({out: tmp}, meta, request.force)
        finally:
            tmp.unlink(missing_ok=True)  # committed, it is the output; else nothing is left
    return out


def find_track(video: Path, bilingual: bool) -> Path:
    """The film's one track beside it (``film.ur.srt``), or its one bilingual pair
    (``film.ur-zh.srt``); several or none is a usage error that says which to give."""
    kind = "bilingual track" if bilingual else "track"
    found = sorted(p for p in video.parent.glob("*.srt")
                   if (split := split_track(p.name)) and split[0] == video.stem and ("-" in split[1]) == bilingual)
    if len(found) == 1:
        return found[0]
    if not found:
        raise UsageError(f"no {kind} of {video.name} beside it ({video.stem}.<lang>.srt): give one with --track")
    names = ", ".join(p.name for p in found)
    raise UsageError(f"several {kind}s of {video.name} beside it ({names}): choose one with --track")


def _code(track: Path) -> str:
    """The track's language (or pair) from its name, else from its text."""
    split = split_track(track.name)
    if split is not None:
        return split[1]
    data = _bytes(track)
    return guess_lang(c.lines for c in format_of(data).inspect(data).cues)


def _bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from None


def _script(path: Path, code: str, delivery: Delivery, config: Config) -> str:
    """The ASS script libass draws: an ASS track as it is, any other composed for the picture."""
    data = _bytes(path)
    if is_ass(data):
        return data.decode("utf-8-sig", "replace")
    fmt = format_of(data)
    track = fmt.read(path, code)
    if not track.cues:
        raise InputError(f"{path} has no cues to burn in")
    try:
        return FORMATS["ass"].compose(laid_out(Track(code, track.cues), config.output.urdu_direction_marks), delivery)
    except ValueError as exc:
        raise InputError(f"{path}: {exc}: correct it first ('subpipe check {path}' lists every such cue)") from None


def _picture(size: tuple[int, int], aspect: tuple[int, int] | None) -> tuple[int, int]:
    """The output's width and height: the source's, or ``aspect`` at the source's height (even)."""
    if aspect is None:
        return size
    height = size[1] - size[1] % 2
    return max(2, round(height * aspect[0] / aspect[1] / 2) * 2), height


def _filters(source: tuple[int, int], picture: tuple[int, int], fit: str, script: Path, fonts: Path) -> str:
    """The video filters: reshape the picture when asked, then draw the subtitles on it."""
    steps = []
    if picture != source:
        (sw, sh), (w, h) = source, picture
        factor = max(w / sw, h / sh) if fit == "crop" else min(w / sw, h / sh)
        scaled = (max(2, round(sw * factor / 2) * 2), max(2, round(sh * factor / 2) * 2))
        steps.append(f"scale={scaled[0]}:{scaled[1]}")
        steps.append(f"crop={w}:{h}" if fit == "crop" else f"pad={w}:{h}:(ow-iw)/2:(oh-ih)/2:black")
        steps.append("setsar=1")
    steps.append(f"ass=filename={_escaped(script)}:fontsdir={_escaped(fonts)}")
    return ",".join(steps)


def _escaped(path: Path) -> str:
    """A path as a value in an ffmpeg filter graph, which gives ``:,;[]='\\`` and white
    space meanings of their own (the paths are subpipe's temporary ones)."""
    if any(ch in "\\':,;[]=" or ch.isspace() for ch in str(path)):
        raise OutputError(f"the temporary folder {path.parent} has characters ffmpeg's filters can't take: "
                          "set TMPDIR to a plain path")
    return str(path)


def _ffmpeg(info: MediaInfo, filters: str, out: Path, heard: Callable[[float], None] | None) -> None:
    """Encode the film with ``filters`` into ``out`` (H.264 and AAC in MP4), telling
    ``heard`` how far it got."""
    command = ["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", str(info.path), "-map", "0:v:0", "-map", "0:a:0?",
               "-vf", filters, "-c:v", "libx264", "-preset", "veryfast", "-crf", "20", "-pix_fmt", "yuv420p",
               "-c:a", "aac", "-b:a", "160k", "-movflags", "+faststart", "-f", "mp4",
               "-progress", "pipe:1", "-nostats", str(out)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        for raw in process.stdout:  # type: ignore[union-attr]
            key, _, value = raw.decode("ascii", "replace").strip().partition("=")
            if key == "out_time_us" and heard is not None and value.isdigit():
                heard(int(value) / 1e6)
        stderr = process.stderr.read()  # type: ignore[union-attr]
        if process.wait() != 0:
            raise InputError(f"ffmpeg could not burn the subtitles into {info.path}: {last_line(stderr)}")
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def parse_aspect(text: str) -> tuple[int, int]:
    """``9:16`` -> (9, 16)."""
    width, sep, height = text.partition(":")
    if not sep or not width.isdigit() or not height.isdigit() or not int(width) or not int(height):
        raise UsageError(f"--aspect {text}: give the picture's shape as W:H, such as 9:16")
    return int(width), int(height)
