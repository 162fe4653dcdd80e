"""``subpipe burn``: subtitles burned into a few seconds of film by ffmpeg and libass, the
frame at a cue's middle compared with the film's own and with the references that
tests/test_formats.py keeps for libass's drawing; vertical clips cropped or padded; the
outputs' rules (lock, manifest, refusals) and the source never touched."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner, Result

from subpipe.burn import BurnRequest, burn
from subpipe.cli import main
from subpipe.config import load_config
from test_formats import ARTIFACTS, DIFFERENT, GOLDEN, PICTURE, TOLERANCE, ffmpeg, made_tracks, middle

# H.264 at the quality burn writes blurs the drawn letters' edges a little: a burned frame
# may differ from libass's own drawing in more pixels than a drawing may from another.
ENCODED_TOLERANCE = 4 * TOLERANCE


def invoke(*args: str | Path) -> Result:
    return CliRunner().invoke(main, [str(a) for a in args])


def frame(video: Path, at: float, size: tuple[int, int]) -> np.ndarray:
    """The gray frame of ``video`` at ``at`` s."""
    data = ffmpeg("-ss", str(at), "-i", video, "-frames:v", "1", "-f", "rawvideo", "-pix_fmt", "gray", "-")
    return np.frombuffer(data, np.uint8).reshape(size[1], size[0]).astype(int)


def probe(video: Path) -> dict:
    import subprocess

    return json.loads(subprocess.run(["ffprobe", "-v", "error", "-show_streams", "-show_format", "-of", "json",
                                      str(video)], check=True, capture_output=True).stdout)


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def films(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two films of a few seconds with their tracks beside them: the plain picture of the
    references (and a tone), and the Mandarin sample's picture and speech at 640x360."""
    folder = tmp_path_factory.mktemp("films")
    plain, sample = folder / "plain" / "film.mp4", folder / "sample" / "clip.mp4"
    plain.parent.mkdir()
    sample.parent.mkdir()
    ffmpeg("-f", "lavfi", "-i", PICTURE, "-f", "lavfi", "-i", "sine=frequency=440:duration=6", "-shortest",
           "-c:v", "libx264", "-qp", "0", "-pix_fmt", "yuv420p", "-c:a", "aac", plain)
    ffmpeg("-ss", "1", "-t", "6", "-i", Path(__file__).resolve().parent.parent / "fixtures" / "sample_zh.mp4",
           "-vf", "scale=640:360", "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac", sample)
    from subpipe.formats import FORMATS
    from subpipe.formats.base import Delivery

    tracks = made_tracks()
    for video in (plain, sample):
        for code in ("ur", "ur-zh"):
            text = FORMATS["srt"].compose(tracks[code], Delivery())
            (video.parent / f"{video.stem}.{code}.srt").write_text(text, encoding="utf-8")
    return {"plain": plain, "sample": sample}


def test_burned_frame_is_the_reference_drawing(films: dict[str, Path]) -> None:
    video = films["plain"]
    before = sha(video)
    result = invoke("burn", video)
    assert result.exit_code == 0, result.stderr
    out = video.parent / "film.ur.burned.mp4"
    assert result.stdout == f"{out}\n"
    streams = {s["codec_type"]: s for s in probe(out)["streams"]}
    assert (streams["video"]["codec_name"], streams["video"]["pix_fmt"], streams["audio"]["codec_name"]) == \
        ("h264", "yuv420p", "aac")
    assert (streams["video"]["width"], streams["video"]["height"]) == (640, 360)
    burned, source = frame(out, middle(1), (640, 360)), frame(video, middle(1), (640, 360))
    changed = np.abs(burned - source) > DIFFERENT
    rows = np.flatnonzero(changed.any(axis=1))
    assert changed.sum() > 150 and rows.min() >= 180, "the subtitles are drawn, low in the picture"
    ARTIFACTS.mkdir(exist_ok=True)
    ffmpeg("-ss", str(middle(1)), "-i", out, "-frames:v", "1", ARTIFACTS / "burned-ur.png")
    reference = frame(GOLDEN / "ass-ur.png", 0, (640, 360))
    different = int((np.abs(burned - reference) > DIFFERENT).sum())
    assert different <= ENCODED_TOLERANCE, f"the burned frame differs from libass's drawing in {different} pixels"
    # Between cues nothing is drawn.
    assert (np.abs(frame(out, 2.8, (640, 360)) - frame(video, 2.8, (640, 360))) > DIFFERENT).sum() == 0
    assert sha(video) == before
    manifest = json.loads((video.parent / "film.subpipe.json").read_text())
    assert manifest["files"]["film.ur.burned.mp4"]["sha256"] == sha(out)
    assert manifest["files"]["film.ur.burned.mp4"]["backend"] == "burn"


