"""Line breaking: never inside a jieba word, no line starting with closing punctuation, balanced."""

from __future__ import annotations

import logging

import jieba
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from subpipe.errors import ConfigError
from subpipe.linebreak import CLOSING, break_lines, units_of
from subpipe.rules import Rules, line_length
from subpipe.script import comparable, foreign_letters, mark_rtl, normalize, to_simplified

ZH = Rules(16, max_cps=9.0, halfwidth_counts_half=True)
EN = Rules(42)
UR = Rules(42)

ZH_WORDS = ["我们", "今天", "天气", "非常", "好", "北京", "上海", "朋友", "学习", "中文", "电视",
            "节目", "新闻", "大家", "谢谢", "经济", "发展", "很", "快", "的", "了", "是", "在",
            "说", "看", "国家", "时间", "问题", "人民", "工作", "iPhone", "2024年"]
ZH_PUNCT = ["，", "。", "！", "？", "、", "」", "（", "）", "《", "》"]
EN_WORDS = ["the", "weather", "is", "very", "good", "today", "and", "we", "are", "going", "to",
            "Lahore", "Karachi", "news", "people", "government", "of", "a", "international",
            "I", "think", "so", "(yes)", "economy"]
UR_WORDS = ["میں", "آج", "بازار", "جانا", "چاہتا", "ہوں", "موسم", "بہت", "اچھا", "ہے", "پاکستان",
            "لاہور", "کراچی", "خبریں", "لوگ", "کام", "نہیں", "اور", "کے", "کی", "حکومت"]
UR_PUNCT = ["،", "۔", "؟"]

_JIEBA = jieba.Tokenizer()
jieba.setLogLevel(logging.WARNING)

zh_text = st.lists(st.sampled_from(ZH_WORDS + ZH_PUNCT), min_size=1, max_size=40).map("".join)
en_text = st.lists(st.sampled_from(EN_WORDS + [",", "."]), min_size=1, max_size=40).map(" ".join)
ur_text = st.lists(st.sampled_from(UR_WORDS + UR_PUNCT), min_size=1, max_size=40).map(" ".join)


def _boundaries(parts: list[str]) -> set[int]:
    out, pos = {0}, 0
    for part in parts:
        pos += len(part)
        out.add(pos)
    return out


def _fits(lines: list[str], text: str, lang: str, rules: Rules) -> None:
    for line in lines:
        if line_length(line, rules) > rules.max_chars_per_line:
            assert len(units_of(line, lang)) == 1, line


@settings(max_examples=200, deadline=None)
@given(zh_text)
def test_zh_never_breaks_inside_a_jieba_word(text: str) -> None:
    lines = break_lines(text, "zh", ZH)
    assert "".join(lines) == text
    words = _boundaries(_JIEBA.lcut(text))
    cuts = _boundaries(lines)
    assert cuts <= words
    _fits(lines, text, "zh", ZH)


@settings(max_examples=200, deadline=None)
@given(st.sampled_from([("zh", ZH, zh_text), ("en", EN, en_text), ("ur", UR, ur_text)]).flatmap(
    lambda c: st.tuples(st.just(c[0]), st.just(c[1]), c[2])))
def test_no_line_starts_with_closing_punctuation(case: tuple[str, Rules, str]) -> None:
    lang, rules, text = case
    lines = break_lines(text, lang, rules)
    for line in lines[1:]:
        assert line[0] not in CLOSING, lines
        assert line == line.strip()
    _fits(lines, text, lang, rules)
    joiner = "" if lang == "zh" else " "
    assert joiner.join(lines) == " ".join(text.split())


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from([w for w in EN_WORDS if w not in {"(yes)"}]), min_size=2,
                max_size=14))
def test_two_lines_are_balanced(words: list[str]) -> None:
    text = " ".join(words)
    lines = break_lines(text, "en", EN)
    if len(text) <= 42:
        assert lines == [text]
        return
    if len(lines) != 2:
        return
    # The best possible split by length alone; style may cost at most a few characters.
    best = min(abs(len(" ".join(words[:k])) - len(" ".join(words[k:])))
               for k in range(1, len(words))
               if max(len(" ".join(words[:k])), len(" ".join(words[k:]))) <= 42)
    assert abs(len(lines[0]) - len(lines[1])) <= best + 0.5 * 42


def test_uses_as_few_lines_as_possible() -> None:
    assert break_lines("short", "en", EN) == ["short"]
    assert break_lines("", "en", EN) == []
    long = " ".join(["international"] * 9)
    assert len(break_lines(long, "en", EN)) == 3  # the caller decides about a third line


def test_zh_prefers_punctuation() -> None:
    assert break_lines("我们今天来谈谈拉合尔的天气，这个夏天非常热。", "zh", ZH) == [
        "我们今天来谈谈拉合尔的天气，", "这个夏天非常热。"]


def test_zh_keeps_words_whole() -> None:
    lines = break_lines("我们今天去北京天安门广场看到了很多人还有很多车辆", "zh", ZH)
    assert any("北京天安门广场" in line for line in lines)


def test_en_prefers_the_comma() -> None:
    text = "I think we should go to the market today, because the weather is nice."
    assert break_lines(text, "en", EN) == [
        "I think we should go to the market today,", "because the weather is nice."]


def test_en_avoids_an_orphan_word() -> None:
    text = "We will meet again at the station tomorrow morning before nine."
    lines = break_lines(text, "en", EN)
    assert len(lines) == 2 and all(len(line.split()) > 1 for line in lines)


def test_halfwidth_counts_half_in_chinese() -> None:
    text = "我用iPhone看新闻我用iPhone看新闻"
    assert line_length(text, ZH) == 16
    assert break_lines(text, "zh", ZH) == [text]


def test_single_overlong_word_gets_its_own_line() -> None:
    word = "x" * 50
    assert break_lines(f"a {word} b", "en", EN) == ["a", word, "b"]


def test_opening_bracket_stays_with_its_word() -> None:
    lines = break_lines("他说「我们今天去北京天安门广场看看」然后就走了大家都很高兴", "zh", ZH)
    for line in lines:
        assert not line.endswith("「")
        assert not line.startswith("」")


# ---- script helpers -----------------------------------------------------------

def test_to_simplified() -> None:
    assert to_simplified("請不吝點贊訂閱轉發打賞支持明鏡與點點欄目") == "请不吝点赞订阅转发打赏支持明镜与点点栏目"
    assert to_simplified("already simple 简体") == "already simple 简体"


@pytest.mark.parametrize("mode, wrapped", [
    ("rle", "\u202bسلام\u202c"), ("rlm", "\u200fسلام\u200f"), ("none", "سلام")])
def test_mark_rtl(mode: str, wrapped: str) -> None:
    assert mark_rtl("سلام", mode) == wrapped
    assert mark_rtl(mark_rtl("سلام", mode), mode) == wrapped


def test_mark_rtl_rejects_unknown_mode() -> None:
    with pytest.raises(ConfigError, match="lrm"):
        mark_rtl("سلام", "lrm")


def test_arabic_script() -> None:
    assert not foreign_letters("میں آج بازار جانا چاہتا ہوں، ۲۰۲۴ 2024!")
    assert foreign_letters("मैं आज बाज़ार")
    assert foreign_letters("میں ok") == "ok"


def test_normalize() -> None:
    assert normalize("這是,測試.", "zh") == "这是，测试。"
    assert normalize("版本3.5", "zh") == "版本3.5"
    assert normalize("\u064a\u0643", "ur") == "\u06cc\u06a9"
    assert comparable("字幕由 Amara.org 社群提供！") == comparable("字幕由Amara.org社群提供")
