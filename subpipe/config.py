"""Settings: TOML defaults in configs/, a project file on top, then a few CLI flags.

Every value is checked when it is loaded, before any work: unknown keys are rejected by
name so a typo never passes silently, and a value of the wrong type or out of its range
is named with what is allowed (``ALLOWED``).
"""

from __future__ import annotations

import json
import math
import os
import re
import tomllib
import typing
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

from .errors import ConfigError
from .formats import DEFAULT_FORMATS, FORMATS
from .rules import Rules
from .script import RTL_MODES
from .textfile import NotRegularFile, TooLarge, decode_text, read_small
from .types import LANGUAGES

CONFIGS = Path(__file__).resolve().parent.parent / "configs"
DEFAULT_CONFIG = CONFIGS / "default.toml"
DEFAULT_GLOSSARY = CONFIGS / "glossary.toml"
# No project file comes near this; a bigger one (or /dev/zero) is not one.
MAX_CONFIG_BYTES = 1 << 20
BACKENDS = ("openai-whisper", "faster-whisper", "transformers", "auto")
# Where Whisper runs: "cuda:N" names one GPU of several; "auto" takes the GPU when there is one.
DEVICE_PATTERN = re.compile(r"cpu|cuda(:[0-9]+)?|auto")
# The rungs of the retry ladder for lost speech (accounting.py says what each does).
RETRY_RUNGS = ("greedy", "alone", "split", "context")
# Helsinki-NLP opus-mt models, by direction. Urdu <-> Mandarin has no direct model.
OPUS_MT = {
    "ur-en": "Helsinki-NLP/opus-mt-ur-en",
    "en-ur": "Helsinki-NLP/opus-mt-en-ur",
    "zh-en": "Helsinki-NLP/opus-mt-zh-en",
    "en-zh": "Helsinki-NLP/opus-mt-en-zh",
}
# What the small language model translates by default (the rest is refused or left to
# Whisper's speech translation): see configs/default.toml for the measurements.
LM_DIRECTIONS = ("zh-en", "ur-en", "en-zh")
# Lines Whisper invents over music and silence.
BLOCKLIST = (
    "字幕由Amara.org社群提供",
    "请不吝点赞订阅转发打赏支持明镜与点点栏目",
    "Thanks for watching!",
    "Subtitles by the Amara.org community",
)
# Fonts that carry each language's script (Debian: fonts-wqy-zenhei, fonts-sil-awami-nastaliq,
# fonts-dejavu-core), and how much larger than the house size each is set in ASS, which
# sizes a font by its whole line: Nastaliq's is tall, its letters small within it.
FONTS = {"zh": "WenQuanYi Zen Hei", "ur": "Awami Nastaliq", "en": "DejaVu Sans"}
FONT_SCALE = {"zh": 1.0, "ur": 1.8, "en": 1.0}
# Where `subpipe batch` runs the films: worker processes here, or actors on a Ray cluster.
ENGINES = ("local", "ray")
# CTranslate2's precisions (the transformers backend maps them onto torch's).
COMPUTE_TYPES = ("auto", "default", "int8", "int8_float32", "int8_float16", "int8_bfloat16", "int16",
                 "float16", "bfloat16", "float32")


@dataclass(frozen=True)
class ProjectSettings:
    languages: tuple[str, ...] = LANGUAGES


@dataclass(frozen=True)
class AsrSettings:
    backend: str = "faster-whisper"
    model: str = "base"
    model_path: str = ""
    model_sha256: str = ""
    device: str = "cpu"
    beam_size: int = 5
    # On a GPU: the backend, the beam (1: greedy, through the graph-captured decoder), the batch.
    gpu_backend: str = "transformers"
    gpu_beam_size: int = 1
    gpu_batch_size: int = 64
    temperatures: tuple[float, ...] = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
    seed: int = 0
    condition_on_previous_text: bool = False
    glossary_prompt: bool = False
    chunk_seconds: float = 600.0
    batch_size: int = 8
    compute_type: str = "auto"
    retry_ladder: tuple[str, ...] = RETRY_RUNGS

    def on(self, device: str) -> "AsrSettings":
        """The settings that hold on ``device`` (cpu, cuda or cuda:N): on a GPU the
        ``gpu_`` backend, beam and batch replace the CPU's."""
        if device == "cpu":
            return replace(self, device=device)
        return replace(self, device=device, backend=self.gpu_backend, beam_size=self.gpu_beam_size,
                       batch_size=self.gpu_batch_size)


