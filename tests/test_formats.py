"""Subtitle formats: each file subpipe writes is read back by a client subpipe did not
write (Chromium for WebVTT), every format file is one of a run's outputs, and each
format's reader gives back what its composer wrote.

One real run (tiny random-weight Whisper and MarianMT) is shared by the module; the
browser checks need Debian's Chromium and Playwright, as tests/test_review.py does.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

import pytest
import srt
from click.testing import CliRunner, Result
from hypothesis import given, settings
from hypothesis import strategies as st

from subpipe.batch.jobs import Job
from subpipe.batch.worker import request_of
from subpipe.cli import main
from subpipe.config import load_config
from subpipe.fonts import fonts_folder
from subpipe.formats import FORMATS, ass, format_of, ttml, vtt
from subpipe.formats.base import Delivery
from subpipe.formats.names import split_track
from subpipe.formats.srt import laid_out
from subpipe.script import shown
from subpipe.types import Cue, Track

REPO = Path(__file__).resolve().parent.parent
GOLDEN = REPO / "tests" / "golden" / "formats"
ARTIFACTS = REPO / "artifacts"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
INSTALL_HINT = ("apt-get install -y chromium  and  .venv/bin/pip install playwright==1.65.2"
                " (never 'playwright install': the tests use Debian's Chromium)")
ORIGIN = "http://subpipe.test"  # served by the test itself (page.route): no network
CODES = ["ur", "zh", "en", "ur-zh", "ur-en"]
EXTENSIONS = ["srt", "vtt", "ass", "ttml", "ebu-tt-d.ttml"]
RLE, PDF = "\u202b", "\u202c"

# Hand-made cues for what a random model can't say: an Urdu line that starts with a Latin
# name and ends with neutral punctuation (right-to-left only if the file says so), and
# a Mandarin line with full-width punctuation.
UR = [("PTV کی خبریں، نو بجے!",), ("یہ دوسرا جملہ ہے۔", "اور یہ تیسرا!")]
ZH = [("巴基斯坦电视台新闻！",), ("这是第二句话，", "还有第三句。")]
EN = [("PTV news at nine!",), ("This is <the> second & line,", "and the third.")]
TIMES = [(0.5, 2.52), (3.04, 5.7)]


def invoke(*args: str | Path) -> Result:
    return CliRunner().invoke(main, [str(a) for a in args])


def made_tracks() -> dict[str, Track]:
    """The hand-made tracks as a run writes them (Urdu marked), with their bilingual pairs."""
    from subpipe.bilingual import bilingual_tracks

    plain = {lang: Track(lang, tuple(Cue(a, b, lines) for (a, b), lines in zip(TIMES, texts)))
             for lang, texts in (("ur", UR), ("zh", ZH), ("en", EN))}
    written = {lang: laid_out(track, "rle") for lang, track in plain.items()}
    written.update(bilingual_tracks(written, ["ur-zh", "ur-en"]))
    return written


def srt_cues(path: Path) -> list[tuple[int, int, str]]:
    """(start ms, end ms, text) of each cue of an SRT, as the ``srt`` library reads it."""
    return [(round(s.start.total_seconds() * 1000), round(s.end.total_seconds() * 1000), s.content)
            for s in srt.parse(path.read_text(encoding="utf-8"))]


@pytest.fixture(scope="module")
def marian_config(tmp_path_factory: pytest.TempPathFactory, tiny_models: dict[str, Path], tiny_asr: str) -> Path:
    models = "\n".join(f'"{pair}" = "{path}"' for pair, path in tiny_models.items())
    path = tmp_path_factory.mktemp("config") / "marian.toml"
    path.write_text(tiny_asr + "[vad]\nenabled = false\n"
                    f"[translate]\nmax_new_tokens = 8\n[translate.models]\n{models}\n")
    return path


@pytest.fixture(scope="module")
def ran(media: Path, marian_config: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """One real run into every format: Urdu, translated into Mandarin and English."""
    out = tmp_path_factory.mktemp("ran")
    shutil.copy(media / "tone.mkv", out / "film.mkv")
    args = ("run", out / "film.mkv", "--lang", "ur", "--to", "zh,en", "--config", marian_config)
    result = invoke(*args, "--format", "srt,vtt,ass,ttml,ebu-tt-d")
    assert result.exit_code == 0, result.stderr
    return {"out": out, "args": args, "stdout": result.stdout,
            "bytes": {p.name: p.read_bytes() for p in out.iterdir() if split_track(p.name)}}


# ---- the run's outputs -----------------------------------------------------------------

def test_every_format_file_is_an_output_in_the_manifest(ran: dict) -> None:
    out = ran["out"]
    expected = [out / f"film.{code}.{ext}" for code in CODES for ext in EXTENSIONS]
    assert sorted(ran["stdout"].split()) == sorted(map(str, expected))
    manifest = json.loads((out / "film.subpipe.json").read_text())
    assert sorted(manifest["files"]) == sorted(p.name for p in expected)
    for path in expected:
        assert manifest["files"][path.name]["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert not [p.name for p in out.iterdir() if p.name.endswith(".tmp")]


def test_output_formats_setting_gives_the_same_bytes_and_an_edit_is_refused(ran: dict, marian_config: Path,
                                                                            tmp_path: Path) -> None:
    config = tmp_path / "formats.toml"
    config.write_text(marian_config.read_text() + '[output]\nformats = ["srt", "vtt", "ass", "ttml", "ebu-tt-d"]\n')
    args = [a if a != marian_config else config for a in ran["args"]]
    result = invoke(*args)
    assert result.exit_code == 0, result.stderr
    out = ran["out"]
    assert {name: (out / name).read_bytes() for name in ran["bytes"]} == ran["bytes"]
    edited = out / "film.zh.vtt"
    edited.write_bytes(ran["bytes"]["film.zh.vtt"] + b"\n")
    try:
        result = invoke(*args)
        assert result.exit_code == 3
        assert "film.zh.vtt was changed since subpipe wrote it" in result.stderr
    finally:
        edited.write_bytes(ran["bytes"]["film.zh.vtt"])


def test_an_unknown_format_is_a_usage_error(media: Path, tmp_path: Path) -> None:
    result = invoke("run", media / "tone.wav", "--format", "srt,docx", "--out", tmp_path)
    assert result.exit_code == 2
    assert "Invalid value for '--format': 'docx' is not one of srt, vtt, ass, ttml, ebu-tt-d" in result.stderr
    assert not list(tmp_path.iterdir())


def test_batch_format_flag_reaches_each_film() -> None:
    request, config = request_of(Job(Path("film.mkv"), "ur", formats=("vtt", "srt")))
    assert config.output.formats == ("vtt", "srt")
    assert request_of(Job(Path("film.mkv"), "ur"))[1].output.formats == ("srt",)


def test_translate_writes_every_format_but_never_the_editors_srt(marian_config: Path, tmp_path: Path) -> None:
    source = tmp_path / "film.ur.srt"
    source.write_text(FORMATS["srt"].compose(made_tracks()["ur"], Delivery()), encoding="utf-8")
    before = source.read_bytes()
    result = invoke("translate", source, "--to", "en", "--format", "srt,vtt", "--config", marian_config)
    assert result.exit_code == 0, result.stderr
    names = [Path(line).name for line in result.stdout.split()]
    assert names == ["film.ur.vtt", "film.en.srt", "film.en.vtt", "film.ur-en.srt", "film.ur-en.vtt"]
    assert source.read_bytes() == before


# ---- export ---------------------------------------------------------------------------

def test_export_writes_what_a_run_would_beside_the_track(desk: Path, tmp_path: Path) -> None:
    for code, track in made_tracks().items():
        source = tmp_path / f"film.{code}.srt"
        shutil.copy(desk / source.name, source)
        result = invoke("export", source, "--format", "vtt")
        assert result.exit_code == 0, result.stderr
        assert result.stdout == f"{tmp_path / f'film.{code}.vtt'}\n"
        assert (tmp_path / f"film.{code}.vtt").read_text(encoding="utf-8") == vtt.compose(track), code
    manifest = json.loads((tmp_path / "film.subpipe.json").read_text())
    record = manifest["files"]["film.ur-zh.vtt"]
    assert record["backend"] == "export" and record["settings"]["source"] == "film.ur-zh.srt"


def test_export_keeps_the_overwrite_rules(desk: Path, tmp_path: Path) -> None:
    source = tmp_path / "film.zh.srt"
    shutil.copy(desk / source.name, source)
    assert invoke("export", source, "--format", "vtt").exit_code == 0
    assert invoke("export", source, "--format", "vtt").exit_code == 0  # its own, unchanged: replaced
    written = tmp_path / "film.zh.vtt"
    written.write_text(written.read_text(encoding="utf-8") + "\n", encoding="utf-8")
    result = invoke("export", source, "--format", "vtt")
    assert result.exit_code == 3 and "film.zh.vtt was changed since subpipe wrote it" in result.stderr
    assert invoke("export", source, "--format", "vtt", "--force").exit_code == 0


@pytest.mark.parametrize("name, extra, message", [
    ("notes.srt", (), "can't tell the language of notes.srt: name it <film>.<lang>.srt or give --lang"),
    ("film.zh.srt", ("--lang", "ur"), "film.zh.srt is named as a zh track, but --lang says ur"),
    ("notes.srt", ("--lang", "ur-ur"), "--lang ur-ur: give ur, zh, en or a pair such as ur-zh"),
    ("film.zh.srt", ("--format", "srt"), "Invalid value for '--format': 'srt' is not one of vtt"),
    ("missing.zh.srt", (), "missing.zh.srt does not exist"),
])
def test_export_usage_errors(desk: Path, tmp_path: Path, name: str, extra: tuple[str, ...], message: str) -> None:
    if name != "missing.zh.srt":
        shutil.copy(desk / "film.zh.srt", tmp_path / name)
    result = invoke("export", tmp_path / name, *(extra if "--format" in extra else ("--format", "vtt", *extra)))
    assert result.exit_code == 2
    assert message in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ([] if name == "missing.zh.srt" else [name])


def test_export_takes_the_language_from_lang(desk: Path, tmp_path: Path) -> None:
    shutil.copy(desk / "film.ur-zh.srt", tmp_path / "notes.srt")
    result = invoke("export", tmp_path / "notes.srt", "--lang", "ur-zh", "--format", "vtt", "--out", tmp_path / "o")
    assert result.exit_code == 0, result.stderr
    assert (tmp_path / "o" / "notes.ur-zh.vtt").read_text(encoding="utf-8") == vtt.compose(made_tracks()["ur-zh"])


# ---- WebVTT in Chromium ------------------------------------------------------------------

@pytest.fixture(scope="module")
def browser():
    """One headless Chromium for the module, with a profile of its own."""
    if not CHROMIUM.exists():
        pytest.fail(f"Chromium is missing ({CHROMIUM}); the WebVTT tests need it: {INSTALL_HINT}")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail(f"Playwright's Python package is missing: {INSTALL_HINT}")
    profile = tempfile.mkdtemp(prefix="subpipe-chromium-")
    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(profile, executable_path=str(CHROMIUM), headless=True,
                                                        args=CHROMIUM_ARGS)
        context.set_default_timeout(15_000)
        yield context
        context.close()
    shutil.rmtree(profile, ignore_errors=True)


# Every track loaded into a <video>, then each cue as the browser has it: times in ms, the
# text of its HTML (a <br> per line break), the languages of its spans, and for each line
# whether its logical end is drawn left of its start (right-to-left).
_READ_TRACKS = """async () => {
  const video = document.querySelector('video');
  await Promise.all([...video.querySelectorAll('track')].map(t => new Promise((ok, bad) => {
    t.addEventListener('load', ok); t.addEventListener('error', () => bad(new Error('no load: ' + t.src)));
    t.track.mode = 'hidden'; if (t.readyState === 2) ok();
  })));
  const box = document.getElementById('box');
  const text = node => [...node.childNodes].map(n => n.nodeName === 'BR' ? '\\n'
      : n.nodeType === 3 ? n.data : text(n)).join('');
  const marks = /[\u200e\u200f\u202a-\u202e\u2066-\u2069]/;  // invisible: not measured
  const ends = node => {
    const t = node.firstChild, r = document.createRange(), at = i => {
      r.setStart(t, i); r.setEnd(t, i + 1); return r.getBoundingClientRect(); };
    let i = 0, j = t.length - 1;
    while (marks.test(t.data[i])) i++;
    while (marks.test(t.data[j])) j--;
    return at(j).right <= at(i).left;
  };
  return [...video.querySelectorAll('track')].map(t => [...t.track.cues].map(cue => {
    box.replaceChildren(cue.getCueAsHTML());
    const spans = [...box.querySelectorAll('[lang]')];
    return {start: Math.round(cue.startTime * 1000), end: Math.round(cue.endTime * 1000), text: text(box),
            langs: spans.map(s => s.lang), rtl: spans.map(ends)};
  }));
}"""


def browser_cues(context, files: dict[str, Path]) -> dict[str, list[dict]]:  # noqa: ANN001 - Playwright's
    """Each WebVTT of ``files`` (by name) as Chromium reads it, loaded as a <track>."""
    tracks = "".join(f'<track kind="subtitles" src="/{name}" srclang="{split_track(name)[1].split("-")[0]}">'
                     for name in files)
    page_html = (f'<!doctype html><meta charset="utf-8"><video>{tracks}</video>'
                 '<div id="box" style="unicode-bidi: plaintext; white-space: pre-line; font-size: 40px"></div>')
    page = context.new_page()

    def serve(route) -> None:  # noqa: ANN001
        name = route.request.url.removeprefix(ORIGIN + "/")
        if name in files:
            route.fulfill(body=files[name].read_bytes(), content_type="text/vtt; charset=utf-8")
        else:
            route.fulfill(body=page_html, content_type="text/html; charset=utf-8")

    page.route(f"{ORIGIN}/**", serve)
    try:
        page.goto(f"{ORIGIN}/")
        return dict(zip(files, page.evaluate(_READ_TRACKS)))
    finally:
        page.close()


def assert_same_as_srt(cues: list[dict], srt_path: Path) -> None:
    expected = srt_cues(srt_path)
    assert len(cues) == len(expected), srt_path.name
    for number, (cue, (start, end, text)) in enumerate(zip(cues, expected), start=1):
        assert (cue["start"], cue["end"], cue["text"]) == (start, end, text), (srt_path.name, number)


def test_chromium_reads_the_runs_webvtt_as_its_srt(browser, ran: dict) -> None:
    out = ran["out"]
    files = {f"film.{code}.vtt": out / f"film.{code}.vtt" for code in CODES}
    read = browser_cues(browser, files)
    for name, cues in read.items():
        assert_same_as_srt(cues, out / name.replace(".vtt", ".srt"))
    assert read["film.ur.vtt"], "the tiny model's output should make at least one cue"
    assert all(cue["langs"] == ["ur"] * len(cue["langs"]) and cue["langs"] for cue in read["film.ur.vtt"])


@pytest.fixture(scope="module")
def desk(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The hand-made tracks as an editor's SRTs."""
    folder = tmp_path_factory.mktemp("desk")
    for code, track in made_tracks().items():
        (folder / f"film.{code}.srt").write_text(FORMATS["srt"].compose(track, Delivery()), encoding="utf-8")
    return folder


