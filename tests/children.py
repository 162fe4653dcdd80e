"""For the tests that stop a subpipe process with a signal, or kill one mid-film."""

from __future__ import annotations

import signal
from pathlib import Path


def stop_signals_default() -> None:
    """In the child (``preexec_fn``): the stop signals as a terminal gives them. A test
    suite run under ``nohup`` or as a background job inherits SIGHUP or SIGINT ignored,
    and subpipe keeps a signal its parent ignored, by design; these tests send them."""
    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, signal.SIG_DFL)


def transcript_chunks(cache: Path) -> int:
    """How many chunks' words the stage cache under ``cache`` holds: how far a film got."""
    folder = cache / "stages" / "transcript"
    return sum(1 for p in folder.rglob("*") if p.is_file() and p.suffix != ".lock") if folder.is_dir() else 0
