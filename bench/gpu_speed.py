#!/usr/bin/env python3
"""subpipe's own path on a GPU over an hour of audio: PCM in memory to shaped cues.

    python3 bench/gpu_speed.py --data DIR [--hours 1.0] [--device cuda] [--dtype auto]
                               [--batch-size 64] [--chunk-seconds 600] [--ref-windows 128]
                               [--films zh_dev,ur_dev,ur_dev_long] [--out gpu_speed.json]
                               [--random-weights]
    .venv/bin/python bench/gpu_speed.py --device cpu --hours 0.01 --batch-size 4 --ref-windows 2 --films ""
    .venv/bin/python bench/gpu_speed.py --score gpu_speed.json [--data .gpu/stage]

``DIR`` is what bench/gpu_stage.py staged (bench/gpu_device.sh joins it on the machine): the
dev films as 16 kHz PCM with their reference text, Whisper base as a transformers folder,
and in ``py/`` the pure-Python packages the machine lacks. Nothing is fetched, and there is
no ffmpeg there: the audio starts as PCM in memory, as if ffmpeg had handed it over.

Everything timed is the product's own code, as ``subpipe run --device cuda`` runs it:

1. vad: ``subpipe.listen.speech_of`` (Silero in pieces on every core, as on a GPU run);
2. transcribe: ``subpipe.listen.hear``, chunk by chunk (``[asr] chunk_seconds``, decode
   pad) through the transformers backend: windows, log-mel on the GPU, encoder, the
   graph-captured greedy decoder, loops decoded again with a beam, word timing from the
   alignment heads (DTW) for the whole batch, speech left without words decoded again;
3. shape: ``subpipe.pipeline.subtitle`` (cue shaping to the rules).

zh_dev is repeated to at least ``--hours``. Loading the weights, capturing a graph for every
batch size and one warm-up pass are timed apart and left out. Then, apart too:
transcription alone (``tokens``: no word timing) over the same chunks; transformers'
``generate`` against the fast decoder on ``--ref-windows`` windows (time, and how many
windows get the very same tokens); peak GPU memory; each of ``--films`` once through the
same path, its cue text kept for scoring. The character error rate needs jiwer, which the
machine lacks: ``--score`` computes it here, for those films and for the hour, beside the
CPU default path's (faster-whisper, run here once and kept in ``./<stem>.cpu.json``), and
writes ``./<stem>.scored.json``; exit 1 if a film's CER is over the CPU's by more than 0.01.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
SAMPLE_RATE = 16_000
FPS = 25.0  # the dev films' frame rate: cue gaps and durations are counted in its frames
WARM_UP_SECONDS = 120.0


class Clock:
    """Seconds per stage, the device drained at both ends so that GPU work is counted."""

    def __init__(self, device: str):
        self.cuda = device.startswith("cuda")
        self.seconds: dict[str, float] = {}

    def sync(self) -> None:
        if self.cuda:
            import torch

            torch.cuda.synchronize()

    def stage(self, name: str):
        clock = self

        class _Timer:
            def __enter__(self):
                clock.sync()
                self.t0 = time.perf_counter()

            def __exit__(self, *exc):
                clock.sync()
                clock.seconds[name] = clock.seconds.get(name, 0.0) + time.perf_counter() - self.t0

        return _Timer()


def read_pcm(path: Path) -> np.ndarray:
    return np.fromfile(path, dtype="<i2").astype(np.float32) / 32768.0


def films_of(data: Path) -> list[dict]:
    return json.loads((data / "films" / "films.json").read_text())


def bench_config(args):
    """The shipped defaults, placed on ``args.device`` as ``subpipe run --device`` places them."""
    from subpipe.config import load_config

    config = load_config()
    asr = replace(config.asr, device=args.device, gpu_batch_size=args.batch_size,
                  chunk_seconds=args.chunk_seconds or config.asr.chunk_seconds)
    return replace(config, asr=asr.on(args.device))


def load_engine(args, config):
    """The transformers backend with the fast decoder, on the staged folder (or random weights)."""
    from subpipe.asr.backend_hf import HFWhisper
    from subpipe.asr.interface import DecodeOptions

    folder = args.data / "hf"
    if args.random_weights:
        folder = random_folder(folder)
    # The GPU's decoding options even when this runs on the CPU: the fast decoder, greedy.
    options = DecodeOptions.of(config.asr.on("cuda"))
    return HFWhisper(folder, options, device=args.device, dtype=args.dtype, batch_size=args.batch_size, fast=True)


def random_folder(folder: Path) -> Path:
    """Seeded random weights in a folder of their own: a smoke test before the weights arrive."""
    import shutil
    import tempfile

    import torch
    from transformers import WhisperConfig, WhisperForConditionalGeneration

    target = Path(tempfile.mkdtemp(prefix="subpipe-random-"))
    torch.manual_seed(0)
    WhisperForConditionalGeneration(WhisperConfig.from_json_file(folder / "config.json")).save_pretrained(target)
    shutil.copy(folder / "subpipe.json", target / "subpipe.json")
    return target


def product_path(audio: np.ndarray, lang: str, engine, config, clock: Clock | None = None):
    """PCM to shaped cues through the product's own functions, as ``subpipe run`` goes
    from extracted audio to cues (speech accounting and its retries included)."""
    from subpipe.asr import plan_chunks
    from subpipe.listen import Heard, hear, speech_of
    from subpipe.media import AudioStream, MediaInfo
    from subpipe.pipeline import subtitle
    from subpipe.types import Transcript

    clock = clock or Clock("cpu")
    duration = len(audio) / SAMPLE_RATE
    with clock.stage("vad"):
        speech = speech_of(audio, config)
    # The chunks hear() decodes, counted for the report.
    chunks = plan_chunks(duration, speech, config.asr.chunk_seconds, config.vad.decode_pad_ms / 1000)
    with clock.stage("transcribe"):
        words, _ = hear(engine, audio, lang, speech, config)
    with clock.stage("shape"):
        stream = AudioStream(0, "pcm_s16le", 1, SAMPLE_RATE, lang, duration)
        heard = Heard(MediaInfo(Path("pcm"), duration, FPS, (stream,)), stream, Transcript(lang, words, duration),
                      speech, engine.name)
        shaped = subtitle(heard, config.rules_for(lang, FPS), config)
    return shaped, words, chunks


def capture(decoder, batch: int, forced) -> None:
    """Make ``batch`` rows' buffers and (on a GPU) capture their graph now, before a
    timed run; ``forced``: any start of transcript, to run the capture's steps on."""
    import torch

    with torch.inference_mode():
        encoded = torch.zeros((batch, decoder.n_audio, decoder.d_model), device=decoder.device, dtype=decoder.dtype)
        decoder._ready(batch, encoded, [list(forced)] * batch)


