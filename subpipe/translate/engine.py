"""The translation engine protocol: what every engine answers, and how a track's code calls one.

An engine turns texts in ``src`` into texts in ``tgt``, one for one (``Translator``), or
listens to the media under each sentence (``SpanTranslator``, Whisper's translate task).
``RoutedTranslator`` sends each direction to its own engine (routes.py decides which).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Protocol, Sequence, runtime_checkable

from ..asr.interface import Transcriber
from ..errors import ModelError, PipelineFailed


@dataclass(frozen=True)
class Span:
    """One sentence to translate, with the stretch of media it covers and the characters
    its cues can show in the target (``budget``; None: not known), which an engine that
    condenses, as a subtitler does, aims for."""

    text: str
    start: float
    end: float
    budget: float | None = None


@dataclass(frozen=True)
class Hearing:
    """Whether the film can be heard again, and what an engine that listens needs: the
    recogniser and the film's samples (none when translating a file, with no audio)."""

    can_listen: bool
    engine: Transcriber | None = None
    audio: Any = None  # the film's samples


@dataclass(frozen=True)
class EngineRow:
    """One line of ``subpipe models`` about a translation engine."""

    engine: str
    directions: str
    source: str
    status: str
    size: int
    licence: str


class Translator(Protocol):
    """Anything that turns texts in ``src`` into texts in ``tgt``, one for one."""

    def translate(self, texts: Sequence[str], src: str, tgt: str) -> list[str]: ...


@runtime_checkable
class CandidateTranslator(Protocol):
    """An engine that offers several translations of each sentence, the likeliest first
    (a language model's beam), so the track can take one that fits its cues; with
    ``condense``, translations written shorter, as a subtitler condenses."""

    def candidates_spans(self, spans: Sequence[Span], src: str, tgt: str, *,
                         condense: bool = False) -> list[list[str]]: ...


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
        return run_engine(self.pick(src, tgt), spans, src, tgt)

    def retranslate_spans(self, spans: Sequence[Span], src: str, tgt: str) -> list[str]:
        return run_engine(self.pick(src, tgt), spans, src, tgt, again=True)

    def candidates_spans(self, spans: Sequence[Span], src: str, tgt: str, *,
                         condense: bool = False) -> list[list[str]]:
        return run_candidates(self.pick(src, tgt), spans, src, tgt, condense=condense)

    def engine_for(self, src: str, tgt: str) -> str:
        return engine_name(self.pick(src, tgt), src, tgt)


def run_engine(translator: Any, spans: Sequence[Span], src: str, tgt: str, *, again: bool = False) -> list[str]:
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


def run_candidates(translator: Any, spans: Sequence[Span], src: str, tgt: str, *,
                   condense: bool = False) -> list[list[str]]:
    """Each span's translations, the likeliest first: the engine's beam where it offers
    one (``condense``: its condensed beam), else its one translation (none condensed)."""
    if not spans:
        return []
    if not isinstance(translator, CandidateTranslator):
        return [[] for _ in spans] if condense else [[text] for text in run_engine(translator, spans, src, tgt)]
    out = [[str(text) for text in texts] for texts in translator.candidates_spans(spans, src, tgt, condense=condense)]
    if len(out) != len(spans) or not (condense or all(out)):
        raise PipelineFailed(f"{engine_name(translator, src, tgt)} returned {len(out)} beams for {len(spans)} texts")
    return out
