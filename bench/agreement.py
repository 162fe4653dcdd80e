#!/usr/bin/env python3
"""Do the speech backends agree? Text and word timing of each against openai-whisper.

    .venv/bin/python bench/agreement.py [--videos zh_dev ur_dev] [--backends ...] [--batch-size 8]

Language forced, greedy decoding (beam 1, temperature 0). For each backend: character
error rate against the reference text, and the share of word starts within 0.2 s of
openai-whisper's (words matched by aligning the folded character sequences). The
issue's bar: CERs within 0.05 of each other and at least 95% of word starts within 0.2 s.
Writes artifacts/agreement.json.
"""

from __future__ import annotations

import argparse
import difflib
import json
import os
import platform
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Sequence

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from metrics import cer, fold, reference_rows  # noqa: E402

DEV = REPO.parent / "shared" / "data" / "dev"
BACKENDS = ("openai-whisper", "faster-whisper", "transformers")
TOLERANCE = 0.2


def char_times(words: Sequence, lang: str) -> tuple[str, list[float], list[bool]]:
    """Folded characters of ``words``, each with a time (spread over its word) and a word-start flag."""
    chars, times, starts = [], [], []
    for w in words:
        folded = fold(w.text, lang)
        for k, ch in enumerate(folded):
            chars.append(ch)
            times.append(w.start + (w.end - w.start) * k / len(folded))
            starts.append(k == 0)
    return "".join(chars), times, starts


def word_start_agreement(reference: Sequence, other: Sequence, lang: str,
                         tolerance: float = TOLERANCE) -> tuple[float, int]:
    """Share of ``reference`` word starts that ``other`` places within ``tolerance`` s, and how many were compared.

    Words are matched through the aligned character sequences, so different word
    splits ("完全" against "完", "全") still compare where each word begins.
    """
    a, a_times, a_starts = char_times(reference, lang)
    b, b_times, _ = char_times(other, lang)
    compared = within = 0
    matcher = difflib.SequenceMatcher(None, a, b, autojunk=False)
    for block in matcher.get_matching_blocks():
        for k in range(block.size):
            i, j = block.a + k, block.b + k
            if a_starts[i]:
                compared += 1
                within += abs(a_times[i] - b_times[j]) <= tolerance
    return (within / compared if compared else 0.0), compared


def words_of(transcript) -> list:
    return [w for s in transcript.segments for w in s.words]


def text_of(transcript) -> str:
    return "".join(s.text for s in transcript.segments)


def greedy(config):
    return replace(config, asr=replace(config.asr, beam_size=1, temperatures=(0.0,)))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", nargs="+", default=["zh_dev", "ur_dev"])
    parser.add_argument("--backends", nargs="+", default=list(BACKENDS))
    parser.add_argument("--out", type=Path, default=REPO / "artifacts" / "agreement.json")
    args = parser.parse_args()

    from subpipe.backends import make_transcriber
    from subpipe.config import load_config
    from subpipe.media import extract_audio, probe

    config = greedy(load_config())
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; model {config.asr.model}; greedy")
    results: dict = {}
    for video in args.videos:
        path = DEV / f"{video}.mp4"
        rows = reference_rows(DEV / f"{video}.ref.tsv")
        lang = video.split("_")[0]
        reference = "".join(r["text"] for r in rows)
        audio = extract_audio(path, probe(path).audio_streams[0].index)
        transcripts, seconds = {}, {}
        for name in args.backends:
            engine = make_transcriber(name, config)
            started = time.perf_counter()
            transcripts[name] = engine.transcribe(audio, lang)
            seconds[name] = round(time.perf_counter() - started, 2)
            del engine
        base = args.backends[0]
        rows_out = {}
        for name, transcript in transcripts.items():
            share, compared = word_start_agreement(words_of(transcripts[base]), words_of(transcript), lang)
            rows_out[name] = {"cer": round(cer(text_of(transcript), reference, lang), 4),
                              "word_starts_within_0.2s": round(share, 4), "words_compared": compared,
                              "transcribe_s": seconds[name]}
        cers = [r["cer"] for r in rows_out.values()]
        holds = max(cers) - min(cers) <= 0.05 and all(r["word_starts_within_0.2s"] >= 0.95 for r in rows_out.values())
        results[video] = {"backends": rows_out, "cer_spread": round(max(cers) - min(cers), 4), "agreement_holds": holds}
        print(f"\n{video} (reference for timing: {base})")
        print(f"{'backend':16} {'CER':>7} {'starts<=0.2s':>13} {'compared':>9} {'seconds':>8}")
        for name, r in rows_out.items():
            print(f"{name:16} {r['cer']:7.4f} {r['word_starts_within_0.2s']:13.4f} {r['words_compared']:9d} {r['transcribe_s']:8.2f}")
        print(f"CER spread {results[video]['cer_spread']:.4f}; agreement holds: {holds}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
