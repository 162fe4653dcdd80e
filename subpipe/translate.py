"""Translate a subtitle track cue for cue: MarianMT by default, any engine by Protocol.

Cues are merged into sentences so the model sees whole sentences; each translation is
then spread back over the cues it came from, in proportion to their share of the source
text. The target track therefore has the source's cue count and times by construction.
Urdu <-> Mandarin goes through English, and the English middle is returned as well.
"""

from __future__ import annotations

import logging
import re
import warnings
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Mapping, Protocol, Sequence, runtime_checkable

from .cache import cache_root
from .config import OPUS_MT as HUB_IDS
from .config import TranslateSettings
from .errors import ModelError, PipelineFailed
from .glossary import Checked, Glossary, GlossaryMiss, GlossaryUse, Slot, check, fill, protect
from .linebreak import CLOSING, break_lines, measure, units_of
from .online import offline
from .rules import TEXT_RULES, Finding, Rules, judge
from .script import FULL_STOPS, comparable, foreign, normalize, repeated, visible
from .types import Cue, Track

log = logging.getLogger(__name__)

# Multi-target models pick their output language from a token at the start of the input.
TARGET_TOKENS = {"en-zh": ">>cmn_Hans<<"}
PIVOT = "en"
FILLER = "…"
# What a cue shows when nothing of its translation could be kept.
UNTRANSLATED = "[untranslated]"
# A translation that loops or holds another script is decoded again this way.
RETRY_BEAMS = 4
RETRY_NO_REPEAT = 3
_MODEL_FILES = ("config.json", "source.spm", "target.spm", "vocab.json")
_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
# The model's position table bounds a sentence; longer input is cut, not crashed on.
MAX_INPUT_TOKENS = 512
_CLOSERS = "\"'”’」』)]）》"


# --- settings and engines ------------------------------------------------------------

@dataclass(frozen=True)
class Span:
    """One sentence to translate, with the stretch of media it covers."""

    text: str
    start: float
    end: float


class Translator(Protocol):
    """Anything that turns texts in ``src`` into texts in ``tgt``, one for one."""

    def translate(self, texts: Sequence[str], src: str, tgt: str) -> list[str]: ...


@runtime_checkable
class SpanTranslator(Protocol):
    """An engine that may use the media under each sentence (Whisper's translate task)."""

    def translate_spans(self, spans: Sequence[Span], src: str, tgt: str) -> list[str]: ...


def engine_name(translator: object, src: str, tgt: str) -> str:
    """What produced ``src``->``tgt`` text: ``engine_for`` if the engine has it, else its class."""
    named = getattr(translator, "engine_for", None)
    if callable(named):
        return str(named(src, tgt))
    return str(getattr(translator, "engine", type(translator).__name__))


@dataclass(frozen=True)
class RoutedTranslator:
    """Send each direction to its own engine, e.g. ``{"ur-en": whisper, "en-zh": marian}``."""

    routes: Mapping[str, Any]
    default: Any = None

    def pick(self, src: str, tgt: str) -> Any:
        engine = self.routes.get(f"{src}-{tgt}", self.default)
        if engine is None:
            raise ModelError(f"no translation engine for {src}->{tgt} (routes: {', '.join(self.routes) or 'none'})")
        return engine

    def translate(self, texts: Sequence[str], src: str, tgt: str) -> list[str]:
        return list(self.pick(src, tgt).translate(texts, src, tgt))

    def translate_spans(self, spans: Sequence[Span], src: str, tgt: str) -> list[str]:
        return _run_engine(self.pick(src, tgt), spans, src, tgt)

    def retranslate_spans(self, spans: Sequence[Span], src: str, tgt: str) -> list[str]:
        return _run_engine(self.pick(src, tgt), spans, src, tgt, again=True)

    def engine_for(self, src: str, tgt: str) -> str:
        return engine_name(self.pick(src, tgt), src, tgt)


# --- finding and running MarianMT ----------------------------------------------------

