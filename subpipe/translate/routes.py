"""Which tracks a run makes, and which engine translates each direction.

Urdu <-> Mandarin goes through English, so the English pivot is made (and written)
whenever it is computed. Each direction goes to the first engine of ``ENGINES`` that
can serve it: MarianMT when its model is found, else the small language model (Gemma 3
270M) for the directions it is trusted with, else Whisper's own speech translation for
X->English when the audio can be heard again; when none can, the run stops before any
work with what is missing and how to get it (the first engine's word on it). Each
choice is logged, and the run's manifest records the engine of every direction.

A new engine is a module with ``serves`` and ``make`` and one line in ``ENGINES``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from ..bilingual import default_pairs
from ..config import Config
from ..errors import ModelError, UsageError
from ..types import LANGUAGES
from . import gemma, marian, whisper
from .engine import EngineRow, Hearing, RoutedTranslator
from .track import PIVOT

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EngineKind:
    """One translation engine as routing sees it.

    ``serves(pair, config, hearing)`` returns quietly when the engine can translate
    ``pair`` here and raises ModelError (saying what is missing) when it can't;
    ``make(config, hearing)`` builds the engine, once per run, for every direction it serves;
    ``notice(pair, engine)``, when given, is a warning the run prints about the choice;
    ``inventory(config)`` says what ``subpipe models`` lists for it.
    """

    name: str
    serves: Callable[[str, Config, Hearing], None]
    make: Callable[[Config, Hearing], Any]
    notice: Callable[[str, Any], str] | None = None
    inventory: Callable[[Config], list[EngineRow]] | None = None


ENGINES: tuple[EngineKind, ...] = (
    EngineKind("marian", marian.serves, marian.make, inventory=marian.inventory),
    EngineKind("gemma", gemma.serves, gemma.make, gemma.notice, gemma.inventory),
    EngineKind("whisper", whisper.serves, whisper.make, whisper.notice, whisper.inventory),
)


def engine_inventory(config: Config) -> list[EngineRow]:
    """Every translation engine, in routing's order: its directions, source, state, size, licence."""
    return [row for kind in ENGINES if kind.inventory is not None for row in kind.inventory(config)]


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
    """Fail before any work when a direction has no engine that can serve it."""
    hearing = Hearing(can_listen)
    for pair in directions(src, targets):
        route(pair, config, hearing)


def route(pair: str, config: Config, hearing: Hearing) -> EngineKind:
    """The first engine that serves ``pair``; else the first engine's ModelError."""
    first: ModelError | None = None
    for kind in ENGINES:
        try:
            kind.serves(pair, config, hearing)
            return kind
        except ModelError as exc:
            first = first or exc
    assert first is not None
    raise first


def make_translator(src: str, targets: Sequence[str], config: Config, hearing: Hearing
                    ) -> tuple[RoutedTranslator, list[str]]:
    """Every direction's engine (each engine made once), and the notices about the choices."""
    made: dict[str, Any] = {}
    routes, notices = {}, []
    for pair in directions(src, targets):
        kind = route(pair, config, hearing)
        if kind.name not in made:
            made[kind.name] = kind.make(config, hearing)
        routes[pair] = made[kind.name]
        log.info("translating %s with %s", pair, kind.name)
        if kind.notice is not None:
            notices.append(kind.notice(pair, routes[pair]))
    return RoutedTranslator(routes), notices