def test_chromium_reads_language_and_urdu_direction(browser, desk: Path, tmp_path: Path) -> None:
    files = {}
    for code in made_tracks():
        result = invoke("export", desk / f"film.{code}.srt", "--format", "vtt", "--out", tmp_path)
        assert result.exit_code == 0, result.stderr
        assert result.stdout == f"{tmp_path / f'film.{code}.vtt'}\n"
        files[f"film.{code}.vtt"] = tmp_path / f"film.{code}.vtt"
    read = browser_cues(browser, files)
    for name, cues in read.items():
        assert_same_as_srt(cues, desk / name.replace(".vtt", ".srt"))
    assert [c["langs"] for c in read["film.ur-zh.vtt"]] == [["ur", "zh-Hans"], ["ur", "ur", "zh-Hans", "zh-Hans"]]
    assert [c["langs"] for c in read["film.zh.vtt"]] == [["zh-Hans"], ["zh-Hans", "zh-Hans"]]
    # Each Urdu line ends at its left, its "!" there too, though the first starts with "PTV".
    assert [c["rtl"] for c in read["film.ur.vtt"]] == [[True], [True, True]]
    assert [c["rtl"][:1] for c in read["film.ur-en.vtt"]] == [[True], [True]]
    assert [c["rtl"] for c in read["film.en.vtt"]] == [[False], [False, False]]


