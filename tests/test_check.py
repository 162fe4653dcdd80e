"""Tests for the strict SRT reader and the `subpipe check` linter."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
import srt
from hypothesis import given, settings
from hypothesis import strategies as st

from subpipe import check
from subpipe.check import Finding, Report
from subpipe.config import load_config
from subpipe.errors import UsageError
from subpipe.formats import srt_strict as srtstrict
from subpipe.rules import judge, judge_bilingual, timestamp
from subpipe.types import Cue

DATA = Path(__file__).resolve().parent / "data" / "check"


# The shipped defaults (configs/default.toml), so the tests follow them.
RULES = load_config(None).rules
EN, ZH = RULES["en"], RULES["zh"]


def run(name: str, **kwargs: object) -> Report:
    return check.check_file(DATA / name, RULES, **kwargs)  # type: ignore[arg-type]


Measured = tuple[int | None, str, float | None, float | None]


def measured(report: Report | list[Finding]) -> list[Measured]:
    findings = report.findings if isinstance(report, Report) else report
    return [(f.cue, f.kind, f.measured, f.limit) for f in findings]


def srt_bytes(*blocks: str) -> bytes:
    return "".join(f"{b}\n\n" for b in blocks).encode("utf-8")


# ---- good files ------------------------------------------------------------------

@pytest.mark.parametrize("name, lang, cues", [
    ("good_zh.srt", "zh", 4),
    ("good_en.srt", "en", 4),
    ("good_ur.srt", "ur", 2),
])
def test_good_files_are_clean_and_language_is_guessed(name: str, lang: str, cues: int) -> None:
    report = run(name)
    assert report.findings == ()
    assert (report.lang, report.lang_source, report.cue_count) == (lang, "text", cues)
    assert check.exit_status(report) == 0
    assert check.format_text(report).splitlines() == [
        f"{DATA / name}: {cues} cues, language {lang} (assumed from the text), 25 fps",
        "no problems found",
    ]


def test_good_files_sit_exactly_on_the_limits() -> None:
    # Guards the fixtures: if they drift off the limits, the tolerance goes untested.
    zh = srtstrict.read_bytes((DATA / "good_zh.srt").read_bytes()).cues
    assert zh[2].lines == ("我们明天早上八点在学校门口见面吧",)  # 16 chars
    assert (zh[3].end - zh[3].start, zh[3].lines) == (1.0, ("这是九个字的句子。",))  # 9 cps
    en = srtstrict.read_bytes((DATA / "good_en.srt").read_bytes()).cues
    assert round(en[1].start - en[0].end, 3) == 0.08  # the 2-frame gap at 25 fps
    assert round(en[1].end - en[1].start, 3) == 0.833  # min duration 0.8333
    assert len(en[2].lines[0]) == 42
    assert en[3].end - en[3].start == 7.0


def test_urdu_direction_marks_do_not_count() -> None:
    cue = srtstrict.read_bytes((DATA / "good_ur.srt").read_bytes()).cues[1]
    first = cue.lines[0]
    assert first.startswith("\u202b") and first.endswith("\u202c")
    assert len(first) == 44  # 42 visible + RLE + PDF: counting marks would break the limit
    assert run("good_ur.srt").findings == ()


def test_language_given_is_used_and_reported() -> None:
    report = run("good_zh.srt", lang="zh")
    assert (report.lang, report.lang_source) == ("zh", "given")
    assert "language zh (given)" in check.format_text(report)


def test_unknown_language_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="'fr'"):
        run("good_en.srt", lang="fr")


# ---- warnings only ---------------------------------------------------------------

def test_bom_and_crlf_are_warnings_only() -> None:
    report = run("bom_crlf.srt")
    assert [(f.kind, f.severity) for f in report.findings] == [
        ("bom", "warning"), ("crlf", "warning")]
    assert check.exit_status(report) == 0
    cues = srtstrict.read_bytes((DATA / "bom_crlf.srt").read_bytes()).cues
    assert [c.lines for c in cues] == [("Hello there.",), ("General Kenobi.",)]
    assert check.format_text(report).splitlines()[1:] == [
        "line 1: warning: UTF-8 byte order mark (BOM) at start of file",
        "line 1: warning: CRLF line ends (8 lines)",
        "0 errors, 2 warnings",
    ]


def test_huge_or_sparse_cue_numbers_stay_cheap() -> None:
    data = srt_bytes("1\n00:00:01,000 --> 00:00:02,000\nOne.",
                     "999999999\n00:00:03,000 --> 00:00:04,000\nBig.",
                     "5\n00:00:05,000 --> 00:00:06,000\nFive.",
                     "9" * 5000 + "\n00:00:07,000 --> 00:00:08,000\nHostile.")
    report = check.check_bytes(data, RULES, lang="en")
    assert [(f.cue, f.kind, f.message) for f in report.findings] == [
        (999999999, "index_gap", "cue number 999999999 after 1 (999999996 numbers missing)"),
        (5, "index_order", "cue number 5 after 999999999"),
        (None, "syntax", "expected a cue number, found '" + "9" * 40 + "...'; block skipped"),
    ]


def test_skipped_cue_numbers_are_a_warning() -> None:
    data = srt_bytes("1\n00:00:01,000 --> 00:00:02,000\nOne.",
                     "4\n00:00:03,000 --> 00:00:04,000\nFour.")
    report = check.check_bytes(data, RULES)
    assert [(f.cue, f.kind, f.severity, f.message) for f in report.findings] == [
        (4, "index_gap", "warning", "cue number 4 after 1 (missing 2-3)")]
    assert check.exit_status(report) == 0


# ---- structural errors -----------------------------------------------------------

def test_bad_timestamps_are_each_reported_and_others_still_checked() -> None:
    report = run("bad_timestamp.srt")
    assert [(f.cue, f.line, f.kind, f.severity) for f in report.findings] == [
        (1, 2, "timestamp", "error"),
        (2, 6, "timestamp", "error"),
        (2, 6, "timestamp", "error"),
        (3, 10, "timestamp", "error"),
    ]
    assert [f.message for f in report.findings] == [
        "timestamp '00:00:01.000': '.' before milliseconds; SRT needs ','",
        "timestamp '00:75:03,000': minutes 75 out of range 00-59",
        "timestamp '00:75:04,000': minutes 75 out of range 00-59",
        "timing line '00:00:05,000 00:00:06,500' has no '-->'",
    ]
    assert check.exit_status(report) == 1
    cues = srtstrict.read_bytes((DATA / "bad_timestamp.srt").read_bytes()).cues
    # Unambiguous defects keep their times; an out-of-range minute does not.
    assert [(c.start, c.end) for c in cues] == [
        (1.0, 2.5), (None, None), (5.0, 6.5), (7.0, 8.5)]


def test_overlap() -> None:
    report = run("overlap.srt")
    assert measured(report) == [(1, "overlap", 0.5, 0.0)]
    assert check.format_finding(report.findings[0]) == (
        "cue 1 (00:00:01,000): overlap 0.5 s with cue 2")
    assert check.exit_status(report) == 1


def test_out_of_order_index_is_one_error_and_not_a_gap() -> None:
    report = run("out_of_order.srt")
    assert measured(report) == [(2, "index_order", 2, 3)]
    assert report.findings[0].line == 9
    assert check.exit_status(report) == 1


def test_duplicate_index() -> None:
    report = run("duplicate_index.srt")
    assert measured(report) == [(2, "index_duplicate", 2, None)]
    assert report.findings[0].message == "cue number 2 already used on line 5"
    assert report.findings[0].line == 9


def test_empty_cues_including_only_direction_marks() -> None:
    report = run("empty_cue.srt")
    assert measured(report) == [(2, "empty_cue", None, None), (3, "empty_cue", None, None)]
    assert check.exit_status(report) == 1


def test_end_not_after_start() -> None:
    data = srt_bytes("1\n00:00:02,000 --> 00:00:02,000\nZero.",
                     "2\n00:00:05,000 --> 00:00:04,000\nBackwards.")
    report = check.check_bytes(data, RULES, lang="en")
    assert measured(report) == [(1, "end_before_start", 0.0, 0.0),
                                (2, "end_before_start", -1.0, 0.0)]


def test_missing_blank_line_and_missing_number_are_found() -> None:
    data = srt_bytes("1\n00:00:01,000 --> 00:00:02,000\nOne.\n"
                     "2\n00:00:03,000 --> 00:00:04,000\nTwo.",
                     "00:00:05,000 --> 00:00:06,000\nNo number.",
                     "stray text\nmore")
    report = check.check_bytes(data, RULES, lang="en")
    assert [(f.line, f.kind) for f in report.findings] == [
        (4, "syntax"), (8, "index"), (11, "syntax")]
    assert report.cue_count == 3
    assert [f.message for f in report.findings] == [
        "missing blank line before this cue", "cue number missing",
        "expected a cue number, found 'stray text'; block skipped"]


# ---- rules -----------------------------------------------------------------------

def test_long_chinese_line_counts_half_width_as_half() -> None:
    report = run("long_line_zh.srt")
    assert measured(report) == [(1, "chars_per_line", 19.5, 16.0)]
    assert check.format_finding(report.findings[0]) == (
        "cue 1 (00:00:01,000): chars_per_line 19.5 > 16 (line 2)")


def test_too_fast_reading_speed() -> None:
    report = run("too_fast_zh.srt")
    assert measured(report) == [(1, "reading_speed", 12.0, 9.0)]
    assert report.findings[0].message == "reading_speed 12 > 9 chars/s"


def test_too_short() -> None:
    # 0.833 s passes against 0.8333 (good_en.srt); 0.832 s is a real miss.
    assert measured(run("too_short.srt")) == [
        (1, "min_duration", 0.5, 0.833), (2, "min_duration", 0.832, 0.833)]


def test_too_long() -> None:
    assert measured(run("too_long.srt")) == [
        (1, "max_duration", 8.0, 7.0), (2, "max_duration", 7.002, 7.0)]


@pytest.mark.parametrize("fps, expected", [
    (None, [(1, "min_gap", 0.06, 0.08)]),
    (25.0, [(1, "min_gap", 0.06, 0.08)]),
    (24.0, [(1, "min_gap", 0.06, 0.083), (2, "min_gap", 0.08, 0.083)]),
    (50.0, []),
])
def test_gap_depends_on_frame_rate(fps: float | None, expected: list[tuple]) -> None:
    report = run("gap.srt", fps=fps)
    assert measured(report) == expected
    assert report.fps == (fps or 25.0)


def test_bad_frame_rate_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="frame rate"):
        run("gap.srt", fps=0.0)


def test_cue_past_the_audio_end() -> None:
    assert measured(run("good_en.srt", audio_end=14.0)) == [(4, "past_audio_end", 15.0, 14.0)]
    assert run("good_en.srt", audio_end=15.0).findings == ()


# ---- bilingual -------------------------------------------------------------------

def test_bilingual_lines_use_their_own_limits_and_may_exceed_two() -> None:
    report = run("clip.ur-zh.srt")
    assert (report.lang, report.lang_source) == ("ur-zh", "text")
    assert measured(report) == [(2, "chars_per_line", 18.0, 16.0)]
    assert report.findings[0].message == "chars_per_line 18 > 16 (zh, line 4)"
    assert run("clip.ur-zh.srt", lang="ur-zh").findings == report.findings


def test_bilingual_file_checked_as_one_language_breaks_the_line_limit() -> None:
    report = run("clip.ur-zh.srt", lang="ur")
    assert measured(report) == [(2, "lines_per_cue", 4, 2)]


def test_guess_lang() -> None:
    assert check.guess_lang([("你好",), ("hello",)]) == "zh"
    assert check.guess_lang([("\u202bسلام\u202c",)]) == "ur"
    assert check.guess_lang([("hello",), ("...",)]) == "en"
    assert check.guess_lang([("سلام", "你好"), ("سلام", "你好")]) == "ur-zh"


# ---- unreadable ------------------------------------------------------------------

@pytest.mark.parametrize("name, reason", [
    ("binary.srt", "binary data or UTF-16 without BOM (NUL byte at offset 8)"),
    ("latin1.srt", "not UTF-8 (byte 0xe9 on line 3, offset 35); re-save as UTF-8"),
    ("utf16.srt", "UTF-16 text (byte order mark at start); re-save as UTF-8"),
    ("not_srt.srt", "no SRT cues found (no cue number followed by a timing line)"),
    ("does_not_exist.srt", "cannot open: No such file or directory"),
])
def test_unreadable_files_exit_2_with_one_line(name: str, reason: str) -> None:
    report = run(name)
    assert report.unreadable == reason
    assert check.exit_status(report) == 2
    assert check.format_text(report) == f"{DATA / name}: cannot read: {reason}"
    assert json.loads(check.format_json(report))["status"] == 2


# ---- issue 12: what subpipe writes passes its own check; markup is not text ------

@pytest.mark.parametrize("data", [b"", b"\n", b"  \n\n\t\n", b"\r\n\r\n", b"\xef\xbb\xbf"])
def test_an_empty_file_is_a_track_with_no_cues_and_a_warning(data: bytes) -> None:
    # subpipe writes a 0-byte track for a film without speech: its own check passes it.
    report = check.check_bytes(data, RULES, name="silent.zh.srt", lang="zh")
    assert report.unreadable is None and report.cue_count == 0
    assert check.exit_status(report) == 0
    # A byte-order mark or CRLF line ends are warnings of their own.
    assert [(f.kind, f.severity) for f in report.findings if f.kind not in ("bom", "crlf")] == [
        ("no_cues", "warning")]
    assert all(f.severity == "warning" for f in report.findings)


def test_the_empty_file_on_disk_is_a_track_with_no_cues() -> None:
    report = run("empty.srt")
    assert (report.unreadable, report.cue_count, check.exit_status(report)) == (None, 0, 0)
    assert check.format_text(report).splitlines()[1:] == [
        "line 1: warning: no cues: an empty track, as for a film without speech", "0 errors, 1 warning"]


@pytest.mark.parametrize("line", [
    "<i>一二三四五六七八九十一二三四五六</i>",
    "<b>一二三四五六七八</b><u>九十一二三四五六</u>",
    '<font color="#ffff00">一二三四五六七八九十一二三四五六</font>',
    "{\\an8}一二三四五六七八九十一二三四五六",
    "<I>{\\i1}一二三四五六七八九十一二三四五六{\\i0}</I>",
])
def test_markup_does_not_count_toward_characters_per_line(line: str) -> None:
    data = srt_bytes(f"1\n00:00:01,000 --> 00:00:05,000\n{line}")
    assert check.check_bytes(data, RULES, lang="zh").findings == ()
    # One character more than the limit, which the markup must not hide.
    longer = srt_bytes(f"1\n00:00:01,000 --> 00:00:05,000\n{line.replace('六', '六七', 1)}")
    assert measured(check.check_bytes(longer, RULES, lang="zh")) == [(1, "chars_per_line", 17.0, 16.0)]


def test_markup_alone_is_an_empty_cue_and_its_letters_are_no_language() -> None:
    data = srt_bytes("1\n00:00:01,000 --> 00:00:03,000\n<i></i>",
                     '2\n00:00:04,000 --> 00:00:06,000\n<font color="red">你好</font>')
    report = check.check_bytes(data, RULES)
    assert report.lang == "zh"  # the tag's Latin letters are not English text
    assert measured(report) == [(1, "empty_cue", None, None)]


def test_reader_raises_usage_error_for_unreadable() -> None:
    with pytest.raises(UsageError) as info:
        srtstrict.read_bytes((DATA / "latin1.srt").read_bytes())
    assert info.value.exit_code == 2


# ---- output ----------------------------------------------------------------------

def test_json_keys_are_stable() -> None:
    doc = json.loads(check.format_json(run("long_line_zh.srt")))
    assert list(doc) == ["path", "status", "unreadable", "lang", "lang_source", "fps",
                         "cues", "findings"]
    assert doc["findings"] == [{
        "cue": 1, "line": 1, "start": 1.0, "time": "00:00:01,000",
        "rule": "chars_per_line", "severity": "error", "measured": 19.5, "limit": 16.0,
        "message": "chars_per_line 19.5 > 16 (line 2)",
    }]
    assert (doc["status"], doc["lang"], doc["fps"], doc["cues"]) == (1, "zh", 25.0, 1)


def test_timestamp() -> None:
    assert timestamp(3723.4567) == "01:02:03,457"
    assert timestamp(0.0) == "00:00:00,000"


# ---- in memory ---------------------------------------------------------------------

def test_judge_numbers_cues_by_position() -> None:
    cues = [Cue(0.0, 2.0, ("Fine.",)), Cue(2.0, 2.5, ("Short.",))]
    assert measured(judge(cues, EN)) == [
        (1, "min_gap", 0.0, 0.08), (2, "min_duration", 0.5, 0.833)]
    assert all(f.line is None for f in judge(cues, EN))


def test_judge_ignores_float_noise_at_the_limits() -> None:
    end = 0.1 + 0.2 + 2.7  # 3.0000000000000004
    cues = [Cue(0.3 - 0.2 - 0.1, end, ("Fine.",)), Cue(end + 2 / 25, 5.0, ("Fine.",))]
    assert judge(cues, EN) == []


def test_judge_reports_cues_out_of_time_order() -> None:
    cues = [Cue(5.0, 6.0, ("Later.",)), Cue(1.0, 2.0, ("Earlier.",))]
    assert measured(judge(cues, EN)) == [(2, "time_order", 1.0, 5.0)]


def test_judge_reports_overlap_with_a_long_earlier_cue() -> None:
    cues = [Cue(0.0, 6.0, ("Long.",)), Cue(1.0, 2.0, ("Inside.",)), Cue(3.0, 4.0, ("Also.",))]
    assert measured(judge(cues, EN)) == [
        (1, "overlap", 5.0, 0.0), (1, "overlap", 3.0, 0.0)]


def test_judge_bilingual() -> None:
    ur = "\u202bسلام، آج ہم لاہور کی سیر کریں گے\u202c"  # 32 chars: over zh's 16
    assert judge_bilingual([Cue(0.0, 4.0, (ur, ur, "你好", "你好"))], RULES,
                                       ("ur", "zh")) == []
    findings = judge_bilingual([Cue(0.0, 3.0, (ur, "你好", "你好", "你好"))],
                                           RULES, ("ur", "zh"))
    assert measured(findings) == [(1, "lines_per_cue", 3, 2)]
    assert findings[0].message == "lines_per_cue 3 > 2 (zh)"


# ---- properties --------------------------------------------------------------------

_LINE = st.text(
    alphabet=st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp"),
                           blacklist_characters=":>"),
    min_size=1, max_size=20,
).filter(lambda s: s.strip() != "")


@st.composite
def _subtitles(draw: st.DrawFn) -> list[srt.Subtitle]:
    subs, at = [], 0
    for i in range(draw(st.integers(1, 8))):
        start = at + draw(st.integers(0, 5000))
        end = start + draw(st.integers(1, 8000))
        lines = draw(st.lists(_LINE, min_size=1, max_size=3))
        subs.append(srt.Subtitle(i + 1, timedelta(milliseconds=start),
                                 timedelta(milliseconds=end), "\n".join(lines)))
        at = end
    return subs


@settings(max_examples=60, deadline=None)
@given(_subtitles())
def test_strict_reader_reads_what_srt_compose_writes(subs: list[srt.Subtitle]) -> None:
    parsed = srtstrict.read_bytes(srt.compose(subs).encode("utf-8"))
    assert parsed.problems == ()
    assert [(c.number, round(c.start * 1000), round(c.end * 1000), c.lines)
            for c in parsed.cues] == [
        (s.index, s.start // timedelta(milliseconds=1), s.end // timedelta(milliseconds=1),
         tuple(s.content.split("\n"))) for s in subs]


_PIECES = ["1", "2", "12", "\n", "\n\n", "\r\n", "\r", " ", "00:00:01,000", "00:00:02.500",
           "99:99:99,9999", " --> ", "-->", "->", "hello", "你好OK", "\u202bسلام\u202c",
           "\ufeff", "\x00", "\xe9"]


@settings(max_examples=150, deadline=None)
@given(st.one_of(
    st.binary(max_size=200),
    st.lists(st.sampled_from(_PIECES), max_size=40).map(lambda p: "".join(p).encode()),
))
def test_check_never_raises_on_any_input(data: bytes) -> None:
    report = check.check_bytes(data, RULES)
    assert check.exit_status(report) in (0, 1, 2)
    assert check.format_text(report)
    json.loads(check.format_json(report))