def capture_graphs(engine, lang: str) -> list[int]:
    """A graph for every batch size the decoder may run (powers of two up to the batch)."""
    sizes, size = [], 1
    while size < engine._fitting:
        sizes.append(size)
        size *= 2
    sizes.append(engine._fitting)
    for size in sizes:
        capture(engine.fast, size, engine._start(lang, "transcribe"))
    return sizes


def reference(engine, audio: np.ndarray, windows, lang: str, device: str) -> dict:
    """transformers' generate against the fast decoder on the same encoder outputs."""
    import torch

    report: dict = {"windows": len(windows), "identical": 0, "tokens": 0, "same_prefix": 0}
    clock = Clock(device)
    eot = engine.model.config.eos_token_id
    start = engine._start(lang, "transcribe")
    step = engine._fitting
    for first in range(0, len(windows), step):
        batch = windows[first:first + step]
        with torch.inference_mode():
            encoded, mask, _ = engine._encoded(engine._prepared([w.samples(audio) for w in batch]))
            with clock.stage("generate"):
                theirs = engine._generated(encoded, mask, lang, "transcribe", None, 1)
            with clock.stage("fast"):
                rows, _ = engine.fast.run(encoded, [start] * len(batch), engine._bucket(len(batch)))
        ours = [[t for t in row.tokens if t < eot] for row in rows]
        for a, b in zip(ours, theirs):
            same = next((k for k, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
            report["identical"] += a == b
            report["same_prefix"] += same
            report["tokens"] += max(len(a), len(b))
    report.update(generate_s=clock.seconds.get("generate", 0.0), fast_s=clock.seconds.get("fast", 0.0),
                  identical_share=report["identical"] / max(1, len(windows)),
                  token_prefix_agreement=report["same_prefix"] / max(1, report["tokens"]))
    report["speedup"] = report["generate_s"] / max(1e-9, report["fast_s"])
    return report


def run(args, result: dict) -> None:
    """Everything, filling ``result`` as it goes, so that a failure still leaves what was found."""
    import torch

    from subpipe.asr.windows import plan_windows
    from subpipe.linebreak import warm_up

    cuda = args.device.startswith("cuda")
    if cuda:
        result["gpu"] = torch.cuda.get_device_name(args.device)
    films = {f["name"]: f for f in films_of(args.data)}
    main_film = films["zh_dev"]
    lang = main_film["lang"]
    one = read_pcm(args.data / "films" / "zh_dev.pcm")
    wanted = int(args.hours * 3600 * SAMPLE_RATE)
    # Whole repeats, so the hour's text scores against the reference repeated; less than
    # one film (the CPU's check) is a cut of it, and is not scored.
    repeats = math.ceil(wanted / len(one)) if wanted >= len(one) else 0
    audio = np.tile(one, repeats) if repeats else one[:wanted]
    result.update(audio_s=len(audio) / SAMPLE_RATE, repeats=repeats, film="zh_dev")
    config = bench_config(args)
    result["settings"] = {"chunk_seconds": config.asr.chunk_seconds, "batch_size": args.batch_size,
                          "dtype": args.dtype, "vad_threads": config.vad.threads or "auto"}

    t0 = time.perf_counter()
    engine = load_engine(args, config)
    warm_up(lang)  # jieba's dictionary: the product loads it beside ffmpeg, before the clock would start
    Clock(args.device).sync()
    result["load_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    result["graph_sizes"] = capture_graphs(engine, lang)
    Clock(args.device).sync()
    result["capture_s"] = time.perf_counter() - t0
    result["graph_error"] = engine.fast.graph_error
    t0 = time.perf_counter()
    product_path(audio[: int(min(WARM_UP_SECONDS, len(audio) / SAMPLE_RATE / 2) * SAMPLE_RATE)], lang, engine,
                 config, Clock(args.device))
    result["warmup_s"] = time.perf_counter() - t0

    if cuda:
        torch.cuda.reset_peak_memory_stats()
    clock = Clock(args.device)
    shaped, words, chunks = product_path(audio, lang, engine, config, clock)
    wall = sum(clock.seconds.values())
    result.update(stages_s=clock.seconds, wall_s=wall, x_realtime=result["audio_s"] / wall,
                  transcribe_x_realtime=result["audio_s"] / clock.seconds["transcribe"],
                  chunks=len(chunks), words=len(words), cues=len(shaped.cues), batch_fitted=engine._fitting)
    if cuda:
        result["peak_gpu_bytes"] = torch.cuda.max_memory_allocated()
        result["peak_gpu_reserved_bytes"] = torch.cuda.max_memory_reserved()
    text_path = args.out.with_suffix(".txt")
    text_path.write_text("".join(cue.text.replace("\n", "") for cue in shaped.cues), encoding="utf-8")
    result["text"] = text_path.name

    windows = [w for chunk in chunks for w in plan_windows(chunk.decode_regions())]
    alone = Clock(args.device)
    with alone.stage("tokens"):
        for chunk in chunks:
            engine.tokens(audio, plan_windows(chunk.decode_regions()), lang)
    result.update(windows=len(windows), speech_s=sum(w.duration for w in windows),
                  tokens_only_s=alone.seconds["tokens"],
                  tokens_only_x_realtime=result["audio_s"] / alone.seconds["tokens"])
    if args.ref_windows:
        try:
            result["reference"] = reference(engine, audio, windows[: args.ref_windows], lang, args.device)
        except Exception as exc:  # noqa: BLE001 - the reference must not sink the measurement it accompanies
            result["reference"] = {"error": f"{type(exc).__name__}: {exc}"}
    result["films"] = {}
    for name in [n for n in args.films.split(",") if n]:
        film = films[name]
        t0 = time.perf_counter()
        shaped, _, _ = product_path(read_pcm(args.data / "films" / f"{name}.pcm"), film["lang"], engine, config)
        result["films"][name] = {"lang": film["lang"], "seconds": time.perf_counter() - t0,
                                 "text": "".join(cue.text.replace("\n", "") for cue in shaped.cues)}


def score(args) -> int:
    """Character error rates, here (jiwer): the GPU's films and hour, and the CPU default path's films."""
    sys.path.insert(0, str(REPO))
    from subpipe.listen import load_transcriber
    from subpipe.scoring import cer

    result = json.loads(args.score.read_text())
    data = args.data
    refs = {f["name"]: (data / "films" / f"{f['name']}.ref.txt").read_text(encoding="utf-8") for f in films_of(data)}
    rows = {}
    for name, film in result.get("films", {}).items():
        rows[name] = {"gpu_cer": cer(film["text"], refs[name], film["lang"])}
    hour = (args.score.parent / result["text"]).read_text(encoding="utf-8")
    hour_cer = cer(hour, refs[result["film"]] * result["repeats"], "zh") if result["repeats"] else None
    # Written here, not beside the result: a device run's files arrive read-only.
    baseline_path = Path.cwd() / f"{args.score.stem}.cpu.json"
    baseline = json.loads(baseline_path.read_text()) if baseline_path.exists() else {}
    missing = [name for name in rows if name not in baseline]
    if missing:
        from subpipe.config import load_config

        config = load_config()  # the CPU default: faster-whisper as shipped
        engine = load_transcriber(config)
        for name in missing:
            lang = result["films"][name]["lang"]
            shaped, _, _ = product_path(read_pcm(data / "films" / f"{name}.pcm"), lang, engine, config)
            baseline[name] = "".join(cue.text.replace("\n", "") for cue in shaped.cues)
        baseline_path.write_text(json.dumps(baseline, ensure_ascii=False, indent=1))
    for name, row in rows.items():
        row["cpu_cer"] = cer(baseline[name], refs[name], result["films"][name]["lang"])
        row["within_0.01"] = row["gpu_cer"] - row["cpu_cer"] <= 0.01
    if hour_cer is not None:
        print(f"hour ({result['repeats']} x {result['film']}): CER {hour_cer:.4f}")
    for name, row in rows.items():
        print(f"{name:12s} GPU CER {row['gpu_cer']:.4f}  CPU default {row['cpu_cer']:.4f}  "
              f"{'ok' if row['within_0.01'] else 'WORSE by more than 0.01'}")
    result["scores"] = {"hour_cer": hour_cer, "films": rows}
    (Path.cwd() / f"{args.score.stem}.scored.json").write_text(json.dumps(result, indent=1, ensure_ascii=False,
                                                                          default=str))
    return 0 if all(row["within_0.01"] for row in rows.values()) else 1


def versions() -> dict:
    import torch

    found = {"python": platform.python_version(), "torch": torch.__version__, "numpy": np.__version__,
             "cuda": torch.version.cuda}
    for name in ("transformers", "tiktoken", "onnxruntime", "safetensors", "numba"):
        try:
            found[name] = __import__(name).__version__
        except ImportError:
            found[name] = None
    return found


def table(r: dict) -> str:
    s = r["stages_s"]
    lines = [
        f"GPU {r.get('gpu', '-')}  device {r['device']}  {r['settings']}"
        + ("  RANDOM WEIGHTS (smoke test)" if r.get("random_weights") else ""),
        f"audio {r['audio_s']:.0f} s ({r['repeats'] or 'a cut of'} x zh_dev), speech {r['speech_s']:.0f} s "
        f"in {r['windows']} windows, {r['chunks']} chunks, {r['words']} words, {r['cues']} cues",
        "stage seconds: " + ", ".join(f"{k} {v:.3f}" for k, v in s.items()),
        f"PCM to shaped cues {r['wall_s']:.3f} s -> {r['x_realtime']:.0f}x real time (goal 2000x); "
        f"transcribe {r['transcribe_x_realtime']:.0f}x; transcription alone (no word timing) "
        f"{r['tokens_only_s']:.3f} s -> {r['tokens_only_x_realtime']:.0f}x (goal 4000x)",
        f"apart: load {r['load_s']:.1f} s, graph capture {r['capture_s']:.2f} s for batches {r['graph_sizes']}, "
        f"warm-up {r['warmup_s']:.1f} s; batch that fitted {r['batch_fitted']}",
    ]
    if "peak_gpu_bytes" in r:
        lines.append(f"peak GPU memory {r['peak_gpu_bytes'] / 2**30:.2f} GiB allocated, "
                     f"{r['peak_gpu_reserved_bytes'] / 2**30:.2f} GiB reserved")
    if r.get("graph_error"):
        lines.append(f"CUDA graph capture FAILED, the decoder ran plain steps: {r['graph_error']}")
    ref = r.get("reference")
    if ref and "error" in ref:
        lines.append(f"reference: {ref['error']}")
    elif ref:
        lines.append(f"generate on {ref['windows']} windows: {ref['generate_s']:.3f} s, fast decoder "
                     f"{ref['fast_s']:.3f} s (x{ref['speedup']:.1f}); same tokens on "
                     f"{ref['identical']}/{ref['windows']} windows ({100 * ref['identical_share']:.1f} %, goal 99 %), "
                     f"token agreement "
                     f"{ref['token_prefix_agreement']:.4f}")
    for name, film in r.get("films", {}).items():
        lines.append(f"{name}: {film['seconds']:.2f} s, {len(film['text'])} characters of cues (score with --score)")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO / ".gpu" / "stage")
    parser.add_argument("--hours", type=float, default=1.0)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--dtype", default="auto", choices=("auto", "float16", "bfloat16", "float32"),
                        help="auto: the product's (float16 on a GPU, float32 on the CPU)")
    parser.add_argument("--batch-size", type=int, default=64, help="the product's [asr] gpu_batch_size")
    parser.add_argument("--chunk-seconds", type=float, default=0, help="0: the product's [asr] chunk_seconds")
    parser.add_argument("--ref-windows", type=int, default=128, help="0: no comparison with generate")
    parser.add_argument("--films", default="zh_dev,ur_dev,ur_dev_long", help="films run once each, for scoring")
    parser.add_argument("--out", type=Path, default=Path("gpu_speed.json"))
    parser.add_argument("--random-weights", action="store_true",
                        help="smoke test without the weights: the timings hold, the text is noise")
    parser.add_argument("--score", type=Path, help="score a result JSON here (jiwer) instead of running")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("SUBPIPE_OFFLINE", "1")
    if args.score:
        return score(args)
    # The staged packages the machine lacks, then this repository's subpipe.
    sys.path[:0] = [str(args.data / "py"), str(REPO)]
    result: dict = {"argv": sys.argv[1:], "device": args.device, "random_weights": args.random_weights,
                    "versions": versions()}
    try:
        run(args, result)
    except BaseException as exc:
        # Device time is scarce: keep whatever was measured before the failure.
        import traceback

        result["error"] = "".join(traceback.format_exception(exc))[-4000:]
        args.out.write_text(json.dumps(result, indent=1, ensure_ascii=False, default=str))
        raise
    args.out.write_text(json.dumps(result, indent=1, ensure_ascii=False, default=str))
    print(table(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