# ---- TTML through ttconv ------------------------------------------------------------------

def ttconv_doc(path: Path):  # noqa: ANN201 - ttconv's ContentDocument
    import xml.etree.ElementTree as ET

    from ttconv.imsc.reader import to_model

    return to_model(ET.parse(path))


def ttconv_cues(doc) -> tuple[list[int], dict[int, list[str]]]:  # noqa: ANN001
    """What ttconv shows, as it would present it: the times (ms) at which the screen
    changes, and the lines on screen from each of those times."""
    import ttconv.model as model
    from ttconv.isd import ISD

    changes, screens = [], {}
    for offset, isd in ISD.generate_isd_sequence(doc):
        ms = round(offset * 1000)
        changes.append(ms)
        lines = []
        for region in isd.iter_regions():
            for p in (e for e in region.dfs_iterator() if isinstance(e, model.P)):
                line = ""
                for e in p.dfs_iterator():
                    if isinstance(e, model.Br):
                        lines.append(line)
                        line = ""
                    elif isinstance(e, model.Text):
                        line += e.get_text()
                lines.append(line)
        screens[ms] = lines
    return changes, screens


def assert_ttconv_shows_the_srt(doc, srt_path: Path) -> None:  # noqa: ANN001
    expected = srt_cues(srt_path)
    changes, screens = ttconv_cues(doc)
    assert set(changes) - {0} == {t for a, b, _ in expected for t in (a, b)} - {0}, srt_path.name
    for start, end, text in expected:
        assert screens[start] == [shown(line) for line in text.split("\n")], (srt_path.name, start)


