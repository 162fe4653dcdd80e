#!/usr/bin/env python3
"""Stage what bench/gpu_speed.py needs on a GPU machine that has no ffmpeg and no internet.

    .venv/bin/python bench/gpu_stage.py [--out .gpu]

Writes (under the repo's ``.gpu/``, which is kept out of git through .git/info/exclude):

- ``common/``: ``audio.pcm`` (zh_dev as 16 kHz mono s16le), ``ref.txt`` (its reference
  text), Whisper base's ``config.json``, ``generation_config.json`` and ``tokenizer.json``,
  ``silero_vad_v6.onnx``, ``mel_filters.npy`` (transformers' 80-bin filters),
  ``suppress.json`` (the token ids openai-whisper never samples) and ``SHA256`` of the weights;
  for bench/gpu_backend.py also ``subpipe.json`` (the alignment heads), ``regions.json``
  (subpipe's voice activity on zh_dev) and ``py/whisper`` (openai-whisper's pure-Python
  package, whose tokenizer the transformers backend uses).
- ``part0/`` ``part1/`` ``part2/``: ``model.safetensors`` cut in three, because one device
  call carries at most 64 MiB: each call carries ``common`` and one part.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import shutil
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEV = REPO.parent / "shared" / "data" / "dev"
MODEL = Path.home() / ".cache" / "subpipe" / "models" / "whisper-base"
VAD_ONNX = "silero_vad_v6.onnx"
PARTS = 3
CARRY_LIMIT = 64 * 2**20


def extract_pcm(video: Path, target: Path) -> None:
    """16 kHz mono s16le, the form gpu_speed.py reads without ffmpeg."""
    cmd = ["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", str(video), "-ac", "1", "-ar", "16000",
           "-f", "s16le", str(target)]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"ffmpeg failed on {video}: {done.stderr.strip()}")


def reference_text(tsv: Path) -> str:
    with tsv.open(encoding="utf-8", newline="") as f:
        return "".join(row["text"] for row in csv.DictReader(f, delimiter="\t"))


def suppress_ids() -> dict:
    """openai-whisper's default suppression ("-1"), as the CTranslate2 conversion recorded it.

    The transformers folder's generation_config.json has no ``suppress_tokens`` and its
    ``begin_suppress_tokens`` names 50256 (a text token) where EOT is 50257, so neither
    can be taken from there.
    """
    ct2 = json.loads((MODEL / "ct2" / "config.json").read_text())
    return {"suppress_tokens": ct2["suppress_ids"], "begin_suppress_tokens": ct2["suppress_ids_begin"],
            "source": "whisper-base/ct2/config.json (suppress_ids, suppress_ids_begin)"}


def mel_filters(target: Path) -> None:
    # Saved rather than rebuilt on the device so features need no transformers there.
    import numpy as np
    from transformers import WhisperFeatureExtractor

    np.save(target, WhisperFeatureExtractor(feature_size=80).mel_filters.astype(np.float32))


def split_file(source: Path, out: Path, parts: int) -> list[Path]:
    data = source.read_bytes()
    step = -(-len(data) // parts)
    paths = []
    for i in range(parts):
        folder = out / f"part{i}"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{source.name}.{i}"
        path.write_bytes(data[i * step:(i + 1) * step])
        paths.append(path)
    return paths


def exclude_from_git(pattern: str) -> None:
    exclude = REPO / ".git" / "info" / "exclude"
    exclude.parent.mkdir(parents=True, exist_ok=True)
    lines = exclude.read_text().splitlines() if exclude.exists() else []
    if pattern not in lines:
        exclude.write_text("\n".join([*lines, pattern]) + "\n")


def speech_regions_of(pcm: Path) -> list[list[float]]:
    """subpipe's voice activity (default settings) on the staged PCM."""
    import sys

    import numpy as np

    sys.path.insert(0, str(REPO))
    from subpipe.config import load_config
    from subpipe.listen import speech_of

    audio = np.fromfile(pcm, dtype="<i2").astype(np.float32) / 32768.0
    return [[round(a, 3), round(b, 3)] for a, b in speech_of(audio, load_config())]


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def stage(out: Path) -> dict[str, int]:
    """Build ``out``; returns the size of each folder a device call carries."""
    import faster_whisper

    if out.exists():
        shutil.rmtree(out)
    common = out / "common"
    common.mkdir(parents=True)
    extract_pcm(DEV / "zh_dev.mp4", common / "audio.pcm")
    (common / "ref.txt").write_text(reference_text(DEV / "zh_dev.ref.tsv"), encoding="utf-8")
    for name in ("config.json", "generation_config.json"):
        shutil.copy(MODEL / "hf" / name, common / name)
    shutil.copy(MODEL / "ct2" / "tokenizer.json", common / "tokenizer.json")
    shutil.copy(Path(faster_whisper.__file__).parent / "assets" / VAD_ONNX, common / VAD_ONNX)
    (common / "suppress.json").write_text(json.dumps(suppress_ids(), indent=1))
    mel_filters(common / "mel_filters.npy")
    shutil.copy(MODEL / "hf" / "subpipe.json", common / "subpipe.json")
    (common / "regions.json").write_text(json.dumps(speech_regions_of(common / "audio.pcm")))
    import whisper

    shutil.copytree(Path(whisper.__file__).parent, common / "py" / "whisper",
                    ignore=shutil.ignore_patterns("__pycache__"))
    weights = MODEL / "hf" / "model.safetensors"
    (common / "SHA256").write_text(hashlib.sha256(weights.read_bytes()).hexdigest() + "\n")
    split_file(weights, out, PARTS)
    sizes = {"common": folder_bytes(common)}
    for i in range(PARTS):
        sizes[f"part{i}"] = folder_bytes(out / f"part{i}")
        if sizes["common"] + sizes[f"part{i}"] > CARRY_LIMIT:
            raise SystemExit(f"common + part{i} is over the 64 MiB a device call carries")
    return sizes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / ".gpu")
    args = parser.parse_args()
    exclude_from_git("/.gpu/")
    sizes = stage(args.out.resolve())
    for name, size in sizes.items():
        print(f"{name:7s} {size / 1e6:6.1f} MB ({size / 2**20:.1f} MiB)")


if __name__ == "__main__":
    main()
