"""``subpipe review``: the page in a real browser (headless Chromium), the sign-off CLI.

The browser tests need Debian's Chromium (/usr/bin/chromium) and Playwright's Python
package; without them they fail, saying what to install, rather than skip.
"""

from __future__ import annotations

import html
import json
import shutil
import subprocess
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pytest
from click.testing import CliRunner

from subpipe.cli import review
from subpipe.config import load_config
from subpipe.findings import Finding
from subpipe.review import aligned, build_page, json_for_script, page_data, read_page_data, review_command
from subpipe.types import Cue, Track

REPO = Path(__file__).resolve().parent.parent
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
INSTALL_HINT = ("apt-get install -y chromium  and  .venv/bin/pip install playwright==1.65.2"
                " (never 'playwright install': the tests use Debian's Chromium)")

RLE, PDF = "\u202b", "\u202c"
TIMES = [(0.5, 2.5), (3.0, 5.0), (5.5, 7.5), (8.0, 9.5)]
UR = [f"{RLE}پی ٹی وی کی خبریں{PDF}", f"{RLE}یہ دوسرا جملہ ہے{PDF}", f"{RLE}تیسرا جملہ{PDF}",
      f"{RLE}آخری جملہ{PDF}"]
ZH = ["巴基斯坦电视台新闻", "这是第二句话", "这一行字幕实在是太长了远远超过了十六个字的限制", "最后一句"]
XSS = ["PTV news", "<script>alert(1)</script>",
       '<img src=x onerror="window.__xss=1;alert(2)">',
       "</script><script>window.__xss=3;alert(3)</script> & <i>end</i>"]
GLOSSARY = """[[term]]
term = "PTV"
en = "PTV"
zh = "巴基斯坦电视台"
ur = "پی ٹی وی"
note = "Pakistan Television"
"""


def srt(cues: list[tuple[float, float, str]]) -> str:
    def ts(s: float) -> str:
        ms = round(s * 1000)
        return f"{ms // 3_600_000:02d}:{ms // 60_000 % 60:02d}:{ms // 1000 % 60:02d},{ms % 1000:03d}"

    return "".join(f"{i}\n{ts(a)} --> {ts(b)}\n{text}\n\n" for i, (a, b, text) in enumerate(cues, 1))


def write_tracks(folder: Path, stem: str = "film") -> None:
    texts = {"ur": UR, "zh": ZH, "en": XSS, "ur-zh": [f"{u}\n{z}" for u, z in zip(UR, ZH)]}
    for code, lines in texts.items():
        body = srt([(a, b, t) for (a, b), t in zip(TIMES, lines)])
        (folder / f"{stem}.{code}.srt").write_text(body, encoding="utf-8")


def make_film(path: Path) -> None:
    """10 s of picture and tone as MPEG-2 in MPEG-TS: a format no browser plays."""
    subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", "-y",
         "-f", "lavfi", "-i", "testsrc2=s=640x360:r=25:d=10",
         "-f", "lavfi", "-i", "sine=frequency=440:duration=10",
         "-c:v", "mpeg2video", "-g", "12", "-c:a", "mp2", "-shortest", str(path)],
        check=True)