def styles_of(root, element) -> dict[str, str]:  # noqa: ANN001
    """The tts:* attributes an element gets from the styles it names, in order."""
    by_id = {s.get(f"{{{ttml.XML}}}id"): s for s in root.iter(f"{{{ttml.TT}}}style")}
    found: dict[str, str] = {}
    for name in element.get("style", "").split():
        found.update({k.split("}")[1]: v for k, v in by_id[name].attrib.items() if k.startswith(f"{{{ttml.TTS}}}")})
    return found


def test_ttconv_reads_each_ttml_as_its_srt_and_passes_imsc_11_text(ran: dict) -> None:
    import xml.etree.ElementTree as ET

    from ttconv.filters.doc.imsc11text import IMSC11TextFilter

    out = ran["out"]
    for code in CODES:
        for ext in ("ttml", "ebu-tt-d.ttml"):
            path = out / f"film.{code}.{ext}"
            doc = ttconv_doc(path)
            assert_ttconv_shows_the_srt(doc, out / f"film.{code}.srt")
            IMSC11TextFilter().process(doc)  # raises on the first constraint broken
        root = ET.parse(out / f"film.{code}.ttml").getroot()
        assert root.get(f"{{{ttml.TTP}}}contentProfiles") == ttml.IMSC_11_TEXT
        assert root.get(f"{{{ttml.TTP}}}frameRate") == "25"  # the film's
        assert root.get(f"{{{ttml.XML}}}lang") == {"zh": "zh-Hans"}.get(code[:2], code[:2])


