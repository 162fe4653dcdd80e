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
import json
import os
import platform
import sys
import time
from dataclasses import replace
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from metrics import reference_rows  # noqa: E402

from subpipe.scoring import cer, word_start_agreement  # noqa: E402

DEV = REPO.parent / "shared" / "data" / "dev"
BACKENDS = ("openai-whisper", "faster-whisper", "transformers")


def greedy(config):
    return replace(config, asr=replace(config.asr, beam_size=1, temperatures=(0.0,)))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", nargs="+", default=["zh_dev", "ur_dev"])
    parser.add_argument("--backends", nargs="+", default=list(BACKENDS))
    parser.add_argument("--out", type=Path, default=REPO / "artifacts" / "agreement.json")
    args = parser.parse_args()

    from subpipe.asr import plan_chunks
    from subpipe.asr.backends import make_transcriber
    from subpipe.asr.vad import speech_regions
    from subpipe.config import load_config
    from subpipe.media import SAMPLE_RATE, choose_stream, probe, read_audio

    config = greedy(load_config())
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; model {config.asr.model}; greedy")
    results: dict = {}
    for video in args.videos:
        path = DEV / f"{video}.mp4"
        rows = reference_rows(DEV / f"{video}.ref.tsv")
        lang = video.split("_")[0]
        reference = "".join(r["text"] for r in rows)
        info = probe(path)
        audio = read_audio(info, choose_stream(info, None, None)).samples
        chunks = plan_chunks(len(audio) / SAMPLE_RATE, speech_regions(audio, config.vad), config.asr.chunk_seconds,
                             config.vad.decode_pad_ms / 1000)
        transcripts, seconds = {}, {}
        for name in args.backends:
            engine = make_transcriber(replace(config.asr, backend=name))
            started = time.perf_counter()
            transcripts[name] = [w for chunk in chunks for w in engine.transcribe(audio, lang, chunk)]
            seconds[name] = round(time.perf_counter() - started, 2)
            del engine
        base = args.backends[0]
        rows_out = {}
        for name, transcript in transcripts.items():
            share, compared = word_start_agreement(transcripts[base], transcript, lang)
            rows_out[name] = {"cer": round(cer("".join(w.text for w in transcript), reference, lang), 4),
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
