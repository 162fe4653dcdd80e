"""Which device Whisper runs on: ``cpu``, ``cuda``, ``cuda:N`` or ``auto``.

Resolved once, before any work, so that a GPU asked for and missing is one clear error
(exit 2) rather than a failure minutes into a film; ``auto`` takes the GPU when torch
sees one. torch is imported here only when a GPU is asked about.
"""

from __future__ import annotations

from ..config import DEVICE_PATTERN, AsrSettings
from ..errors import UsageError


def resolve_device(name: str) -> str:
    """``name`` as a concrete device (``cpu``, ``cuda`` or ``cuda:N``).

    Raises ``UsageError`` for an unknown name, or a GPU that torch cannot use here.
    """
    if not DEVICE_PATTERN.fullmatch(name or ""):
        raise UsageError(f"unknown device '{name}': choose cpu, cuda, cuda:N or auto")
    if name == "cpu":
        return name
    count = gpu_count()
    if name == "auto":
        return "cuda" if count else "cpu"
    index = int(name.partition(":")[2] or 0)
    if count == 0:
        raise UsageError(f"device '{name}' asked for, but torch sees no usable GPU here: use cpu or auto")
    if index >= count:
        raise UsageError(f"device '{name}' asked for, but torch sees {count} GPU(s) (cuda:0 to cuda:{count - 1})")
    return name


def gpu_count() -> int:
    """How many CUDA devices torch can use (0 without torch, a CUDA build or a driver)."""
    try:
        import torch
    except ImportError:
        return 0
    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def placed(asr: AsrSettings) -> AsrSettings:
    """``asr`` with its device resolved, and on a GPU the GPU's backend and beam in force.

    Done once where a film's work starts (``pipeline.place``): what comes after,
    the backend factory included, takes the settings as placed.
    """
    return asr.on(resolve_device(asr.device))