def test_ttml_says_each_paragraphs_language_and_urdus_direction(desk: Path, tmp_path: Path) -> None:
    import xml.etree.ElementTree as ET

    for code in made_tracks():
        result = invoke("export", desk / f"film.{code}.srt", "--format", "ttml,ebu-tt-d", "--out", tmp_path)
        assert result.exit_code == 0, result.stderr
        assert result.stdout.split() == [str(tmp_path / f"film.{code}.{ext}") for ext in ("ttml", "ebu-tt-d.ttml")]
        for ext in ("ttml", "ebu-tt-d.ttml"):
            path = tmp_path / f"film.{code}.{ext}"
            assert_ttconv_shows_the_srt(ttconv_doc(path), desk / f"film.{code}.srt")
            root = ET.parse(path).getroot()
            paragraphs = list(root.iter(f"{{{ttml.TT}}}p"))
            langs = [p.get(f"{{{ttml.XML}}}lang") for p in paragraphs]
            if "-" in code:
                tags = [{"zh": "zh-Hans"}.get(x, x) for x in code.split("-")]
                assert langs == tags * 2, (code, langs)  # a p per language, source first
            else:
                assert set(langs) == {None}  # the document's
            for p, lang in zip(paragraphs, langs):
                urdu = (lang or root.get(f"{{{ttml.XML}}}lang")) == "ur"
                for element in [p, *p.iter(f"{{{ttml.TT}}}span")]:
                    style = styles_of(root, element)
                    assert (style.get("direction"), style.get("unicodeBidi")) == (("rtl", "embed") if urdu
                                                                                 else (None, None))
            assert "\u202b" not in path.read_text(encoding="utf-8")  # direction is TTML's, not marks


def test_ebu_tt_d_keeps_its_constraints(ran: dict) -> None:
    """What EBU-TT-D (Tech 3380) asks beyond TTML that can be checked offline."""
    import re
    import xml.etree.ElementTree as ET

    for code in CODES:
        root = ET.parse(ran["out"] / f"film.{code}.ebu-tt-d.ttml").getroot()
        assert root.get(f"{{{ttml.TTP}}}timeBase") == "media" and root.get(f"{{{ttml.TTP}}}frameRate") is None
        standard = root.find(f".//{{{ttml.EBUTTM}}}documentMetadata/{{{ttml.EBUTTM}}}conformsToStandard")
        assert standard is not None and standard.text == "urn:ebu:tt:distribution:2018-04"
        for element in root.find(f"{{{ttml.TT}}}body").iter():
            # Styled by reference only, never inline on content.
            assert not [k for k in element.attrib if k.startswith(f"{{{ttml.TTS}}}")], element.tag
        for p in root.iter(f"{{{ttml.TT}}}p"):
            assert p.get(f"{{{ttml.XML}}}id") and not (p.text or "").strip()
            assert {c.tag for c in p} <= {f"{{{ttml.TT}}}span", f"{{{ttml.TT}}}br"}
            assert all(re.fullmatch(r"\d{2}:\d{2}:\d{2}\.\d{3}", p.get(t)) for t in ("begin", "end"))
        for region in root.iter(f"{{{ttml.TT}}}region"):
            assert region.get(f"{{{ttml.TTS}}}origin").endswith("%")
            assert region.get(f"{{{ttml.TTS}}}extent").endswith("%")


@pytest.mark.parametrize("fps, rate, multiplier", [(25.0, "25", None), (30000 / 1001, "30", "1000 1001"),
                                                   (24000 / 1001, "24", "1000 1001"), (50.0, "50", None)])
def test_ttml_frame_rate_is_the_films(fps: float, rate: str, multiplier: str | None) -> None:
    import xml.etree.ElementTree as ET

    root = ET.fromstring(ttml.compose_imsc(made_tracks()["zh"], Delivery(fps=fps)).encode())
    assert (root.get(f"{{{ttml.TTP}}}frameRate"), root.get(f"{{{ttml.TTP}}}frameRateMultiplier")) == (rate, multiplier)


