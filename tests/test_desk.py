"""``subpipe review --edit``: the editor's desk in a real browser (Debian's Chromium),
on one real run of the 22 s Mandarin sample (faster-whisper, the base weights) with a
tiny random-weight MarianMT for zh -> en.

The tests share the run and the server, and follow an editor's day in file order:
the gate, a rejected bad save, re-translation after a source edit, editing and
saving, a stale save, hostile text, sign-off, then a later run that refuses the
edited tracks.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from click.testing import CliRunner

sys.path.insert(0, str(Path(__file__).resolve().parent))  # marian_tiny, whatever the import mode

from children import stop_signals_default  # noqa: E402
from test_review import REPO, chromium  # noqa: E402

from subpipe.cli import main  # noqa: E402
from subpipe.config import load_config  # noqa: E402
from subpipe.desk import open_desk  # noqa: E402
from subpipe.desk_server import DeskServer  # noqa: E402
from subpipe.formats.srt import read_track  # noqa: E402
from subpipe.translate.sentences import sentences  # noqa: E402

HOSTILE = "<script>window.__xss=1</script></textarea><img src=x onerror=window.__xss=2>\u202eevil"


@pytest.fixture(scope="module")
def film(tmp_path_factory: pytest.TempPathFactory, sample_zh: Path) -> dict:
    """One real run with --to en (tiny Marian), and its desk served on 127.0.0.1."""
    from marian_tiny import build_pairs

    folder = tmp_path_factory.mktemp("desk")
    models = build_pairs(tmp_path_factory.mktemp("marian"), ("zh-en",))
    config_path = folder / "project.toml"
    config_path.write_text(f'[translate.models]\n"zh-en" = "{models["zh-en"]}"\n', encoding="utf-8")
    video = folder / "film.mp4"
    shutil.copy(sample_zh, video)
    args = ["run", str(video), "--lang", "zh", "--to", "en", "--backend", "faster-whisper",
            "--config", str(config_path)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.stderr
    desk = open_desk(video, load_config(config_path))
    server = DeskServer(desk)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    yield {"folder": folder, "video": video, "config": config_path, "args": args, "server": server,
           "desk": desk, "url": server.url}
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def browser(film: dict):
    with chromium(30_000, "subpipe-desk-chromium-") as context:
        yield context


class Desk:
    """An editing page, with its console errors and dialogs recorded."""

    def __init__(self, context, url: str):
        self.errors: list[str] = []
        self.page = context.new_page()
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("dialog", lambda d: (self.errors.append("dialog: " + d.message), d.dismiss()))
        self.page.goto(url)
        self.page.wait_for_selector('textarea[data-field="text"]')

    def text(self, track: str, cue: int):
        return self.page.locator(f'td.cue[data-track="{track}"][data-cue="{cue}"] [data-field="text"]')

    def cell(self, track: str, cue: int):
        return self.page.locator(f'td.cue[data-track="{track}"][data-cue="{cue}"]')

    def count(self, track: str) -> int:
        return self.page.locator(f'td.cue[data-track="{track}"]').count()

    def judged(self) -> int:
        return int(self.page.evaluate("Number(document.body.dataset.judged || 0)"))

    def type_into(self, track: str, cue: int, text: str) -> None:
        """Replace a cue's text as an editor would, and wait for the judge's answer."""
        before = self.judged()
        self.text(track, cue).fill(text)
        # The page's CSP admits no eval, so Playwright waits on a selector, not a function.
        self.page.wait_for_selector(f'body[data-judged]:not([data-judged="{before}"])', state="attached")

    def act(self, track: str, cue: int, action: str, **data: str) -> None:
        extra = "".join(f'[data-{k}="{v}"]' for k, v in data.items())
        self.cell(track, cue).locator(f'button[data-action="{action}"]{extra}').click()

    def save(self, expect: str = "saved") -> str:
        self.page.locator('[data-action="save"]').click()
        self.page.wait_for_selector(f'[data-status="{expect}"]')
        return self.page.locator("[data-status]").inner_text()

    def time_of(self, track: str, cue: int) -> str:
        return self.cell(track, cue).locator(".cue-time").inner_text()

    def close(self) -> None:
        self.page.close()


def request(film: dict, path: str, body: dict | None = None, *, token: bool = True,
            host: str | None = None) -> tuple[int, dict]:
    server: DeskServer = film["server"]
    headers = {"Content-Type": "application/json"}
    if token:
        headers["X-Subpipe-Token"] = server.token
    if host:
        headers["Host"] = host
    data = None if body is None else json.dumps(body).encode("utf-8")
    req = urllib.request.Request(f"http://127.0.0.1:{server.port}{path}", data=data, headers=headers)
    try:
        with urllib.request.urlopen(req) as response:
            raw = response.read()
            status = response.status
    except urllib.error.HTTPError as exc:
        raw, status = exc.read(), exc.code
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, {"html": raw.decode("utf-8", "replace")}


def srt_bytes(film: dict, code: str) -> bytes:
    return (film["folder"] / f"film.{code}.srt").read_bytes()


# ---- the pure parts --------------------------------------------------------------------

@pytest.mark.parametrize("text", ["plain", "\u202eevil", "a\x1bb", "<U+0041> stays text", "<U+202E>typed"])
def test_text_shown_on_the_page_comes_back_as_it_was(text: str) -> None:
    from subpipe.formats.srt_strict import shown, unshown

    if "<U+" in text:
        # What an editor types that looks like a hidden control's code: only a control's code turns back.
        assert unshown(text) == text.replace("<U+202E>", "\u202e")
    else:
        assert unshown(shown(text)) == text


def test_a_file_edited_in_review_is_refused_by_a_run(tmp_path: Path) -> None:
    from subpipe.errors import OverwriteRefused
    from subpipe.manifest import EDITED_IN_REVIEW, Manifest

    track = tmp_path / "film.en.srt"
    track.write_text("1\n00:00:01,000 --> 00:00:02,000\nHi.\n", encoding="utf-8")
    manifest = Manifest(tmp_path / "film.subpipe.json")
    manifest.record(track, track.read_text(encoding="utf-8"), model="", backend=EDITED_IN_REVIEW, settings={})
    manifest.save()
    with pytest.raises(OverwriteRefused, match="film.en.srt was edited in review"):
        Manifest(tmp_path / "film.subpipe.json").guard([track], force=False)
    Manifest(tmp_path / "film.subpipe.json").guard([track], force=True)


# ---- the gate --------------------------------------------------------------------------

def test_with_only_whisper_only_sentences_whose_times_changed_are_translated_again(film: dict) -> None:
    """No engine reads Mandarin text here (no MarianMT in the settings, no language model):
    Whisper's speech translation listens to the film again, for the sentences whose times
    changed; a sentence whose text alone changed keeps its translation, and the editor is told."""
    from subpipe.listen import load_transcriber
    from subpipe.retranslate import retranslate
    from subpipe.translate.engine import Hearing
    from subpipe.types import Cue, Track

    config = load_config()
    desk = film["desk"]
    before, english = desk._plain("zh"), desk._plain("en")
    plan = sentences(before, config.translate)
    assert len(plan) >= 2 and len(english.cues) == len(before.cues)
    first, last = plan[0], plan[-1]
    cues = list(before.cues)
    cues[first.first] = Cue(cues[first.first].start, cues[first.first].end, ("改过的字",))
    moved = cues[last.last]
    cues[last.last] = Cue(moved.start, round(moved.end - 0.3, 3), moved.lines)
    source = Track("zh", tuple(cues))
    heard = []

    def listen() -> Hearing:
        heard.append(True)
        return Hearing(True, load_transcriber(config), desk.audio)

    done = retranslate(before, {"zh": source, "en": english}, {}, config, None, listen=listen)
    assert heard == [True] and done.changed == 1
    assert any("only the 1 sentence(s) whose times changed" in notice for notice in done.notices)
    redone = done.tracks["en"]
    assert redone.cues[:last.first] == english.cues[:last.first]  # the text-only change kept its English
    assert [(c.start, c.end) for c in redone.cues[last.first:]] == \
        [(c.start, c.end) for c in source.cues[last.first:]]
    assert all(any(line.strip() for line in c.lines) for c in redone.cues[last.first:])


def test_every_request_needs_the_token_and_this_host(film: dict) -> None:
    assert film["url"].startswith("http://127.0.0.1:") and "?token=" in film["url"]
    assert request(film, "/", token=False)[0] == 403
    assert request(film, "/proxy", token=False)[0] == 403
    assert request(film, "/api/judge", {"track": "zh", "cues": []}, token=False)[0] == 403
    # A DNS-rebinding page reaches the port under its own name.
    assert request(film, "/", host="evil.example:80")[0] == 403
    assert request(film, "/", host=f"evil.example:{film['server'].port}")[0] == 403
    status, answer = request(film, "/")
    assert status == 200 and 'data-action="save"' in answer["html"]
    # No path from a request reaches the file system.
    assert request(film, "/../film.zh.srt")[0] == 404
    assert request(film, "/film.subpipe.json")[0] == 404
    assert request(film, "/api/judge", {"track": "../../etc/passwd", "cues": []})[0] == 400


def test_a_body_past_the_limit_is_refused_unread(film: dict) -> None:
    import http.client

    from subpipe.desk_server import MAX_BODY

    server: DeskServer = film["server"]
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    conn.putrequest("POST", "/api/judge")
    conn.putheader("X-Subpipe-Token", server.token)
    conn.putheader("Content-Length", str(MAX_BODY + 1))
    conn.endheaders()
    assert conn.getresponse().status == 413
    conn.close()


def test_bad_cues_get_a_clear_message_and_nothing_is_written(film: dict) -> None:
    before = {code: srt_bytes(film, code) for code in ("zh", "en", "zh-en")}
    manifest = (film["folder"] / "film.subpipe.json").read_bytes()
    versions = film["desk"]._current()[1]
    cases = [
        ([{"start": 2.0, "end": 1.0, "text": "x"}], "ends before it starts"),
        ([{"start": 1.0, "end": 3.0, "text": "a"}, {"start": 2.0, "end": 4.0, "text": "b"}], "may not overlap"),
        ([{"start": 1.0, "end": 3.0, "text": "a\n\n2\n00:00:05,000 --> 00:00:06,000\nb"}], "empty line"),
        ([{"start": 1.0, "end": 3.0, "text": "a\n00:00:05,000 --> 00:00:06,000"}], "'-->'"),
        ([{"start": 1.0, "end": 3.0, "text": ""}], "no text"),
    ]
    for cues, message in cases:
        status, answer = request(film, "/api/save", {"tracks": {"en": {"version": versions["en"], "cues": cues}}})
        assert status == 400 and message in answer["error"], answer
    status, answer = request(film, "/api/save", {"tracks": {"fr": {"version": "0", "cues": []}}})
    assert status == 400 and "no track" in answer["error"]
    assert {code: srt_bytes(film, code) for code in before} == before
    assert (film["folder"] / "film.subpipe.json").read_bytes() == manifest


# ---- editing in the browser -----------------------------------------------------------

def test_retranslation_changes_only_the_changed_sentences(film: dict, browser) -> None:
    folder = film["folder"]
    source = film["desk"]._plain("zh")
    plan = sentences(source, load_config(film["config"]).translate)
    assert len(plan) >= 2
    changed = plan[-1]
    before_en = read_track(folder / "film.en.srt", "en")
    desk = Desk(browser, film["url"])
    # The editor's own English for the changed sentence's first cue: kept through re-translation.
    desk.type_into("en", changed.first + 1, "The editor's words.")
    desk.save()
    last = changed.last + 1
    desk.type_into("zh", last, desk.text("zh", last).input_value() + "吗")
    desk.save()
    assert desk.page.locator('[data-action="retranslate"]').is_enabled()
    desk.page.locator('[data-action="retranslate"]').click()
    desk.page.wait_for_selector('[data-status="saved"]')
    said = desk.page.locator("[data-status]").inner_text()
    assert said.startswith("Re-translated:") and f"en cue {changed.first + 1}: kept" in said
    after_en = read_track(folder / "film.en.srt", "en")
    assert len(after_en.cues) == len(before_en.cues)
    for n, (old, new) in enumerate(zip(before_en.cues, after_en.cues)):
        if n < changed.first:
            assert old == new, n  # the sentences that did not change: the very same cues
    assert after_en.cues[changed.first].lines == ("The editor's words.",)
    others = [n for n in changed.cues if n != changed.first]
    assert not others or any(after_en.cues[n] != before_en.cues[n] for n in others)
    bilingual = read_track(folder / "film.zh-en.srt", "zh-en")
    assert bilingual.cues[changed.first].lines[-1] == "The editor's words."
    assert desk.errors == []
    desk.close()


def test_edit_split_merge_nudge_snap_undo_save(film: dict, browser) -> None:
    desk = Desk(browser, film["url"])
    page = desk.page
    zh_cues = desk.count("zh")
    assert zh_cues >= 3 and desk.count("en") == zh_cues
    # Fix every English rule break by editing words: short lines read slowly enough.
    broken = [n for n in range(1, zh_cues + 1) if "has-findings" in desk.cell("en", n).get_attribute("class")]
    assert broken, "the run should leave the English track something to fix"
    for n in range(1, zh_cues + 1):
        desk.type_into("en", n, f"Line {n}.")
    assert page.locator('td.cue[data-track="en"].has-findings').count() == 0
    # Live findings come from the server's judge: a long line is marked as it is typed.
    desk.type_into("en", 1, "This line is far too long to fit on one subtitle line, and then some more words")
    assert desk.cell("en", 1).locator('.finding[data-rule="chars_per_line"]').count() == 1
    desk.type_into("en", 1, "Line 1.")

    # Split the first Mandarin cue at its second character, then merge it back.
    first_text = desk.text("zh", 1).input_value()
    first_time = desk.time_of("zh", 1)
    desk.text("zh", 1).evaluate("e => { e.focus(); e.setSelectionRange(2, 2); }")
    desk.act("zh", 1, "split")
    assert desk.count("zh") == zh_cues + 1
    assert desk.text("zh", 1).input_value() == first_text[:2].rstrip()
    assert desk.text("zh", 2).input_value() == first_text[2:].lstrip()
    desk.act("zh", 1, "merge")
    assert desk.count("zh") == zh_cues
    assert desk.text("zh", 1).input_value().replace("\n", "") == first_text.replace("\n", "")
    assert desk.time_of("zh", 1) == first_time

    # Nudge the second cue's in-time by a frame, then snap it to the nearest speech onset.
    second = film["desk"]._plain("zh").cues[1]
    frame = 1 / (film["desk"].info.fps or 25)
    desk.act("zh", 2, "nudge", edge="start", by="1")
    assert desk.time_of("zh", 2).startswith(_stamp(second.start + frame))
    desk.act("zh", 2, "snap", edge="start")
    onset = min((a for a, _ in film["desk"].speech), key=lambda a: abs(a - (second.start + frame)))
    assert desk.time_of("zh", 2).startswith(_stamp(onset))
    # Undo both (the buttons and the keys), redo one, undo it again: back where it was.
    page.locator('[data-action="undo"]').click()
    assert desk.time_of("zh", 2).startswith(_stamp(second.start + frame))
    page.keyboard.press("Control+z")
    assert desk.time_of("zh", 2).startswith(_stamp(second.start))
    page.locator('[data-action="redo"]').click()
    assert desk.time_of("zh", 2).startswith(_stamp(second.start + frame))
    page.locator('[data-action="undo"]').click()
    page.locator('[data-action="undo"]').click()  # the merge
    page.locator('[data-action="undo"]').click()  # the split
    assert desk.count("zh") == zh_cues and desk.text("zh", 1).input_value() == first_text
    # The undos leave the Mandarin track as on disk: only English is saved.
    said = desk.save()
    assert "film.en.srt" in said and "film.zh.srt" not in said
    saved = read_track(film["folder"] / "film.en.srt", "en")
    assert [c.lines for c in saved.cues] == [(f"Line {n}.",) for n in range(1, zh_cues + 1)]
    records = json.loads((film["folder"] / "film.subpipe.json").read_text())["files"]
    assert records["film.en.srt"]["backend"] == "review"
    # The bilingual track is made again from the edited English (and recorded likewise).
    bilingual = read_track(film["folder"] / "film.zh-en.srt", "zh-en")
    assert [c.lines[-1] for c in bilingual.cues] == [f"Line {n}." for n in range(1, zh_cues + 1)]
    assert records["film.zh-en.srt"]["backend"] == "review"
    # The file passes check now that the edits fixed its findings.
    checked = CliRunner().invoke(main, ["check", str(film["folder"] / "film.en.srt")])
    assert checked.exit_code == 0, checked.output

    page.reload()
    page.wait_for_selector('textarea[data-field="text"]')
    assert desk.text("en", 2).input_value() == "Line 2."
    (REPO / "artifacts").mkdir(exist_ok=True)
    desk.text("zh", 2).click()
    page.screenshot(path=str(REPO / "artifacts" / "desk.png"))
    assert desk.errors == []
    desk.close()


def test_a_stale_save_is_refused_with_the_difference(film: dict, browser) -> None:
    older = Desk(browser, film["url"])
    newer = Desk(browser, film["url"])
    newer.type_into("en", 1, "Saved first.")
    newer.save()
    on_disk = srt_bytes(film, "en")
    older.type_into("en", 1, "Saved second.")
    said = older.save(expect="stale")
    assert "changed on disk since this page loaded it" in said
    diff = older.page.locator("#diff").inner_text()
    assert "-Line 1." in diff and "+Saved first." in diff
    assert srt_bytes(film, "en") == on_disk
    older.close()
    newer.close()


def test_hostile_text_is_shown_as_text(film: dict, browser) -> None:
    desk = Desk(browser, film["url"])
    desk.type_into("en", 2, HOSTILE)
    desk.save()
    assert "\u202e" in srt_bytes(film, "en").decode("utf-8")  # what the editor typed is what is written
    desk.page.reload()
    desk.page.wait_for_selector('textarea[data-field="text"]')
    assert desk.text("en", 2).input_value() == HOSTILE.replace("\u202e", "<U+202E>")
    assert desk.cell("en", 2).locator('.finding[data-rule="control_character"]').count() == 1
    assert desk.page.locator("#cues img, #cues script").count() == 0
    assert desk.page.evaluate("window.__xss") is None
    # Put a plain line back (the override is an error for check).
    desk.type_into("en", 2, "Line 2.")
    desk.save()
    assert desk.errors == []
    desk.close()


def test_sign_off_is_recorded_in_the_manifest(film: dict, browser) -> None:
    desk = Desk(browser, film["url"])
    desk.cell("zh", 1).locator("button.approve").click()
    desk.cell("en", 1).locator("button.flag").click()
    desk.page.locator('[data-action="signoff"]').click()
    desk.page.wait_for_selector('[data-status="saved"]')
    review = json.loads((film["folder"] / "film.subpipe.json").read_text())["review"]
    assert (review["approved"], review["flagged"]) == (1, 1)
    desk.close()


def test_find_and_replace_add_and_delete_are_saved(film: dict, browser) -> None:
    """A name misheard the same way throughout, replaced in one action; a cue added after
    the last one and the first deleted: what is saved is what the page showed."""
    desk = Desk(browser, film["url"])
    page = desk.page
    cues = desk.count("en")
    word = desk.text("en", 1).input_value().split()[0]
    holding = [n for n in range(1, cues + 1) if word in desk.text("en", n).input_value()]
    page.locator("#track-select").select_option(label="film.en.srt")
    page.fill("#find", word)
    page.fill("#replace", "Zebra")
    page.locator('[data-action="replace-all"]').click()
    assert all("Zebra" in desk.text("en", n).input_value() and word not in desk.text("en", n).input_value()
               for n in holding)
    desk.act("en", cues, "add")
    assert desk.count("en") == cues + 1
    desk.type_into("en", cues + 1, "An added line.")
    desk.act("en", 1, "delete")
    assert desk.count("en") == cues
    desk.save()
    written = read_track(film["folder"] / "film.en.srt", "en")
    assert len(written.cues) == cues
    assert written.cues[-1].lines == ("An added line.",)
    assert sum("Zebra" in " ".join(c.lines) for c in written.cues) == len(holding) - (1 in holding)
    assert desk.errors == []
    desk.close()


# ---- a later run ----------------------------------------------------------------------

def test_a_later_run_refuses_the_edited_track_and_force_replaces_it(film: dict) -> None:
    refused = CliRunner().invoke(main, film["args"])
    assert refused.exit_code == 3, refused.output
    assert "edited in review" in refused.stderr and "--force" in refused.stderr
    forced = CliRunner().invoke(main, [*film["args"], "--force"])
    assert forced.exit_code == 0, forced.stderr
    record = json.loads((film["folder"] / "film.subpipe.json").read_text())["files"]["film.en.srt"]
    assert record["backend"] != "review"


def _stamp(seconds: float) -> str:
    from subpipe.rules import timestamp

    return timestamp(seconds)


@pytest.mark.parametrize("signum, status", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_the_served_desk_stops_on_a_signal_with_its_status(film: dict, signum: int, status: int) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1"}
    command = [sys.executable, "-c", "import sys; from subpipe.cli import main; sys.argv[0] = 'subpipe'; main()",
               "review", str(film["video"]), "--edit", "--config", str(film["config"])]
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True,
                          preexec_fn=stop_signals_default) as child:
        try:
            url = child.stdout.readline().strip()
            assert url.startswith("http://127.0.0.1:") and "?token=" in url, url
            with urllib.request.urlopen(url) as response:
                assert response.status == 200
            child.send_signal(signum)
            _, stderr = child.communicate(timeout=120)
        finally:  # a failed step must not leave the server running (and the test waiting on it)
            if child.poll() is None:
                child.kill()
    assert child.returncode == status, stderr
    assert stderr.splitlines()[-1].startswith(f"Error: interrupted by {signal.Signals(signum).name}")


def test_run_edit_needs_review() -> None:
    result = CliRunner().invoke(main, ["run", "film.mp4", "--edit"])
    assert result.exit_code == 2 and "--edit serves the review page: give --review too" in result.stderr


def test_run_review_edit_serves_the_desk_after_the_run(media: Path, tiny_config: Path, tmp_path: Path) -> None:
    """`run --review --edit`: the written paths, then the desk's address; the page is the
    editing one; SIGTERM stops it with 143."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1", "SUBPIPE_CACHE": str(tmp_path / "cache")}
    command = [sys.executable, "-c", "import sys; from subpipe.cli import main; sys.argv[0] = 'subpipe'; main()",
               "run", str(media / "tone.mkv"), "--lang", "zh", "--config", str(tiny_config), "--out",
               str(tmp_path / "out"), "--review", "--edit"]
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True,
                          preexec_fn=stop_signals_default) as child:
        try:
            written = []
            while not (line := child.stdout.readline().strip()).startswith("http://127.0.0.1:"):
                assert line, "the run ended without serving the desk"
                written.append(Path(line).name)
            assert "tone.zh.srt" in written and "?token=" in line
            with urllib.request.urlopen(line) as response:
                page = response.read().decode("utf-8")
            assert 'data-action="save"' in page and '"token"' in page  # the editing page, not the static one
            child.send_signal(signal.SIGTERM)
            _, stderr = child.communicate(timeout=120)
        finally:
            if child.poll() is None:
                child.kill()
    assert child.returncode == 143, stderr
