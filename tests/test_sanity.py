"""What a language model does wrong, caught: loops in any spelling, the wrong script, a
sentence dropped, much shorter than its source (but not one fitted to its cues), text
invented beyond the source, a glossary term lost. Such a sentence is decoded again,
else flagged."""

from __future__ import annotations

import pytest
from test_translate import Stubborn  # fixed answers, and others on the second try

from subpipe.glossary import Glossary, Term
from subpipe.rules import Rules
from subpipe.translate.fit import budget
from subpipe.translate.sanity import Expected, flaws
from subpipe.translate.track import findings, translate_track
from subpipe.types import Cue, Track

RULES = {"en": Rules(max_chars_per_line=42), "zh": Rules(max_chars_per_line=16, max_cps=9.0,
                                                         halfwidth_counts_half=True),
         "ur": Rules(max_chars_per_line=42)}

HYPHEN_LOOP = "China-US-US-US-US-US-US-US-US-US-US-US-US-US-US-US-US-US-US-US-US"
LETTER_LOOP = "8G-" + "-".join("S" * 60)
SOURCE_ZH = "中国和巴基斯坦的电视台今天签署了一项新的合作协议。"  # 25 characters: about 100 in English
GOOD_EN = "China's and Pakistan's television stations signed a new cooperation agreement today."


def _track(lang: str, text: str, seconds: float = 6.0) -> Track:
    return Track(lang, (Cue(1.0, 1.0 + seconds, (text,)),))


@pytest.mark.parametrize("loop", [HYPHEN_LOOP, LETTER_LOOP, "The the the the the the the the the",
                                  "He said:hahahahahahahahahahahaha"])
def test_loops_are_found_however_they_are_joined(loop: str) -> None:
    assert "repeated a word or phrase in a loop" in flaws(loop, "en")


def test_a_hyphen_loop_is_decoded_again_and_else_cut_to_one_copy() -> None:
    fixed = Stubborn([HYPHEN_LOOP], [GOOD_EN])
    result = translate_track(_track("zh", SOURCE_ZH), "en", fixed, RULES["en"])
    assert fixed.retried and result.flags == ()
    stuck = translate_track(_track("zh", SOURCE_ZH), "en", Stubborn([LETTER_LOOP], [LETTER_LOOP]), RULES["en"])
    text = " ".join(stuck.track.cues[0].lines)
    assert len(text) < 20 and "S-S-S" not in text
    assert "cleaned" in [f.kind for f in stuck.flags]


def test_a_copy_in_the_wrong_script_is_caught_even_capitalised() -> None:
    assert flaws("Everyone Has The Right To Life", "ur") == ["is not in ur script"]
    assert flaws("ہر شخص کو زندگی کا حق ہے", "ur") == []


def test_a_dropped_or_much_shorter_sentence_is_decoded_again() -> None:
    expected = Expected(SOURCE_ZH, "zh", budget=120.0)
    assert flaws("China.", "en", expected) == [
        "is much shorter than its source (6 characters where about 98 fit)"]
    assert flaws("", "en", expected) == ["dropped the sentence"]
    engine = Stubborn(["China."], [GOOD_EN])
    result = translate_track(_track("zh", SOURCE_ZH), "en", engine, RULES["en"])
    assert engine.retried == [SOURCE_ZH] and result.flags == ()
    assert " ".join(result.track.cues[0].lines) == GOOD_EN


def test_a_translation_fitted_to_its_budget_is_not_dropped() -> None:
    # 2 s at 20 characters a second: 40 characters fit, so a 30-character condensation is fine.
    track = _track("zh", SOURCE_ZH, seconds=2.0)
    assert budget(track.cues, RULES["en"]) == pytest.approx(40.0)
    assert flaws("China, Pakistan TV sign a deal.", "en", Expected(SOURCE_ZH, "zh", budget=40.0)) == []
    engine = Stubborn(["China, Pakistan TV sign a deal."], ["never asked"])
    result = translate_track(track, "en", engine, RULES["en"])
    assert engine.retried == [] and result.flags == ()


def test_text_invented_beyond_the_source_is_decoded_again_else_flagged() -> None:
    invented = GOOD_EN + " " + " ".join(f"Then a speaker number {k} talked about the weather." for k in range(8))
    assert flaws(invented, "en", Expected(SOURCE_ZH, "zh"))[0].startswith("runs on beyond its source")
    engine = Stubborn([invented], [invented])
    result = translate_track(_track("zh", SOURCE_ZH), "en", engine, RULES["en"])
    assert engine.retried
    assert [f.kind for f in result.flags] == ["unfaithful"]
    assert "kept for an editor" in result.flags[0].message


def test_a_lost_glossary_term_is_decoded_again() -> None:
    glossary = Glossary((Term("CPEC", (("zh", "中巴经济走廊"), ("en", "CPEC"))),))
    source = "中巴经济走廊是两国合作的重要项目。"
    engine = Stubborn(["It is an important project of cooperation between the two countries."],
                      ["ZXQ0 is an important project of cooperation between the two countries."])
    result = translate_track(_track("zh", source), "en", engine, RULES["en"], glossary)
    assert engine.retried  # the first answer lost the term
    assert " ".join(result.track.cues[0].lines).startswith("CPEC is")
    assert findings(result) == []
