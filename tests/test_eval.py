"""`subpipe eval` and its measures, on cases small enough to count by hand."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from subpipe.cli import main
from subpipe.scoring import bleu, cer, chrf, cue_precision, match_by_time, speech_recall, wer

TSV = ("id\tstart\tend\ttext\teng\turd\tcmn\n"
       "a\t1.0\t3.0\t人人有权享有生命。\tEveryone has the right to life.\tہر شخص کو زندگی کا حق ہے۔\t人人有权享有生命。\n"
       "b\t5.0\t7.0\t自由和安全。\tLiberty and security.\tآزادی اور تحفّظ۔\t自由和安全。\n")


def srt(*cues: tuple[float, float, str]) -> str:
    def clock(t: float) -> str:
        ms = round(t * 1000)
        return f"00:00:{ms // 1000:02d},{ms % 1000:03d}"
    return "".join(f"{n}\n{clock(a)} --> {clock(b)}\n{text}\n\n" for n, (a, b, text) in enumerate(cues, 1))


def invoke(*args: str | Path):
    return CliRunner().invoke(main, [str(a) for a in args])


def test_cer_folds_nfkc_traditional_punctuation_and_spaces() -> None:
    # 權 -> 权, full-width Ａ -> a, punctuation and spaces dropped: hyp 人人有权享有生命 against
    # ref 人人有权享有生命自由 is two deletions over ten characters.
    assert cer("人人 有權，享有生命。", "人人有权享有生命、自由", "zh") == pytest.approx(2 / 10)
    assert cer("ＡＢ", "ab", "en") == 0.0


def test_wer_counts_words_and_folds_urdu_letters() -> None:
    # "on the mat" lost "the": one deletion over six words; case and punctuation don't count.
    assert wer("The cat sat on mat.", "the cat sat on the mat", "en") == pytest.approx(1 / 6)
    # Arabic kaf (ك) and yeh (ي) are Urdu's ک and ی; the shadda (a vowel mark) is not a letter.
    assert wer("ہر شخص كو حق ہے", "ہر شخص کو حق ہے", "ur") == 0.0
    assert wer("تحفظ", "تحفّظ", "ur") == 0.0
    # One word substituted of four.
    assert wer("آزادی اور امن ہے", "آزادی اور تحفظ ہے", "ur") == pytest.approx(1 / 4)


def test_chrf_matches_a_hand_count() -> None:
    # sacrebleu's chrF2: average the n-gram precisions and recalls over the orders both
    # sides have, then F(beta=2). "abc" against "abd": 1-grams 2/3, 2-grams 1/2,
    # 3-grams 0 -> P = R = 7/18, F = 7/18.
    assert chrf(["abc"], ["abd"], "en") == pytest.approx(100 * 7 / 18)
    # "the cat" against "the cat sat" (spaces dropped): P = 1 at every order, recalls
    # 6/9, 5/8, 4/7, 3/6, 2/5, 1/4 -> R their mean, F = 5PR / (4P + R).
    r = (6 / 9 + 5 / 8 + 4 / 7 + 3 / 6 + 2 / 5 + 1 / 4) / 6
    assert chrf(["the cat"], ["the cat sat"], "en") == pytest.approx(100 * 5 * r / (4 + r))
    assert chrf(["人人有權"], ["人人有权"], "zh") == pytest.approx(100.0)  # Traditional folded first


def test_bleu_is_perfect_on_the_same_text_and_zero_on_none_shared() -> None:
    assert bleu(["the cat sat on the mat"], ["the cat sat on the mat"], "en") == pytest.approx(100.0)
    assert bleu(["dog"], ["the cat sat on the mat"], "en") == 0.0


def test_speech_recall_and_cue_precision_against_reference_times() -> None:
    speech = [(1.0, 3.0), (5.0, 7.0)]
    cues = [(0.0, 2.0), (6.0, 8.0), (10.0, 11.0)]
    # 1 s of the first sentence and 1 s of the second are covered: 2 of 4 s.
    assert speech_recall(cues, speech) == pytest.approx(0.5)
    # The third cue is over silence.
    assert cue_precision(cues, speech) == pytest.approx(2 / 3)
    # Each cue goes to the segment it overlaps most; the third to none.
    assert match_by_time(cues, speech) == [[0], [1]]


def test_eval_json_takes_the_hypothesis_language_column(tmp_path: Path) -> None:
    ref = tmp_path / "film.ref.tsv"
    ref.write_text(TSV, encoding="utf-8")
    hyp = tmp_path / "film.en.srt"
    hyp.write_text(srt((1.0, 3.0, "Everyone has the right to life."), (5.0, 7.0, "Liberty and safety.")))
    result = invoke("eval", hyp, "--ref", ref, "--format", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["lang"] == "en" and data["column"] == "eng"
    assert data["wer"] == pytest.approx(1 / 9)  # "security" -> "safety", of nine words
    assert data["speech_recall"] == pytest.approx(1.0) and data["cue_precision"] == pytest.approx(1.0)
    assert data["cues"] == 2 and data["rule_breaks"] == 0 and data["rule_compliance"] == 1.0
    assert 0 < data["chrf"] < 100


def test_eval_mandarin_cer_from_a_srt_reference(tmp_path: Path) -> None:
    ref = tmp_path / "ref.srt"
    ref.write_text(srt((1.0, 3.0, "人人有权享有生命。"), (5.0, 7.0, "自由和安全。")), encoding="utf-8")
    hyp = tmp_path / "film.zh.srt"
    hyp.write_text(srt((1.0, 3.0, "人人有權享有生命"), (5.0, 7.0, "自由和安")), encoding="utf-8")
    data = json.loads(invoke("eval", hyp, "--ref", ref, "--format", "json").output)
    assert data["cer"] == pytest.approx(1 / 13) and data["wer"] is None  # 全 lost of 13 characters


def test_eval_text_report_and_the_untranslated_urdu_column(tmp_path: Path) -> None:
    ref = tmp_path / "film.ref.tsv"
    ref.write_text(TSV, encoding="utf-8")
    hyp = tmp_path / "out.ur.srt"
    hyp.write_text(srt((1.0, 3.0, "ہر شخص کو زندگی کا حق ہے۔"), (5.0, 7.0, "آزادی اور تحفظ۔")), encoding="utf-8")
    result = invoke("eval", hyp, "--ref", ref)
    assert result.exit_code == 0, result.output
    assert "(urd, 2 segments)" in result.output and "WER 0.000" in result.output


def test_eval_refuses_a_reference_without_times_in_one_error_line(tmp_path: Path) -> None:
    ref = tmp_path / "bad.tsv"
    ref.write_text("id\ttext\na\thello\n", encoding="utf-8")
    hyp = tmp_path / "film.en.srt"
    hyp.write_text(srt((1.0, 3.0, "hello")))
    result = invoke("eval", hyp, "--ref", ref)
    assert result.exit_code == 2
    assert result.output.strip().startswith("Error: reference") and "start, end" in result.output
    assert len(result.output.strip().splitlines()) == 1
