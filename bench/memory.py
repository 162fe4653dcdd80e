#!/usr/bin/env python3
"""Peak memory of ``subpipe run`` as the film gets longer: it should not grow with it.

    .venv/bin/python bench/memory.py [--minutes 1,60,120] [--speech 30] [--against TREE]
                                     [--backend faster-whisper] [--out memory.json]

Each film is ``--speech`` seconds of zh_dev's Mandarin followed by quiet (a low hiss, so
voice activity reads every second of it and finds no speech there): the work that grows
with the film (decoding the audio, voice activity over all of it, the chunks' plan) is all
there, while Whisper decodes only the speech and an hour costs minutes, not hours. The
films are FLAC in a temporary folder (about 90 MB for two hours).

Every run is ``subpipe run FILM --lang zh --backend B`` in a child process of its own; its
peak resident memory is the kernel's (``wait4``'s ``ru_maxrss``), its time the wall clock.
With ``--against TREE`` (a checkout of an older commit, e.g. ``git worktree add /tmp/old
8da2098``) each film is run there too, in the same script, for the ratio. Exit status 1
when the longest film's peak is more than 15 % over the shortest one's.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEV = REPO.parent / "shared" / "data" / "dev"
LIMIT = 1.15  # the longest film's peak over the shortest's


def make_film(folder: Path, minutes: float, speech: float, source: Path) -> Path:
    """``speech`` seconds of ``source``'s audio, then hiss at -70 dBFS to ``minutes``."""
    film = folder / f"film_{minutes:g}min.flac"
    if not film.exists():
        total = minutes * 60
        subprocess.run(
            ["ffmpeg", "-nostdin", "-v", "error", "-y", "-t", str(speech), "-i", str(source),
             "-f", "lavfi", "-t", str(max(0.0, total - speech)), "-i", "anoisesrc=r=16000:a=0.0003:c=white:s=1",
             "-filter_complex", "[0:a]aresample=16000,aformat=channel_layouts=mono[s];[s][1:a]concat=n=2:v=0:a=1",
             "-ac", "1", "-ar", "16000", str(film)],
            check=True)
    return film


def run(tree: Path, film: Path, backend: str, out: Path) -> dict:
    """One ``subpipe run`` in its own process: peak memory (MB), wall seconds, exit status."""
    env = dict(os.environ, PYTHONPATH=str(tree), HF_HUB_OFFLINE="1")
    code = 'import sys; from subpipe.cli import main; sys.argv[0] = "subpipe"; main()'
    command = [sys.executable, "-c", code, "run", str(film), "--lang", "zh", "--backend", backend,
               "--out", str(out), "--force"]
    started = time.perf_counter()
    with open(out / "stderr.txt", "w") as stderr:
        child = subprocess.Popen(command, cwd=tree, env=env, stdout=subprocess.DEVNULL, stderr=stderr)
        _, status, usage = os.wait4(child.pid, 0)
    return {"peak_mb": round(usage.ru_maxrss / 1024, 1), "seconds": round(time.perf_counter() - started, 1),
            "exit": os.waitstatus_to_exitcode(status)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--minutes", default="1,60,120", help="film lengths, comma-separated")
    parser.add_argument("--speech", type=float, default=30.0, help="seconds of speech at each film's start")
    parser.add_argument("--against", type=Path, help="an older checkout to run each film with too")
    parser.add_argument("--backend", default="faster-whisper")
    parser.add_argument("--source", type=Path, default=DEV / "zh_dev.mp4")
    parser.add_argument("--out", type=Path, default=Path("memory.json"))
    args = parser.parse_args()
    trees = {"now": REPO} | ({"against": args.against.resolve()} if args.against else {})
    results: dict[str, dict[str, dict]] = {name: {} for name in trees}
    with tempfile.TemporaryDirectory(prefix="subpipe-memory-") as tmp:
        folder = Path(tmp)
        for minutes in [float(m) for m in args.minutes.split(",")]:
            film = make_film(folder, minutes, args.speech, args.source)
            for name, tree in trees.items():
                out = folder / f"{name}-{minutes:g}"
                out.mkdir()
                results[name][f"{minutes:g} min"] = found = run(tree, film, args.backend, out)
                print(f"{name:8} {minutes:6g} min  peak {found['peak_mb']:7.1f} MB  {found['seconds']:7.1f} s  "
                      f"exit {found['exit']}", file=sys.stderr, flush=True)
    now = list(results["now"].values())
    growth = now[-1]["peak_mb"] / now[0]["peak_mb"]
    report = {"machine": f"{os.cpu_count()} CPUs", "backend": args.backend, "speech_seconds": args.speech,
              "runs": results, "longest_over_shortest": round(growth, 3), "limit": LIMIT}
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))
    return 0 if growth <= LIMIT and all(r["exit"] == 0 for r in now) else 1


if __name__ == "__main__":
    sys.exit(main())