def marian_cache_dir(pair: str, cache_dir: Path | None = None) -> Path:
    """Where a downloaded model for ``pair`` belongs: ``<cache>/models/marian/<pair>``."""
    return Path(cache_dir or cache_root()) / "models" / "marian" / pair


def find_marian_model(pair: str, settings: TranslateSettings, cache_dir: Path | None = None) -> str:
    """A folder (or, online only, a hub id) holding the MarianMT model for ``pair``.

    Order: the configured path; ``<cache>/models/marian/<pair>``; the hub id when online.
    """
    configured = settings.models.get(pair, "").strip()
    hub_id = HUB_IDS.get(pair, "")
    if configured and _looks_like_path(configured):
        return _checked_folder(Path(configured).expanduser(), f"[translate.models] {pair!r}")
    hub_id = configured or hub_id
    cached = marian_cache_dir(pair, cache_dir)
    if cached.exists():
        return _checked_folder(cached, "the cache")
    if hub_id and not offline():
        return hub_id
    raise ModelError(_missing_message(pair, hub_id, cached))


def _looks_like_path(value: str) -> bool:
    """A hub id reads ``owner/name``; anything else (or anything that exists) is a path."""
    if Path(value).expanduser().exists() or value.startswith((".", "/", "~")) or "\\" in value:
        return True
    return value.count("/") != 1


def _checked_folder(folder: Path, where: str) -> str:
    if not folder.is_dir():
        raise ModelError(f"MarianMT model folder {folder} (from {where}) does not exist")
    missing = [name for name in _MODEL_FILES if not (folder / name).is_file()]
    if not any((folder / name).is_file() for name in _WEIGHT_FILES):
        missing.append(" or ".join(_WEIGHT_FILES))
    if missing:
        raise ModelError(f"MarianMT model folder {folder} (from {where}) lacks {', '.join(missing)}")
    return str(folder)


def _missing_message(pair: str, hub_id: str, cached: Path) -> str:
    if not hub_id:
        return (f"no MarianMT model for {pair}: no opus-mt model is known for this direction; "
                f"set [translate.models] \"{pair}\" = \"/path/to/model\" in your config")
    return (f"MarianMT model for {pair} not found (looked in {cached}; offline, so {hub_id} was not fetched). "
            f"Download it with: huggingface-cli download {hub_id} --local-dir {cached}  "
            f"or set [translate.models] \"{pair}\" = \"/path/to/model\" in your config")