@dataclass(frozen=True)
class CueSettings:
    blocklist: tuple[str, ...] = BLOCKLIST
    close_gaps_frames: int = 12
    hold_in_sentence_frames: int = 25


@dataclass(frozen=True)
class VadSettings:
    """Voice activity (Silero): thresholds for detection, and the pad decoding adds around it."""

    enabled: bool = True
    threshold: float = 0.5
    min_speech_ms: int = 250
    min_silence_ms: int = 300
    pad_ms: int = 0
    decode_pad_ms: int = 200
    threads: int = 0  # 0: one pass on the CPU, pieces on every core when Whisper runs on a GPU


@dataclass(frozen=True)
class TranslateSettings:
    """MarianMT and how cues become sentences for it. ``models`` maps ``"ur-en"`` to a
    local folder or a hub id."""

    batch_size: int = 16
    num_beams: int = 1
    max_new_tokens: int = 256
    device: str = "cpu"  # "cpu", "cuda" or "auto"; cuda falls back to cpu when absent
    glossary: str = ""
    max_cues_per_sentence: int = 2  # Whisper Urdu often lacks punctuation: bound the merge
    max_sentence_gap: float = 2.0  # seconds of silence that end a sentence anyway
    whisper_fallback: bool = True
    models: dict[str, str] = field(default_factory=lambda: dict(OPUS_MT))
    # The small language model (Gemma 3 270M, translate/gemma.py): the directions it is
    # trusted with when MarianMT has no model, a GGUF to use instead of the PyPI
    # packages', sentences per batch, batches decoded at once, a thread each (0: one per
    # core, at most 4), and whether each sentence is asked to fit its cues' characters.
    lm_directions: tuple[str, ...] = LM_DIRECTIONS
    lm_model_path: str = ""
    lm_batch_size: int = 4
    lm_beam_size: int = 2
    lm_threads: int = 0
    lm_budget_in_prompt: bool = False

    @property
    def glossary_path(self) -> Path:
        return Path(self.glossary) if self.glossary else DEFAULT_GLOSSARY


@dataclass(frozen=True)
class BilingualSettings:
    pairs: tuple[str, ...] = ()


@dataclass(frozen=True)
class OutputSettings:
    """How files are written: Urdu's direction marks, the formats, and the house style of
    the formats that carry one (ASS, TTML): each language's font, its size against the
    house size, and a bilingual cue's target against its source."""

    urdu_direction_marks: str = "rle"
    formats: tuple[str, ...] = DEFAULT_FORMATS
    fonts: dict[str, str] = field(default_factory=lambda: dict(FONTS))
    font_scale: dict[str, float] = field(default_factory=lambda: dict(FONT_SCALE))
    target_scale: float = 0.75
    target_above: bool = False


@dataclass(frozen=True)
class BatchSettings:
    """How `subpipe batch` runs: the engine, a Ray cluster's address, the time one film
    may take, and (Ray) retries, what each actor asks for, the shared stage cache and
    the size of the parts media travel in."""

    engine: str = "local"
    address: str = ""  # "" = RAY_ADDRESS, else a Ray of its own for the run
    film_timeout: float = 0.0  # seconds; 0 = no limit
    retries: int = 2
    cpus_per_actor: int = 1
    gpus_per_actor: float = 1.0
    cache: str = ""  # "" = each node's own stage cache
    part_mb: float = 64.0


@dataclass(frozen=True)
class Config:
    """Every setting. The dataclass defaults are configs/default.toml's (a test holds them
    together); a project file overrides single keys."""

    project: ProjectSettings = field(default_factory=ProjectSettings)
    asr: AsrSettings = field(default_factory=AsrSettings)
    output: OutputSettings = field(default_factory=OutputSettings)
    cues: CueSettings = field(default_factory=CueSettings)
    vad: VadSettings = field(default_factory=VadSettings)
    translate: TranslateSettings = field(default_factory=TranslateSettings)
    bilingual: BilingualSettings = field(default_factory=BilingualSettings)
    batch: BatchSettings = field(default_factory=BatchSettings)
    rules: dict[str, Rules] = field(default_factory=dict)

    def rules_for(self, lang: str, fps: float | None = None) -> Rules:
        rules = self.rules[lang]
        return rules.with_fps(fps) if fps else rules

    def rules_at(self, fps: float | None) -> dict[str, Rules]:
        """Every language's rules at a video's frame rate (None: the configured one),
        resolved once for a run."""
        return {lang: self.rules_for(lang, fps) for lang in self.rules}


