"""The GPU's decoding path, run on the CPU: the graph-captured decoder's step (without the
graph), held to transformers' ``generate`` on the tiny random-weight Whisper, and running
out of memory, injected."""

from __future__ import annotations

from dataclasses import replace

import logging
import shutil
from pathlib import Path

import numpy as np
import pytest

from subpipe.asr.interface import DecodeOptions
from subpipe.asr.windows import Window, in_batches

GREEDY = DecodeOptions(beam_size=1, temperatures=(0.0,), seed=0)
# Tones of different lengths: with the stronger end of text (below), the first three end
# after 22, 73 and 279 tokens and the last runs into Whisper's 448 positions.
TONES = ((12.0, 600), (7.0, 200), (3.0, 300), (1.5, 440))


@pytest.fixture(autouse=True)
def one_thread():
    # On two shared cores, two OpenMP threads spinning against each other made each
    # decoder step of the tiny model about 100 times slower.
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def ending_folder(tiny_resolved, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny model with its end-of-text embedding 1.7 times as long.

    Random weights never end a window on their own (every row runs to the limit); made
    more likely, end of text ends some windows early while others still run to the limit.
    """
    import torch
    from transformers import WhisperForConditionalGeneration

    from subpipe.asr.convert import transformers_folder

    source = transformers_folder(tiny_resolved)
    model = WhisperForConditionalGeneration.from_pretrained(source)
    with torch.no_grad():
        model.model.decoder.embed_tokens.weight[model.config.eos_token_id] *= 1.7
    target = tmp_path_factory.mktemp("ending") / "hf"
    model.save_pretrained(target)
    shutil.copy(source / "subpipe.json", target / "subpipe.json")
    return target


def tone(seconds: float, hz: float) -> np.ndarray:
    t = np.arange(int(seconds * 16_000)) / 16_000
    return (0.3 * np.sin(2 * np.pi * hz * t)).astype(np.float32)


def tone_windows() -> tuple[np.ndarray, list[Window]]:
    """The tones end to end, one window each."""
    audio = np.concatenate([tone(s, hz) for s, hz in TONES])
    edges = np.cumsum([0.0] + [s for s, _ in TONES])
    return audio, [Window(((float(a), float(b)),)) for a, b in zip(edges, edges[1:])]


@pytest.fixture(scope="module")
def engines(ending_folder: Path):
    """The transformers backend twice on the same weights: generate's path and the fast one."""
    from subpipe.asr.backend_hf import HFWhisper

    return HFWhisper(ending_folder, GREEDY, batch_size=4), HFWhisper(ending_folder, GREEDY, batch_size=4, fast=True)


@pytest.mark.parametrize("task, prompt", [("transcribe", None), ("transcribe", "你好 世界"), ("translate", None)])
def test_fast_decoder_gives_generates_tokens(engines, task: str, prompt: str | None) -> None:
    import torch

    slow, fast = engines
    audio, windows = tone_windows()
    features, mask = slow._features([w.samples(audio) for w in windows])
    with torch.inference_mode():
        encoded = slow.model.get_encoder()(features).last_hidden_state
    expected = slow._generated(encoded, mask, "zh", task, prompt, beams=1)
    start = fast._start("zh", task)
    primed = (fast._prompt_ids("zh", prompt) if prompt else []) + start
    with torch.inference_mode():
        rows, attention = fast.fast.run(encoded, [primed] * len(windows), batch=8)  # padded to 8 rows
    eot = fast.model.config.eos_token_id
    assert [[t for t in row.tokens if t < eot] for row in rows] == expected
    # The batch covers both ends: windows that end early, and one that fills every position.
    assert [row.reached_limit for row in rows].count(True) >= 1
    assert [row.reached_limit for row in rows].count(False) >= 2
    for row in rows:
        assert len(primed) + len(row.tokens) <= fast.model.config.max_target_positions
        if row.reached_limit:
            assert len(primed) + len(row.tokens) == fast.model.config.max_target_positions
        else:
            assert row.fed == len(primed) + len(row.tokens) + 1
    assert tuple(attention.shape[:2]) == (len(windows), len(fast.fast.alignment_heads))


def test_fast_path_words_are_generates_and_a_loop_is_decoded_again_with_a_beam(engines, ending_folder: Path,
                                                                              caplog: pytest.LogCaptureFixture) -> None:
    from subpipe.asr.backend_hf import HFWhisper
    from subpipe.asr.loops import REPAIR_BEAM

    slow, fast = engines
    audio, windows = tone_windows()
    with caplog.at_level(logging.INFO, logger="subpipe.asr.backend_hf"):
        words = fast._decode_windows(audio, windows, "zh", None, None, fast.options)
    # generate's path with the loop left in (it too decodes a loop again, on the CPU).
    expected = slow._decode_windows(audio, windows, "zh", None, None, replace(slow.options, repair=False))
    # Word timing from the decoder's own attention is the forced pass's, to the millisecond.
    assert words[:3] == expected[:3]
    # The window that ran into the limit was decoded again with a beam (and timed by a
    # forced pass through the fast decoder), as generate's path with that beam does it.
    assert "ran into the token limit; decoding them again with a beam of 5" in caplog.text
    beam = HFWhisper(ending_folder, DecodeOptions(REPAIR_BEAM, (0.0,), 0), batch_size=4)
    assert words[3] == beam._decode_windows(audio, windows[3:], "zh", None, None, beam.options)[0]
    assert words[3] != expected[3]


def test_running_out_of_gpu_memory_halves_the_batch(engines, caplog: pytest.LogCaptureFixture) -> None:
    import torch

    from subpipe.asr.backend_hf import HFWhisper

    _, fast = engines
    audio, windows = tone_windows()
    windows = windows[:3]  # no loop to repair: only the batching is at stake
    reference = fast._decode_windows(audio, windows, "zh", None, None, fast.options)
    tight = HFWhisper.__new__(HFWhisper)
    tight.__dict__.update(fast.__dict__)
    tight._fitting = 4
    run, sizes = tight.fast.run, []

    def small_gpu(encoded, forced, batch=None):
        sizes.append(len(forced))
        if len(forced) > 1:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (injected)")
        return run(encoded, forced, batch)

    tight.fast = type("Tight", (), {"run": staticmethod(small_gpu), "release": lambda self: None,
                                    "positions_max": fast.fast.positions_max})()
    done: list[float] = []
    with caplog.at_level(logging.WARNING, logger="subpipe.asr.windows"):
        words = tight._decode_windows(audio, windows, "zh", done.append, None, tight.options)
    assert words == reference
    assert sizes[:3] == [3, 1, 1] and tight._fitting == 1
    assert "out of device memory decoding 3 windows at once; going on 1 at a time" in caplog.text
    assert done == [w.regions[-1][1] for w in windows]


# --- batching with halving (pure) ----------------------------------------------------

class InjectedOOM(Exception):
    pass


def test_batches_are_halved_on_out_of_memory_and_stay_small(caplog: pytest.LogCaptureFixture) -> None:
    tried, prepared = [], []

    def decode(batch, ready):
        tried.append(len(batch))
        assert ready == [x * 10 for x in batch]  # what prepare made for this very batch
        if len(batch) > 3:
            raise InjectedOOM()
        return [x + 100 for x in batch]

    def prepare(batch):
        prepared.append(tuple(batch))
        return [x * 10 for x in batch]

    with caplog.at_level(logging.WARNING, logger="subpipe.asr.windows"):
        out, size = in_batches(list(range(11)), 8, decode, prepare=prepare,
                               out_of_memory=lambda exc: isinstance(exc, InjectedOOM))
    assert out == [x + 100 for x in range(11)]
    assert tried == [8, 4, 2, 2, 2, 2, 2, 1] and size == 2
    assert caplog.text.count("out of device memory") == 2
    assert (0, 1) in prepared and (10,) in prepared


def test_other_errors_and_a_single_window_out_of_memory_are_raised() -> None:
    def broken(batch, ready):
        raise ValueError("not memory")

    with pytest.raises(ValueError):
        in_batches([1, 2, 3], 2, broken, out_of_memory=lambda exc: isinstance(exc, InjectedOOM))

    def never_fits(batch, ready):
        raise InjectedOOM()

    with pytest.raises(InjectedOOM):
        in_batches([1, 2, 3], 2, never_fits, out_of_memory=lambda exc: isinstance(exc, InjectedOOM))


def test_the_gpus_log_mel_is_the_extractors(engines) -> None:
    from subpipe.asr.log_mel import LogMel, padded_clips

    slow, _ = engines
    audio, windows = tone_windows()
    clips = [w.samples(audio) for w in windows]
    ours = LogMel(slow.extractor.mel_filters, "cpu")(padded_clips(clips))
    theirs, mask = slow._features(clips)
    assert ours.shape == theirs.shape
    assert float((ours - theirs).abs().max()) < 1e-4
    on_device = slow.__class__.__new__(slow.__class__)
    on_device.__dict__.update(slow.__dict__)
    on_device.mel = LogMel(slow.extractor.mel_filters, "cpu")
    _, ours_mask, _ = on_device._encoded(on_device._prepared(clips))
    assert ours_mask.tolist() == mask.tolist()  # generate (loop repair) gets the extractor's mask


def test_the_gpus_feature_path_gives_the_same_words(engines) -> None:
    from subpipe.asr.log_mel import LogMel

    _, fast = engines
    audio, windows = tone_windows()
    windows = windows[:3]
    expected = fast._decode_windows(audio, windows, "zh", None, None, fast.options)
    on_device = fast.__class__.__new__(fast.__class__)
    on_device.__dict__.update(fast.__dict__)
    on_device.mel = LogMel(fast.extractor.mel_filters, "cpu")  # as on a GPU: samples in, log-mel in torch
    assert on_device._decode_windows(audio, windows, "zh", None, None, on_device.options) == expected
