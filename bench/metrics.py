"""Measures shared by the benchmarks and the accuracy tests."""

from __future__ import annotations

import csv
import unicodedata
from pathlib import Path

import srt


def fold(text: str, lang: str) -> str:
    """Text reduced for a character error rate: Simplified, no punctuation, no spaces."""
    if lang == "zh":
        import opencc

        text = opencc.OpenCC("t2s").convert(text)
    kept = (ch for ch in unicodedata.normalize("NFC", text) if unicodedata.category(ch)[0] in "LN")
    return "".join(kept).lower()


def cer(hypothesis: str, reference: str, lang: str) -> float:
    """Character error rate of ``hypothesis`` against ``reference`` after folding."""
    import jiwer

    ref, hyp = fold(reference, lang), fold(hypothesis, lang)
    return jiwer.cer(ref, hyp) if ref else float(bool(hyp))


def srt_text(path: Path) -> str:
    return "".join(s.content for s in srt.parse(path.read_text(encoding="utf-8")))


def reference_rows(tsv: Path) -> list[dict[str, str]]:
    with open(tsv, encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f, delimiter="\t"))


def reference_text(tsv: Path, start: float = 0.0, end: float = float("inf")) -> str:
    """The spoken text of the reference sentences lying within [start, end]."""
    return "".join(r["text"] for r in reference_rows(tsv) if float(r["start"]) >= start and float(r["end"]) <= end)