def load_config(path: Path | None = None, *, defaults: Path = DEFAULT_CONFIG) -> Config:
    """The defaults, overlaid with the project file at ``path`` when given."""
    data = _read_toml(defaults)
    if path is not None:
        _overlay(data, _read_toml(path), path, prefix="")
    return _build(data, path or defaults)


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        data = read_small(Path(path), MAX_CONFIG_BYTES)
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except IsADirectoryError:
        raise ConfigError(f"config file {path} is a directory") from None
    except NotRegularFile as exc:
        raise ConfigError(f"config file {path} is {exc.strerror}, not a file") from None
    except TooLarge as exc:
        raise ConfigError(f"config file {path} is not a config: {exc.strerror}") from None
    except OSError as exc:
        raise ConfigError(f"config file {path} can't be read: {exc.strerror}") from None
    try:
        # Editors on Windows save with a byte-order mark, which TOML itself does not allow.
        return tomllib.loads(decode_text(data))
    except UnicodeDecodeError:
        raise ConfigError(f"config file {path} is not UTF-8 text: save it as UTF-8") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
    except RecursionError:
        raise ConfigError(f"config file {path} is not a config: its values are nested too deeply") from None
    except ValueError:  # Python's own limit: an integer of thousands of digits
        raise ConfigError(f"config file {path} is not a config: it holds a number thousands of digits long") from None


def _overlay(base: dict[str, Any], top: dict[str, Any], path: Path, prefix: str) -> None:
    """Merge ``top`` into ``base`` in place, refusing keys the defaults don't have."""
    for key, value in top.items():
        name = f"{prefix}{key}"
        if key not in base:
            raise ConfigError(f"unknown key '{name}' in config file {path}{_dotted_hint(key, base, prefix)}")
        if isinstance(base[key], dict):
            if not isinstance(value, dict):
                raise ConfigError(f"{name} = {_shown(value)} in {path}: must be a table")
            _overlay(base[key], value, path, prefix=f"{name}.")
        else:
            base[key] = value


def _dotted_hint(key: str, base: dict[str, Any], prefix: str) -> str:
    """A quoted key with a dot ("asr.beam_size" = 3) is one key to TOML, not a table and
    a key in it: say so when the unquoted name would be a setting."""
    head, _, rest = key.partition(".")
    if not rest or not isinstance(base.get(head), dict):
        return ""
    return (f" (a quoted key with a dot is one name to TOML: write {prefix}{key} without quotes, "
            f"or {rest} under [{prefix}{head}])")


def _build(data: dict[str, Any], path: Path) -> Config:
    rules = {lang: _section(Rules, table, f"rules.{lang}", path) for lang, table in data["rules"].items()}
    config = Config(
        project=_section(ProjectSettings, data["project"], "project", path),
        asr=_section(AsrSettings, data["asr"], "asr", path),
        output=_section(OutputSettings, data["output"], "output", path),
        cues=_section(CueSettings, data["cues"], "cues", path),
        vad=_section(VadSettings, data["vad"], "vad", path),
        translate=_section(TranslateSettings, data["translate"], "translate", path),
        bilingual=_section(BilingualSettings, data["bilingual"], "bilingual", path),
        batch=_section(BatchSettings, data["batch"], "batch", path),
        rules=rules,
    )
    _validate(config, path)
    return config


def _section(cls: type, table: dict[str, Any], name: str, path: Path):
    types = typing.get_type_hints(cls)
    values = {}
    for key, value in table.items():
        if key not in types:
            raise ConfigError(f"unknown key '{name}.{key}' in config file {path}")
        values[key] = _checked(value, types[key], f"{name}.{key}", path)
    return cls(**values)


# ---- what each setting may be -------------------------------------------------------

# A test and what it allows in words; "{type}" in the words stands for the setting's type.
Check = tuple[Callable[[Any], bool], str]


def _above(low: float, high: float) -> Check:
    return (lambda v: low < v <= high), f"{{type}} above {low}, at most {high}"


def _within(low: float, high: float) -> Check:
    return (lambda v: low <= v <= high), f"{{type}} from {low} to {high}"


