"""``subpipe eval``: a track against a reference, for QA teams and the benches.

The hypothesis is any track subpipe reads (SRT, WebVTT, ASS, TTML); the reference an SRT
(or another format) or a TSV with ``start``, ``end`` and ``text`` columns, or, as the
dev references have, one column per language (``eng``, ``urd``, ``cmn``), taken by the
hypothesis' language. The measures live in ``scoring``; the rules are judged by
``rules``, the one judge.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Mapping, Sequence

from . import scoring
from .check import guess_lang
from .errors import InputError, UsageError
from .formats import format_of
from .formats.base import Unreadable
from .formats.names import track_code
from .rules import Rules, judge, rule_breaks
from .types import LANGUAGES, Track

# A TSV reference's column for each language (ISO 639-3, as the dev references name them).
LANG_COLUMNS = {"en": "eng", "ur": "urd", "zh": "cmn"}


@dataclass(frozen=True)
class Segment:
    """One reference sentence (or cue) with its true times."""

    start: float
    end: float
    text: str


@dataclass(frozen=True)
class Evaluation:
    """What ``eval`` reports. Error rates and speech shares are fractions, chrF and BLEU
    0-100; ``cer`` is set for every language, ``wer`` for Urdu and English only."""

    hypothesis: str
    reference: str
    lang: str
    column: str
    cues: int
    segments: int
    cer: float
    wer: float | None
    chrf: float
    bleu: float
    speech_recall: float
    cue_precision: float
    unmatched_cues: int
    rule_breaks: int
    cues_with_breaks: int

    @property
    def rule_compliance(self) -> float:
        return 1.0 - self.cues_with_breaks / self.cues if self.cues else 1.0


def evaluate(hypothesis: Track, reference: Sequence[Segment], rules: Rules, *,
             hypothesis_name: str = "", reference_name: str = "", column: str = "") -> Evaluation:
    """Score ``hypothesis`` against ``reference`` (segments in the hypothesis' language)."""
    lang = hypothesis.lang
    hyp_text = _joined([c.text for c in hypothesis.cues], lang)
    ref_text = _joined([s.text for s in reference], lang)
    cue_spans = [(c.start, c.end) for c in hypothesis.cues]
    ref_spans = [(s.start, s.end) for s in reference]
    matched = scoring.match_by_time(cue_spans, ref_spans)
    per_segment = [_joined([hypothesis.cues[i].text for i in cues], lang) for cues in matched]
    breaks = rule_breaks(judge(hypothesis.cues, rules))
    return Evaluation(
        hypothesis=hypothesis_name, reference=reference_name, lang=lang, column=column,
        cues=len(hypothesis.cues), segments=len(reference),
        cer=scoring.cer(hyp_text, ref_text, lang),
        wer=None if lang == "zh" else scoring.wer(hyp_text, ref_text, lang),
        chrf=scoring.chrf(per_segment, [s.text for s in reference], lang) if reference else 0.0,
        bleu=scoring.bleu(per_segment, [s.text for s in reference], lang) if reference else 0.0,
        speech_recall=scoring.speech_recall(cue_spans, ref_spans),
        cue_precision=scoring.cue_precision(cue_spans, ref_spans),
        unmatched_cues=len(cue_spans) - sum(len(m) for m in matched),
        rule_breaks=len(breaks),
        cues_with_breaks=len({f.cue for f in breaks if f.cue is not None}),
    )


def evaluate_files(hypothesis: Path, reference: Path, rules: Mapping[str, Rules],
                   lang: str | None = None) -> Evaluation:
    """``evaluate`` on files: the hypothesis' language from ``lang``, else its name
    (``film.zh.srt``), else its script; the reference read in that language."""
    track = read_hypothesis(hypothesis, lang)
    if track.lang not in rules:
        raise UsageError(f"no subtitle rules for language '{track.lang}'")
    segments, column = read_reference(reference, track.lang)
    return evaluate(track, segments, rules[track.lang], hypothesis_name=str(hypothesis),
                    reference_name=str(reference), column=column)


def read_hypothesis(path: Path, lang: str | None = None) -> Track:
    """A single-language track from any format subpipe reads."""
    data = _read(path)
    fmt = format_of(data)
    try:
        parsed = fmt.inspect(data)
    except Unreadable as exc:
        raise InputError(f"cannot read {path} as subtitles: {exc.reason}") from None
    if lang is None:
        named = track_code(path.name)
        lang = named if named in LANGUAGES else guess_lang(c.lines for c in parsed.cues)
    if lang not in LANGUAGES:
        raise UsageError(f"eval scores one language at a time: '{lang}' is not one of {', '.join(LANGUAGES)}")
    return fmt.read(path, lang)


def read_reference(path: Path, lang: str) -> tuple[list[Segment], str]:
    """The reference's segments in ``lang`` and the column they came from (``text`` for
    a subtitle file)."""
    if path.suffix.lower() in (".tsv", ".tab"):
        return _read_tsv(path, lang)
    data = _read(path)
    try:
        track = format_of(data).read(path, lang)
    except Unreadable as exc:
        raise InputError(f"cannot read reference {path}: {exc.reason}") from None
    sep = "" if lang == "zh" else " "
    return [Segment(c.start, c.end, sep.join(c.lines)) for c in track.cues], "text"


def _read_tsv(path: Path, lang: str) -> tuple[list[Segment], str]:
    text = _read(path).decode("utf-8-sig", errors="strict")
    rows = list(csv.DictReader(io.StringIO(text), delimiter="\t", quoting=csv.QUOTE_NONE))
    header = set(rows[0]) if rows else set()
    column = LANG_COLUMNS[lang] if LANG_COLUMNS[lang] in header else "text"
    missing = [c for c in ("start", "end", column) if c not in header]
    if missing:
        wanted = f"'{LANG_COLUMNS[lang]}' or 'text'" if column == "text" else repr(column)
        raise InputError(f"reference {path} lacks the column(s) {', '.join(missing)} "
                         f"(a TSV needs start, end and {wanted})")
    out = []
    for number, row in enumerate(rows, start=2):
        try:
            start, end = float(row["start"]), float(row["end"])
        except (TypeError, ValueError):
            raise InputError(f"reference {path} line {number}: start and end must be seconds") from None
        out.append(Segment(start, end, (row[column] or "").strip()))
    return out, column


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from None


def _joined(texts: Sequence[str], lang: str) -> str:
    sep = "" if lang == "zh" else " "
    return sep.join(" ".join(t.split()) if lang != "zh" else "".join(t.split()) for t in texts)


def format_json(result: Evaluation) -> str:
    data = asdict(result)
    data["rule_compliance"] = result.rule_compliance
    return json.dumps(data, ensure_ascii=False, indent=2) + "\n"


def format_text(result: Evaluation) -> str:
    rate = f"CER {result.cer:.3f}" + (f"  WER {result.wer:.3f}" if result.wer is not None else "")
    return "\n".join([
        f"{result.hypothesis} ({result.lang}, {result.cues} cues) against {result.reference} "
        f"({result.column}, {result.segments} segments)",
        f"  {rate}",
        f"  chrF {result.chrf:.1f}  BLEU {result.bleu:.1f}  (cues matched to segments by time;"
        f" {result.unmatched_cues} cue(s) overlap none)",
        f"  speech recall {result.speech_recall:.3f}  cue precision {result.cue_precision:.3f}",
        f"  rules: {result.rule_breaks} break(s) in {result.cues_with_breaks} of {result.cues} cues "
        f"(compliance {result.rule_compliance:.3f})",
    ]) + "\n"