class MarianTranslator:
    """MarianMT through ``generate``: batched by length, greedy or beam, models loaded on first use.

    ``min_new_tokens`` fixes the output length (benches compare equal work);
    ``target_tokens`` picks the output language of multi-target models.
    """

    def __init__(self, settings: TranslateSettings, cache_dir: Path | None = None, *, min_new_tokens: int = 0,
                 target_tokens: Mapping[str, str] = TARGET_TOKENS):
        self.settings = settings
        self.cache_dir = cache_dir
        self.min_new_tokens = min_new_tokens
        self.target_tokens = target_tokens
        self._loaded: dict[str, tuple[Any, Any, str, str]] = {}

    def engine_for(self, src: str, tgt: str) -> str:
        pair = f"{src}-{tgt}"
        if pair in self._loaded:
            where = self._loaded[pair][3]
            return f"marian:{Path(where).name if Path(where).is_dir() else where}"
        return f"marian:{self.settings.models.get(pair) or HUB_IDS.get(pair, pair)}"

    def load(self, src: str, tgt: str) -> None:
        """Load the model for ``src``->``tgt`` now (so a missing model fails early)."""
        self._model(f"{src}-{tgt}")

    def retranslate(self, texts: Sequence[str], src: str, tgt: str) -> list[str]:
        """``translate`` again, for sentences whose first translation looped or held
        another script: a wider beam that may not repeat any three tokens."""
        return self.translate(texts, src, tgt, again=True)

    def translate(self, texts: Sequence[str], src: str, tgt: str, *, again: bool = False) -> list[str]:
        if not texts:
            return []
        import torch

        pair = f"{src}-{tgt}"
        tokenizer, model, device, _ = self._model(pair)
        prefix = self.target_tokens.get(pair, "")
        inputs = [f"{prefix} {text}" if prefix else text for text in texts]
        # The model's position table bounds both sides.
        limit = min(MAX_INPUT_TOKENS, model.config.max_position_embeddings)
        encoded = tokenizer(inputs, truncation=True, max_length=limit)["input_ids"]
        cut = sum(len(ids) >= limit for ids in encoded)
        if cut:
            log.warning("%d %s sentence(s) longer than %d tokens were cut before translation", cut, pair, limit)
        # Sorting by length keeps padding (wasted work) small inside each batch.
        order = sorted(range(len(encoded)), key=lambda i: len(encoded[i]))
        out: list[str] = [""] * len(texts)
        size = max(1, self.settings.batch_size)
        with torch.inference_mode():
            for first in range(0, len(order), size):
                chunk = order[first:first + size]
                batch = tokenizer.pad({"input_ids": [encoded[i] for i in chunk]}, return_tensors="pt")
                args = self._generate_args(model.config.max_position_embeddings - 1, again)
                generated = model.generate(**{k: v.to(device) for k, v in batch.items()}, **args)
                decoded = tokenizer.batch_decode(generated, skip_special_tokens=True)
                for index, text in zip(chunk, decoded):
                    out[index] = text.strip()
        return out

    def _generate_args(self, longest: int, again: bool = False) -> dict[str, Any]:
        s = self.settings
        most = min(s.max_new_tokens, longest)
        args: dict[str, Any] = {"num_beams": s.num_beams, "do_sample": False, "max_new_tokens": most}
        if again:
            args.update(num_beams=max(RETRY_BEAMS, s.num_beams), no_repeat_ngram_size=RETRY_NO_REPEAT)
        if self.min_new_tokens:
            args["min_new_tokens"] = min(self.min_new_tokens, most)
        return args

    def _model(self, pair: str) -> tuple[Any, Any, str, str]:
        if pair not in self._loaded:
            self._loaded[pair] = self._load(pair)
        return self._loaded[pair]

    def _load(self, pair: str) -> tuple[Any, Any, str, str]:
        where = find_marian_model(pair, self.settings, self.cache_dir)
        from transformers import MarianMTModel, MarianTokenizer
        from transformers.utils import logging as hf_logging

        # transformers draws a loading bar on stderr whatever it is; ours are for terminals only.
        hf_logging.disable_progress_bar()

        local = Path(where).is_dir()
        device = _device(self.settings.device)
        try:
            with warnings.catch_warnings():
                # MarianTokenizer asks for sacremoses; its punctuation normaliser is optional.
                warnings.filterwarnings("ignore", message=".*sacremoses.*")
                tokenizer = MarianTokenizer.from_pretrained(where, local_files_only=local)
            model = MarianMTModel.from_pretrained(where, local_files_only=local).to(device).eval()
        except (OSError, ValueError, KeyError) as exc:
            raise ModelError(f"MarianMT model for {pair} at {where} could not be loaded: {exc}") from exc
        log.info("loaded MarianMT %s from %s on %s", pair, where, device)
        return tokenizer, model, device, where


def _device(asked: str) -> str:
    if asked in ("cuda", "auto") or asked.startswith("cuda:"):
        import torch

        if torch.cuda.is_available():
            return "cuda" if asked == "auto" else asked
        if asked != "auto":
            log.warning("device %s asked but CUDA is not available: translating on cpu", asked)
    return "cpu"


# --- the track side ------------------------------------------------------------------

@dataclass(frozen=True)
class Flag:
    """A target cue kept but worth an editor's look: ``filler`` (no words of its own),
    ``cleaned`` (another script or a loop taken out of its translation)."""

    cue: int  # 0-based
    kind: str
    message: str


