"""How close recognised or translated text is to a reference: the measures the benches,
the accuracy tests and ``subpipe eval`` share (character and word error rates, chrF and
BLEU, speech recall and cue precision against a reference's times, agreement of word
timing between backends). Only chrF and BLEU need a library (sacrebleu), imported when
they are asked for."""

from __future__ import annotations

import difflib
import unicodedata
from typing import Sequence

from .script import normalize, to_simplified
from .types import Word

TIMING_TOLERANCE = 0.2  # seconds between two backends' starts of the same word
# Urdu letters written more than one way (Arabic heh, yeh, kaf; heh with hamza) folded to
# Urdu's own, beyond what ``script.normalize`` already folds for display.
_URDU_FOLD = str.maketrans({"\u0647": "\u06c1", "\u06c0": "\u06c2", "\u0623": "\u0627", "\u0625": "\u0627"})


def fold(text: str, lang: str) -> str:
    """Text reduced for a character error rate: NFKC, Simplified, no punctuation,
    symbols or spaces, lower case (Urdu: its letters folded, vowel marks dropped)."""
    return "".join(_folded_words(text, lang))


def words(text: str, lang: str) -> list[str]:
    """The words of ``text`` for a word error rate, folded as ``fold`` folds characters."""
    return [w for w in _folded_words(text, lang) if w]


def _folded_words(text: str, lang: str) -> list[str]:
    text = unicodedata.normalize("NFKC", text)
    if lang == "zh":
        text = to_simplified(text)
    elif lang == "ur":
        text = normalize(text, "ur").translate(_URDU_FOLD)
    # Letters and digits are kept; a mark (Urdu's vowel signs, shadda) is dropped, any
    # other character (punctuation, symbols, spaces) ends a word.
    out, current = [], []
    for ch in text:
        kind = unicodedata.category(ch)[0]
        if kind in "LN":
            current.append(ch)
        elif kind != "M":
            out.append("".join(current).lower())
            current = []
    out.append("".join(current).lower())
    return out


def cer(hypothesis: str, reference: str, lang: str) -> float:
    """Character error rate of ``hypothesis`` against ``reference`` after folding: the
    edit distance between them over the reference's length."""
    ref, hyp = fold(reference, lang), fold(hypothesis, lang)
    return edit_distance(ref, hyp) / len(ref) if ref else float(bool(hyp))


def wer(hypothesis: str, reference: str, lang: str) -> float:
    """Word error rate: the word edit distance over the reference's word count."""
    ref, hyp = words(reference, lang), words(hypothesis, lang)
    return edit_distance(ref, hyp) / len(ref) if ref else float(bool(hyp))


def chrf(hypotheses: Sequence[str], references: Sequence[str], lang: str) -> float:
    """Corpus chrF (0-100, sacrebleu's chrF2) of segment-aligned texts."""
    from sacrebleu.metrics import CHRF

    hyps, refs = _for_sacrebleu(hypotheses, references, lang)
    return float(CHRF().corpus_score(hyps, [refs]).score)


def bleu(hypotheses: Sequence[str], references: Sequence[str], lang: str) -> float:
    """Corpus BLEU (0-100) of segment-aligned texts; Mandarin with sacrebleu's zh tokenizer."""
    from sacrebleu.metrics import BLEU

    hyps, refs = _for_sacrebleu(hypotheses, references, lang)
    metric = BLEU(tokenize="zh" if lang == "zh" else "13a", effective_order=True)
    return float(metric.corpus_score(hyps, [refs]).score)


def _for_sacrebleu(hypotheses: Sequence[str], references: Sequence[str], lang: str) -> tuple[list[str], list[str]]:
    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} hypotheses for {len(references)} references")

    def prepared(text: str) -> str:
        text = unicodedata.normalize("NFKC", " ".join(text.split()))
        return to_simplified(text) if lang == "zh" else text

    return [prepared(h) for h in hypotheses], [prepared(r) for r in references]


Span = tuple[float, float]


def overlap(a: Span, b: Span) -> float:
    """Seconds that two stretches of time share."""
    return max(0.0, min(a[1], b[1]) - max(a[0], b[0]))


def union(spans: Sequence[Span]) -> list[Span]:
    """The stretches covered by any of ``spans``, merged and in order."""
    out: list[Span] = []
    for start, end in sorted(s for s in spans if s[1] > s[0]):
        if out and start <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], end))
        else:
            out.append((start, end))
    return out


def speech_recall(cues: Sequence[Span], speech: Sequence[Span]) -> float:
    """Share of the reference's speech time that some cue covers (1.0 when there is no speech)."""
    said, shown = union(speech), union(cues)
    total = sum(e - s for s, e in said)
    if total <= 0:
        return 1.0
    return sum(overlap(a, b) for a in said for b in shown) / total


def cue_precision(cues: Sequence[Span], speech: Sequence[Span]) -> float:
    """Share of cues that overlap the reference's speech at all (a cue over music or
    silence holds invented text); 1.0 when there are no cues."""
    said = union(speech)
    if not cues:
        return 1.0
    return sum(any(overlap(c, s) > 0 for s in said) for c in cues) / len(cues)


def match_by_time(cues: Sequence[Span], segments: Sequence[Span]) -> list[list[int]]:
    """For each reference segment, the cues (indices, in order) that overlap it more than
    any other segment; a cue that overlaps none belongs to no segment."""
    out: list[list[int]] = [[] for _ in segments]
    for i, cue in enumerate(cues):
        shares = [overlap(cue, seg) for seg in segments]
        if shares and max(shares) > 0:
            out[shares.index(max(shares))].append(i)
    return out


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
