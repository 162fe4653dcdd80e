"""Cue shaping: every cue obeys every rule it was given, or the shaper says why not."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import pytest
import srt
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from subpipe.cues import ShapeResult, shape
from subpipe.formats.srt import laid_out
from subpipe.rules import Rules, judge, line_length
from subpipe.script import comparable, normalize, visible
from subpipe.types import Cue, Track, Word

RULES = {
    "zh": Rules(16, max_cps=9.0, halfwidth_counts_half=True),
    "en": Rules(42),
    "ur": Rules(42),
}
VOCAB = {
    "zh": ["我们", "今天", "天气", "非常", "好", "北京", "上海", "朋友", "学习", "中文", "电视",
           "节目", "新闻", "大家", "谢谢", "经济", "发展", "很", "快", "的", "了", "是", "在",
           "说", "看", "國家", "時間", "問題", "人民", "工作", "iPhone"],
    "en": ["the", "weather", "is", "very", "good", "today", "and", "we", "are", "going", "to",
           "Lahore", "Karachi", "news", "people", "government", "of", "a", "international",
           "I", "think", "so", "economy", "market", "tomorrow"],
    "ur": ["میں", "آج", "بازار", "جانا", "چاہتا", "ہوں", "موسم", "بہت", "اچھا", "ہے", "پاکستان",
           "لاہور", "کراچی", "خبریں", "لوگ", "کام", "نہیں", "اور", "کے", "کی", "حکومت"],
}
SENTENCE_END = {"zh": ["。", "？", "！"], "en": [".", "?", "!"], "ur": ["۔", "؟"]}
CLAUSE = {"zh": "，", "en": ",", "ur": "،"}
TOL = 1e-6
GOLDEN = Path(__file__).parent / "golden" / "cues"


# ---- the judge's view -----------------------------------------------------------

def violations(cues: tuple[Cue, ...], rules: Rules, audio_end: float | None) -> list[tuple[int, str]]:
    """(cue index, rule) for every rule the judge finds broken (a pair: the earlier cue)."""
    return [(f.cue - 1, f.kind) for f in judge(cues, rules, audio_end=audio_end)]


def assert_structure(result: ShapeResult) -> None:
    """Times always increase; cues are never empty; marks never counted away."""
    for k, cue in enumerate(result.cues):
        assert 0 <= cue.start < cue.end
        assert cue.lines and all(visible(line).strip() for line in cue.lines)
        if k:
            assert cue.start > result.cues[k - 1].end
    assert len(result.spans) == len(result.cues)


def assert_reported(result: ShapeResult, rules: Rules, audio_end: float | None) -> None:
    reported = {(p.cue - 1, p.kind) for p in result.problems if p.cue is not None}
    for k, rule in violations(result.cues, rules, audio_end):
        assert (k, rule) in reported, (k, rule, result.cues[k], result.problems)
        message = next(p.message for p in result.problems if (p.cue, p.kind) == (k + 1, rule))
        assert message.startswith(f"{rule}: ") and message != f"{rule}: "


def assert_no_text_lost(words: list[Word], lang: str, result: ShapeResult) -> None:
    """Every word is in a cue or was dropped on purpose (and said so)."""
    gone = set(result.dropped_words)
    assert bool(gone) == bool(result.dropped)
    kept = "".join(comparable(normalize(w.text, lang)) for i, w in enumerate(words)
                   if i not in gone and w.text.strip())
    shown = "".join(comparable(cue.text) for cue in result.cues)
    if result.cues or not any(p.kind == "past_audio_end" for p in result.problems):
        assert shown == kept


# ---- generators ---------------------------------------------------------------

def _text(lang: str, word: str, mark: str = "") -> str:
    return f"{word}{mark}" if lang == "zh" else f" {word}{mark}"


@st.composite
def legal_inputs(draw: st.DrawFn) -> tuple[str, list[Word], float, list[tuple[float, float]] | None]:
    """Speech slower than the reading speed, pauses between sentences, short words."""
    lang = draw(st.sampled_from(sorted(VOCAB)))
    rules = RULES[lang]
    t = draw(st.floats(0.0, 3.0))
    words: list[Word] = []
    speech: list[tuple[float, float]] = []
    for _ in range(draw(st.integers(1, 5))):
        sentence_start = t
        count = draw(st.integers(1, 22))
        for i in range(count):
            mark = ""
            if i == count - 1:
                mark = draw(st.sampled_from(SENTENCE_END[lang]))
            elif draw(st.integers(0, 6)) == 0:
                mark = CLAUSE[lang]
            text = _text(lang, draw(st.sampled_from(VOCAB[lang])), mark)
            chars = line_length(normalize(text, lang).strip(), rules) + 1
            slowness = draw(st.floats(0.3, 0.8))
            duration = min(2.0, chars / (rules.max_cps * slowness))
            words.append(Word(round(t, 3), round(t + duration, 3), text))
            t += duration + draw(st.floats(0.02, 0.25))
        speech.append((sentence_start - 0.05, t))
        t += draw(st.floats(1.0, 2.5))
    audio_end = round(t + draw(st.floats(0.0, 2.0)), 3)
    return lang, words, audio_end, speech if draw(st.booleans()) else None


ADVERSARIAL_TEXT = {
    "zh": VOCAB["zh"] + ["，", "。", "」", "「", "字幕由Amara.org社群提供", "x" * 40,
                         "我们今天去北京天安门广场看到了很多人还有很多车辆", " ", ""],
    "en": VOCAB["en"] + [",", ".", "Supercalifragilisticexpialidocious" * 2, "", " ", "—"],
    "ur": VOCAB["ur"] + ["،", "۔", "नमस्ते", "hello", "ي", "ك", "", " "],
}


@st.composite
def adversarial_inputs(draw: st.DrawFn) -> tuple[str, list[Word], float | None,
                                                  list[tuple[float, float]] | None]:
    """Anything: overlapping, unordered, zero-length, past the end, too fast, too long."""
    lang = draw(st.sampled_from(sorted(VOCAB)))
    times = st.floats(0.0, 30.0, allow_nan=False)
    words = []
    for _ in range(draw(st.integers(0, 45))):
        start = draw(times)
        end = start + draw(st.sampled_from([0.0, 0.01, 0.2, 0.5, 3.0, 9.0]))
        if draw(st.integers(0, 9)) == 0:
            end = start - 0.3
        text = draw(st.sampled_from(ADVERSARIAL_TEXT[lang]))
        words.append(Word(start, end, text if lang == "zh" else " " + text))
    if draw(st.booleans()):
        words.sort(key=lambda w: w.start)
    audio_end = draw(st.one_of(st.none(), st.floats(0.5, 35.0)))
    speech = None
    if draw(st.booleans()):
        speech = [(a, a + d) for a, d in draw(st.lists(st.tuples(times, st.floats(0.1, 5.0)),
                                                       max_size=6))]
    return lang, words, audio_end, speech


# ---- properties ---------------------------------------------------------------

@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(legal_inputs(), st.sampled_from([0, 12]))
def test_legal_input_gets_a_legal_shaping(case, chain) -> None:  # type: ignore[no-untyped-def]
    lang, words, audio_end, speech = case
    rules = RULES[lang]
    result = shape(words, lang, rules, speech=speech, audio_end=audio_end, close_gaps_frames=chain)
    assert result.problems == ()
    assert all(p.kind == "repeat" for p in result.dropped)  # the vocabulary is small
    assert violations(result.cues, rules, audio_end) == []
    assert_structure(result)
    assert_no_text_lost(words, lang, result)
    for cue, (a, b) in zip(result.cues, result.spans):
        # In-time on the speech onset (3 frames at most before it), out-time near the end.
        assert words[a].start - 3 / rules.fps - TOL <= cue.start <= words[a].start + TOL
        speech_end = max(w.end for w in words[a:b])
        assert cue.end <= max(speech_end + 12 / rules.fps, cue.start + rules.min_duration) + 0.002


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(adversarial_inputs(), st.sampled_from([0, 12]), st.sampled_from([0, 25]))
def test_every_broken_rule_is_reported(case, chain, hold) -> None:  # type: ignore[no-untyped-def]
    lang, words, audio_end, speech = case
    rules = RULES[lang]
    blocklist = ["字幕由Amara.org社群提供"]
    result = shape(words, lang, rules, speech=speech, audio_end=audio_end, blocklist=blocklist,
                   close_gaps_frames=chain, hold_in_sentence_frames=hold)
    assert_structure(result)
    assert_reported(result, rules, audio_end)
    assert_no_text_lost(words, lang, result)
    assert shape(words, lang, rules, speech=speech, audio_end=audio_end,
                 blocklist=blocklist, close_gaps_frames=chain, hold_in_sentence_frames=hold) == result


# ---- examples -------------------------------------------------------------------

def test_a_loop_that_ends_inside_a_longer_word_keeps_that_word_whole() -> None:
    # Found by hypothesis: the loop of 我们 took the first piece of the last word, which
    # was then reported as dropped while the rest of it was shown.
    words = [Word(0.0, -0.3, "我们")] * 5 + [Word(0.0, -0.3, "我们今天去北京天安门广场看到了很多人还有很多车辆")]
    result = shape(words, "zh", RULES["zh"], audio_end=None)
    assert_no_text_lost(words, "zh", result)
    assert "今天去北京" in "".join(c.text for c in result.cues)



def _words(lang: str, spec: str, start: float = 0.5, per_char: float = 0.08,
           gap: float = 0.1) -> list[Word]:
    """Words from "a b c" (spaces) or "我们|今天" (bars), timed by length."""
    parts = spec.split("|") if lang == "zh" else spec.split()
    words, t = [], start
    for part in parts:
        duration = max(0.15, per_char * len(part))
        words.append(Word(round(t, 3), round(t + duration, 3), part if lang == "zh" else " " + part))
        t += duration + gap + (0.8 if part[-1] in "。.۔?？!！" else 0.0)
    return words


def test_short_gaps_are_closed_to_the_minimum_gap() -> None:
    words = _words("en", "This is the first half of a long sentence that goes on, "
                   "and this is the second half that makes it far too long for one cue.")
    apart = shape(words, "en", RULES["en"], audio_end=20.0)
    chained = shape(words, "en", RULES["en"], audio_end=20.0, close_gaps_frames=12)
    assert len(apart.cues) == len(chained.cues) == 2
    assert 0.08 < apart.cues[1].start - apart.cues[0].end < 0.48
    assert chained.cues[1].start - chained.cues[0].end == pytest.approx(0.08, abs=0.0015)
    assert chained.cues[1] == apart.cues[1] and chained.problems == ()


def test_a_cue_that_stops_mid_sentence_is_held_through_the_pause() -> None:
    words = _words("en", "This is the first half of a long sentence that goes on, "
                   "and this is the second half that makes it far too long for one cue.", per_char=0.1)
    # A 0.8 s pause after the comma: longer than 12 frames, shorter than 25.
    words = [w if i < 12 else Word(w.start + 0.7, w.end + 0.7, w.text) for i, w in enumerate(words)]
    apart = shape(words, "en", RULES["en"], audio_end=30.0, close_gaps_frames=12)
    held = shape(words, "en", RULES["en"], audio_end=30.0, close_gaps_frames=12, hold_in_sentence_frames=25)
    assert len(apart.cues) == len(held.cues) == 2
    assert apart.cues[0].lines[-1].endswith(",")
    assert apart.cues[1].start - apart.cues[0].end > 0.48
    assert held.cues[1].start - held.cues[0].end == pytest.approx(0.08, abs=0.0015)
    # Between sentences there is no hold: the viewer sees the sentence end.
    two = _words("en", "This sentence ends here. And another one starts after a pause.", per_char=0.12)
    two = [w if i < 4 else Word(w.start + 0.7, w.end + 0.7, w.text) for i, w in enumerate(two)]
    split = shape(two, "en", RULES["en"], audio_end=30.0, close_gaps_frames=12, hold_in_sentence_frames=25)
    assert len(split.cues) == 2 and split.cues[1].start - split.cues[0].end > 0.48


def test_single_word_longer_than_a_line_is_reported() -> None:
    words = [Word(1.0, 4.0, " " + "x" * 60)]
    result = shape(words, "en", RULES["en"], audio_end=10.0)
    assert len(result.cues) == 1
    assert [(p.kind, p.message) for p in result.problems] == [
        ("chars_per_line", "chars_per_line: a single word longer than a line")]


def test_fast_speech_is_reported() -> None:
    words = _words("en", "international government economy international government economy",
                   per_char=0.01, gap=0.0)
    result = shape(words, "en", RULES["en"], audio_end=words[-1].end)
    assert result.cues
    assert {p.message for p in result.problems} == {"reading_speed: speech faster than the reading speed"}


def test_short_word_is_extended_into_silence() -> None:
    result = shape([Word(1.0, 1.2, " Yes.")], "en", RULES["en"], audio_end=5.0)
    (cue,) = result.cues
    assert cue.start == 1.0 and cue.end >= 1.0 + RULES["en"].min_duration
    assert result.problems == ()


def test_never_past_audio_end() -> None:
    result = shape([Word(4.5, 4.9, " Goodbye.")], "en", RULES["en"], audio_end=5.0)
    (cue,) = result.cues
    assert cue.end <= 5.0 and cue.end - cue.start >= RULES["en"].min_duration
    # The minimum duration wins over the in-time; the shaper says so.
    assert [p.kind for p in result.problems] == ["sync"]


def test_words_outside_speech_are_dropped() -> None:
    words = _words("en", "Hello there. Thanks for watching!", start=1.0)
    result = shape(words, "en", RULES["en"], speech=[(0.9, 2.0)], audio_end=20.0)
    assert [c.text for c in result.cues] == ["Hello there."]
    assert [p.kind for p in result.dropped] == ["speech"] and result.dropped_words == (2, 3, 4)
    assert (result.dropped[0].start, result.dropped[0].end) == (words[2].start, words[4].end)


def test_blocklisted_credit_line_is_dropped() -> None:
    words = _words("zh", "谢谢|大家|。|字幕|由|Amara|.|org|社群|提供")
    result = shape(words, "zh", RULES["zh"], audio_end=30.0,
                   blocklist=["字幕由Amara.org社群提供", "請不吝點贊訂閱轉發打賞支持明鏡與點點欄目"])
    assert [c.text for c in result.cues] == ["谢谢大家。"]
    assert [p.kind for p in result.dropped] == ["blocklist"]


def test_traditional_blocklist_matches_simplified_text() -> None:
    words = _words("zh", "请不吝|点赞|订阅|转发|打赏|支持|明镜|与|点点|栏目")
    result = shape(words, "zh", RULES["zh"], blocklist=["請不吝點贊訂閱轉發打賞支持明鏡與點點欄目"])
    assert result.cues == ()


def test_repetition_loop_is_dropped() -> None:
    words = _words("en", "Thank you for watching. " * 5 + "Bye.")
    result = shape(words, "en", RULES["en"], audio_end=60.0)
    assert [c.text for c in result.cues] == ["Thank you for watching.", "Bye."]
    assert [p.kind for p in result.dropped] == ["repeat"]


def test_real_repetition_is_kept() -> None:
    words = _words("en", "No, no, no.")
    result = shape(words, "en", RULES["en"], audio_end=10.0)
    assert [c.text for c in result.cues] == ["No, no, no."]


def test_chinese_is_simplified_and_urdu_marked_when_written() -> None:
    zh = shape(_words("zh", "這個|國家|的|經濟|發展|很|快|。"), "zh", RULES["zh"])
    assert zh.cues[0].text == "这个国家的经济发展很快。"
    ur = Track("ur", shape(_words("ur", "میں آج بازار جانا چاہتا ہوں۔"), "ur", RULES["ur"]).cues)
    assert ur.cues[0].lines == ("میں آج بازار جانا چاہتا ہوں۔",)
    rle = laid_out(ur, "rle")
    assert all(line.startswith("\u202b") and line.endswith("\u202c") for line in rle.cues[0].lines)
    assert laid_out(ur, "rlm").cues[0].lines[0].startswith("\u200f")


def test_urdu_in_latin_script_is_reported() -> None:
    result = shape(_words("ur", "main aaj bazaar"), "ur", RULES["ur"])
    assert [p.kind for p in result.problems] == ["script"]


def test_a_pseudo_word_becomes_a_cue_of_its_own() -> None:
    words = [Word(0.0, 0.5, " Hi"), Word(0.6, 1.0, " there."), Word(2.0, 4.0, " No words here.")]
    result = shape(words, "en", RULES["en"], audio_end=10.0)
    assert [c.text for c in result.cues] == ["Hi there.", "No words here."]


def test_pseudo_word_for_a_long_segment_is_split() -> None:
    text = " " + " ".join(f"{w} number {i}" for i, w in enumerate(VOCAB["en"][:12])) + "."
    result = shape([Word(0.0, 14.0, text)], "en", RULES["en"], audio_end=20.0)
    assert len(result.cues) >= 2
    assert result.problems == ()
    assert result.spans == ((0, 1),) * len(result.cues)


# ---- golden files ---------------------------------------------------------------

GOLDEN_CASES = {
    "zh": ("zh", _words("zh", "大家|好|，|欢迎|收看|今天|的|新聞|節目|。|今年|夏天|拉合尔|的|天气"
                        "|非常|热|，|很多|人|都|待|在|家里|。|政府|表示|，|将|在|下周|发布|新的"
                        "|防暑|措施|。|字幕由Amara.org社群提供", per_char=0.22),
           ["字幕由Amara.org社群提供"]),
    "ur": ("ur", _words("ur", "السلام علیکم، آج کی خبروں میں خوش آمدید۔ اس سال لاہور میں گرمی بہت"
                        " زیادہ ہے، اور بہت سے لوگ گھروں میں رہ رہے ہیں۔ حکومت نے کہا ہے کہ"
                        " اگلے ہفتے نئے اقدامات کا اعلان کیا جائے گا۔"), []),
    "en": ("en", _words("en", "Good evening, and welcome to the news. This summer the weather in"
                        " Lahore has been extremely hot, and many people are staying at home."
                        " The government says it will announce new measures next week. Thank"
                        " you for watching. Thank you for watching. Thank you for watching."),
           []),
}


def compose(result: ShapeResult, lang: str) -> str:
    """The cues as written (Urdu lines in direction marks)."""
    cues = laid_out(Track(lang, result.cues), "rle").cues
    subs = [srt.Subtitle(k + 1, timedelta(seconds=c.start), timedelta(seconds=c.end), c.text)
            for k, c in enumerate(cues)]
    return srt.compose(subs, reindex=False)


@pytest.mark.parametrize("name", sorted(GOLDEN_CASES))
def test_golden(name: str) -> None:
    lang, words, blocklist = GOLDEN_CASES[name]
    result = shape(words, lang, RULES[lang], audio_end=words[-1].end + 2.0, blocklist=blocklist)
    assert result.problems == ()
    data = compose(result, lang).encode("utf-8")
    path = GOLDEN / f"{name}.srt"
    if os.environ.get("SUBPIPE_REGEN_GOLDEN"):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    assert path.read_bytes() == data