@dataclass(frozen=True)
class TranslationResult:
    """The target track (same cue count and times as the source) and what to report.

    ``findings``: the rules the target text breaks (``rules.TEXT_RULES``; the times
    are the source's, judged there).
    """

    track: Track
    source_lang: str
    engine: str
    glossary_uses: tuple[GlossaryUse, ...] = ()
    glossary_misses: tuple[GlossaryMiss, ...] = ()
    findings: tuple[Finding, ...] = ()
    flags: tuple[Flag, ...] = ()


def describe(result: TranslationResult) -> list[str]:
    """One line per thing an editor should look at, in cue order: rule breaks, flags,
    then glossary terms that did not come through."""
    return [f"{result.track.lang}: cue {f.cue}: {f.message}" for f in result.findings] + flag_lines(result)


def flag_lines(result: TranslationResult) -> list[str]:
    """The translation's own flags (not rule breaks): filler cues and lost glossary terms."""
    lang = result.track.lang
    lines = [f"{lang}: cue {flag.cue + 1}: {flag.message}" for flag in result.flags]
    lines += [f"{lang}: glossary term {m.term!r} {m.reason} (cues {_cue_range(m.cues)})"
              for m in result.glossary_misses]
    return lines


FILLER_MESSAGE = "got no words of its own: the translation is shorter than its sentence's cues"


def _cue_range(cues: Sequence[int]) -> str:
    if not cues:
        return "?"
    return f"{cues[0] + 1}" if len(cues) == 1 else f"{cues[0] + 1}-{cues[-1] + 1}"


@dataclass(frozen=True)
class Sentence:
    """Cues ``first`` to ``last`` (inclusive) read as one sentence."""

    first: int
    last: int
    text: str
    start: float
    end: float

    @property
    def cues(self) -> range:
        return range(self.first, self.last + 1)


@dataclass(frozen=True)
class _Translated:
    """One direction's sentence outputs; ``texts`` still hold clean placeholders."""

    src: str
    tgt: str
    texts: tuple[str, ...]
    slots: tuple[tuple[Slot, ...], ...]
    uses: tuple[GlossaryUse, ...]
    misses: tuple[GlossaryMiss, ...]
    engine: str
    flags: tuple[Flag, ...] = ()

    def filled(self) -> list[str]:
        return [fill(text, slots) for text, slots in zip(self.texts, self.slots)]


def cue_text(cue: Cue, lang: str) -> str:
    """A cue's text on one line, without direction marks."""
    sep = "" if lang == "zh" else " "
    return sep.join(part for part in (visible(line).strip() for line in cue.lines) if part)


def sentences(track: Track, options: TranslateSettings = TranslateSettings()) -> list[Sentence]:
    """Merge cues until sentence-final punctuation (or a long pause, or the cue limit)."""
    out: list[Sentence] = []
    first = 0
    for i, cue in enumerate(track.cues):
        is_last = i == len(track.cues) - 1
        gap = track.cues[i + 1].start - cue.end if not is_last else 0.0
        full = i - first + 1 >= max(1, options.max_cues_per_sentence)
        if is_last or full or gap > options.max_sentence_gap or _ends_sentence(cue_text(cue, track.lang)):
            out.append(_sentence(track, first, i))
            first = i + 1
    return out


def _ends_sentence(text: str) -> bool:
    text = text.rstrip().rstrip(_CLOSERS)
    # A trailing ellipsis is the subtitle sign for "the sentence goes on".
    return bool(text) and text[-1] in FULL_STOPS and not text.endswith("...")


def _sentence(track: Track, first: int, last: int) -> Sentence:
    sep = "" if track.lang == "zh" else " "
    cues = track.cues[first:last + 1]
    text = sep.join(t for t in (cue_text(c, track.lang) for c in cues) if t)
    return Sentence(first, last, text, cues[0].start, cues[-1].end)


def translate_track(
    track: Track,
    tgt: str,
    translator: Translator,
    rules_for_tgt: Rules,
    glossary: Glossary | None = None,
    *,
    options: TranslateSettings = TranslateSettings(),
) -> TranslationResult:
    """``track`` in ``tgt``, cue for cue: same count, same times, no empty cue."""
    plan = sentences(track, options)
    done = _translate(plan, [s.text for s in plan], track.lang, tgt, translator, glossary)
    return _result(track, plan, done, tgt, rules_for_tgt)


