#!/usr/bin/env python3
"""Issue 13's measure: `subpipe batch --engine ray` against the local engine, on the same
four films, and what 1,000 hours would take on a cluster of GPU nodes.

    .venv/bin/python bench/ray_bench.py [--repeat 1] [--json artifacts/ray-bench.json]

Four films of similar length (about eighteen minutes each, made from the dev films: Urdu,
Urdu, Mandarin, Urdu) run three ways, each a `subpipe batch` process of its own with no
stage cache, the weights prepared before: the local engine with one job (the baseline),
the local engine with two jobs, and the Ray engine with two single-CPU actors on a Ray
it starts for the run (start-up and shutdown counted). The goals: Ray's speed-up over
the baseline at least 0.9 of the local engine's, and Ray's wall time at most 1.10x the
local engine's at two jobs. Ray's outputs must be byte-identical to the local engine's
at the same --jobs (across job counts they need not be: the threads per film differ).

The projection takes the per-film costs Ray's report measured (seconds per film, the
audio's length) and a GPU decoder's rate as a parameter (--gpu-rate, times real time per
GPU; on CPU there is none to measure), and says how long 1,000 hours take on N nodes.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEV = REPO.parent / "shared" / "data" / "dev"
SUBPIPE = REPO / ".venv" / "bin" / "subpipe"


def films(folder: Path) -> Path:
    """Four films of about eighteen minutes, and the CSV that gives each its language."""
    plan = {
        "ur_a.mp4": ["ur_dev.mp4"] * 4,
        "ur_b.mp4": ["ur_dev_long.mp4"] * 4,
        "zh_a.mp4": ["zh_dev.mp4"] * 6,
        "ur_c.mp4": ["ur_dev_long.mp4", "ur_dev.mp4"] * 2,
    }
    folder.mkdir(parents=True, exist_ok=True)
    for name, parts in plan.items():
        target = folder / name
        if target.exists():
            continue
        listing = folder / f"{name}.txt"
        listing.write_text("".join(f"file '{DEV / p}'\n" for p in parts))
        subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-f", "concat", "-safe", "0", "-i",
                        str(listing), "-c", "copy", str(target)], check=True)
    manifest = folder / "films.csv"
    manifest.write_text("path,lang,targets\n" + "".join(f"{folder / n},{n[:2]},\n" for n in plan))
    return manifest


def batch(manifest: Path, out: Path, env: dict[str, str], *extra: str) -> tuple[float, dict]:
    # --force: a rerun on Ray would otherwise skip the films already done (and recorded).
    cmd = [str(SUBPIPE), "batch", str(manifest), "--out", str(out), "--no-cache", "--force", *extra]
    started = time.perf_counter()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return seconds, json.loads((out / "subpipe-batch.json").read_text())


def tracks(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.glob("*.srt"))}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=1, help="rounds of the three runs (medians are reported)")
    parser.add_argument("--gpu-rate", type=float, default=2000.0,
                        help="times real time one GPU decodes at (issue 14's target; not measured here)")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="subpipe-bench-ray-"))
    manifest = films(work / "films")
    env = dict(os.environ, SUBPIPE_OFFLINE="1", HF_HUB_OFFLINE="1", RAY_USAGE_STATS_ENABLED="0")
    subprocess.run([str(SUBPIPE), "models", "--prepare"], env=env, check=True, capture_output=True)
    runs = {"local --jobs 1": ("--jobs", "1"), "local --jobs 2": ("--jobs", "2"),
            "ray --jobs 2": ("--jobs", "2", "--engine", "ray")}
    walls: dict[str, list[float]] = {name: [] for name in runs}
    reports: dict[str, dict] = {}
    outputs: dict[str, dict[str, bytes]] = {}
    for round_ in range(args.repeat):
        for name, extra in runs.items():
            out = work / name.replace(" ", "_").replace("-", "")
            wall, reports[name] = batch(manifest, out, env, *extra)
            walls[name].append(wall)
            outputs[name] = tracks(out)
            print(f"round {round_ + 1}: {name:15s} {wall:7.1f} s", flush=True)
    # The goal: the Ray engine writes what the local one does with the same --jobs. Across
    # job counts the threads per film differ, and CTranslate2's int8 sums with them.
    same = outputs["ray --jobs 2"] == outputs["local --jobs 2"]
    across = outputs["local --jobs 1"] == outputs["local --jobs 2"]
    wall = {name: statistics.median(w) for name, w in walls.items()}
    audio = sum(f["duration"] for f in reports["ray --jobs 2"]["files"])
    base = wall["local --jobs 1"]
    local_speedup, ray_speedup = base / wall["local --jobs 2"], base / wall["ray --jobs 2"]
    print(f"\nmachine: {platform.machine()}, {os.cpu_count()} cores (CPU only); four films, {audio / 60:.1f} min "
          f"of audio in all; transcription only (no MarianMT weights here)")
    for name in runs:
        print(f"  {name:15s} {wall[name]:7.1f} s  {audio / wall[name]:6.1f}x real time  "
              f"speed-up {base / wall[name]:.3f}")
    print(f"Ray's speed-up / the local engine's: {ray_speedup / local_speedup:.3f}  (goal >= 0.9)")
    print(f"Ray's wall / the local engine's at --jobs 2: {wall['ray --jobs 2'] / wall['local --jobs 2']:.3f}  "
          f"(goal <= 1.10)")
    print(f"outputs: Ray = local at --jobs 2, byte for byte: {same}; local --jobs 1 = --jobs 2: {across}")

    # Per film on one actor: its seconds in Ray's report (fetching, the models already
    # loaded, making the tracks) against its audio. What is not audio-bound (start-up, one
    # per actor; the driver's writing) is the rest of the wall time.
    files = reports["ray --jobs 2"]["files"]
    per_film = [f["seconds"] for f in files]
    cpu_rate = audio / sum(per_film)  # times real time, one single-CPU actor
    overhead = wall["ray --jobs 2"] - sum(per_film) / 2
    print(f"\nper film on one single-CPU actor: {statistics.mean(per_film):.1f} s for "
          f"{audio / len(files) / 60:.1f} min of audio ({cpu_rate:.1f}x real time); fixed cost of the Ray run "
          f"(start, actors, shutdown): about {overhead:.0f} s")
    hours = 1000 * 3600
    print(f"1,000 hours of audio, one actor per GPU at {args.gpu_rate:g}x real time (--gpu-rate; not measured here):")
    for nodes, gpus in ((1, 1), (4, 1), (8, 1), (8, 8)):
        actors = nodes * gpus
        seconds = hours / (actors * args.gpu_rate) + overhead
        print(f"  {nodes:2d} node(s) x {gpus} GPU: {seconds / 3600:6.2f} h")
    print(f"  for scale: on single-CPU actors at the measured {cpu_rate:.1f}x, 1,000 hours take "
          f"{hours / cpu_rate / 3600:.0f} actor-hours")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"walls": walls, "audio_seconds": audio, "same_outputs": same,
                                         "same_across_jobs": across, "per_film_seconds": per_film, "machine": platform.machine(),
                                         "cores": os.cpu_count()}, indent=2))
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
