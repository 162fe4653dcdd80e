#!/usr/bin/env python3
"""One table over every dev film: does a setting help everywhere, or on one clip only?

    .venv/bin/python bench/films.py [--films zh_dev ur_dev ur_dev_long] [--backend NAME]
                                    [--config FILE] [--set asr.beam_size=5 ...] [--auto]

Each film runs through the product's own pipeline (``subpipe run`` in-process, language
forced from the file name unless ``--auto``, default settings unless ``--config`` or
``--set`` say otherwise). Per film: character error rate against the reference, share of
the reference speech covered by cues, seconds of speech flagged as untranscribed, share
of cues that break no rule, cues in the 6 s music intro, share of cue time on speech,
wall time. Writes artifacts/films.json (and the tracks under artifacts/films/).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import sys
import time
import tomllib
from dataclasses import replace
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from metrics import reference_rows  # noqa: E402

from subpipe.config import Config, load_config  # noqa: E402
from subpipe.formats.srt import read_track  # noqa: E402
from subpipe.pipeline import RunRequest, run  # noqa: E402
from subpipe.rules import judge, rule_breaks  # noqa: E402
from subpipe.scoring import cer  # noqa: E402

DEV = REPO.parent / "shared" / "data" / "dev"
FILMS = ("zh_dev", "ur_dev", "ur_dev_long")
INTRO = 6.0  # every dev film opens with 6 s of music-like tones and noise


def union(spans: list[tuple[float, float]]) -> list[tuple[float, float]]:
    merged: list[tuple[float, float]] = []
    for a, b in sorted(spans):
        if merged and a <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], b))
        else:
            merged.append((a, b))
    return merged


def overlap(xs: list[tuple[float, float]], ys: list[tuple[float, float]]) -> float:
    return sum(max(0.0, min(b, d) - max(a, c)) for a, b in union(xs) for c, d in union(ys))


def with_settings(config: Config, assignments: list[str]) -> Config:
    """``section.key=value`` (TOML values) over ``config``."""
    for item in assignments:
        name, _, raw = item.partition("=")
        section, _, key = name.partition(".")
        value = tomllib.loads(f"v = {raw}")["v"]
        value = tuple(value) if isinstance(value, list) else value
        config = replace(config, **{section: replace(getattr(config, section), **{key: value})})
    return config


class Retries(logging.Handler):
    """The speech accounting's log: which rung of the ladder gave each region its words."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def measure(film: str, config: Config, auto: bool, out: Path) -> dict:
    lang = film.split("_")[0]
    retries = Retries()
    accounting = logging.getLogger("subpipe.accounting")
    accounting.addHandler(retries)
    accounting.setLevel(logging.INFO)
    started = time.perf_counter()
    try:
        result = run(RunRequest(DEV / f"{film}.mp4", "auto" if auto else lang, out_dir=out, force=True), config)
    finally:
        accounting.removeHandler(retries)
    wall = time.perf_counter() - started
    track = read_track(out / f"{film}.{result.lang}.srt", result.lang)
    rows = reference_rows(DEV / f"{film}.ref.tsv")
    speech = [(float(r["start"]), float(r["end"])) for r in rows]
    spans = [(c.start, c.end) for c in track.cues]
    rules = config.rules_for(result.lang)
    broken = {f.cue for f in rule_breaks(judge(track.cues, rules))}
    cue_time = sum(b - a for a, b in union(spans))
    counts = result.counts()
    return {
        "lang": result.lang,
        "cer": round(cer("".join(c.text for c in track.cues), "".join(r["text"] for r in rows), lang), 4),
        "speech_covered": round(overlap(spans, speech) / sum(b - a for a, b in speech), 4),
        "untranscribed_s": round(sum(f.seconds for f in result.findings if f.kind == "untranscribed"), 1),
        "rule_compliant": round(1 - len(broken) / len(track.cues), 4) if track.cues else None,
        "cues": len(track.cues),
        "cues_in_intro": sum(1 for c in track.cues if c.start < INTRO),
        "cue_time_on_speech": round(overlap(spans, speech) / cue_time, 4) if cue_time else None,
        "findings": counts,
        "retries": retries.lines,
        "wall_s": round(wall, 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--films", nargs="+", default=list(FILMS))
    parser.add_argument("--backend", help="speech backend (default: the config's)")
    parser.add_argument("--config", type=Path, help="project config over configs/default.toml")
    parser.add_argument("--set", dest="assignments", nargs="*", default=[], metavar="SECTION.KEY=VALUE")
    parser.add_argument("--auto", action="store_true", help="let subpipe detect the language")
    parser.add_argument("--out", type=Path, default=REPO / "artifacts" / "films.json")
    args = parser.parse_args()
    config = with_settings(load_config(args.config), args.assignments)
    if args.backend:
        config = replace(config, asr=replace(config.asr, backend=args.backend))
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
          f"backend {config.asr.backend}, beam {config.asr.beam_size}; {' '.join(args.assignments)}")
    results = {}
    for film in args.films:
        results[film] = measure(film, config, args.auto, args.out.parent / "films" / film)
    head = f"{'film':12} {'lang':4} {'CER':>7} {'covered':>8} {'untr. s':>8} {'rules ok':>8} {'cues':>5} " \
           f"{'intro':>5} {'on speech':>9} {'wall s':>7}"
    print(head)
    for film, r in results.items():
        print(f"{film:12} {r['lang']:4} {r['cer']:7.4f} {r['speech_covered']:8.4f} {r['untranscribed_s']:8.1f} "
              f"{r['rule_compliant'] if r['rule_compliant'] is not None else float('nan'):8.4f} {r['cues']:5d} "
              f"{r['cues_in_intro']:5d} {r['cue_time_on_speech'] or float('nan'):9.4f} {r['wall_s']:7.1f}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    record = {"machine": platform.processor() or platform.machine(), "cores": os.cpu_count(),
              "backend": config.asr.backend, "settings": args.assignments, "auto": args.auto, "films": results}
    args.out.write_text(json.dumps(record, indent=2, ensure_ascii=False) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
