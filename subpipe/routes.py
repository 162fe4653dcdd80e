"""Which tracks a run makes, and which engine translates each direction.

Urdu <-> Mandarin goes through English, so the English pivot is made (and written)
whenever it is computed. Each direction goes to MarianMT when its model is found, else
to Whisper's own speech translation for X->English when the audio can be heard again,
else the run stops before any work with what is missing and how to get it.
"""

from __future__ import annotations

from typing import Sequence

from .asr import Transcriber
from .asr.speech_translation import SpeechTranslation
from .bilingual import default_pairs
from .config import Config
from .errors import ModelError, UsageError
from .translate import PIVOT, MarianTranslator, RoutedTranslator, find_marian_model
from .types import LANGUAGES


def check_targets(targets: Sequence[str]) -> None:
    unknown = [t for t in targets if t not in LANGUAGES]
    if unknown:
        raise UsageError(f"unknown target language '{unknown[0]}': use {', '.join(LANGUAGES)}")


def target_langs(src: str, targets: Sequence[str]) -> tuple[str, ...]:
    """The targets in order, with the English pivot added whenever it will be computed."""
    wanted = [t for t in dict.fromkeys(targets) if t != src]
    if src != PIVOT and any(t != PIVOT for t in wanted) and PIVOT not in wanted:
        wanted.insert(0, PIVOT)
    return tuple(wanted)


def directions(src: str, targets: Sequence[str]) -> list[str]:
    """Every ``src-tgt`` a model must translate, pivot legs included."""
    pairs = []
    for tgt in target_langs(src, targets):
        if src != PIVOT and tgt != PIVOT:
            pairs += [f"{src}-{PIVOT}", f"{PIVOT}-{tgt}"]
        else:
            pairs.append(f"{src}-{tgt}")
    return list(dict.fromkeys(pairs))


def bilingual_pairs(src: str, targets: Sequence[str], config: Config) -> tuple[str, ...]:
    """The bilingual files of a run: each asked-for target with the source, as the config narrows them."""
    wanted = [t for t in dict.fromkeys(targets) if t != src]
    pairs = default_pairs(src, wanted)
    if config.bilingual.pairs:
        pairs = tuple(p for p in pairs if p in config.bilingual.pairs)
    return pairs


def check_models(src: str, targets: Sequence[str], config: Config, can_listen: bool = True) -> None:
    """Fail before any work when a direction has no model and no fallback."""
    for pair in directions(src, targets):
        _engine_kind(pair, config, can_listen)


def make_translator(src: str, targets: Sequence[str], config: Config, engine: Transcriber | None,
                    audio) -> tuple[RoutedTranslator, list[str]]:  # noqa: ANN001 - the film's samples
    """MarianMT per direction; X->en from Whisper's speech translation of ``audio`` when Marian is absent."""
    marian = MarianTranslator(config.translate)
    routes, notices = {}, []
    for pair in directions(src, targets):
        if _engine_kind(pair, config, engine is not None) == "marian":
            routes[pair] = marian
            continue
        routes[pair] = fallback = SpeechTranslation(engine, audio, config.asr.model)
        notices.append(
            f"no MarianMT model for {pair}: the English track was made by Whisper's speech "
            f"translation ({fallback.engine_for(*pair.split('-'))}), not by MarianMT"
        )
    return RoutedTranslator(routes), notices


def _engine_kind(pair: str, config: Config, can_listen: bool) -> str:
    """``marian`` when its model is found; ``whisper`` for X->en when the audio can be heard
    again; else the ModelError that says what is missing and how to get it."""
    try:
        find_marian_model(pair, config.translate)
        return "marian"
    except ModelError:
        if can_listen and config.translate.whisper_fallback and pair.endswith(f"-{PIVOT}"):
            return "whisper"
        raise
