#!/usr/bin/env python3
"""Stage what bench/gpu_speed.py needs on a GPU machine that has no ffmpeg and no internet.

    .venv/bin/python bench/gpu_stage.py [--out .gpu]

The machine's own Python has torch, transformers, tokenizers, tiktoken, onnxruntime and
numba, but not openai-whisper (its tokenizer), faster-whisper (its voice activity), jieba,
opencc or srt (cue shaping, the pipeline): those travel as plain package folders. One device call carries at
most 64 MiB, the repository included, so everything is packed into parts, the weights cut
across them; each call carries ``common`` and one part, and bench/gpu_device.sh copies it
into the machine's /tmp, which lasts while the machine is warm. Under ``--out`` (kept out
of git through .git/info/exclude):

- ``common/``: ``PARTS`` (how many parts) and ``SHA256`` (of the joined weights).
- ``part0/`` ... : the stage's files, laid out as they land in /tmp/subpipe-gpu:
  ``hf/`` (a transformers Whisper base folder: config.json, subpipe.json with the alignment
  heads, and ``model.safetensors.K``, the K-th piece of the weights), ``films/`` (each dev
  film as 16 kHz mono s16le ``NAME.pcm``, with ``NAME.ref.txt``, and ``films.json``: name,
  language, seconds) and ``py/`` (whisper, faster_whisper's voice activity alone, jieba,
  opencc, srt).

Also a stage folder here (``--out``/stage, the same layout, weights whole) for the bench's
CPU path: ``.venv/bin/python bench/gpu_speed.py --data .gpu/stage --device cpu --hours 0.01``.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import importlib.util
import json
import shutil
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEV = REPO.parent / "shared" / "data" / "dev"
FILMS = (("zh_dev", "zh"), ("ur_dev", "ur"), ("ur_dev_long", "ur"))
CARRY_LIMIT = 64 * 2**20
MARGIN = 2 * 2**20  # what else may travel: files added to the repository after staging
WEIGHTS = "hf/model.safetensors"
# Whole packages, less what subpipe never touches (jieba's other segmenters, caches).
SKIP = shutil.ignore_patterns("__pycache__", "*.pyc", "__main__.py", "analyse", "lac_small", "posseg")


def extract_pcm(video: Path, target: Path) -> None:
    """16 kHz mono s16le, what gpu_speed.py reads without ffmpeg."""
    cmd = ["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", str(video), "-ac", "1", "-ar", "16000",
           "-f", "s16le", str(target)]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"ffmpeg failed on {video}: {done.stderr.strip()}")


def reference_text(tsv: Path) -> str:
    with tsv.open(encoding="utf-8", newline="") as f:
        return "".join(row["text"] for row in csv.DictReader(f, delimiter="\t"))


def package_dir(name: str) -> Path:
    """Where package ``name`` lives: its folder, or its one file for a single-module package."""
    spec = importlib.util.find_spec(name)
    if spec is None or spec.origin is None:
        raise SystemExit(f"{name} is not installed here: run 'make setup'")
    origin = Path(spec.origin)
    return origin.parent if origin.name == "__init__.py" else origin


def build_stage(stage: Path) -> None:
    """The stage as the machine sees it, weights whole."""
    import sys

    sys.path.insert(0, str(REPO))
    from subpipe.asr.convert import transformers_folder
    from subpipe.asr.weights import resolve_whisper

    hf = transformers_folder(resolve_whisper("base"))
    (stage / "hf").mkdir(parents=True)
    for name in ("config.json", "subpipe.json", "model.safetensors"):
        shutil.copy(hf / name, stage / "hf" / name)
    films = stage / "films"
    films.mkdir()
    listed = []
    for name, lang in FILMS:
        extract_pcm(DEV / f"{name}.mp4", films / f"{name}.pcm")
        (films / f"{name}.ref.txt").write_text(reference_text(DEV / f"{name}.ref.tsv"), encoding="utf-8")
        listed.append({"name": name, "lang": lang, "seconds": (films / f"{name}.pcm").stat().st_size / 32000})
    (films / "films.json").write_text(json.dumps(listed, indent=1))
    py = stage / "py"
    for name in ("whisper", "jieba", "opencc"):
        shutil.copytree(package_dir(name), py / name, ignore=SKIP)
    shutil.copy(package_dir("srt"), py / "srt.py")
    # faster-whisper's voice activity alone: its package imports CTranslate2, which the
    # machine lacks, so only vad.py, the utilities it uses and the Silero model travel.
    fw = package_dir("faster_whisper")
    (py / "faster_whisper" / "assets").mkdir(parents=True)
    (py / "faster_whisper" / "__init__.py").write_text('"""faster-whisper\'s voice activity alone (staged)."""\n')
    for name in ("vad.py", "utils.py", "assets/silero_vad_v6.onnx"):
        shutil.copy(fw / name, py / "faster_whisper" / name)


def repo_bytes() -> int:
    """What a device call sends besides the carried paths: tracked and unignored files."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                            capture_output=True, check=True).stdout.split(b"\0")
    return sum((REPO / name.decode()).stat().st_size for name in listed if name and (REPO / name.decode()).is_file())


def pack(stage: Path, out: Path, budget: int) -> int:
    """Copy ``stage`` into parts of at most ``budget`` bytes, the weights cut in pieces; returns the parts."""
    files = sorted(p for p in stage.rglob("*") if p.is_file() and p.relative_to(stage).as_posix() != WEIGHTS)
    part, used = 0, 0
    for path in files:
        size = path.stat().st_size
        if used + size > budget:
            part, used = part + 1, 0
        target = out / f"part{part}" / path.relative_to(stage)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, target)
        used += size
    data, piece, at = (stage / WEIGHTS).read_bytes(), 0, 0
    while at < len(data):
        if used >= budget:
            part, used = part + 1, 0
        take = min(budget - used, len(data) - at)
        target = out / f"part{part}" / f"{WEIGHTS}.{piece}"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data[at:at + take])
        at, used, piece = at + take, used + take, piece + 1
    return part + 1


def exclude_from_git(pattern: str) -> None:
    exclude = REPO / ".git" / "info" / "exclude"
    exclude.parent.mkdir(parents=True, exist_ok=True)
    lines = exclude.read_text().splitlines() if exclude.exists() else []
    if pattern not in lines:
        exclude.write_text("\n".join([*lines, pattern]) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / ".gpu")
    args = parser.parse_args()
    exclude_from_git("/.gpu/")
    out = args.out.resolve()
    if out.exists():
        shutil.rmtree(out)
    stage = out / "stage"
    build_stage(stage)
    common = out / "common"
    common.mkdir()
    (common / "SHA256").write_text(hashlib.sha256((stage / WEIGHTS).read_bytes()).hexdigest() + "\n")
    budget = CARRY_LIMIT - repo_bytes() - MARGIN - 4096
    parts = pack(stage, out, budget)
    (common / "PARTS").write_text(f"{parts}\n")
    for i in range(parts):
        size = sum(p.stat().st_size for p in (out / f"part{i}").rglob("*") if p.is_file())
        print(f"part{i}  {size / 2**20:5.1f} MiB  (with the repository: {(size + repo_bytes()) / 2**20:.1f} MiB)")
    print(f"{parts} device calls: bash bench/gpu_device.sh K [run|smoke] with carry .gpu/common .gpu/partK")


if __name__ == "__main__":
    main()
