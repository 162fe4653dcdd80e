#!/usr/bin/env python3
"""subpipe's own transformers backend on a GPU, as `subpipe run --backend transformers` runs it.

    python3 bench/gpu_backend.py --data DIR [--repeat 5] [--batch-size 32] [--beam 1]
                                 [--dtype float16] [--out gpu_backend.json]

bench/gpu_speed.py measures what the GPU can do with a decoder of our own; this measures
the product's path: HFWhisper (transformers' generate, batched over the same padded speech
windows, token timestamps for word timing) on the staged PCM of zh_dev repeated
``--repeat`` times. Voice activity is not run there (faster-whisper's Silero is not
installed on the GPU machine): regions.json holds subpipe's regions for one copy,
computed by bench/gpu_stage.py, and they are repeated with the audio. Prints the GPU, the
transcription time and its real-time factor; writes the text beside the JSON so the
character error rate can be scored where opencc is installed.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

SAMPLE_RATE = 16_000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--beam", type=int, default=1)
    parser.add_argument("--dtype", default="float16")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--out", type=Path, default=Path("gpu_backend.json"))
    args = parser.parse_args()

    import torch

    from subpipe.asr import DecodeOptions, plan_chunks
    from subpipe.asr.backend_hf import HFWhisper
    from subpipe.config import VadSettings

    one = np.fromfile(args.data / "audio.pcm", dtype="<i2").astype(np.float32) / 32768.0
    duration = len(one) / SAMPLE_RATE
    regions = [tuple(r) for r in json.loads((args.data / "regions.json").read_text())]
    audio = np.tile(one, args.repeat)
    speech = [(a + k * duration, b + k * duration) for k in range(args.repeat) for a, b in regions]

    options = DecodeOptions(beam_size=args.beam, temperatures=(0.0,), seed=0)
    pad = VadSettings().decode_pad_ms / 1000
    started = time.perf_counter()
    engine = HFWhisper(args.data, options, device=args.device, dtype=args.dtype, batch_size=args.batch_size)
    load_s = time.perf_counter() - started
    (warm_up,) = plan_chunks(30.0, [r for r in regions if r[1] <= 30], 0, pad)
    engine.transcribe(one, "zh", warm_up)
    if args.device == "cuda":
        torch.cuda.synchronize()
    started = time.perf_counter()
    (chunk,) = plan_chunks(len(audio) / SAMPLE_RATE, speech, 0, pad)
    found = engine.transcribe(audio, "zh", chunk)
    if args.device == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - started
    text = "".join(w.text for w in found)
    words = len(found)
    gpu = torch.cuda.get_device_name(0) if args.device == "cuda" else "none"
    record = {"gpu": gpu, "device": args.device, "dtype": args.dtype, "batch_size": args.batch_size,
              "beam": args.beam, "audio_s": round(len(audio) / SAMPLE_RATE, 1), "load_s": round(load_s, 2),
              "transcribe_s": round(seconds, 3), "x_realtime": round(len(audio) / SAMPLE_RATE / seconds, 1),
              "words": words,
              "versions": {"torch": torch.__version__, "transformers": __import__("transformers").__version__}}
    args.out.write_text(json.dumps(record, indent=2) + "\n")
    args.out.with_suffix(".txt").write_text(text, encoding="utf-8")
    print(f"GPU {gpu}  {args.dtype}  batch {args.batch_size}  beam {args.beam}: subpipe's transformers backend")
    print(f"audio {record['audio_s']} s ({args.repeat} x zh_dev): transcribed in {seconds:.2f} s "
          f"= {record['x_realtime']}x real time, {words} words with times (loading {load_s:.1f} s not counted)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