@pytest.fixture(scope="module")
def desk(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A film with four tracks (one of them hostile), a glossary, and its review page."""
    folder = tmp_path_factory.mktemp("desk")
    video = folder / "film.ts"
    make_film(video)
    write_tracks(folder)
    (folder / "glossary.toml").write_text(GLOSSARY, encoding="utf-8")
    (folder / "project.toml").write_text(f'[translate]\nglossary = "{folder / "glossary.toml"}"\n')
    config = load_config(folder / "project.toml")
    page, proxy = review_command(video, None, None, config)
    return {"folder": folder, "video": video, "page": page, "proxy": proxy}


# ---- the page as data (no browser) ---------------------------------------------------

def test_review_writes_page_and_playable_proxy(desk: dict[str, Path]) -> None:
    assert desk["page"] == desk["folder"] / "film.review.html"
    assert desk["proxy"] == desk["folder"] / "film.proxy.mp4"
    probe = json.loads(subprocess.run(
        ["ffprobe", "-v", "error", "-show_streams", "-show_format", "-of", "json", str(desk["proxy"])],
        check=True, capture_output=True).stdout)
    video = next(s for s in probe["streams"] if s["codec_type"] == "video")
    audio = next(s for s in probe["streams"] if s["codec_type"] == "audio")
    assert (video["codec_name"], video["pix_fmt"], audio["codec_name"]) == ("h264", "yuv420p", "aac")
    assert video["height"] <= 480
    # A TS starts at 1.4 s; the proxy must start at 0 like the subtitles' clock.
    assert float(probe["format"].get("start_time", 0)) < 0.05


def test_default_tracks_source_first(desk: dict[str, Path]) -> None:
    data = read_page_data(desk["page"])
    assert [t["name"] for t in data["tracks"]] == ["film.ur.srt", "film.zh.srt", "film.en.srt",
                                                   "film.ur-zh.srt"]
    assert data["aligned"] and data["proxy"] == "film.proxy.mp4"
    assert data["manifest"] == "film.subpipe.json"


def test_page_never_holds_cue_markup_raw(desk: dict[str, Path]) -> None:
    text = desk["page"].read_text(encoding="utf-8")
    assert "<script>alert" not in text and "<img" not in text and "<i>" not in text
    # The data blob and the page's own script: exactly two script elements open.
    assert text.count("<script") == 2
    # And should a cue ever reach the markup, only the page's own script (by hash) may run.
    policy = html.unescape(text.split('http-equiv="Content-Security-Policy" content="')[1].split('"')[0])
    assert "script-src 'sha256-" in policy and "unsafe-inline" not in policy.split(";")[1]
    assert read_page_data(desk["page"])["tracks"][2]["cues"][1]["lines"] == [XSS[1]]


def test_json_blob_cannot_end_its_script() -> None:
    blob = json_for_script({"t": "</script><!-- & \u2028"})
    assert "<" not in blob and ">" not in blob and "&" not in blob
    assert json.loads(blob) == {"t": "</script><!-- & \u2028"}


def test_tracks_out_of_step_are_shown_per_track() -> None:
    a = Track("ur", (Cue(0.5, 2.0, ("x",)), Cue(3.0, 4.0, ("y",))))
    b = Track("zh", (Cue(0.5, 2.0, ("一",)),))
    assert aligned([a, a]) and not aligned([a, b])
    assert page_data("f.mp4", "f.proxy.mp4", {"a": a, "b": b}, {}, None)["aligned"] is False


def test_findings_land_on_their_cue_even_when_numbered_out_of_step() -> None:
    track = Track("zh", (Cue(0.5, 2.0, ("一",)), Cue(3.0, 4.0, ("二",))))
    # The file numbered its cues 7 and 8: the start time finds the cue.
    finding = Finding("reading_speed", "reading_speed 12 > 9 chars/s", cue=8, start=3.0, measured=12.0, limit=9.0)
    loose = Finding("blank_line", "stray blank line", "warning", line=3)
    data = page_data("f.mp4", "p.mp4", {"f.zh.srt": track}, {"f.zh.srt": [finding, loose]}, None)
    cues = data["tracks"][0]["cues"]
    assert [f["rule"] for f in cues[1]["findings"]] == ["reading_speed"] and not cues[0]["findings"]
    assert [f["rule"] for f in data["tracks"][0]["findings"]] == ["blank_line"]


def test_build_page_is_deterministic() -> None:
    track = Track("en", (Cue(0.5, 2.0, ("a {{DATA}} b",)),))
    one = build_page("f.mp4", "f.proxy.mp4", {"f.en.srt": track}, {}, None)
    assert one == build_page("f.mp4", "f.proxy.mp4", {"f.en.srt": track}, {}, None)
    # Text that looks like a template slot stays text.
    assert "a {{DATA}} b" in json.loads(one.split('id="review-data">')[1].split("</script>")[0])[
        "tracks"][0]["cues"][0]["lines"][0]


# ---- the page in a browser -------------------------------------------------------------

@contextmanager
def chromium(timeout_ms: int, prefix: str = "subpipe-chromium-") -> Iterator:
    """A headless Debian Chromium with a profile of its own, driven by Playwright."""
    if not CHROMIUM.exists():
        pytest.fail(f"Chromium is missing ({CHROMIUM}); the browser tests need it: {INSTALL_HINT}")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail(f"Playwright's Python package is missing: {INSTALL_HINT}")
    profile = tempfile.mkdtemp(prefix=prefix)
    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            profile, executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS,
            viewport={"width": 1500, "height": 950})
        context.set_default_timeout(timeout_ms)
        yield context
        context.close()
    shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture(scope="module")
def browser_context():
    """One headless Chromium for the module."""
    with chromium(15_000) as context:
        yield context


def until(page, expression: str, timeout: float = 15.0) -> None:
    """Poll a JS expression from outside the page (the page's CSP forbids eval)."""
    deadline = time.monotonic() + timeout
    while not page.evaluate(expression):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for: {expression}")
        time.sleep(0.02)


class Watched:
    """A page with its console errors, uncaught errors and dialogs recorded."""

    def __init__(self, context, url: str):
        self.errors: list[str] = []
        self.dialogs: list[str] = []
        self.page = context.new_page()
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("dialog", self._dialog)
        self.page.goto(url)
        self.page.wait_for_selector("td.cue")

    def _dialog(self, dialog) -> None:  # noqa: ANN001
        self.dialogs.append(dialog.message)
        dialog.dismiss()

    def cell(self, track: str, cue: int):
        """The cell of cue ``cue`` (1-based) of the track in language ``track`` (``zh``, ``ur-zh``)."""
        return self.page.locator(f'td.cue[data-track="{track}"][data-cue="{cue}"]')


@pytest.fixture()
def watched(browser_context, desk: dict[str, Path]):
    page = Watched(browser_context, desk["page"].as_uri())
    yield page
    page.page.close()


def test_page_loads_from_disk_with_every_cue(watched: Watched) -> None:
    page = watched.page
    until(page, "document.getElementById('video').readyState >= 1")
    assert page.locator("tr.cue-row").count() == 4
    for code, texts in (("ur", UR), ("zh", ZH), ("en", XSS)):
        shown = [watched.cell(code, n).locator(".line").inner_text() for n in range(1, 5)]
        assert [s.strip(RLE + PDF) for s in shown] == [t.strip(RLE + PDF) for t in texts]
    assert page.evaluate("document.getElementById('video').duration") == pytest.approx(10, abs=0.2)
    assert watched.errors == []


def test_click_on_cue_seeks_and_plays_it(watched: Watched) -> None:
    page = watched.page
    until(page, "document.getElementById('video').readyState >= 1")
    page.select_option("#track-select", label="film.ur.srt")
    page.evaluate("""() => { const v = document.getElementById('video');
        v.addEventListener('seeked', () => { window.seekedAt = v.currentTime; }, {once: true}); }""")
    page.locator('tr.cue-row[data-cue="3"] td.num').click()
    until(page, "window.seekedAt !== undefined")
    assert page.evaluate("window.seekedAt") == pytest.approx(TIMES[2][0], abs=0.05)
    until(page, "!document.getElementById('video').paused")
    # The overlay shows the chosen track's cue, right to left.
    until(page, "document.getElementById('overlay').textContent.includes('تیسرا')")
    line = page.locator("#overlay .line").first
    assert line.evaluate("e => getComputedStyle(e).direction") == "rtl"
    assert line.get_attribute("lang") == "ur"
    assert watched.errors == []


def test_rule_breaks_are_marked_with_measure_and_limit(watched: Watched) -> None:
    cell = watched.cell("zh", 3)
    assert "has-findings" in cell.get_attribute("class")
    badge = cell.locator('.finding[data-rule="chars_per_line"]')
    assert "> 16" in badge.inner_text()
    assert "limit 16" in badge.get_attribute("title")
    assert watched.cell("zh", 2).locator(".finding").count() == 0


def test_glossary_terms_are_marked(watched: Watched) -> None:
    assert watched.cell("zh", 1).locator("mark.term").inner_text() == "巴基斯坦电视台"
    assert watched.cell("ur", 1).locator("mark.term").inner_text() == "پی ٹی وی"
    assert watched.cell("en", 1).locator("mark.term").inner_text() == "PTV"


def test_urdu_cells_read_right_to_left(watched: Watched) -> None:
    def direction(locator) -> str:  # noqa: ANN001
        return locator.evaluate("e => getComputedStyle(e).direction")

    assert direction(watched.cell("ur", 2)) == "rtl"
    assert watched.cell("ur", 2).get_attribute("lang") == "ur"
    assert direction(watched.cell("zh", 2)) == "ltr"
    # In the bilingual track each line takes its own direction.
    lines = watched.cell("ur-zh", 2).locator(".line")
    assert [direction(lines.nth(i)) for i in range(2)] == ["rtl", "ltr"]


def test_hostile_cues_are_inert_text(watched: Watched) -> None:
    page = watched.page
    until(page, "document.getElementById('video').readyState >= 1")
    page.select_option("#track-select", label="film.en.srt")
    for n in (2, 3, 4):
        page.locator(f'tr.cue-row[data-cue="{n}"] td.num').click()
        until(page, f"document.getElementById('overlay').textContent.includes({json.dumps(XSS[n - 1])})")
    assert watched.cell("en", 3).locator(".line").inner_text() == XSS[2]
    assert page.locator("#cues img, #overlay img, #cues i, #cues script, #overlay script").count() == 0
    assert page.evaluate("window.__xss") is None
    assert watched.dialogs == [] and watched.errors == []


def test_sign_off_survives_reload_and_is_exported(watched: Watched, desk: dict[str, Path]) -> None:
    page = watched.page
    watched.cell("zh", 1).locator("button.approve").click()
    flagged = watched.cell("en", 2)
    flagged.locator("button.flag").click()
    flagged.locator("input.note").fill("drop the markup")
    page.reload()
    page.wait_for_selector("td.cue")
    assert watched.cell("zh", 1).locator("button.approve").get_attribute("aria-pressed") == "true"
    assert "approved" in watched.cell("zh", 1).get_attribute("class")
    assert watched.cell("en", 2).locator("input.note").input_value() == "drop the markup"
    export = json.loads(page.locator("#export").input_value())
    assert [(c["track"], c["cue"], c["status"], c["note"]) for c in export["cues"]] == [
        ("film.zh.srt", 1, "approved", ""), ("film.en.srt", 2, "flagged", "drop the markup")]
    assert page.locator("#download").get_attribute("href").startswith("blob:")
    assert page.locator("#counts").inner_text() == "1 approved, 1 flagged, 14 pending"
    page.locator('tr.cue-row[data-cue="2"] td.num').click()
    until(page, "document.getElementById('overlay').textContent.length > 0")
    (REPO / "artifacts").mkdir(exist_ok=True)
    page.screenshot(path=str(REPO / "artifacts" / "review.png"), full_page=True)

    # The export, applied from the command line: the flagged cue, exit 1, the manifest.
    notes = desk["folder"] / "film.review-notes.json"
    notes.write_text(json.dumps(export), encoding="utf-8")
    result = CliRunner().invoke(review, ["--notes", str(notes), str(desk["page"])])
    assert result.exit_code == 1, result.output
    assert result.stdout == "film.en.srt cue 2 (00:00:03,000): drop the markup\n"
    recorded = json.loads((desk["folder"] / "film.subpipe.json").read_text())["review"]
    assert (recorded["approved"], recorded["flagged"], recorded["pending"]) == (1, 1, 14)
    assert watched.errors == []


def test_rebuilt_page_with_other_cues_starts_afresh(browser_context, desk: dict[str, Path],
                                                    tmp_path: Path) -> None:
    # The same page name elsewhere, with a cue changed and one dropped from a track.
    first = Watched(browser_context, desk["page"].as_uri())
    first.cell("ur", 4).locator("button.approve").click()
    first.page.close()
    data = read_page_data(desk["page"])
    tracks = {t["name"]: Track(t["lang"], tuple(Cue(c["start"], c["end"], tuple(c["lines"]))
                                                for c in t["cues"])) for t in data["tracks"]}
    tracks["film.zh.srt"] = Track("zh", tracks["film.zh.srt"].cues[:3])
    (tmp_path / "film.review.html").write_text(
        build_page("film.ts", "film.proxy.mp4", tracks, {}, None), encoding="utf-8")
    shutil.copy(desk["proxy"], tmp_path / "film.proxy.mp4")
    again = Watched(browser_context, (tmp_path / "film.review.html").as_uri())
    assert again.page.locator("table.track-table").count() == 4
    assert again.page.locator("td.cue.approved").count() == 0
    assert again.cell("ur", 4).locator("button.approve").get_attribute("aria-pressed") == "false"
    assert again.errors == []
    again.page.close()


# ---- the sign-off from the command line (no browser) ------------------------------------

def _notes(desk: dict[str, Path], tmp_path: Path, cues: list[dict], **extra) -> Path:
    key = read_page_data(desk["page"])["key"]
    doc = {"format": "subpipe-review-notes", "version": 1, "page": "film.review.html", "key": key,
           "video": "film.ts", "cues": cues, **extra}
    path = tmp_path / "notes.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    return path


def test_notes_all_approved_exit_0(desk: dict[str, Path], tmp_path: Path) -> None:
    cues = [{"track": "film.ur.srt", "cue": n, "status": "approved", "note": ""} for n in range(1, 5)]
    result = CliRunner().invoke(review, ["--notes", str(_notes(desk, tmp_path, cues)), str(desk["page"])])
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    recorded = json.loads((desk["folder"] / "film.subpipe.json").read_text())["review"]
    assert (recorded["approved"], recorded["flagged"], recorded["pending"]) == (4, 0, 12)


def test_notes_flagged_cues_one_line_each(desk: dict[str, Path], tmp_path: Path) -> None:
    cues = [{"track": "film.ur-zh.srt", "cue": 4, "status": "flagged", "note": "timing\nlate"},
            {"track": "film.zh.srt", "cue": 3, "status": "flagged", "note": ""}]
    notes = _notes(desk, tmp_path, cues)
    result = CliRunner().invoke(review, ["--notes", str(notes), str(desk["page"])])
    assert result.exit_code == 1
    assert result.stdout.splitlines() == ["film.zh.srt cue 3 (00:00:05,500): (no note)",
                                          "film.ur-zh.srt cue 4 (00:00:08,000): timing late"]
    manifest = (desk["folder"] / "film.subpipe.json").read_text()
    CliRunner().invoke(review, ["--notes", str(notes), str(desk["page"])])
    assert (desk["folder"] / "film.subpipe.json").read_text() == manifest  # deterministic


@pytest.mark.parametrize("content, reason", [
    ("{not json", "is not valid JSON"),
    ('{"format": "something-else", "cues": []}', "is not a notes export"),
    ('{"format": "subpipe-review-notes", "key": "0", "cues": []}', "another build"),
])
def test_broken_notes_exit_2_one_line(desk: dict[str, Path], tmp_path: Path, content: str,
                                      reason: str) -> None:
    notes = tmp_path / "notes.json"
    notes.write_text(content, encoding="utf-8")
    result = CliRunner().invoke(review, ["--notes", str(notes), str(desk["page"])])
    assert result.exit_code == 2
    assert len(result.stderr.splitlines()) == 1
    assert result.stderr.startswith("Error: ") and reason in result.stderr


def test_notes_naming_a_cue_not_on_the_page_exit_2(desk: dict[str, Path], tmp_path: Path) -> None:
    notes = _notes(desk, tmp_path, [{"track": "film.zh.srt", "cue": 9, "status": "flagged", "note": ""}])
    result = CliRunner().invoke(review, ["--notes", str(notes), str(desk["page"])])
    assert result.exit_code == 2 and result.stderr == f"Error: {notes.name}: film.zh.srt has no cue 9\n"


def test_cli_builds_page_from_named_tracks(desk: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "desk.html"
    folder = desk["folder"]
    result = CliRunner().invoke(review, [str(desk["video"]), "--tracks", str(folder / "film.zh.srt"),
                                         str(folder / "film.en.srt"), "-o", str(out),
                                         "--config", str(folder / "project.toml")])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [str(out), str(tmp_path / "film.proxy.mp4")]
    assert [t["name"] for t in read_page_data(out)["tracks"]] == ["film.zh.srt", "film.en.srt"]


def test_cli_missing_video_is_one_error_line(tmp_path: Path) -> None:
    result = CliRunner().invoke(review, [str(tmp_path / "nope.mp4")])
    assert result.exit_code == 2
    assert result.stderr == f"Error: {tmp_path / 'nope.mp4'} does not exist\n"


def test_untranscribed_speech_is_a_row_the_sign_off_must_close(browser_context, desk: dict[str, Path]) -> None:
    from subpipe.review import build_page, load_tracks

    paths = [desk["folder"] / name for name in ("film.ur.srt", "film.zh.srt")]
    page_path = desk["folder"] / "film.gaps.review.html"
    page_path.write_text(build_page("film.ts", "film.proxy.mp4", load_tracks(paths), {}, None,
                                    gaps=[(5.0, 7.5)]), encoding="utf-8")
    watched = Watched(browser_context, page_path.as_uri())
    page = watched.page
    gap = page.locator('td.gap[data-gap="1"]')
    assert "2.5 s of speech has no subtitle" in gap.inner_text()
    assert page.locator("#counts").inner_text().endswith("1 of 1 stretches of speech with no subtitle open")
    # All cues approved: the sign-off still fails while the gap is open.
    for code in ("ur", "zh"):
        for n in range(1, 5):
            watched.cell(code, n).locator("button.approve").click()
    notes = desk["folder"] / "gaps.review-notes.json"
    notes.write_text(page.locator("#export").input_value(), encoding="utf-8")
    held = CliRunner().invoke(review, ["--notes", str(notes), str(page_path)])
    assert held.exit_code == 1
    assert held.stdout.startswith("untranscribed speech 00:00:05,000 to 00:00:07,500: pending")
    gap.locator("button.approve").click()
    assert "approved" in gap.get_attribute("class")
    assert page.locator("#counts").inner_text().endswith("0 of 1 stretches of speech with no subtitle open")
    notes.write_text(page.locator("#export").input_value(), encoding="utf-8")
    assert CliRunner().invoke(review, ["--notes", str(notes), str(page_path)]).exit_code == 0
    assert watched.errors == []
    page.close()
