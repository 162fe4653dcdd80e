#!/usr/bin/env python3
"""One contender of bench/speed.py, run in a process of its own so its memory is its own.

    run_contender.py fw-batched VIDEO LANG OUT_TXT [--device cpu] [--batch-size 8]
    run_contender.py subpipe VIDEO LANG OUT_DIR [--backend faster-whisper] [--to en] [--config FILE]

``fw-batched`` is faster-whisper's own batched pipeline (Silero VAD, int8 on CPU, float16
on CUDA, its default beam search) on the same CTranslate2 weights subpipe uses.
``subpipe`` runs subpipe's pipeline exactly as ``subpipe run`` does, with the backend
chosen by name: used when the installed CLI has no ``--backend`` flag yet.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def fw_batched(args: argparse.Namespace) -> None:
    from faster_whisper import BatchedInferencePipeline, WhisperModel

    from subpipe.asr.weights import WhisperStore, resolve_whisper

    resolve_whisper("base")  # builds the cache when missing
    compute = "int8" if args.device == "cpu" else "float16"
    model = WhisperModel(str(WhisperStore("base").ct2_dir), device=args.device, compute_type=compute)
    segments, _ = BatchedInferencePipeline(model).transcribe(args.video, language=args.lang, batch_size=args.batch_size)
    Path(args.out).write_text("".join(s.text for s in segments), encoding="utf-8")


def subpipe_run(args: argparse.Namespace) -> None:
    from dataclasses import replace

    from subpipe.asr.backends import make_transcriber
    from subpipe.config import load_config
    from subpipe.pipeline import RunRequest, run

    config = load_config(Path(args.config) if args.config else None)
    targets = tuple(t for t in args.to.split(",") if t) if args.to else ()
    request = RunRequest(Path(args.video), lang=args.lang, out_dir=Path(args.out), force=True, targets=targets)
    run(request, config, load=lambda c: make_transcriber(replace(c.asr, backend=args.backend)))


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("kind", choices=["fw-batched", "subpipe"])
    parser.add_argument("video")
    parser.add_argument("lang")
    parser.add_argument("out")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--backend", default="faster-whisper")
    parser.add_argument("--to", default="")
    parser.add_argument("--config", default="")
    args = parser.parse_args()
    (fw_batched if args.kind == "fw-batched" else subpipe_run)(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