def translate_tracks(
    track: Track,
    targets: Sequence[str],
    translator: Translator,
    rules: Mapping[str, Rules],
    glossary: Glossary | None = None,
    *,
    options: TranslateSettings = TranslateSettings(),
) -> dict[str, TranslationResult]:
    """``track`` in every language of ``targets``; Urdu <-> Mandarin through English.

    A pivot's English track is in the result even when English was not asked for.
    """
    plan = sentences(track, options)
    texts = [s.text for s in plan]
    done: dict[str, _Translated] = {}
    for tgt in targets:
        if tgt == track.lang or tgt in done:
            continue
        if track.lang != PIVOT and tgt != PIVOT:
            if PIVOT not in done:
                done[PIVOT] = _translate(plan, texts, track.lang, PIVOT, translator, glossary)
            middle = done[PIVOT]
            done[tgt] = _chain(middle, _translate(plan, middle.filled(), PIVOT, tgt, translator, glossary))
        else:
            done[tgt] = _translate(plan, texts, track.lang, tgt, translator, glossary)
    return {lang: _result(track, plan, d, lang, rules[lang]) for lang, d in done.items()}


def _chain(first: _Translated, second: _Translated) -> _Translated:
    # The middle's glossary misses and flags matter to the end track too: it was made from them.
    return replace(second, src=first.src, misses=first.misses + second.misses,
                   engine=f"{first.engine} + {second.engine}", flags=first.flags + second.flags)


def _translate(
    plan: Sequence[Sentence],
    texts: Sequence[str],
    src: str,
    tgt: str,
    translator: Translator,
    glossary: Glossary | None,
) -> _Translated:
    protected = [protect(text, src, tgt, glossary) for text in texts]
    todo = [i for i, p in enumerate(protected) if p.text.strip()]
    spans = [Span(protected[i].text, plan[i].start, plan[i].end) for i in todo]
    raw = [""] * len(texts)
    for i, text in zip(todo, _run_engine(translator, spans, src, tgt)):
        # Models write Traditional characters and half-width CJK punctuation now and then.
        raw[i] = normalize(text, tgt).strip()
    raw, flags = _sane(raw, [spans[todo.index(i)] if i in todo else None for i in range(len(raw))], plan,
                       src, tgt, translator)
    checked = [check(text, p.slots) for text, p in zip(raw, protected)]
    return _Translated(
        src, tgt,
        tuple(c.text for c in checked),
        tuple(p.slots for p in protected),
        _with_cues(plan, checked, "uses"),
        _with_cues(plan, checked, "misses"),
        engine_name(translator, src, tgt),
        tuple(flags),
    )


def _sane(raw: list[str], spans: Sequence[Span | None], plan: Sequence[Sentence], src: str, tgt: str,
          translator: Translator) -> tuple[list[str], list[Flag]]:
    """Translations fit for a ``tgt`` track: no other script, no loop.

    A sentence that fails is decoded again (a wider beam that may not repeat itself,
    where the engine can); if it still fails, what is wrong is taken out (a visible
    placeholder where nothing is left) and its cues are flagged: never shipped as it came.
    """
    bad = [i for i, text in enumerate(raw) if flaws(text, tgt)]
    if not bad:
        return raw, []
    again = _run_engine(translator, [spans[i] for i in bad], src, tgt, again=True)
    out, flags = list(raw), []
    for i, text in zip(bad, again):
        text = normalize(text, tgt).strip()
        if not flaws(text, tgt):
            out[i] = text
            continue
        found = flaws(text, tgt)
        out[i] = cleaned(text, tgt)
        message = f"the translation {' and '.join(found)}, decoded again and still so: cut to {out[i]!r}"
        flags += [Flag(cue, "cleaned", message) for cue in plan[i].cues]
    return out, flags