# ---- ASS through libass (ffmpeg) -----------------------------------------------------------

# A plain picture the scripts are made for and drawn over: libass's output is the only
# thing that changes a frame. The references are this machine's drawings (Debian 12's
# libass, FriBidi, HarfBuzz and fonts); SUBPIPE_WRITE_GOLDEN=1 writes them again, after a
# look at the frames in artifacts/.
PICTURE = "color=c=0x203040:s=640x360:r=25:d=6"
# Pixels more than this far from the reference (of 255) count as different...
DIFFERENT = 48
# ...and a frame may differ from its reference in this many, for antialiasing that
# another build of FreeType may do otherwise: a moved "!" alone changes several times more.
TOLERANCE = 60


def ffmpeg(*args: str | Path) -> bytes:
    return subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", *map(str, args)], check=True,
                          capture_output=True).stdout


def gray(png: Path) -> np.ndarray:
    return np.frombuffer(ffmpeg("-i", png, "-f", "rawvideo", "-pix_fmt", "gray", "-"), np.uint8).reshape(360, 640)


def draw(script: Path | None, at: float, png: Path) -> np.ndarray:
    """The frame at ``at`` s of the plain picture with ``script`` drawn over it by libass,
    the configured fonts handed over as its fontsdir."""
    fonts = load_config().output.fonts.values()
    with fonts_folder(fonts) as folder:
        drawn = f"ass={script}:fontsdir={folder}" if script else "null"
        ffmpeg("-f", "lavfi", "-i", PICTURE, "-vf", drawn, "-ss", str(at), "-frames:v", "1", png)
    return gray(png)


