"""The speech backends: window planning, weight conversion, and agreement on real speech."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pytest

from subpipe.asr import Chunk, DecodeOptions, plan_chunks
from subpipe.asr.windows import WINDOW, Window, plan_windows
from subpipe.config import load_config
from subpipe.errors import UsageError
from subpipe.scoring import cer, word_start_agreement
from subpipe.types import Word

GREEDY = DecodeOptions(beam_size=1, temperatures=(0.0,), seed=0)


# --- window planning (pure) ------------------------------------------------------------

def test_regions_are_packed_into_windows_in_order() -> None:
    regions = [(1.0, 9.0), (10.0, 20.0), (21.0, 33.0), (40.0, 45.0)]
    windows = plan_windows(regions)
    assert [r for w in windows for r in w.regions] == regions
    assert all(w.duration <= WINDOW for w in windows)
    assert len(windows) == 2  # 8 + 10 s, then 12 + 5 s


def test_a_region_longer_than_a_window_is_cut() -> None:
    windows = plan_windows([(0.0, 70.0)])
    assert [w.regions for w in windows] == [((0.0, 30.0),), ((30.0, 60.0),), ((60.0, 70.0),)]


def test_a_chunks_regions_are_widened_and_kept_inside_it() -> None:
    (chunk,) = plan_chunks(5.0, [(0.1, 2.0), (4.0, 4.9)], 600.0, decode_pad=0.2)
    assert chunk == Chunk(0.0, 5.0, ((0.0, 2.2), (3.8, 5.0)))
    assert plan_chunks(5.0, None, 600.0)[0].decode_regions() == [(0.0, 5.0)]


def test_window_time_maps_back_to_the_film() -> None:
    window = Window(((10.0, 12.0), (20.0, 23.0)), glued=True)
    assert window.region_at(1.0) == 0 and window.region_at(2.5) == 1
    assert window.film_time(2.5, 1) == 20.5
    # A time past its region's end is kept inside the region.
    assert window.film_time(2.3, 0) == 12.0


def test_words_are_placed_on_the_film_region_by_region() -> None:
    window = Window(((10.0, 12.0), (20.0, 23.0)), glued=True)
    words = [Word(0.1, 0.5, "你好"), Word(2.2, 2.8, "再见"), Word(0.6, 1.9, "世界")]
    placed = window.place(words)
    assert [w.text for w in placed] == ["你好", "世界", "再见"]
    assert placed[2].start == pytest.approx(20.2)
    assert placed[0].start == pytest.approx(10.1)


def test_audio_of_a_window_is_its_regions_glued() -> None:
    audio = np.arange(16_000 * 4, dtype=np.float32)
    samples = Window(((0.0, 1.0), (2.0, 2.5)), glued=True).samples(audio)
    assert len(samples) == 16_000 + 8_000
    assert samples[16_000] == 32_000


def test_an_unglued_window_keeps_its_pauses_and_maps_by_offset() -> None:
    window = Window(((10.0, 12.0), (20.0, 23.0)))
    assert window.duration == 13.0
    assert len(window.samples(np.zeros(16_000 * 30, np.float32))) == 13 * 16_000
    assert window.film_time(10.5, window.region_at(10.5)) == 20.5
    assert window.region_at(6.0) == 0 and window.region_at(9.0) == 1  # a pause goes to the nearer region


# --- the agreement measure (pure) ----------------------------------------------------

def test_word_starts_match_through_the_characters_across_splits() -> None:
    a = [Word(0.0, 0.4, "完全"), Word(0.4, 0.6, "平等")]
    b = [Word(0.05, 0.2, "完"), Word(0.2, 0.4, "全"), Word(0.9, 1.2, "平等")]
    share, compared = word_start_agreement(a, b, "zh")
    assert compared == 2 and share == 0.5


# --- choosing a backend -----------------------------------------------------------------

def test_unknown_backend_is_refused_by_name() -> None:
    from subpipe.asr.backends import make_transcriber

    with pytest.raises(UsageError, match="unknown backend 'kaldi'"):
        make_transcriber(replace(load_config().asr, backend="kaldi"))


def test_auto_picks_faster_whisper_when_installed() -> None:
    from subpipe.asr.backends import auto_backend

    assert auto_backend() == "faster-whisper"


# --- tiny random weights: conversion is exact, backends run -----------------------------

def test_transformers_conversion_gives_openai_whisper_logits(tiny_resolved) -> None:
    import torch
    import whisper
    from transformers import WhisperForConditionalGeneration

    from subpipe.asr.convert import transformers_folder

    reference = whisper.load_model(str(tiny_resolved.path), device="cpu")
    converted = WhisperForConditionalGeneration.from_pretrained(transformers_folder(tiny_resolved)).eval()
    mel = torch.randn(1, 80, 3000, generator=torch.Generator().manual_seed(0))
    tokens = torch.tensor([[50258, 50260, 50359, 50363, 220, 1000]])
    with torch.no_grad():
        expected = reference.logits(tokens, reference.embed_audio(mel))
        actual = converted(input_features=mel, decoder_input_ids=tokens).logits
    assert torch.allclose(expected, actual, atol=1e-3)


def _tone(seconds: float) -> np.ndarray:
    t = np.arange(int(seconds * 16_000)) / 16_000
    return (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)


@pytest.mark.slow  # random weights decode to the length limit: a minute or two on 2 cores
@pytest.mark.parametrize("backend", ["transformers", "faster-whisper"])
def test_tiny_backend_returns_words_inside_the_speech_regions(backend: str, tiny_resolved) -> None:
    from subpipe.asr.backend_ct2 import FasterWhisper
    from subpipe.asr.backend_hf import HFWhisper
    from subpipe.asr.convert import ct2_folder, transformers_folder

    if backend == "transformers":
        engine = HFWhisper(transformers_folder(tiny_resolved), GREEDY, batch_size=2)
    else:
        engine = FasterWhisper(ct2_folder(tiny_resolved), GREEDY, batch_size=2)
    audio = _tone(8.0)
    regions = [(0.5, 2.0), (3.0, 4.5), (6.0, 7.5)]
    done: list[float] = []
    words = engine.transcribe(audio, "zh", Chunk(0.0, 8.0, tuple(regions)), progress=done.append)
    assert done and done[-1] == pytest.approx(7.5)
    assert words
    for word in words:
        assert any(s <= word.start <= word.end <= e for s, e in regions)
    lang, scores = engine.detect_language(audio, ["ur", "zh"])
    assert lang in ("ur", "zh") and set(scores) == {"ur", "zh"}
    (english,) = engine.translate_clips([audio[:16_000]], "zh")
    assert isinstance(english, str)


# --- real weights: the three backends agree ---------------------------------------------

@pytest.mark.slow
def test_backends_agree_on_real_mandarin(sample_zh: Path) -> None:
    from subpipe.asr.backends import make_transcriber
    from subpipe.asr.vad import speech_regions
    from audio import extract_audio
    from subpipe.media import SAMPLE_RATE

    config = load_config()
    asr = replace(config.asr, beam_size=1, temperatures=(0.0,))
    audio = extract_audio(sample_zh, 0)
    (chunk,) = plan_chunks(len(audio) / SAMPLE_RATE, speech_regions(audio, config.vad), asr.chunk_seconds,
                           config.vad.decode_pad_ms / 1000)
    reference = sample_zh.with_suffix(".txt").read_text(encoding="utf-8")
    transcripts = {name: make_transcriber(replace(asr, backend=name)).transcribe(audio, "zh", chunk)
                   for name in ("openai-whisper", "faster-whisper", "transformers")}
    cers = {name: cer("".join(w.text for w in words), reference, "zh") for name, words in transcripts.items()}
    assert max(cers.values()) - min(cers.values()) <= 0.05, cers
    base = transcripts["openai-whisper"]
    for name in ("faster-whisper", "transformers"):
        words = transcripts[name]
        share, compared = word_start_agreement(base, words, "zh")
        assert compared >= 30, (name, compared)
        assert share >= 0.95, (name, share)


# --- windows shared by every backend (pure) ---------------------------------------------

def test_regions_are_widened_for_decoding_and_merged_where_they_meet() -> None:
    from subpipe.asr.chunks import widen

    assert widen([(0.1, 2.0), (2.3, 4.0), (6.0, 9.9)], 0.2, 0.0, 10.0) == [(0.0, 4.2), (5.8, 10.0)]
    assert widen([], 0.2, 0.0, 10.0) == []


def test_words_are_kept_inside_the_speech_regions() -> None:
    span = Window(((1.0, 3.0), (5.0, 8.0)))
    words = (Word(0.6, 1.4, "a"), Word(2.8, 3.3, "b"), Word(3.4, 3.8, "c"), Word(4.6, 5.2, "d"), Word(6.0, 6.5, "e"))
    inside = [span.inside(w) for w in words]
    assert [(w.start, w.end) for w in inside] == [(1.0, 1.4), (2.8, 3.0), (3.0, 3.0), (5.0, 5.2), (6.0, 6.5)]


# --- faster-whisper: loops and memory ---------------------------------------------------

def test_repetition_is_measured_as_openai_whisper_does() -> None:
    from subpipe.asr.loops import LOOP_RATIO, compression_ratio

    assert compression_ratio("روز داری کے خیلاف دہ پر کای " * 8) > LOOP_RATIO
    assert compression_ratio("人人有权享受生命、自由和人身安全。任何人不得加以酷刑。") < LOOP_RATIO
    assert compression_ratio("") == 0.0


def test_only_looping_windows_are_decoded_again_with_a_beam() -> None:
    # Selection logic only: the pipeline stands in for CTranslate2.
    from types import SimpleNamespace

    from subpipe.asr.backend_ct2 import FasterWhisper
    from subpipe.asr.loops import REPAIR_BEAM

    calls = []

    def forward(features, tokenizer, metadata, options):
        calls.append((len(features), [m["offset"] for m in metadata], options.beam_size))
        return [[{"text": "fixed"}] for _ in metadata]

    engine = FasterWhisper.__new__(FasterWhisper)
    engine.pipeline = SimpleNamespace(forward=forward)
    engine._features = lambda audios: np.zeros((len(audios), 80, 3000), np.float32)
    windows = [Window(((0.0, 1.0),)), Window(((2.0, 3.0),)), Window(((4.0, 5.0),))]
    metadata = [{"offset": 0.0, "duration": 1.0}, {"offset": 1.0, "duration": 1.0}, {"offset": 2.0, "duration": 1.0}]
    outputs = [[{"text": "fine"}], [{"text": "ہم ہم ہم ہم " * 20}], [{"text": "also fine"}]]
    @dataclass
    class Options:
        beam_size: int = 1
        best_of: int = 1

    repaired = engine._repair_loops(np.zeros(16_000 * 6, np.float32), windows, metadata, outputs, None, Options())
    assert calls == [(1, [1.0], REPAIR_BEAM)]
    assert [p[0]["text"] for p in repaired] == ["fine", "fixed", "also fine"]
    # Already decoding with a beam of five: nothing to gain.
    calls.clear()
    assert engine._repair_loops(np.zeros(16_000 * 6, np.float32), windows, metadata, outputs, None,
                                Options(REPAIR_BEAM, REPAIR_BEAM)) == outputs
    assert calls == []


def test_encoding_and_aligning_in_parts_gives_the_batch_result(tiny_resolved) -> None:
    import ctranslate2
    from faster_whisper import WhisperModel
    from faster_whisper.tokenizer import Tokenizer

    from subpipe.asr.backend_ct2 import _align_in_parts, _encode_in_parts
    from subpipe.asr.convert import ct2_folder

    model = WhisperModel(str(ct2_folder(tiny_resolved)), device="cpu", compute_type="float32")
    features = np.random.default_rng(0).standard_normal((5, 80, 3000)).astype(np.float32)
    whole = np.asarray(model.encode(features))
    parts = _encode_in_parts(model.encode, 2)(features)
    assert np.allclose(np.asarray(parts), whole, atol=1e-5)

    tokenizer = Tokenizer(model.hf_tokenizer, True, task="transcribe", language="zh")
    tokens = [[1000 + k, 2000 + k, 3000] for k in range(5)]
    frames = [1000, 1200, 3000, 800, 1500]
    expected = model.find_alignment(tokenizer, tokens, ctranslate2.StorageView.from_array(whole), frames)
    actual = _align_in_parts(model.find_alignment, 2)(tokenizer, tokens, parts, frames)
    assert [[(w["word"], w["start"], w["end"]) for w in a] for a in actual] == \
           [[(w["word"], w["start"], w["end"]) for w in e] for e in expected]


# --- the token limit: a loop, repaired, never a crash ------------------------------------

def test_faster_whisper_treats_a_window_at_the_token_limit_as_a_loop() -> None:
    from types import SimpleNamespace

    from subpipe.asr.backend_ct2 import FasterWhisper
    from subpipe.asr.loops import REPAIR_BEAM

    calls = []

    def forward(features, tokenizer, metadata, options):
        calls.append(options.beam_size)
        return [[{"text": "fixed", "tokens": [1, 2]}] for _ in metadata]

    engine = FasterWhisper.__new__(FasterWhisper)
    engine.pipeline = SimpleNamespace(forward=forward)
    engine._features = lambda audios: np.zeros((len(audios), 80, 3000), np.float32)
    windows = [Window(((0.0, 1.0),)), Window(((2.0, 3.0),))]
    metadata = [{"offset": 0.0, "duration": 1.0}, {"offset": 1.0, "duration": 1.0}]
    # Text that does not compress (no repeated phrase) but fills every position left.
    outputs = [[{"text": "short", "tokens": [7]}], [{"text": " ".join(map(str, range(300))), "tokens": list(range(444))}]]

    @dataclass
    class Options:
        beam_size: int = 1
        best_of: int = 1

    repaired = engine._repair_loops(np.zeros(16_000 * 4, np.float32), windows, metadata, outputs, None, Options(),
                                    limit=444)
    assert calls == [REPAIR_BEAM]
    assert [p[0]["text"] for p in repaired] == ["short", "fixed"]


def test_transformers_repairs_a_window_at_the_token_limit_without_crashing(tmp_path: Path) -> None:
    """The random model decodes a 30 s window to the token limit, greedy then with a beam:
    on a decoder of 64 positions, not Whisper's 448, so the limit comes seven times sooner."""
    from conftest import build_tiny_whisper

    from subpipe.asr.backend_hf import HFWhisper
    from subpipe.asr.convert import transformers_folder
    from subpipe.asr.loops import REPAIR_BEAM
    from subpipe.asr.weights import ResolvedModel
    from subpipe.digest import sha256_file

    checkpoint = build_tiny_whisper(tmp_path / "short.pt", text_positions=64)
    short = ResolvedModel("tiny-short", checkpoint, "explicit", sha256_file(checkpoint), checkpoint.stat().st_size)
    engine = HFWhisper(transformers_folder(short), GREEDY, batch_size=2)
    audio, window = _tone(30.0), Window(((0.0, 30.0),))
    (raw,) = engine._decode_windows(audio, [window], "zh", None, None, replace(GREEDY, repair=False))
    assert raw.at_limit and raw.words  # the forced pass that times the words fits the decoder
    beams = []
    generated = engine._generated

    def spy(encoded, mask, lang, task, prompt, beam, no_repeat=0):  # noqa: ANN001, ANN202
        beams.append(beam)
        return generated(encoded, mask, lang, task, prompt, beam, no_repeat)

    engine._generated = spy  # type: ignore[method-assign]
    engine._decode_windows(audio, [window], "zh", None, None, GREEDY)
    assert beams == [1, REPAIR_BEAM]
