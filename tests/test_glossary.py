"""Glossary loading, protection through a stand-in model, restoration and reporting."""

from __future__ import annotations

from pathlib import Path

import pytest

from subpipe.errors import ConfigError
from subpipe.glossary import (
    Checked,
    Glossary,
    Term,
    check,
    fill,
    load_glossary,
    protect,
    whisper_prompt,
)

CONFIG = Path(__file__).resolve().parent.parent / "configs" / "glossary.toml"


def restore(output: str, protected):  # noqa: ANN001, ANN201 - check, then fill: what the track side does
    checked = check(output, protected.slots)
    return Checked(fill(checked.text, protected.slots), checked.uses, checked.misses)


@pytest.fixture(scope="module")
def glossary() -> Glossary:
    return load_glossary(CONFIG)


def test_shipped_glossary_has_the_project_terms(glossary: Glossary) -> None:
    by_key = {t.key: t for t in glossary.terms}
    assert by_key["CPEC"].rendering("zh") == "中巴经济走廊"
    assert by_key["CPEC"].rendering("ur") == "چین پاکستان اقتصادی راہداری"
    assert by_key["PTV"].rendering("zh") == "巴基斯坦电视台"
    assert by_key["Attaullah Tarar"].rendering("zh") == "塔拉尔"
    assert by_key["Attaullah Tarar"].rendering("ur") == "عطا اللہ تارڑ"
    assert "China-Pakistan Economic Corridor" in by_key["CPEC"].forms("en")


def test_csv_loads_like_toml(tmp_path: Path, glossary: Glossary) -> None:
    csv_file = tmp_path / "terms.csv"
    csv_file.write_text(
        "\ufeffterm,en,zh,ur,aliases,note\n"
        "CPEC,CPEC,中巴经济走廊,چین پاکستان اقتصادی راہداری,en:China-Pakistan Economic Corridor|ur:سی پیک,\n"
        "PTV,PTV,巴基斯坦电视台,پی ٹی وی,,\n"
        "Attaullah Tarar,Attaullah Tarar,塔拉尔,عطا اللہ تارڑ,,Federal Minister for Information and Broadcasting\n",
        encoding="utf-8",
    )
    assert load_glossary(csv_file) == glossary


def test_a_toml_glossary_with_a_byte_order_mark_loads(tmp_path: Path, glossary: Glossary) -> None:
    saved = tmp_path / "glossary.toml"
    saved.write_bytes(CONFIG.read_text(encoding="utf-8").encode("utf-8-sig"))
    assert load_glossary(saved) == glossary


def test_unknown_key_is_named(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[[term]]\nterm = "PTV"\nen = "PTV"\nfr = "PTV"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="'fr'"):
        load_glossary(bad)


def test_duplicate_term_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "dup.csv"
    bad.write_text("term,en,zh\nPTV,PTV,巴基斯坦电视台\nPTV,PTV,电视台\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="twice"):
        load_glossary(bad)


def test_protect_prefers_the_longest_form_and_respects_word_edges(glossary: Glossary) -> None:
    text = "PTV says the China-Pakistan Economic Corridor helps; SPTV and PTVs do not count."
    protected = protect(text, "en", "zh", glossary)
    assert protected.text == "ZXQ0 says the ZXQ1 helps; SPTV and PTVs do not count."
    assert [(s.term, s.target) for s in protected.slots] == [("PTV", "巴基斯坦电视台"), ("CPEC", "中巴经济走廊")]


def test_a_longer_term_wins_over_a_term_inside_it() -> None:
    glossary = Glossary((
        Term("Attaullah", (("en", "Attaullah"), ("zh", "阿塔乌拉"))),
        Term("Attaullah Tarar", (("en", "Attaullah Tarar"), ("zh", "塔拉尔"))),
    ))
    protected = protect("Attaullah Tarar met Attaullah.", "en", "zh", glossary)
    assert protected.text == "ZXQ0 met ZXQ1."
    assert [s.target for s in protected.slots] == ["塔拉尔", "阿塔乌拉"]


def test_protect_urdu_and_chinese_sources(glossary: Glossary) -> None:
    ur = protect("وزیر عطا اللہ تارڑ نے پی ٹی وی سے بات کی۔", "ur", "en", glossary)
    assert ur.text == "وزیر ZXQ0 نے ZXQ1 سے بات کی۔"
    assert [s.target for s in ur.slots] == ["Attaullah Tarar", "PTV"]
    zh = protect("塔拉尔表示中巴经济走廊进展顺利。", "zh", "en", glossary)
    assert zh.text == "ZXQ0表示ZXQ1进展顺利。"


def test_terms_without_a_target_rendering_are_left_alone() -> None:
    glossary = Glossary((Term("PTV", (("en", "PTV"),)),))
    assert protect("PTV news", "en", "zh", glossary).slots == ()


def _keep(text: str) -> str:
    return text


def _drop(text: str) -> str:
    return text.replace("ZXQ1", "")


def _duplicate(text: str) -> str:
    return text.replace("ZXQ1", "ZXQ1 ZXQ1")


def _mangle(text: str) -> str:
    return text.replace("ZXQ1", "zxq 1")


@pytest.mark.parametrize(
    ("model", "reason"),
    [(_keep, None), (_drop, "dropped"), (_duplicate, "duplicated"), (_mangle, "mangled")],
)
def test_restoration_through_a_stand_in_model(glossary: Glossary, model, reason) -> None:  # type: ignore[no-untyped-def]
    protected = protect("PTV reports on CPEC today.", "en", "zh", glossary)
    assert protected.text == "ZXQ0 reports on ZXQ1 today."
    result = restore(model(protected.text), protected)
    assert ("PTV", "巴基斯坦电视台") in [(u.term, u.target) for u in result.uses]
    assert result.text.startswith("巴基斯坦电视台 reports on")
    assert "ZXQ" not in result.text.upper().replace(" ", "")
    if reason is None:
        assert result.misses == ()
        assert result.text == "巴基斯坦电视台 reports on 中巴经济走廊 today."
    else:
        assert [(m.term, m.reason) for m in result.misses] == [("CPEC", reason)]
        assert "CPEC" not in [u.term for u in result.uses]
    if reason == "duplicated":
        assert result.text.count("中巴经济走廊") == 1


def test_unknown_placeholder_is_reported_and_removed() -> None:
    result = check("hello ZXQ7 world", ())
    assert result.text == "hello world"
    assert [(m.term, m.reason) for m in result.misses] == [("?", "mangled")]


def test_a_dropped_placeholder_whose_rendering_is_present_counts_as_used(glossary: Glossary) -> None:
    protected = protect("CPEC", "en", "zh", glossary)
    result = restore("中巴经济走廊。", protected)
    assert [(u.term, u.how) for u in result.uses] == [("CPEC", "found")]
    assert result.misses == ()


def test_whisper_prompt_lists_terms_in_the_language(glossary: Glossary) -> None:
    assert whisper_prompt(glossary, "zh") == "中巴经济走廊、巴基斯坦电视台、塔拉尔。"
    assert whisper_prompt(glossary, "en") == "CPEC, PTV, Attaullah Tarar."
    assert whisper_prompt(glossary, "ur").startswith("چین پاکستان اقتصادی راہداری، پی ٹی وی")
    assert whisper_prompt(glossary, "en", max_chars=10) == "CPEC, PTV."
    assert whisper_prompt(Glossary(), "en") == ""
