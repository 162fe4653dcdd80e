#!/usr/bin/env python3
"""Issue 3's measures on the dev videos: are subpipe's cues shippable?

    .venv/bin/python bench/measure_cues.py [--videos zh_dev ur_dev] [--out DIR]

For each video it transcribes once (the configured backend, or ``--backend``; base;
language forced), then scores subpipe's shaped cues: share of cues meeting every rule,
cues starting in the 6 s music intro, share of the reference speech covered by cues,
share of cue time on speech, character error rate.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import platform
import sys
import time
from dataclasses import replace
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from metrics import reference_rows  # noqa: E402

from subpipe.rules import judge  # noqa: E402
from subpipe.config import load_config  # noqa: E402
from subpipe.media import extract_audio  # noqa: E402
from subpipe.glossary import load_glossary  # noqa: E402
from subpipe.listen import listen, load_transcriber, speech_of  # noqa: E402
from subpipe.pipeline import subtitle  # noqa: E402
from subpipe.scoring import cer  # noqa: E402
from subpipe.srtio import write_track  # noqa: E402
from subpipe.types import Cue, Track  # noqa: E402

DEV = REPO.parent / "shared" / "data" / "dev"
INTRO = 6.0


def union(intervals: list[tuple[float, float]]) -> list[tuple[float, float]]:
    merged: list[tuple[float, float]] = []
    for a, b in sorted(intervals):
        if merged and a <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], b))
        else:
            merged.append((a, b))
    return merged


def overlap(xs: list[tuple[float, float]], ys: list[tuple[float, float]]) -> float:
    return sum(max(0.0, min(b, d) - max(a, c)) for a, b in union(xs) for c, d in union(ys))


def score(cues: tuple[Cue, ...], lang: str, rules, reference: list[dict[str, str]], duration: float) -> dict:
    speech = [(float(r["start"]), float(r["end"])) for r in reference]
    spans = [(c.start, c.end) for c in cues]
    bad = {f.cue for f in judge(cues, rules, audio_end=duration) if f.severity == "error"}
    cue_time = sum(b - a for a, b in union(spans))
    return {
        "cues": len(cues),
        "rule_compliant_share": round(1 - len(bad) / len(cues), 4) if cues else None,
        "cues_in_intro": sum(1 for c in cues if c.start < INTRO),
        "speech_covered_share": round(overlap(spans, speech) / sum(b - a for a, b in speech), 4),
        "cue_time_on_speech_share": round(overlap(spans, speech) / cue_time, 4) if cue_time else None,
        "cer": round(cer("".join(c.text for c in cues), "".join(r["text"] for r in reference), lang), 4),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", nargs="+", default=["zh_dev", "ur_dev"])
    parser.add_argument("--out", type=Path, default=REPO / "artifacts" / "measure_cues")
    parser.add_argument("--reuse", action="store_true",
                        help="re-shape the transcripts saved by an earlier run instead of transcribing")
    parser.add_argument("--backend", help="speech backend (default: the config's)")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    config = load_config()
    if args.backend:
        config = replace(config, asr=replace(config.asr, backend=args.backend))
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
          f"backend {config.asr.backend}, model {config.asr.model}")
    results = {}
    for name in args.videos:
        lang = name.split("_")[0]
        started = time.perf_counter()
        saved = args.out / f"{name}.heard.pickle"
        if args.reuse and saved.is_file():
            heard = pickle.loads(saved.read_bytes())
            # Voice activity is cheap and its settings may have changed: find it again.
            audio = extract_audio(heard.info.path, heard.stream.index)
            heard = replace(heard, speech=speech_of(audio, config))
        else:
            heard, _ = listen(DEV / f"{name}.mp4", lang, config, load_glossary(config.translate.glossary_path),
                              load=lambda _: load_transcriber(config))
            saved.write_bytes(pickle.dumps(heard))
        shaped = subtitle(heard, config)
        seconds = time.perf_counter() - started
        rules = config.rules_for(lang, heard.info.fps)
        reference = reference_rows(DEV / f"{name}.ref.tsv")
        duration = heard.transcript.duration
        results[name] = {
            "seconds": round(seconds, 1),
            "shaped": score(shaped.cues, lang, rules, reference, duration),
            "problems": [f"{p.rule}: {p.reason}" for p in shaped.problems],
        }
        write_track(Track(lang, shaped.cues), args.out / f"{name}.{lang}.srt")
        print(json.dumps({name: results[name]}, indent=2, ensure_ascii=False))
    (args.out / "results.json").write_text(json.dumps(results, indent=2, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