def _one_of(choices: tuple[str, ...]) -> Check:
    return (lambda v: v in choices), f"one of {', '.join(choices)}"


def ray_address_ok(address: str) -> bool:
    """Whether ``address`` is a HOST:PORT a Ray head could listen on."""
    match = re.fullmatch(r"[^\s/:]+:([0-9]{1,5})", address)
    return match is not None and 1 <= int(match.group(1)) <= 65535


def _is_pair(text: str) -> bool:
    src, _, tgt = text.partition("-")
    return src in LANGUAGES and tgt in LANGUAGES and src != tgt


# Upper bounds that make sense: a beam of a few dozen is already far past any gain, and
# threads beyond a few per core only fight over them. A value past them is a typo.
MAX_BEAM = 32
MAX_THREADS = 4 * (os.cpu_count() or 1)

_DEVICE: Check = (lambda v: DEVICE_PATTERN.fullmatch(v) is not None, "cpu, cuda, cuda:N or auto")

# The range of every setting whose type alone does not bound it; rules.* holds for each
# language. A setting not named here takes any value of its type.
ALLOWED: dict[str, Check] = {
    "project.languages": (lambda v: bool(v) and len(set(v)) == len(v) and set(v) <= set(LANGUAGES),
                          f"a list of some of {', '.join(LANGUAGES)}, each once"),
    "asr.backend": _one_of(BACKENDS),
    "asr.model": (bool, "a model name such as base"),
    "asr.model_sha256": (lambda v: re.fullmatch(r"([0-9a-fA-F]{64})?", v) is not None,
                         "empty or 64 hexadecimal digits"),
    "asr.device": _DEVICE,
    "asr.beam_size": _within(1, MAX_BEAM),
    "asr.gpu_backend": _one_of(BACKENDS),
    "asr.gpu_beam_size": _within(1, MAX_BEAM),
    "asr.gpu_batch_size": _within(1, 1024),
    "asr.temperatures": (lambda v: 0 < len(v) <= 10 and min(v) >= 0 and max(v) <= 2,
                         "{type}, one to ten, each from 0 to 2"),
    "asr.seed": _within(0, 2**32 - 1),  # numpy's seeds
    "asr.chunk_seconds": _within(1, 3600),
    "asr.batch_size": _within(1, 1024),
    "asr.compute_type": _one_of(COMPUTE_TYPES),
    "asr.retry_ladder": (lambda v: len(set(v)) == len(v) and set(v) <= set(RETRY_RUNGS),
                         f"a list of some of {', '.join(RETRY_RUNGS)}, each once (or none)"),
    "cues.close_gaps_frames": _within(0, 1000),
    "cues.hold_in_sentence_frames": _within(0, 1000),
    "vad.threshold": _within(0, 1),
    "vad.min_speech_ms": _within(0, 60_000),
    "vad.min_silence_ms": _within(0, 60_000),
    "vad.pad_ms": _within(0, 60_000),
    "vad.decode_pad_ms": _within(0, 60_000),
    "vad.threads": _within(0, MAX_THREADS),
    "translate.batch_size": _within(1, 1024),
    "translate.num_beams": _within(1, MAX_BEAM),
    "translate.max_new_tokens": _within(1, 1024),
    "translate.device": _DEVICE,
    "translate.max_cues_per_sentence": _within(1, 100),
    "translate.max_sentence_gap": _within(0, 3600),
    "translate.models": (lambda v: all(_is_pair(k) and m for k, m in v.items()),
                         "a table of language pairs (such as ur-en) to a model folder or hub id"),
    "translate.lm_directions": (lambda v: all(_is_pair(p) and "en" in p.split("-") for p in v),
                                "a list of directions to or from English, such as zh-en"),
    "translate.lm_batch_size": _within(1, 1024),
    "translate.lm_beam_size": _within(1, 16),
    "translate.lm_threads": _within(0, MAX_THREADS),
    "bilingual.pairs": (lambda v: all(map(_is_pair, v)), "a list of language pairs such as ur-zh"),
    "output.urdu_direction_marks": _one_of(RTL_MODES),
    "output.formats": (lambda v: bool(v) and len(set(v)) == len(v) and set(v) <= set(FORMATS),
                       f"a list of some of {', '.join(FORMATS)}, each once"),
    "output.fonts": (lambda v: set(v) == set(LANGUAGES) and all(v.values()),
                     f"a table of a font family for each of {', '.join(LANGUAGES)}"),
    "output.font_scale": (lambda v: set(v) == set(LANGUAGES) and all(0.2 <= x <= 5 for x in v.values()),
                          f"a table of a number from 0.2 to 5 for each of {', '.join(LANGUAGES)}"),
    "output.target_scale": _within(0.3, 1.5),
    "batch.engine": _one_of(ENGINES),
    "batch.address": (lambda v: v in ("", "auto") or ray_address_ok(v),
                      "empty, auto, or the HOST:PORT of a Ray cluster's head"),
    "batch.film_timeout": _within(0, 7 * 86400),
    "batch.retries": _within(0, 100),
    "batch.cpus_per_actor": _within(1, 1024),
    "batch.gpus_per_actor": _above(0, 64),
    "batch.part_mb": _within(0.01, 1024),
    "rules.*.max_chars_per_line": _above(0, 1000),
    "rules.*.max_lines": _within(1, 100),
    "rules.*.max_cps": _above(0, 1000),
    "rules.*.min_duration": _within(0, 3600),
    "rules.*.max_duration": _above(0, 3600),
    "rules.*.min_gap_frames": _within(0, 1000),
    "rules.*.fps": _above(0, 1000),
}