def flaws(text: str, lang: str) -> list[str]:
    """What makes ``text`` unfit for a ``lang`` track: letters of another script, a loop."""
    found = []
    wrong = foreign(text, lang)
    if wrong:
        found.append(f"held {', '.join(repr(w) for w in wrong[:3])} (not {lang} script)")
    if repeated([comparable(u) for u in _units(text, lang)]):
        found.append("repeated a word or phrase in a loop")
    return found


def cleaned(text: str, lang: str) -> str:
    """``text`` without other scripts' letters and without the repeats of a loop."""
    for run in foreign(text, lang):
        text = text.replace(run, " ")
    units = _units(text, lang)
    drop = repeated([comparable(u) for u in units])
    kept = "".join(u for k, u in enumerate(units) if k not in drop)
    kept = re.sub(r"\s+", " ", kept).strip()
    return kept if any(ch.isalnum() for ch in kept) else UNTRANSLATED


def _run_engine(translator: Any, spans: Sequence[Span], src: str, tgt: str, *, again: bool = False) -> list[str]:
    """The engine's texts for ``spans``; ``again``: its second try, where it has one."""
    if not spans:
        return []
    if isinstance(translator, SpanTranslator):
        method = getattr(translator, "retranslate_spans", None) if again else None
        out = list((method or translator.translate_spans)(spans, src, tgt))
    else:
        method = getattr(translator, "retranslate", None) if again else None
        out = list((method or translator.translate)([s.text for s in spans], src, tgt))
    if len(out) != len(spans):
        raise PipelineFailed(f"{engine_name(translator, src, tgt)} returned {len(out)} texts for {len(spans)}")
    return [str(text) for text in out]


def _with_cues(plan: Sequence[Sentence], checked: Sequence[Checked], what: str) -> tuple:
    return tuple(replace(item, cues=tuple(s.cues)) for s, c in zip(plan, checked) for item in getattr(c, what))


def _result(track: Track, plan: Sequence[Sentence], done: _Translated, tgt: str, rules: Rules) -> TranslationResult:
    cues: list[Cue] = []
    flags: list[Flag] = list(done.flags)
    for sentence, text, slots in zip(plan, done.texts, done.slots):
        source = track.cues[sentence.first:sentence.last + 1]
        shares = [len(re.sub(r"\s", "", cue_text(c, track.lang))) for c in source]
        parts = distribute(text, shares, tgt, _measure(slots),
                           lambda part: measure(fill(part, slots), tgt, rules).lines <= rules.max_lines)
        for offset, (cue, part) in enumerate(zip(source, parts)):
            if part == FILLER:
                flags.append(Flag(sentence.first + offset, "filler", FILLER_MESSAGE))
            lines = break_lines(fill(part, slots), tgt, rules) or [FILLER]
            cues.append(Cue(cue.start, cue.end, tuple(lines)))
    out = Track(tgt, tuple(cues))
    _assert_aligned(track, out)
    findings = tuple(f for f in judge(out.cues, rules) if f.rule in TEXT_RULES)
    flags.sort(key=lambda f: f.cue)
    return TranslationResult(out, done.src, done.engine, done.uses, done.misses, findings, tuple(flags))


def _measure(slots: Sequence[Slot]) -> Callable[[str], float]:
    def measure(unit: str) -> float:
        return len(visible(fill(unit, slots)).strip())

    return measure


def distribute(
    text: str, shares: Sequence[float], lang: str, measure: Callable[[str], float] | None = None,
    fits: Callable[[str], bool] | None = None,
) -> list[str]:
    """Split ``text`` into ``len(shares)`` non-empty parts sized like ``shares``.

    Cuts fall between words (en, ur) or between jieba words and then characters (zh);
    a part that gets no text at all holds ``FILLER``. With ``fits`` (does a part fit
    its cue's lines?), cuts move off the shares when that makes every part fit.
    """
    n = len(shares)
    if n == 0:
        return []
    units = _units(text, lang)
    if lang == "zh" and len(units) < n:
        units = _chars(text)
    sizes = [(measure or _length)(u) for u in units]
    cuts = _cuts(sizes, shares)
    if fits is not None and not all(fits("".join(units[a:b])) for a, b in zip(cuts, cuts[1:])):
        cuts = _fitting_cuts(units, sizes, shares, fits) or cuts
    parts = ["".join(units[a:b]).strip() for a, b in zip(cuts, cuts[1:])]
    return [part if visible(part).strip() else FILLER for part in parts]


