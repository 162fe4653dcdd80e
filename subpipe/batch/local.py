"""The local engine: a batch's films in worker processes on this machine.

One failing file never stops the rest. Each worker process loads its models once and
reuses them for every file it is given; the stage cache makes reruns cheap. The Ray
engine (ray_engine.py) runs the same films through the same halves of the pipeline.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Callable

from ..config import BatchSettings
from ..errors import SubpipeError
from ..pipeline import run
from .jobs import Job
from .report import JobResult, failure, result_of
from .worker import TimeUp, film_time_limit, load_once, request_of, stage_cache, threads_at_start, time_up, worker_init

log = logging.getLogger(__name__)


def run_job(job: Job, force: bool = False, use_cache: bool = True, review: bool = False,
            settings: BatchSettings = BatchSettings()) -> JobResult:
    """Run one file; every failure becomes a failed result, never an exception."""
    started = time.perf_counter()
    try:
        request, config = request_of(job, force, review)
        with film_time_limit(settings.film_timeout):
            result = run(request, config, load=load_once, cache=stage_cache(settings, use_cache))
    except SubpipeError as exc:
        return failure(job, str(exc), started)
    except TimeUp:
        return failure(job, time_up(settings.film_timeout), started)
    except Exception as exc:  # one broken file must not stop the season; report and go on
        log.exception("unexpected failure on %s", job.video)
        return failure(job, f"{type(exc).__name__}: {exc}", started)
    return result_of(job, result, started)


def _run_packed(args: tuple[Job, bool, bool, bool, BatchSettings]) -> JobResult:
    return run_job(*args)


def run_all(jobs: list[Job], workers: int = 1, force: bool = False, use_cache: bool = True,
            review: bool = False, on_result: Callable[[JobResult], None] = lambda r: None,
            settings: BatchSettings = BatchSettings()) -> list[JobResult]:
    """Every job, ``workers`` at a time, in input order; each worker gets its share of the cores.

    A stop signal (``interrupt.Interrupted``) stops the workers (SIGTERM, so each removes
    its temporary files) before it goes on up; ``on_result`` has by then heard of every
    file that finished.
    """
    if workers <= 1 or len(jobs) <= 1:
        results = []
        for job in jobs:
            results.append(run_job(job, force, use_cache, review, settings))
            on_result(results[-1])
        return results
    import multiprocessing

    threads = max(1, (os.cpu_count() or 1) // workers)
    # spawn, not fork: torch's thread pools don't survive a fork.
    context = multiprocessing.get_context("spawn")
    results = []
    # Leaving the block for any reason stops the workers that are still at work. The
    # workers start with their share in the environment: the math libraries under
    # CTranslate2 read it as they load, before any initializer runs (Ray's workers start
    # the same way, so the two engines make the same bytes).
    with threads_at_start(threads), \
            context.Pool(workers, initializer=worker_init, initargs=(threads,), maxtasksperchild=None) as pool:
        for result in pool.imap(_run_packed, [(job, force, use_cache, review, settings) for job in jobs]):
            results.append(result)
            on_result(result)
        pool.close()
        pool.join()
    return results
