"""Nothing silently lost: speech accounting and its retries, untranscribed speech as a
finding, --strict, damaged media, check --video, and the review page's open gaps.

The speech backend is the scripted one of tests/engines.py (real models can't fail on
demand); ffmpeg, voice activity, shaping, writing and the manifest are the real code.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from engines import ScriptedEngine

from subpipe import listen
from subpipe.accounting import RUNGS, account
from subpipe.asr import Chunk, DecodeOptions
from subpipe.batch import worker as batch_worker
from subpipe.cli import main
from subpipe.config import RETRY_RUNGS, load_config
from subpipe.timeline import uncovered
from subpipe.types import Word

SPEECH = ((0.576, 4.768), (5.344, 9.28), (11.04, 16.608), (17.024, 21.344))  # voice activity on sample_zh


def invoke(*args: str | Path) -> Result:
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.fixture
def engine(monkeypatch: pytest.MonkeyPatch) -> ScriptedEngine:
    """The scripted backend, in place of the configured one, for this test."""
    scripted = ScriptedEngine()
    monkeypatch.setattr(listen, "make_transcriber", lambda asr: scripted)
    monkeypatch.setattr(batch_worker, "_engines", {})  # batch keeps a worker's engines: not another test's
    return scripted


# ---- the measure and the ladder (pure) -------------------------------------------------

def test_uncovered_speech_is_what_no_span_reaches() -> None:
    speech = [(0.0, 10.0), (12.0, 13.5)]
    words = [(0.5, 1.0), (1.2, 2.0), (6.0, 6.5)]
    assert uncovered(speech, words) == [(2.0, 6.0), (6.5, 10.0), (12.0, 13.5)]
    assert uncovered(speech, words, least=5.0) == []
    assert uncovered([(0.0, 3.0)], [(0.0, 1.2), (1.9, 3.0)]) == []  # a 0.7 s pause between words


def test_the_ladders_rungs_are_the_configs() -> None:
    assert set(RUNGS) == set(RETRY_RUNGS) == set(load_config().asr.retry_ladder)


def _keep(words):  # noqa: ANN001, ANN202 - no guard: every word stays
    return list(words)


def test_a_region_decoded_empty_is_retried_alone() -> None:
    engine = ScriptedEngine(fault="nothing", at=12.0)
    options = DecodeOptions(beam_size=3, temperatures=(0.0,), seed=0)
    chunk = Chunk(0.0, 22.0, tuple(SPEECH))
    first = engine.transcribe(None, "zh", chunk)
    assert not [w for w in first if 11.04 <= w.start <= 16.608]
    words, lost = account(engine, None, "zh", chunk, first, SPEECH, _keep, options=options, pad=0.2,
                          vad=load_config().vad)
    assert lost == ()
    assert engine.calls[-1] == (10.84, 16.808, 1)  # the region alone, padded: the greedy rung
    assert uncovered(SPEECH, [(w.start, w.end) for w in words]) == []


def test_a_stretch_every_rung_fails_on_is_returned_as_untranscribed() -> None:
    engine = ScriptedEngine(fault="nothing", at=12.0, stubborn=True)
    options = DecodeOptions(beam_size=3, temperatures=(0.0,), seed=0)
    chunk = Chunk(0.0, 22.0, tuple(SPEECH))
    first = engine.transcribe(None, "zh", chunk)
    audio = __import__("numpy").zeros(22 * 16_000, "float32")  # the split rung listens for pauses
    words, lost = account(engine, audio, "zh", chunk, first, SPEECH, _keep, options=options, pad=0.2,
                          vad=load_config().vad, ladder=("alone", "context"))
    assert [(u.start, u.end) for u in lost] == [(11.04, 16.608)]
    assert len(engine.calls) == 3  # the first pass, then one call per rung
    assert words == first


# ---- whole runs: the retry, then the finding, the exit status and the manifest -------------

@pytest.mark.parametrize("fault", ["nothing", "loop", "raise"])
def test_a_faulty_window_is_retried_and_recovered(engine: ScriptedEngine, sample_zh: Path, tmp_path: Path,
                                                  fault: str) -> None:
    engine.fault, engine.at = fault, 12.0
    result = invoke("-v", "run", sample_zh, "--lang", "zh", "--out", tmp_path, "--strict")
    assert result.exit_code == 0, result.stderr
    assert engine.calls[1:] and "retry leaves 0.0 s" in result.stderr
    manifest = json.loads((tmp_path / "sample_zh.subpipe.json").read_text())
    assert manifest["findings"]["untranscribed"] == []


@pytest.mark.parametrize("fault", ["nothing", "loop", "raise"])
def test_speech_every_retry_loses_is_flagged(engine: ScriptedEngine, sample_zh: Path, tmp_path: Path,
                                             fault: str) -> None:
    engine.fault, engine.at, engine.stubborn = fault, 12.0, True
    result = invoke("run", sample_zh, "--lang", "zh", "--out", tmp_path)
    assert result.exit_code == 0, result.stderr
    assert "1 untranscribed stretch(es) of speech" in result.stderr.splitlines()[-1]
    assert result.stdout.split() == [str(tmp_path / "sample_zh.zh.srt")]
    manifest = json.loads((tmp_path / "sample_zh.subpipe.json").read_text())
    ((start, end),) = manifest["findings"]["untranscribed"]
    # The region's voice activity is 11.04-16.608 s; a loop keeps its first copy (0.4 s).
    assert 11.04 <= start <= 11.5 and end == 16.608
    assert manifest["findings"]["counts"]["untranscribed"] == 1
    # --strict: the same outputs, and exit 1 for an overnight job to notice.
    strict = invoke("run", sample_zh, "--lang", "zh", "--out", tmp_path, "--strict")
    assert strict.exit_code == 1
    assert strict.stderr.strip().splitlines()[-1].startswith("Error: --strict:")


def test_batch_records_untranscribed_speech_and_strict_fails_the_file(engine: ScriptedEngine, sample_zh: Path,
                                                                      tmp_path: Path) -> None:
    engine.fault, engine.at, engine.stubborn = "nothing", 12.0, True
    report = tmp_path / "report.json"
    loose = invoke("batch", sample_zh, "--lang", "zh", "--out", tmp_path / "out", "--report", report, "--no-cache")
    assert loose.exit_code == 0, loose.stderr
    (row,) = json.loads(report.read_text())["files"]
    assert row["status"] == "ok" and row["findings"]["untranscribed"] == [[11.04, 16.608]]
    strict = invoke("batch", sample_zh, "--lang", "zh", "--out", tmp_path / "out", "--report", report, "--no-cache",
                    "--strict")
    assert strict.exit_code == 1
    (row,) = json.loads(report.read_text())["files"]
    assert row["status"] == "findings" and "untranscribed" in row["error"]


def test_auto_language_that_is_not_clear_stops_and_asks(engine: ScriptedEngine, sample_zh: Path,
                                                        tmp_path: Path) -> None:
    # Identification unsure (as Whisper base is on synthetic Urdu), and forced decodings
    # in every language read equally well: no language is clearly ahead.
    engine.scores = {"ur": 0.05, "zh": 0.04, "en": 0.06}
    result = invoke("run", sample_zh, "--lang", "auto", "--out", tmp_path / "out")
    assert result.exit_code == 2
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("Error: can't tell which language is spoken in sample_zh.mp4") and "--lang" in line
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
    report = tmp_path / "report.json"
    batch = invoke("batch", sample_zh, "--out", tmp_path / "b", "--report", report, "--no-cache")
    assert batch.exit_code == 1
    (row,) = json.loads(report.read_text())["files"]
    assert row["status"] == "failed" and row["error"].startswith("can't tell which language")


def test_auto_language_decided_by_decoding_when_identification_is_unsure(engine: ScriptedEngine,
                                                                         sample_zh: Path, tmp_path: Path) -> None:
    engine.scores = {"ur": 0.05, "zh": 0.01, "en": 0.09}
    engine.lang = "zh"

    def hears_only_mandarin(audio, lang, chunk, progress=None, prompt=None, options=None):  # noqa: ANN001, ANN202
        words = ScriptedEngine.transcribe(engine, audio, lang, chunk, progress, prompt, options)
        # Forced into another language, the decoder gives a word or two: not speech.
        return words if lang == "zh" else words[:1]

    engine.transcribe = hears_only_mandarin  # type: ignore[method-assign]
    result = invoke("run", sample_zh, "--lang", "auto", "--out", tmp_path)
    assert result.exit_code == 0, result.stderr
    assert (tmp_path / "sample_zh.zh.srt").is_file()


# ---- damaged media ----------------------------------------------------------------------

@pytest.mark.parametrize("name, span", [("cut_short.mp4", (4.864, 22.0)), ("damaged.mp4", (10.752, 13.568))])
def test_damaged_media_is_said_and_recorded(engine: ScriptedEngine, media: Path, tmp_path: Path, name: str,
                                            span: tuple[float, float]) -> None:
    result = invoke("run", media / name, "--lang", "zh", "--out", tmp_path)
    assert result.exit_code == 0, result.stderr
    warning = next(line for line in result.stderr.splitlines() if "audio damaged" in line)
    assert warning.startswith(f"Warning: {name}: audio damaged from ")
    manifest = json.loads((tmp_path / f"{Path(name).stem}.subpipe.json").read_text())
    ((start, end),) = manifest["findings"]["damaged_audio"]
    assert (start, end) == pytest.approx(span, abs=0.1)
    assert "damaged stretch(es) of audio" in result.stderr.splitlines()[-1]
    assert invoke("run", media / name, "--lang", "zh", "--out", tmp_path, "--strict").exit_code == 1


def test_damaged_audio_keeps_the_films_timeline(media: Path, sample_zh: Path) -> None:
    from subpipe.media import choose_stream, probe, read_audio

    whole = probe(sample_zh)
    damaged = probe(media / "damaged.mp4")
    intact = read_audio(whole, choose_stream(whole, None, None)).samples
    hurt = read_audio(damaged, choose_stream(damaged, None, None)).samples
    # Frames that could not be decoded are silence, not left out: later speech stays put.
    assert len(hurt) == len(intact)
    assert abs(hurt[20 * 16_000:21 * 16_000] - intact[20 * 16_000:21 * 16_000]).max() < 0.05


# ---- check --video ----------------------------------------------------------------------

def test_check_reports_speech_with_no_subtitle(sample_zh: Path, tmp_path: Path) -> None:
    track = tmp_path / "film.zh.srt"
    track.write_text("1\n00:00:00,600 --> 00:00:04,700\n人人有权\n\n"
                     "2\n00:00:17,000 --> 00:00:21,300\n任何人\n", encoding="utf-8")
    result = invoke("check", track, "--video", sample_zh, "--format", "json")
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    gaps = [(f["start"], f["measured"]) for f in report["findings"] if f["rule"] == "untranscribed_speech"]
    assert gaps == [(5.344, 3.936), (11.04, 5.568)]  # the two stretches of voice activity no cue is on
    text = invoke("check", track, "--video", sample_zh)
    assert "00:00:11,040: untranscribed_speech 5.568 s of speech from 00:00:11,040 to 00:00:16,608" in text.stdout
    # Without the video nothing can be said about speech.
    assert invoke("check", track).exit_code == 0


def test_check_finds_speech_as_run_does_with_the_same_vad_settings(sample_zh: Path, tmp_path: Path) -> None:
    track = tmp_path / "film.zh.srt"
    track.write_text("1\n00:00:00,600 --> 00:00:04,700\n人人有权\n", encoding="utf-8")
    off = tmp_path / "off.toml"
    off.write_text("[vad]\nenabled = false\n", encoding="utf-8")
    # With voice activity off, run accounts for no speech, and neither does check.
    result = invoke("check", track, "--video", sample_zh, "--config", off, "--format", "json")
    assert result.exit_code == 0, result.output
    assert not [f for f in json.loads(result.stdout)["findings"] if f["rule"] == "untranscribed_speech"]
    # A stricter threshold is heard by both alike: fewer (or the same) stretches than the default.
    strict = tmp_path / "strict.toml"
    strict.write_text("[vad]\nthreshold = 0.9\n", encoding="utf-8")
    default = json.loads(invoke("check", track, "--video", sample_zh, "--format", "json").stdout)["findings"]
    fewer = json.loads(invoke("check", track, "--video", sample_zh, "--config", strict, "--format", "json").stdout)
    speech = [f["measured"] for f in default if f["rule"] == "untranscribed_speech"]
    heard = [f["measured"] for f in fewer["findings"] if f["rule"] == "untranscribed_speech"]
    assert sum(heard) < sum(speech)


# ---- the review page: open gaps hold the sign-off ---------------------------------------

def test_review_sign_off_fails_while_untranscribed_speech_is_open(tmp_path: Path) -> None:
    from subpipe.review import build_page, read_page_data, signoff
    from subpipe.types import Cue, Track

    track = Track("zh", (Cue(0.6, 4.7, ("人人有权",)),))
    page = tmp_path / "film.review.html"
    page.write_text(build_page("film.mp4", "film.proxy.mp4", {"film.zh.srt": track}, {}, None,
                               gaps=[(4.768, 16.608)]), encoding="utf-8")
    data = read_page_data(page)
    assert data["gaps"][0]["time"] == "00:00:04,768"
    notes = {"format": "subpipe-review-notes", "key": data["key"],
             "cues": [{"track": "film.zh.srt", "cue": 1, "status": "approved"}]}
    pending = signoff(notes, data)
    assert [g.line() for g in pending.open_gaps] == [
        "untranscribed speech 00:00:04,768 to 00:00:16,608: pending (approve it once it is subtitled, "
        "or is not speech)"]
    done = signoff({**notes, "gaps": [{"n": 1, "status": "approved", "note": "subtitled by hand"}]}, data)
    assert done.open_gaps == () and done.as_manifest()["untranscribed"][0]["note"] == "subtitled by hand"


def test_words_dropped_by_the_guards_count_as_lost() -> None:
    # A loop the shaper would drop covers nothing: accounting measures what cues can show.
    from subpipe.cues import kept_words

    rules = load_config().rules_for("zh")
    loop = [Word(11.1 + k * 0.5, 11.5 + k * 0.5, "我们我们") for k in range(10)]
    kept = kept_words(loop, "zh", rules, speech=SPEECH)
    assert len(kept) == 1
    assert uncovered([(11.04, 16.608)], [(w.start, w.end) for w in kept]) == [(11.5, 16.608)]


def test_retries_are_deterministic_same_input_same_bytes(engine: ScriptedEngine, sample_zh: Path,
                                                         tmp_path: Path) -> None:
    engine.fault, engine.at = "nothing", 12.0
    for out in ("a", "b"):
        assert invoke("run", sample_zh, "--lang", "zh", "--out", tmp_path / out).exit_code == 0
    first, second = ((tmp_path / out / "sample_zh.zh.srt").read_bytes() for out in ("a", "b"))
    assert first == second and first