@pytest.fixture(scope="module")
def scripts(desk: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The hand-made tracks exported as ASS for a 640x360 film."""
    folder = tmp_path_factory.mktemp("ass")
    film = folder / "picture.mp4"
    ffmpeg("-f", "lavfi", "-i", PICTURE, "-t", "1", "-c:v", "libx264", "-pix_fmt", "yuv420p", film)
    for code in made_tracks():
        result = invoke("export", desk / f"film.{code}.srt", "--format", "ass", "--video", film, "--out", folder)
        assert result.exit_code == 0, result.stderr
    return folder


def middle(cue: int) -> float:
    start, end = TIMES[cue - 1]
    return (start + end) / 2


@pytest.mark.parametrize("code, cue", [("zh", 1), ("ur", 1), ("ur-zh", 2)])
def test_libass_draws_each_script_as_its_reference(scripts: Path, tmp_path: Path, code: str, cue: int) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / f"ass-{code}.png"
    frame = draw(scripts / f"film.{code}.ass", middle(cue), shot).astype(int)
    plain = draw(None, middle(cue), tmp_path / "plain.png").astype(int)
    changed = np.abs(frame - plain) > DIFFERENT
    rows = np.flatnonzero(changed.any(axis=1))
    assert changed.sum() > 150, "nothing drawn"
    # Drawn in the lower part of the picture, above the bottom margin (8 % of 360 px).
    assert rows.min() >= 360 // 2 and rows.max() <= 360 - 360 * 0.08, (rows.min(), rows.max())
    golden = GOLDEN / f"ass-{code}.png"
    if os.environ.get("SUBPIPE_WRITE_GOLDEN"):
        GOLDEN.mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, golden)
    different = int((np.abs(frame - gray(golden)) > DIFFERENT).sum())
    assert different <= TOLERANCE, f"{shot} differs from {golden} in {different} pixels"


def test_urdu_punctuation_on_the_wrong_side_fails_the_reference(tmp_path: Path) -> None:
    """The reference comparison sees what it is there for: without its direction marks,
    the Urdu line that starts with "PTV" runs left to right and its "!" lands on the right."""
    track = Track("ur", tuple(Cue(a, b, lines) for (a, b), lines in zip(TIMES, UR)))
    script = tmp_path / "film.ur.ass"
    script.write_text(ass.compose(track, Delivery(width=640, height=360, fonts=dict(load_config().output.fonts),
                                                  font_scale=dict(load_config().output.font_scale))))
    frame = draw(script, middle(1), tmp_path / "wrong.png").astype(int)
    assert (np.abs(frame - gray(GOLDEN / "ass-ur.png")) > DIFFERENT).sum() > 3 * TOLERANCE


def test_ass_names_the_films_size_and_the_fonts_of_its_scripts(scripts: Path) -> None:
    text = (scripts / "film.ur-zh.ass").read_text(encoding="utf-8")
    assert "PlayResX: 640\nPlayResY: 360\n" in text and "Language: ur\n" in text
    styles = {line.split(",")[0][len("Style: "):]: line.split(",") for line in text.splitlines()
              if line.startswith("Style: ")}
    assert (styles["ur"][1], styles["ur"][-1]) == ("Awami Nastaliq", "-1")
    assert (styles["zh"][1], styles["zh"][-1]) == ("WenQuanYi Zen Hei", "1")
    # The target smaller than the source would be on its own: the house size times 0.75.
    assert float(styles["zh"][2]) == pytest.approx(360 * ass.HOUSE_SIZE * 0.75)


# ---- check on every format ----------------------------------------------------------------

# Cues that break the rules every way a file's cues can: too short and too fast, too
# close to the next, too long a line, overlapping, too long on screen, three lines.
FAULTY = {
    "zh": [("巴基斯坦电视台新闻",), ("这一行字幕实在是太长了远远超过了十六个字的限制",), ("一", "二", "三")],
    "ur": [("پی ٹی وی کی خبریں اور تازہ ترین حالات",), ("یہ سطر بہت لمبی ہے اور بیالیس حروف سے کہیں زیادہ لمبی ہے",),
           ("ایک", "دو", "تین")],
    "en": [("PTV news and the latest on the weather",),
           ("This line is far too long for the forty-two character limit",), ("one", "two", "three")],
}
FAULTY_TIMES = [(1.0, 1.5), (1.52, 4.0), (3.9, 12.0)]


def report_lines(path: Path) -> list[str]:
    from subpipe import check

    report = check.check_file(path, load_config().rules)
    assert check.exit_status(report) != 2, check.format_text(report)
    return [f"{report.lang} {report.cue_count}"] + check.format_text(report).splitlines()[1:]


def test_check_finds_in_every_format_what_it_finds_in_the_srt(tmp_path: Path) -> None:
    from subpipe.bilingual import bilingual_tracks

    plain = {lang: Track(lang, tuple(Cue(a, b, lines) for (a, b), lines in zip(FAULTY_TIMES, texts)))
             for lang, texts in FAULTY.items()}
    tracks = {lang: laid_out(track, "rle") for lang, track in plain.items()}
    tracks.update(bilingual_tracks(tracks, ["ur-zh", "zh-en"]))
    for code, track in tracks.items():
        source = tmp_path / f"film.{code}.srt"
        source.write_text(FORMATS["srt"].compose(track, Delivery()), encoding="utf-8")
        result = invoke("export", source, "--format", "vtt,ass,ttml,ebu-tt-d")
        assert result.exit_code == 0, result.stderr
        expected = report_lines(source)
        assert len(expected) > 5, expected  # every cue breaks a rule
        for ext in EXTENSIONS[1:]:
            assert report_lines(tmp_path / f"film.{code}.{ext}") == expected, (code, ext)


def test_check_on_the_runs_files(ran: dict) -> None:
    out = ran["out"]
    for code in CODES:
        expected = report_lines(out / f"film.{code}.srt")
        for ext in ("vtt", "ttml", "ebu-tt-d.ttml"):
            assert report_lines(out / f"film.{code}.{ext}") == expected, (code, ext)


def test_check_cli_reads_webvtt(desk: Path, tmp_path: Path) -> None:
    assert invoke("export", desk / "film.zh.srt", "--format", "vtt", "--out", tmp_path).exit_code == 0
    result = invoke("check", tmp_path / "film.zh.vtt")
    assert result.exit_code == 0, result.stdout
    assert result.stdout.splitlines() == [f"{tmp_path / 'film.zh.vtt'}: 2 cues, language zh (assumed from the text),"
                                          " 25 fps", "no problems found"]


# ---- composing and reading ---------------------------------------------------------------

LINES = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc", "Cn", "Zl", "Zp")), min_size=1,
                max_size=30).filter(lambda s: s.strip() and shown(s).strip() == s.strip() and "\u2028" not in s)


@st.composite
def tracks(draw, centiseconds: bool = False) -> Track:  # noqa: ANN001
    cues, start, step = [], 0.0, 10 if centiseconds else 1
    for _ in range(draw(st.integers(0, 5))):
        start += draw(st.integers(0, 500)) * step / 1000
        end = start + draw(st.integers(1, 700)) * step / 1000
        cues.append(Cue(round(start, 3), round(end, 3), tuple(s.strip() for s in draw(st.lists(LINES, min_size=1,
                                                                                               max_size=3)))))
    return Track(draw(st.sampled_from(["zh", "en"])), tuple(cues))


@settings(max_examples=100, deadline=None)
@given(tracks())
def test_ttml_gives_back_what_it_was_given(track: Track) -> None:
    import re

    for compose in (ttml.compose_imsc, ttml.compose_ebu_tt_d):
        text = compose(track)
        parsed = ttml.read_bytes(text.encode("utf-8"))
        assert parsed.problems == ()
        assert [(e.start, e.end, e.lines) for e in parsed.cues] == \
            [(c.start, c.end, tuple(re.sub("[ ]+", " ", line) for line in c.lines)) for c in track.cues]
        assert format_of(text.encode("utf-8")).name == "ttml"


@settings(max_examples=100, deadline=None)
@given(tracks(centiseconds=True))
def test_ass_gives_back_what_it_was_given(track: Track) -> None:
    text = ass.compose(track)
    parsed = ass.read_bytes(text.encode("utf-8"))
    assert parsed.problems == ()
    literal = str.maketrans({"{": "\uff5b", "}": "\uff5d", "\\": "\uff3c"})
    assert [(e.start, e.end, e.lines) for e in parsed.cues] == \
        [(c.start, c.end, tuple(line.translate(literal) for line in c.lines)) for c in track.cues]
    assert format_of(text.encode("utf-8")).name == "ass"


@pytest.mark.parametrize("event, message", [
    ("Dialogue: 0,0:00:01.00,0:00:02,Default,,0,0,0,,x", "end '0:00:02' is not a timestamp (H:MM:SS.cc)"),
    ("Dialogue: 0,0:00:61.00,0:00:62.00,Default,,0,0,0,,x", "minutes and seconds run 00-59"),
    ("Dialogue: 0,0:00:01.00,0:00:02.00", "a Dialogue line with 3 of its 10 fields; event skipped"),
])
def test_ass_reader_names_each_defect(event: str, message: str) -> None:
    parsed = ass.read_bytes(f"[Script Info]\nScriptType: v4.00+\n\n[Events]\n{event}\n".encode())
    assert [f.message for f in parsed.problems if message in f.message], parsed.problems


def test_ass_reader_takes_what_a_viewer_sees() -> None:
    script = ("[Script Info]\nWrapStyle: 0\n\n[Events]\nFormat: Layer, Start, End, Style, Text\n"
              "Dialogue: 0,0:00:01.00,0:00:03.00,zh,{\\an8}上面{\\i1}的{\\i0}字\\N第二\\h行\\n半\n"
              "Dialogue: 0,0:00:01.00,0:00:03.00,en,the, English\n"
              "Comment: 0,0:00:04.00,0:00:05.00,zh,not shown\n")
    parsed = ass.read_bytes(script.encode())
    # Two events of two styles at the same times: one bilingual cue, as a release shows it.
    assert [(e.start, e.end, e.lines) for e in parsed.cues] == \
        [(1.0, 3.0, ("上面的字", "第二\u00a0行 半", "the, English"))]


@settings(max_examples=150, deadline=None)
@given(tracks())
def test_webvtt_gives_back_what_it_was_given(track: Track) -> None:
    text = vtt.compose(track)
    parsed = vtt.read_bytes(text.encode("utf-8"))
    assert parsed.problems == ()
    assert [(e.start, e.end, tuple(map(shown, e.lines))) for e in parsed.cues] == \
        [(c.start, c.end, c.lines) for c in track.cues]
    assert format_of(text.encode("utf-8")).name == "vtt"


def test_webvtt_escapes_text_and_keeps_an_editors_italics() -> None:
    track = Track("en", (Cue(1.0, 2.0, ("a <x> & --> c", "<i>so</i> <font color=red>red</font>{\\an8}")),))
    assert vtt.compose(track).split("\n")[4:6] == ["<lang en>a &lt;x&gt; &amp; --&gt; c</lang>",
                                                   "<lang en><i>so</i> red</lang>"]


@pytest.mark.parametrize("body, message", [
    ("1\n00:01.000 -> 00:02.000\nx", "expected a timing line, found '1'; block skipped"),
    ("00:00:01,000 --> 00:00:02.000\nx", "'00:00:01,000' is not a timestamp (hh:mm:ss.ttt)"),
    ("00:1:01.000 --> 00:00:02.000\nx", "timestamp '00:1:01.000': minutes need 2 digits"),
    ("00:61.000 --> 01:02.500\nx", "timestamp '00:61.000': seconds 61 out of range 00-59"),
    ("00:01.000 --> 01:02.5\nx", "timestamp '01:02.5': milliseconds need 3 digits"),
    ("00:01.000-->00:02.000\nx", "the arrow needs a space on each side"),
])
def test_webvtt_reader_names_each_defect(body: str, message: str) -> None:
    parsed = vtt.read_bytes(f"WEBVTT\n\n{body}\n".encode())
    assert any(message in f.message for f in parsed.problems), parsed.problems


def test_webvtt_without_its_header_is_unreadable() -> None:
    from subpipe.formats.base import Unreadable

    with pytest.raises(Unreadable, match="no WEBVTT header"):
        vtt.read_bytes(b"WEBVTTX\n\n00:01.000 --> 00:02.000\nx\n")
