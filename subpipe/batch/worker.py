"""One film in a worker, on either engine: its request and config, its models (loaded
once per worker), its share of the cores, and its time limit."""

from __future__ import annotations

import json
import os
import signal
import threading
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Iterator

from ..cache import StageCache
from ..config import BatchSettings, Config, load_config, with_formats, with_overrides
from ..interrupt import worker_signals
from ..listen import load_transcriber
from ..pipeline import RunRequest
from .jobs import Job

_engines: dict[str, object] = {}


def load_once(config: Config):  # noqa: ANN202 - a Transcriber
    """Models are loaded once per worker process and reused for every file."""
    key = json.dumps(asdict(config.asr), sort_keys=True, default=str)
    if key not in _engines:
        _engines[key] = load_transcriber(config)
    return _engines[key]


def request_of(job: Job, force: bool = False, review: bool = False) -> tuple[RunRequest, Config]:
    """The run a job asks for, with its config (its row's, --backend and --format over it)."""
    config = with_formats(with_overrides(load_config(job.config), backend=job.backend, device=job.device), job.formats)
    return RunRequest(job.video, job.lang, None, job.out_dir, force, job.targets, review), config


def stage_cache(settings: BatchSettings, enabled: bool = True) -> StageCache:
    """The stage cache a batch uses: ``[batch] cache`` when set, else the user's."""
    return StageCache(Path(settings.cache) if settings.cache else None, enabled=enabled)


class TimeUp(BaseException):
    """A film ran past ``[batch] film_timeout``. Not an Exception: the stages that catch
    a decoder's failures and go on must not catch this one."""


def time_up(limit: float) -> str:
    return f"stopped after {limit:g} s, the time one film may take ([batch] film_timeout)"


@contextmanager
def film_time_limit(seconds: float) -> Iterator[None]:
    """Inside, ``TimeUp`` is raised once ``seconds`` have passed (0: no limit). It needs
    the main thread, where each worker process runs its films."""
    if seconds <= 0 or threading.current_thread() is not threading.main_thread():
        yield
        return

    def up(signum: int, frame: object) -> None:
        raise TimeUp()

    previous = signal.signal(signal.SIGALRM, up)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def worker_init(threads: int) -> None:
    worker_signals()
    use_threads(threads)


def use_threads(threads: int) -> None:
    """A worker's share of the cores. CTranslate2 (faster-whisper) takes its thread count
    from OpenMP's variable, read when it starts; torch (MarianMT, the other backends) is
    told directly."""
    os.environ["OMP_NUM_THREADS"] = str(threads)
    import torch

    torch.set_num_threads(threads)


@contextmanager
def threads_at_start(threads: int) -> Iterator[None]:
    """Inside, processes started get ``threads`` as OMP_NUM_THREADS (ours is put back)."""
    saved = os.environ.get("OMP_NUM_THREADS")
    os.environ["OMP_NUM_THREADS"] = str(threads)
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop("OMP_NUM_THREADS", None)
        else:
            os.environ["OMP_NUM_THREADS"] = saved
