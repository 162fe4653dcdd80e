#!/usr/bin/env python3
"""Issue 5's measure: `subpipe batch` over the dev videos, cold, warm, then with only a
translation setting changed (only translation should rerun).

    .venv/bin/python bench/batch_bench.py [--to en] [--jobs 1]

Runs the CLI as a subprocess with a private stage cache, so the numbers include start-up.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEV = REPO.parent / "shared" / "data" / "dev"


def batch(videos: list[Path], out: Path, config: Path, to: str, jobs: int, env: dict) -> float:
    cmd = [str(REPO / ".venv" / "bin" / "subpipe"), "batch", *map(str, videos), "--out", str(out),
           "--config", str(config), "--jobs", str(jobs)] + (["--to", to] if to else [])
    started = time.perf_counter()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"batch failed ({done.returncode}):\n{done.stderr}")
    return seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--to", default="en")
    parser.add_argument("--jobs", type=int, default=1)
    args = parser.parse_args()
    videos = [DEV / "zh_dev.mp4", DEV / "ur_dev.mp4"]
    manifest_dir = Path(tempfile.mkdtemp(prefix="subpipe-batch-bench-"))
    manifest = manifest_dir / "jobs.csv"
    manifest.write_text("path,lang,targets\n" + "".join(f"{v},{v.name[:2]},{args.to}\n" for v in videos))
    env = dict(os.environ, SUBPIPE_CACHE=str(manifest_dir / "cache"), HF_HUB_OFFLINE="1", SUBPIPE_OFFLINE="1")
    # Build the model cache first so the cold run measures the pipeline, not the conversion.
    subprocess.run([str(REPO / ".venv" / "bin" / "subpipe"), "models", "--prepare"], env=env, check=True,
                   capture_output=True)
    config = manifest_dir / "a.toml"
    config.write_text("[translate]\nmax_cues_per_sentence = 4\n")
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores; videos: {', '.join(v.name for v in videos)}; "
          f"--to {args.to}, --jobs {args.jobs}")
    cold = batch([manifest], manifest_dir / "out", config, "", args.jobs, env)
    print(f"first run (nothing cached): {cold:7.1f} s")
    warm = batch([manifest], manifest_dir / "out", config, "", args.jobs, env)
    print(f"second run (all cached):    {warm:7.1f} s  ({warm / cold:.3f} of the first)")
    config.write_text("[translate]\nmax_cues_per_sentence = 3\n")
    changed = batch([manifest], manifest_dir / "out", config, "", args.jobs, env)
    print(f"translation setting changed: {changed:6.1f} s  ({changed / cold:.3f} of the first)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