def _fitting_cuts(units: Sequence[str], sizes: Sequence[float], shares: Sequence[float],
                  fits: Callable[[str], bool]) -> list[int] | None:
    """Cuts where every part fits and is not empty, closest to the shares; None if there are none."""
    n, m = len(shares), len(units)
    if m < n:
        return None
    weights = [max(0.0, float(s)) for s in shares]
    weights = weights if sum(weights) > 0 else [1.0] * n
    cum = [0.0]
    for size in sizes:
        cum.append(cum[-1] + size)
    goals = [sum(weights[:k]) / sum(weights) * cum[-1] for k in range(n + 1)]
    inf = float("inf")
    # best[k][c]: the least distance from the shares of k parts that end at unit c.
    best = [[inf] * (m + 1) for _ in range(n + 1)]
    back = [[0] * (m + 1) for _ in range(n + 1)]
    best[0][0] = 0.0
    for k in range(1, n + 1):
        for c in range(k, m - (n - k) + 1):
            for b in range(k - 1, c):
                if best[k - 1][b] < inf and fits("".join(units[b:c])):
                    cost = best[k - 1][b] + abs(cum[c] - goals[k])
                    if cost < best[k][c]:
                        best[k][c], back[k][c] = cost, b
    if best[n][m] == inf:
        return None
    cuts = [m]
    for k in range(n, 0, -1):
        cuts.append(back[k][cuts[-1]])
    return cuts[::-1]


def _length(unit: str) -> float:
    return len(visible(unit).strip())


def _units(text: str, lang: str) -> list[str]:
    """Unbreakable pieces, each with the space that follows it (so joining restores text)."""
    text = re.sub(r"\s+", " ", text).strip()
    out: list[str] = []
    pos = 0
    for unit in units_of(text, lang):
        found = text.find(unit, pos)
        if found < 0:  # the breaker normalised something: fall back to spaces
            return re.findall(r"\S+\s*", text)
        if out:
            out[-1] += text[pos:found]
        out.append(unit)
        pos = found + len(unit)
    if out:
        out[-1] += text[pos:]
    return out


def _chars(text: str) -> list[str]:
    """Characters, with punctuation kept on the character before it."""
    out: list[str] = []
    for ch in re.sub(r"\s+", " ", text).strip():
        if out and (ch in CLOSING or ch == " "):
            out[-1] += ch
        else:
            out.append(ch)
    return out


def _cuts(sizes: Sequence[float], shares: Sequence[float]) -> list[int]:
    """``len(shares) + 1`` cut points over ``sizes``: every part gets a unit while units last."""
    n, m = len(shares), len(sizes)
    weights = [max(0.0, float(s)) for s in shares]
    if sum(weights) <= 0:
        weights = [1.0] * n
    total_w, total = sum(weights), sum(sizes)
    cum = [0.0]
    for size in sizes:
        cum.append(cum[-1] + size)
    cuts, goal = [0], 0.0
    for k in range(1, n):
        goal += weights[k - 1] / total_w * total
        low = min(cuts[-1] + 1, m)
        high = max(low, m - (n - k)) if m >= n else low
        best = min(range(low, high + 1), key=lambda c: (abs(cum[c] - goal), c))
        cuts.append(best)
    cuts.append(m)
    return cuts


def _assert_aligned(source: Track, target: Track) -> None:
    # Alignment is the contract editors rely on; fail loudly rather than write a shifted track.
    same = len(source.cues) == len(target.cues) and all(
        (a.start, a.end) == (b.start, b.end) and any(visible(l).strip() for l in b.lines)
        for a, b in zip(source.cues, target.cues)
    )
    if not same:
        raise PipelineFailed(f"translated {target.lang} track fell out of step with the {source.lang} source")
