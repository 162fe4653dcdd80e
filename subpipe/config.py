"""Settings: TOML defaults in configs/, a project file on top, then a few CLI flags.

Unknown keys are rejected by name so a typo never passes silently.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from .errors import ConfigError
from .rules import Rules
from .types import LANGUAGES

CONFIGS = Path(__file__).resolve().parent.parent / "configs"
DEFAULT_CONFIG = CONFIGS / "default.toml"
DEFAULT_GLOSSARY = CONFIGS / "glossary.toml"
BACKENDS = ("openai-whisper", "faster-whisper", "transformers", "auto")
# Where Whisper runs: "cuda:N" names one GPU of several; "auto" takes the GPU when there is one.
DEVICE_PATTERN = re.compile(r"cpu|cuda(:\d+)?|auto")
# Helsinki-NLP opus-mt models, by direction. Urdu <-> Mandarin has no direct model.
OPUS_MT = {
    "ur-en": "Helsinki-NLP/opus-mt-ur-en",
    "en-ur": "Helsinki-NLP/opus-mt-en-ur",
    "zh-en": "Helsinki-NLP/opus-mt-zh-en",
    "en-zh": "Helsinki-NLP/opus-mt-en-zh",
}
# Lines Whisper invents over music and silence.
BLOCKLIST = (
    "字幕由Amara.org社群提供",
    "请不吝点赞订阅转发打赏支持明镜与点点栏目",
    "Thanks for watching!",
    "Subtitles by the Amara.org community",
)
DIRECTION_MARKS = ("rle", "rlm", "none")


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
    beam_size: int = 3
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
    max_cues_per_sentence: int = 4  # Whisper Urdu often lacks punctuation: bound the merge
    max_sentence_gap: float = 2.0  # seconds of silence that end a sentence anyway
    whisper_fallback: bool = True
    models: dict[str, str] = field(default_factory=lambda: dict(OPUS_MT))

    @property
    def glossary_path(self) -> Path:
        return Path(self.glossary) if self.glossary else DEFAULT_GLOSSARY


@dataclass(frozen=True)
class BilingualSettings:
    pairs: tuple[str, ...] = ()


@dataclass(frozen=True)
class OutputSettings:
    urdu_direction_marks: str = "rle"


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
    rules: dict[str, Rules] = field(default_factory=dict)

    def rules_for(self, lang: str, fps: float | None = None) -> Rules:
        rules = self.rules[lang]
        return rules.with_fps(fps) if fps else rules


def load_config(path: Path | None = None, *, defaults: Path = DEFAULT_CONFIG) -> Config:
    """The defaults, overlaid with the project file at ``path`` when given."""
    data = _read_toml(defaults)
    if path is not None:
        _overlay(data, _read_toml(path), path, prefix="")
    return _build(data, path or defaults)


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except IsADirectoryError:
        raise ConfigError(f"config file {path} is a directory") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None


def _overlay(base: dict[str, Any], top: dict[str, Any], path: Path, prefix: str) -> None:
    """Merge ``top`` into ``base`` in place, refusing keys the defaults don't have."""
    for key, value in top.items():
        name = f"{prefix}{key}"
        if key not in base:
            raise ConfigError(f"unknown key '{name}' in config file {path}")
        if isinstance(base[key], dict):
            if not isinstance(value, dict):
                raise ConfigError(f"'{name}' in {path} must be a table")
            _overlay(base[key], value, path, prefix=f"{name}.")
        else:
            base[key] = value


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
        rules=rules,
    )
    _validate(config, path)
    return config


def _section(cls: type, table: dict[str, Any], name: str, path: Path):
    known = {f.name: f for f in fields(cls)}
    values = {}
    for key, value in table.items():
        if key not in known:
            raise ConfigError(f"unknown key '{name}.{key}' in config file {path}")
        values[key] = tuple(value) if isinstance(value, list) else value
    try:
        return cls(**values)
    except TypeError as exc:
        raise ConfigError(f"section [{name}] in {path}: {exc}") from None


def _validate(config: Config, path: Path) -> None:
    unknown = [lang for lang in config.project.languages if lang not in LANGUAGES]
    if unknown or not config.project.languages:
        raise ConfigError(f"project.languages in {path} must be some of {', '.join(LANGUAGES)}")
    for key in ("backend", "gpu_backend"):
        if getattr(config.asr, key) not in BACKENDS:
            raise ConfigError(f"asr.{key} '{getattr(config.asr, key)}' in {path} is not one of {', '.join(BACKENDS)}")
    if not isinstance(config.asr.device, str) or not DEVICE_PATTERN.fullmatch(config.asr.device):
        raise ConfigError(f"asr.device '{config.asr.device}' in {path} is not cpu, cuda, cuda:N or auto")
    if config.vad.threads < 0:
        raise ConfigError(f"vad.threads in {path} must be 0 (automatic) or more")
    for key in ("beam_size", "gpu_beam_size", "batch_size", "gpu_batch_size"):
        if getattr(config.asr, key) < 1:
            raise ConfigError(f"asr.{key} in {path} must be at least 1")
    if config.output.urdu_direction_marks not in DIRECTION_MARKS:
        raise ConfigError(f"output.urdu_direction_marks in {path} must be one of {', '.join(DIRECTION_MARKS)}")
    for pair in config.bilingual.pairs:
        src, _, tgt = pair.partition("-")
        if src not in LANGUAGES or tgt not in LANGUAGES or src == tgt:
            raise ConfigError(f"bilingual.pairs in {path}: '{pair}' is not a pair like ur-zh")
    for lang, rules in config.rules.items():
        if lang not in LANGUAGES:
            raise ConfigError(f"unknown key 'rules.{lang}' in config file {path}")
        if rules.max_chars_per_line <= 0 or rules.max_lines < 1 or rules.fps <= 0:
            raise ConfigError(f"rules.{lang} in {path} has a limit that is zero or negative")


def with_overrides(config: Config, **asr: Any) -> Config:
    """The config with some ASR settings replaced (CLI flags win over files).

    A backend named on the command line holds on every device, the GPU's too.
    """
    if asr.get("backend") is not None and asr.get("gpu_backend") is None:
        asr["gpu_backend"] = asr["backend"]
    changes = {k: v for k, v in asr.items() if v is not None}
    return replace(config, asr=replace(config.asr, **changes)) if changes else config
