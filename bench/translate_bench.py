"""MarianMT translation benchmark (not a test).

Speed: a full-size random-weight MarianMT (opus-mt dimensions: d_model 512, 6+6 layers,
8 heads, ffn 2048, ~65k vocabulary; a small trained tokenizer mapped into it) translates
the same sentences with batching and with batch size 1, every output exactly
``--new-tokens`` long (min_new_tokens = max_new_tokens), so both sides do the same work.

Quality: with real models (``--model ur-en=/path`` ...), chrF and BLEU (sacrebleu) on the
UDHR dev set in all six directions; Urdu <-> Mandarin goes through English.

    python bench/translate_bench.py --sentences 16 --new-tokens 24
    python bench/translate_bench.py --skip-speed --model zh-en=~/.cache/subpipe/models/marian/zh-en ...
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))  # marian_tiny builds the random-weight model

from marian_tiny import OPUS, build_marian, train_spm  # noqa: E402

from subpipe.config import TranslateSettings  # noqa: E402
from subpipe.translate.marian import MarianTranslator  # noqa: E402

UDHR = Path("/work/shared/data/dev/udhr_dev.tsv")
COLUMNS = {"en": "eng", "ur": "urd", "zh": "cmn"}
DIRECTIONS = ("ur-en", "en-ur", "zh-en", "en-zh", "ur-zh", "zh-ur")


def machine() -> str:
    import torch

    model = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{model}; {os.cpu_count()} logical cores; torch {torch.__version__}, {torch.get_num_threads()} threads"


def udhr(path: Path) -> dict[str, list[str]]:
    with open(path, encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    return {lang: [row[col] for row in rows] for lang, col in COLUMNS.items()}


def bench_sentences(count: int, max_words: int) -> list[str]:
    """English UDHR lines cut to subtitle-sentence length, repeated to ``count``."""
    lines = [" ".join(line.split()[:max_words]) for line in udhr(UDHR)["en"]]
    return [lines[i % len(lines)] for i in range(count)]


def build_opus_sized(folder: Path) -> Path:
    spm = train_spm("en", folder / "spm"), train_spm("zh", folder / "spm")
    return build_marian(folder / "en-zh", *spm, dims=OPUS, vocab_size=65_001, init_std=None)


def timed(translator: MarianTranslator, texts: list[str]) -> float:
    start = time.perf_counter()
    translator.translate(texts, "en", "zh")
    return time.perf_counter() - start


def speed(args: argparse.Namespace) -> None:
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"machine: {machine()}")
    texts = bench_sentences(args.sentences, args.max_words)
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        folder = build_opus_sized(Path(tmp))
        print(f"built random opus-mt-sized model in {time.perf_counter() - t0:.1f} s")
        common = dict(models={"en-zh": str(folder)}, max_new_tokens=args.new_tokens,
                      min_new_tokens=args.new_tokens, num_beams=args.beams)
        batched = MarianTranslator(TranslateSettings(batch_size=args.batch_size, **common))
        single = MarianTranslator(TranslateSettings(batch_size=1, **common))
        batched.translate(texts[:2], "en", "zh")  # load and warm up both
        single.translate(texts[:1], "en", "zh")
        tokenizer = batched._model("en-zh")[0]
        in_tokens = sum(len(ids) for ids in tokenizer(texts)["input_ids"])
        out_tokens = len(texts) * args.new_tokens
        print(f"{len(texts)} sentences, {in_tokens} input tokens, {out_tokens} output tokens "
              f"(fixed {args.new_tokens} each), beams {args.beams}")
        t_single = timed(single, texts)
        t_batched = timed(batched, texts)
    for name, seconds in ((f"batch {args.batch_size}", t_batched), ("batch 1", t_single)):
        print(f"{name:>9}: {seconds:7.2f} s  {len(texts) / seconds:7.2f} sentences/s  "
              f"{out_tokens / seconds:8.1f} output tokens/s  {(in_tokens + out_tokens) / seconds:8.1f} all tokens/s")
    print(f"speed-up of batch {args.batch_size} over batch 1: {t_single / t_batched:.2f}x")


def quality(args: argparse.Namespace) -> None:
    import sacrebleu

    models = dict(item.split("=", 1) for item in args.model)
    models = {pair: str(Path(path).expanduser()) for pair, path in models.items()}
    translator = MarianTranslator(TranslateSettings(models=models, batch_size=args.batch_size, num_beams=args.beams))
    data = udhr(args.tsv)
    print(f"{'direction':<10}{'chrF':>8}{'BLEU':>8}  engine")
    for direction in DIRECTIONS:
        src, tgt = direction.split("-")
        hops = [(src, tgt)] if "en" in (src, tgt) else [(src, "en"), ("en", tgt)]
        if any(f"{a}-{b}" not in models for a, b in hops):
            print(f"{direction:<10}{'-':>8}{'-':>8}  skipped: needs {', '.join(f'{a}-{b}' for a, b in hops)}")
            continue
        texts = data[src][: args.max_sentences or None]
        for a, b in hops:
            texts = translator.translate(texts, a, b)
        refs = [data[tgt][: len(texts)]]
        bleu = sacrebleu.corpus_bleu(texts, refs, tokenize="zh" if tgt == "zh" else "13a")
        chrf = sacrebleu.corpus_chrf(texts, refs)
        print(f"{direction:<10}{chrf.score:8.1f}{bleu.score:8.1f}  {' + '.join(translator.engine_for(a, b) for a, b in hops)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sentences", type=int, default=32)
    parser.add_argument("--max-words", type=int, default=20, help="cut each UDHR line to this many words")
    parser.add_argument("--new-tokens", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--beams", type=int, default=1)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--skip-speed", action="store_true")
    parser.add_argument("--model", action="append", default=[], metavar="PAIR=PATH",
                        help="a real MarianMT folder, e.g. zh-en=/models/opus-mt-zh-en (repeat)")
    parser.add_argument("--tsv", type=Path, default=UDHR)
    parser.add_argument("--max-sentences", type=int, default=0)
    args = parser.parse_args()
    if not args.skip_speed:
        speed(args)
    if args.model:
        quality(args)


if __name__ == "__main__":
    main()