_TYPE_WORDS = {bool: "true or false", int: "a whole number", float: "a number", str: "text in quotes"}
_WRONG = object()  # what _as_type gives for a value of another type


def _checked(value: Any, kind: Any, key: str, path: Path) -> Any:
    """``value`` as the setting's type (a whole number is a fine float), within its range."""
    typed = _as_type(value, kind)
    test, words = ALLOWED.get(re.sub(r"^rules\.[^.]+\.", "rules.*.", key), ((lambda v: True), "{type}"))
    if typed is _WRONG or not test(typed):
        allowed = words.format(type=_type_words(kind))
        raise ConfigError(f"{key} = {_shown(value)} in {path}: must be {allowed}")
    return typed


def _as_type(value: Any, kind: Any) -> Any:
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if origin is tuple:
        if not isinstance(value, list):
            return _WRONG
        items = tuple(_as_type(v, args[0]) for v in value)
        return _WRONG if _WRONG in items else items
    if origin is dict:
        if not isinstance(value, dict):
            return _WRONG
        items = {k: _as_type(v, args[1]) for k, v in value.items()}
        return _WRONG if _WRONG in items.values() else items
    if isinstance(value, bool) != (kind is bool):  # TOML's true is no number, and 1 no boolean
        return _WRONG
    if kind is float:
        try:
            number = float(value) if isinstance(value, (int, float)) else math.nan
        except OverflowError:  # an integer of hundreds of digits
            return _WRONG
        return number if math.isfinite(number) else _WRONG
    return value if isinstance(value, kind) else _WRONG


def _type_words(kind: Any) -> str:
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if origin is tuple:
        return "a list of " + {str: "texts in quotes", float: "numbers"}[args[0]]
    if origin is dict:
        return "a table of " + {str: "texts in quotes", float: "numbers"}[args[1]]
    return _TYPE_WORDS[kind]


def _shown(value: Any) -> str:
    """The value about as TOML writes it, cut short."""
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= 60 else text[:57] + "..."


def _validate(config: Config, path: Path) -> None:
    """What one setting alone can't say: rules per known language, durations in order."""
    for lang, rules in config.rules.items():
        if lang not in LANGUAGES:
            raise ConfigError(f"unknown key 'rules.{lang}' in config file {path}")
        if rules.min_duration >= rules.max_duration:
            raise ConfigError(f"rules.{lang}.min_duration = {rules.min_duration:g} in {path}: must be below "
                              f"rules.{lang}.max_duration ({rules.max_duration:g})")


def with_formats(config: Config, formats: tuple[str, ...] | None) -> Config:
    """The config writing ``formats`` (--format), when given, over ``[output] formats``."""
    return replace(config, output=replace(config.output, formats=formats)) if formats else config


def with_overrides(config: Config, **asr: Any) -> Config:
    """The config with some ASR settings replaced (CLI flags win over files).

    A backend named on the command line holds on every device, the GPU's too.
    """
    if asr.get("backend") is not None and asr.get("gpu_backend") is None:
        asr["gpu_backend"] = asr["backend"]
    changes = {k: v for k, v in asr.items() if v is not None}
    return replace(config, asr=replace(config.asr, **changes)) if changes else config
