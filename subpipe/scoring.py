"""How close recognised text is to a reference: the measures the benches and the accuracy
tests share (character error rate, agreement of word timing between backends), and the
first of what an evaluation of the product's tracks will report. It needs nothing but
the standard library."""

from __future__ import annotations

import difflib
import unicodedata
from typing import Sequence

from .script import to_simplified
from .types import Word

TIMING_TOLERANCE = 0.2  # seconds between two backends' starts of the same word


def fold(text: str, lang: str) -> str:
    """Text reduced for a character error rate: Simplified, no punctuation, no spaces."""
    if lang == "zh":
        text = to_simplified(text)
    kept = (ch for ch in unicodedata.normalize("NFC", text) if unicodedata.category(ch)[0] in "LN")
    return "".join(kept).lower()


def cer(hypothesis: str, reference: str, lang: str) -> float:
    """Character error rate of ``hypothesis`` against ``reference`` after folding: the
    edit distance between them over the reference's length."""
    ref, hyp = fold(reference, lang), fold(hypothesis, lang)
    return edit_distance(ref, hyp) / len(ref) if ref else float(bool(hyp))


def edit_distance(a: Sequence, b: Sequence) -> int:
    """Levenshtein distance: the fewest insertions, deletions and substitutions from ``a`` to ``b``."""
    if len(a) < len(b):
        a, b = b, a
    row = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        diagonal, row[0] = row[0], i
        for j, y in enumerate(b, 1):
            diagonal, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, diagonal + (x != y))
    return row[-1]


def word_start_agreement(reference: Sequence[Word], other: Sequence[Word], lang: str,
                         tolerance: float = TIMING_TOLERANCE) -> tuple[float, int]:
    """Share of ``reference`` word starts that ``other`` places within ``tolerance`` s, and how many were compared.

    Words are matched through the aligned character sequences, so different word
    splits ("完全" against "完", "全") still compare where each word begins.
    """
    a, a_times, a_starts = _char_times(reference, lang)
    b, b_times, _ = _char_times(other, lang)
    compared = within = 0
    matcher = difflib.SequenceMatcher(None, a, b, autojunk=False)
    for block in matcher.get_matching_blocks():
        for k in range(block.size):
            i, j = block.a + k, block.b + k
            if a_starts[i]:
                compared += 1
                within += abs(a_times[i] - b_times[j]) <= tolerance
    return (within / compared if compared else 0.0), compared


def _char_times(words: Sequence[Word], lang: str) -> tuple[str, list[float], list[bool]]:
    """Folded characters of ``words``, each with a time (spread over its word) and a word-start flag."""
    chars, times, starts = [], [], []
    for w in words:
        folded = fold(w.text, lang)
        for k, ch in enumerate(folded):
            chars.append(ch)
            times.append(w.start + (w.end - w.start) * k / len(folded))
            starts.append(k == 0)
    return "".join(chars), times, starts
