"""Which of the project's languages is spoken: decided from several stretches of speech
across the film, and only when one language is clearly ahead.

Whisper's own language identification is trusted when it is sure (Mandarin on every
dev film: 0.99 per window). When it is not (Whisper base hears synthetic Urdu as
Hungarian or Latin, and among the project's languages gives English 0.05-0.18 against
Urdu's 0.00-0.01), each stretch is decoded once per candidate language, forced, and
votes for the language whose decoding reads most surely as speech: text at a speaking
rate, no loop, the highest mean word probability (dev films, right language against
the best wrong one that did not loop: synthetic Urdu 0.44-0.62 against 0.26-0.51,
Mandarin 0.87-0.89 against 0.35-0.52). When neither test names one language clearly,
the run stops and asks for ``--lang`` rather than write a track in a language nobody
spoke.
"""

from __future__ import annotations

import logging
import unicodedata
from dataclasses import dataclass, replace
from typing import Sequence

import numpy as np

from .asr import Chunk, DecodeOptions, Transcriber
from .asr.loops import looping
from .asr.windows import plan_windows
from .errors import UsageError
from .media import SAMPLE_RATE

log = logging.getLogger(__name__)

# Stretches of speech heard, spread over the film, each at most this long; shorter
# ones than SAMPLE_LEAST are used only when the film has no longer ones.
SAMPLES = 5
SAMPLE_SECONDS = 15.0
SAMPLE_LEAST = 5.0
# Whisper's identification decides alone when the best candidate averages this much
# probability over the stretches and this many times the runner-up's (dev films:
# Mandarin 0.99 against at most 0.002; synthetic Urdu's best candidate, English, 0.05-0.18).
SURE = 0.5
SURE_RATIO = 3.0
# A forced decoding reads as speech when it holds at least this many letters a second
# (dev films: Mandarin 3.7-5.4 characters a second, synthetic Urdu 5.2-8.6 letters) and
# does not loop. The winner must win at least this share of the stretches that vote,
# and twice as many as the runner-up.
LETTERS_PER_SECOND = {"zh": 2.5, "ur": 4.0, "en": 4.0}
MAJORITY = 0.6
# A stretch votes only when its best decoding's mean word probability leads the next
# by this much (ur_dev_long 63-74 s: Urdu 0.53, English 0.51: no vote).
VOTE_MARGIN = 0.05


@dataclass(frozen=True)
class Decision:
    """The language decided, and the evidence, for the log and the error message."""

    lang: str
    how: str  # "identified" or "decoded"
    scores: dict[str, float]


def decide_language(engine: Transcriber, audio: np.ndarray, speech: Sequence[tuple[float, float]] | None,
                    candidates: Sequence[str], options: DecodeOptions, name: str = "the film") -> Decision:
    """The language spoken in ``audio`` among ``candidates``; UsageError (exit 2) when unclear."""
    if len(candidates) == 1:
        return Decision(candidates[0], "the project's only language", {candidates[0]: 1.0})
    stretches = sample_stretches(speech, len(audio) / SAMPLE_RATE)
    if not stretches:
        raise UsageError(f"no speech found in {name} to tell its language: give --lang {'|'.join(candidates)}")
    probs = [engine.detect_language(_clip(audio, s), candidates)[1] for s in stretches]
    mean = {lang: sum(p.get(lang, 0.0) for p in probs) / len(probs) for lang in candidates}
    best, runner = _top_two(mean)
    if mean[best] >= SURE and mean[best] >= SURE_RATIO * mean.get(runner, 0.0):
        return Decision(best, "identified", mean)
    greedy = replace(options, beam_size=1, temperatures=options.temperatures[:1], repair=False)
    votes = [_vote(engine, audio, s, candidates, greedy) for s in stretches]
    cast = [v for v in votes if v is not None]
    share = {lang: (cast.count(lang) / len(cast) if cast else 0.0) for lang in candidates}
    best, runner = _top_two(share)
    if share[best] >= MAJORITY and share[best] >= 2 * share[runner]:
        return Decision(best, "decoded", share)
    shown = ", ".join(f"{lang} {mean[lang]:.2f}" for lang in candidates)
    raise UsageError(f"can't tell which language is spoken in {name} (identification: {shown}; stretches whose "
                     f"decoding read best as each: {', '.join(f'{lang} {cast.count(lang)}' for lang in candidates)}"
                     f" of {len(stretches)}): give --lang {'|'.join(candidates)}")


def sample_stretches(speech: Sequence[tuple[float, float]] | None, duration: float,
                     count: int = SAMPLES, seconds: float = SAMPLE_SECONDS) -> list[tuple[float, float]]:
    """Up to ``count`` stretches of speech, evenly spread over the film, each at most ``seconds``."""
    regions = speech if speech is not None else [(0.0, duration)]
    windows = plan_windows(regions, window=seconds)
    long = [w for w in windows if w.duration >= SAMPLE_LEAST]
    windows = long if len(long) >= min(count, len(windows)) else windows
    if len(windows) > count:
        step = len(windows) / count
        windows = [windows[int(k * step)] for k in range(count)]
    return [(w.regions[0][0], w.regions[-1][1]) for w in windows]


def _clip(audio: np.ndarray, span: tuple[float, float]) -> np.ndarray:
    return audio[int(span[0] * SAMPLE_RATE):int(span[1] * SAMPLE_RATE)]


def _top_two(scores: dict[str, float]) -> tuple[str, str]:
    ranked = sorted(scores, key=lambda lang: -scores[lang])
    return ranked[0], ranked[1]


def _vote(engine: Transcriber, audio: np.ndarray, span: tuple[float, float], candidates: Sequence[str],
          options: DecodeOptions) -> str | None:
    """The candidate whose forced decoding of ``span`` reads most surely as speech, if any does."""
    sure = {}
    for lang in candidates:
        words = engine.transcribe(audio, lang, Chunk(span[0], span[1], (span,)), options=options)
        text = "".join(w.text for w in words)
        letters = sum(1 for ch in text if unicodedata.category(ch)[0] == "L")
        if words and letters >= LETTERS_PER_SECOND.get(lang, 4.0) * (span[1] - span[0]) and not looping(text):
            sure[lang] = sum(w.probability for w in words) / len(words)
    ranked = sorted(sure, key=lambda lang: -sure[lang])
    if not ranked or (len(ranked) > 1 and sure[ranked[0]] - sure[ranked[1]] < VOTE_MARGIN):
        return None
    return ranked[0]
