"""What runs on a Ray node: an actor that loads its models once and makes films.

It does the first half of a film's pipeline (``pipeline.make``: listen, shape,
translate) on a film fetched to its node (transport.py), and hands back the tracks in
memory with what it logged and what it found; the driver holds the outputs and writes
them (``pipeline.write``), so the overwrite rules are the local engine's.
"""

from __future__ import annotations

import logging
import os
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Iterator

from .. import __version__
from ..asr.weights import resolve_whisper
from ..cache import StageCache
from ..config import Config
from ..errors import SubpipeError
from ..glossary import Glossary
from ..pipeline import Made, Refusals, RunRequest, make, place
from .transport import MediaRef, WorkFolder, received, this_node
from .worker import load_once, use_threads

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FilmTask:
    """One film as a worker gets it: the run asked for (with the driver's paths), its
    settings and glossary, the outputs' guard answered ahead, and where the film is."""

    request: RunRequest
    config: Config
    glossary: Glossary
    guard: Refusals
    media: MediaRef
    log_level: int = logging.WARNING


@dataclass(frozen=True)
class FilmOutcome:
    """What a worker made of a film (or why it could not), and what it logged meanwhile:
    (logger, level, message), for the driver's stderr."""

    made: Made | None
    error: str
    logs: tuple[tuple[str, int, str], ...]
    node: str


@dataclass(frozen=True)
class NodeReport:
    """A worker that started: where, and the weights it found and checked there."""

    node: str
    pid: int
    version: str
    weights: str
    error: str = ""


class FilmWorker:
    """A Ray actor: ``threads`` cores, the node's stage cache (or ``cache_root``)."""

    def __init__(self, threads: int, cache_root: str, use_cache: bool):
        use_threads(threads)
        self.cache = StageCache(Path(cache_root) if cache_root else None, enabled=use_cache)
        self.folder = WorkFolder()
        self.node_id, address = this_node()
        self.node = f"{address} ({self.node_id[:8]})"

    def ready(self, config: Config) -> NodeReport:
        """Find and check the weights on this node, load the models once, try the cache."""
        try:
            self.cache.check()
            config = place(config)
            a = config.asr
            weights = resolve_whisper(a.model, explicit=a.model_path, explicit_sha256=a.model_sha256)
            load_once(config)
        except SubpipeError as exc:
            return NodeReport(self.node, os.getpid(), __version__, "", error=str(exc))
        where = f"Whisper {weights.name} from {weights.source} ({weights.path}, sha256 {weights.sha256[:12]}, checked)"
        return NodeReport(self.node, os.getpid(), __version__, where)

    def make(self, task: FilmTask) -> FilmOutcome:
        """The film's tracks in memory; every failure comes back as an error, never raised."""
        made, error, local = None, "", ""
        with captured(task.log_level) as logs:
            try:
                with received(task.media, self.folder, self.node_id) as (video, sha):
                    local = str(video)
                    request = replace(task.request, video=video)
                    made = make(request, place(task.config), task.glossary, guard=task.guard, load=load_once,
                                cache=self.cache, source=sha or self.cache.input_hash(video))
            except SubpipeError as exc:
                error = str(exc)
            except Exception as exc:  # one broken film must not stop the batch; report and go on
                log.exception("unexpected failure on %s", task.media.path)
                error = f"{type(exc).__name__}: {exc}"

        def driver_path(text: str) -> str:
            # What names the copy on this node names the film as the operator knows it.
            return text.replace(local, str(task.request.video)) if local else text

        return FilmOutcome(made, driver_path(error), tuple((n, lv, driver_path(m)) for n, lv, m in logs), self.node)

    def discard(self) -> None:
        """Remove this worker's copies of films, before the driver ends it (a stop signal,
        a film out of time, the batch done). Runs beside a film still being made."""
        self.folder.remove()


class _Capture(logging.Handler):
    def __init__(self, level: int) -> None:
        super().__init__(level)
        self.records: list[tuple[str, int, str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage()
        if record.exc_info and record.levelno >= logging.ERROR:
            text += "\n" + logging.Formatter().formatException(record.exc_info)
        self.records.append((record.name, record.levelno, text))


@contextmanager
def captured(level: int) -> Iterator[list[tuple[str, int, str]]]:
    """subpipe's log records at ``level`` and above, kept for the driver while inside."""
    logger = logging.getLogger("subpipe")
    handler = _Capture(level)
    saved = logger.handlers[:], logger.level, logger.propagate
    logger.handlers[:], logger.propagate = [handler], False
    logger.setLevel(level)
    try:
        yield handler.records
    finally:
        logger.handlers[:], logger.level, logger.propagate = saved
