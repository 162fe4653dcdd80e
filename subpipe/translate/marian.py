"""MarianMT (OPUS-MT) through transformers: found on disk or, online, on the hub; loaded on first use."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Any, Mapping, Sequence

from ..cache import cache_root
from ..config import OPUS_MT as HUB_IDS
from ..config import Config, TranslateSettings
from ..errors import ModelError
from ..online import offline
from .engine import EngineRow, Hearing

log = logging.getLogger(__name__)

LICENCE = "CC-BY-4.0 (OPUS-MT)"
# Multi-target models pick their output language from a token at the start of the input.
TARGET_TOKENS = {"en-zh": ">>cmn_Hans<<"}
# A translation that loops or holds another script is decoded again this way.
RETRY_BEAMS = 4
RETRY_NO_REPEAT = 3
_MODEL_FILES = ("config.json", "source.spm", "target.spm", "vocab.json")
_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
# The model's position table bounds a sentence; longer input is cut, not crashed on.
MAX_INPUT_TOKENS = 512


def serves(pair: str, config: Config, hearing: Hearing) -> None:
    """Routing's question: raises ModelError (what is missing, how to get it) unless a
    MarianMT model for ``pair`` is found."""
    find_marian_model(pair, config.translate)


def inventory(config: Config) -> list[EngineRow]:
    """One row per direction MarianMT could serve: found on disk, fetchable online, or missing."""
    rows = []
    for pair in sorted(config.translate.models):
        try:
            where = find_marian_model(pair, config.translate)
        except ModelError:
            rows.append(EngineRow("marian", pair, config.translate.models[pair], "missing", 0, LICENCE))
            continue
        folder = Path(where)
        size = sum(f.stat().st_size for f in folder.iterdir() if f.is_file()) if folder.is_dir() else 0
        rows.append(EngineRow("marian", pair, where, "present" if folder.is_dir() else "online", size, LICENCE))
    return rows


def make(config: Config, hearing: Hearing) -> "MarianTranslator":
    return MarianTranslator(config.translate)


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
