#!/usr/bin/env python3
"""The small language model against Whisper's speech translation, on every dev film.

    .venv/bin/python bench/lm_translate.py [--films zh_dev ur_dev ur_dev_long] [--threads 0] [--repeat 1]
                                           [--out artifacts/lm] [--set lm_budget_in_prompt=false]

Per film, each step a `subpipe` command of its own (so wall time and peak memory are
the command's, measured by /usr/bin/time): transcription (`run --lang L`, no targets),
Whisper's fallback (`run --lang L --to en` with the LM switched off, minus the
transcription), and the LM (`translate SOURCE --to en` with no MarianMT model,
the weights' conversion cached beforehand and not counted). Each translated track is
scored with `subpipe eval` against the reference's column in its language (chrF, BLEU)
and judged for rule breaks. Writes OUT/lm_translate.json and prints one table.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEV = REPO.parent / "shared" / "data" / "dev"
FILMS = {"zh_dev": "zh", "ur_dev": "ur", "ur_dev_long": "ur"}


def subpipe(args: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Run one subpipe command; its wall seconds and peak memory (GB)."""
    with tempfile.NamedTemporaryFile("r", suffix=".time") as timing:
        command = ["/usr/bin/time", "-f", "%e %M", "-o", timing.name, sys.executable, "-c",
                   "import sys; from subpipe.cli import main; sys.argv[0] = 'subpipe'; main()", *args]
        done = subprocess.run(command, env=env, capture_output=True, text=True)
        if done.returncode not in (0, 1):
            raise SystemExit(f"subpipe {' '.join(args)} failed:\n{done.stderr}")
        wall, peak = timing.read().split()[-2:]
    return float(wall), int(peak) / 1e6


def evaluated(track: Path, ref: Path, env: dict[str, str]) -> dict:
    args = ["-c", "import sys; from subpipe.cli import main; sys.argv[0] = 'subpipe'; main()",
            "eval", str(track), "--ref", str(ref), "--format", "json"]
    done = subprocess.run([sys.executable, *args], env=env, capture_output=True, text=True, check=True)
    data = json.loads(done.stdout)
    return {k: data[k] for k in ("chrf", "bleu", "cues", "cues_with_breaks", "speech_recall")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--films", nargs="+", default=list(FILMS))
    parser.add_argument("--threads", type=int, default=0,
                        help="OMP threads and the LM's batches at once, for every step (default 0: each one's own "
                             "default, every core, as a user runs it)")
    parser.add_argument("--out", type=Path, default=REPO / "artifacts" / "lm")
    parser.add_argument("--set", dest="sets", nargs="*", default=[], help="[translate] key=value for the LM run")
    parser.add_argument("--repeat", type=int, default=1,
                        help="time the transcription and the LM this many times, in turn, and keep each one's "
                             "fastest (a busy machine's pauses are not the code's)")
    parser.add_argument("--skip-fallback", action="store_true", help="only the LM (the fallback's numbers unchanged)")
    options = parser.parse_args()
    out = options.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1"}
    env.pop("OMP_NUM_THREADS", None)
    if options.threads:
        env["OMP_NUM_THREADS"] = str(options.threads)
    no_marian = "".join(f'"{p}" = "/nonexistent/marian-{p}"\n' for p in ("ur-en", "en-ur", "zh-en", "en-zh"))
    extra = "".join(f"{s.split('=', 1)[0]} = {s.split('=', 1)[1]}\n" for s in options.sets)
    lm_config = out / "lm.toml"
    lm_config.write_text(f"[translate]\nlm_threads = {options.threads}\n{extra}[translate.models]\n{no_marian}")
    fallback_config = out / "fallback.toml"
    fallback_config.write_text(f"[translate]\nlm_directions = []\n[translate.models]\n{no_marian}")
    subpipe(["models", "--prepare", "--config", str(lm_config)], env)  # the conversion, once, not counted

    rows = []
    for film in options.films:
        lang, video, ref = FILMS[film], DEV / f"{film}.mp4", DEV / f"{film}.ref.tsv"
        folder = out / film
        asr = folder / "asr"
        lm = folder / "lm"
        # One target, as the speed goal counts it: all the film's sentences into English.
        transcribe = ["run", str(video), "--lang", lang, "--out", str(asr), "--force"]
        translate = ["translate", str(asr / f"{film}.{lang}.srt"), "--to", "en", "--out", str(lm),
                     "--config", str(lm_config), "--force"]
        timed = [(subpipe(transcribe, env), subpipe(translate, env)) for _ in range(max(1, options.repeat))]
        (wall_asr, peak_asr), (wall_lm, peak_lm) = min(t[0] for t in timed), min(t[1] for t in timed)
        row = {"film": film, "lang": lang, "transcribe_s": wall_asr, "transcribe_peak_gb": peak_asr}
        if not options.skip_fallback:
            fb = folder / "fallback"
            wall_fb, peak_fb = subpipe(["run", str(video), "--lang", lang, "--to", "en", "--out", str(fb),
                                        "--config", str(fallback_config), "--force"], env)
            row.update(fallback_s=wall_fb - wall_asr, fallback_peak_gb=peak_fb,
                       fallback_en=evaluated(fb / f"{film}.en.srt", ref, env))
        row.update(lm_s=wall_lm, lm_peak_gb=peak_lm, lm_en=evaluated(lm / f"{film}.en.srt", ref, env))
        rows.append(row)
        print(json.dumps(row), flush=True)
    (out / "lm_translate.json").write_text(json.dumps({"threads": options.threads, "repeat": options.repeat,
                                                       "rows": rows}, indent=2))
    print(f"\n{'film':<12} {'asr s':>7} {'fb s':>7} {'lm s':>7} {'lm/asr':>7} {'chrF fb':>8} {'chrF lm':>8} "
          f"{'breaks fb':>10} {'breaks lm':>10}")
    for r in rows:
        fb = r.get("fallback_en", {})
        lm = r["lm_en"]
        print(f"{r['film']:<12} {r['transcribe_s']:7.1f} {r.get('fallback_s', 0):7.1f} {r['lm_s']:7.1f} "
              f"{r['lm_s'] / r['transcribe_s']:7.2f} {fb.get('chrf', 0):8.1f} {lm['chrf']:8.1f} "
              f"{fb.get('cues_with_breaks', 0):>4}/{fb.get('cues', 0):<5} {lm['cues_with_breaks']:>4}/{lm['cues']:<5}")


if __name__ == "__main__":
    main()