def test_burn_keeps_the_overwrite_rules(films: dict[str, Path], tmp_path: Path) -> None:
    video = tmp_path / "film.mp4"
    shutil.copy(films["plain"], video)
    shutil.copy(films["plain"].parent / "film.ur.srt", tmp_path)
    out = tmp_path / "mine.mp4"
    out.write_bytes(b"an editor's cut")
    result = invoke("burn", video, "-o", out)
    assert result.exit_code == 3 and "mine.mp4 exists, and there is no film.subpipe.json" in result.stderr
    assert out.read_bytes() == b"an editor's cut"
    result = invoke("burn", video, "-o", out, "--force")
    assert result.exit_code == 0, result.stderr
    assert invoke("burn", video, "-o", out).exit_code == 0  # its own, unchanged: replaced
    assert sorted(p.name for p in tmp_path.iterdir()) == ["film.mp4", "film.subpipe.json", "film.ur.srt", "mine.mp4"]


@pytest.mark.parametrize("fit", ["pad", "crop"])
def test_vertical_clip_of_real_media(films: dict[str, Path], fit: str) -> None:
    video = films["sample"]
    seen: list[float] = []

    def progress(total: float):  # noqa: ANN202
        assert total == pytest.approx(6, abs=0.2)
        return seen.append

    out = burn(BurnRequest(video, bilingual=True, aspect=(9, 16), fit=fit,
                           output=video.parent / fit / "clip.mp4"), load_config(), progress=progress)
    assert out == video.parent / fit / "clip.mp4"
    streams = {s["codec_type"]: s for s in probe(out)["streams"]}
    assert (streams["video"]["width"], streams["video"]["height"]) == (202, 360)
    assert streams["audio"]["codec_name"] == "aac"
    assert seen and seen == sorted(seen) and seen[-1] == pytest.approx(6, abs=0.2)
    # The same picture made by ffmpeg alone (its own scale, pad or crop), without subtitles.
    shape = ("scale=202:114,pad=202:360:0:123:black" if fit == "pad" else "scale=640:360,crop=202:360")
    ffmpeg("-ss", str(middle(2)), "-i", video, "-frames:v", "1", "-vf", shape, "-f", "rawvideo", "-pix_fmt", "gray",
           video.parent / fit / "plain.gray")
    plain = np.frombuffer((video.parent / fit / "plain.gray").read_bytes(), np.uint8).reshape(360, 202).astype(int)
    changed = np.abs(frame(out, middle(2), (202, 360)) - plain) > DIFFERENT
    rows = np.flatnonzero(changed.any(axis=1))
    # Four lines, the lowest 20 % up from the bottom (clear of an app's controls).
    assert changed.sum() > 200 and rows.min() > 180 and rows.max() <= 360 * 0.8 + 2, (rows.min(), rows.max())
    if fit == "pad":
        # The picture (202 x 114) sits in the middle; the subtitles reach the black below it.
        assert changed[237:].sum() > 100
        ARTIFACTS.mkdir(exist_ok=True)
        ffmpeg("-ss", str(middle(2)), "-i", out, "-frames:v", "1", ARTIFACTS / "burned-ur-zh-9x16.png")


@pytest.mark.parametrize("args, message", [
    (("--track", "missing.srt"), "missing.srt"),
    (("--aspect", "9x16"), "--aspect 9x16: give the picture's shape as W:H, such as 9:16"),
    (("-o", "{video}"), "is the source video: burning never writes over it"),
    (("--bilingual", "--track", "{folder}/film.ur.srt"), "--bilingual: film.ur.srt is not a bilingual track"),
])
def test_burn_usage_errors(films: dict[str, Path], args: tuple[str, ...], message: str) -> None:
    video = films["plain"]
    args = tuple(a.format(video=video, folder=video.parent) for a in args)
    result = invoke("burn", video, *args)
    assert result.exit_code == 2, result.stderr
    assert message in result.stderr


def test_several_tracks_ask_which(films: dict[str, Path], tmp_path: Path) -> None:
    video = tmp_path / "film.mp4"
    shutil.copy(films["plain"], video)
    for code in ("ur", "zh"):
        shutil.copy(films["plain"].parent / "film.ur.srt", tmp_path / f"film.{code}.srt")
    result = invoke("burn", video)
    assert result.exit_code == 2
    assert "several tracks of film.mp4 beside it (film.ur.srt, film.zh.srt): choose one with --track" in result.stderr
