"""The local engine: a batch's films in worker processes on this machine.

One failing file never stops the rest. Each worker process loads its models once and
reuses them for every file it is given; the stage cache makes reruns cheap. The Ray
engine (ray_engine.py) runs the same films through the same halves of the pipeline.

A worker that dies mid-film (the OOM killer's ``kill -9``, a crash in native code)
costs that film nothing but time, as on Ray: it is run again on a new worker
(``[batch] retries`` times), then fails saying so, and the batch goes on to its end.
``multiprocessing.Pool`` can't do this: it replaces a dead worker but waits forever
for the dead one's result. So each worker here has a pipe of its own, and the batch
watches the pipes and the processes together.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import time
from collections import deque
from dataclasses import dataclass, replace
from multiprocessing import connection
from typing import Any, Callable

from ..config import BatchSettings
from ..errors import SubpipeError
from ..outputs import OutputSet
from ..pipeline import run
from .jobs import Job
from .report import JobResult, failure, result_of
from .worker import TimeUp, film_time_limit, load_once, request_of, stage_cache, threads_at_start, time_up, worker_init

log = logging.getLogger(__name__)

# Seconds a worker is given to stop (remove its temporary files) before it is killed.
STOP_GRACE = 20.0


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


def run_all(jobs: list[Job], workers: int = 1, force: bool = False, use_cache: bool = True,
            review: bool = False, on_result: Callable[[JobResult], None] = lambda r: None,
            settings: BatchSettings = BatchSettings()) -> list[JobResult]:
    """Every job, ``workers`` at a time; each worker gets its share of the cores. The
    results come back in input order; ``on_result`` hears each as it finishes.

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
    threads = max(1, (os.cpu_count() or 1) // workers)
    # The workers start with their share in the environment: the math libraries under
    # CTranslate2 read it as they load, before any initializer runs (Ray's workers start
    # the same way, so the two engines make the same bytes).
    with threads_at_start(threads):
        batch = _Batch(jobs, min(workers, len(jobs)), threads, (force, use_cache, review, settings), on_result)
        try:
            batch.run()
        except BaseException:
            batch.stop()
            raise
        batch.close()
    return [batch.results[i] for i in range(len(jobs))]


@dataclass
class _Worker:
    process: Any  # a multiprocessing Process (spawned)
    conn: connection.Connection
    film: int | None = None  # the index of the job it holds


class _Batch:
    """The films handed to ``size`` workers one at a time, their results gathered, and
    every worker that died replaced."""

    def __init__(self, jobs: list[Job], size: int, threads: int, options: tuple,
                 on_result: Callable[[JobResult], None]):
        import multiprocessing

        # spawn, not fork: torch's thread pools don't survive a fork.
        self.context = multiprocessing.get_context("spawn")
        self.jobs, self.size, self.threads, self.options, self.on_result = jobs, size, threads, options, on_result
        self.retries = options[3].retries
        self.queue: deque[int] = deque(range(len(jobs)))
        self.results: dict[int, JobResult] = {}
        self.deaths: dict[int, list[str]] = {}
        self.started: dict[int, float] = {}
        self.workers: list[_Worker] = []

    def run(self) -> None:
        while len(self.results) < len(self.jobs):
            self._hand_out()
            busy = [w for w in self.workers if w.film is not None]
            # A blocking wait: a stop signal breaks it (its handler raises), and a dead
            # worker's sentinel wakes it as surely as a result does.
            ready = connection.wait([w.conn for w in busy] + [w.process.sentinel for w in self.workers])
            for worker in list(self.workers):
                if worker.conn in ready or worker.process.sentinel in ready:
                    self._heard(worker)

    def _hand_out(self) -> None:
        """Every idle worker gets the next film; workers are started for films that
        wait (at first, and in a dead one's place). A film is handed over at once, so a
        worker that dies as it starts is charged to the film it held: never a loop."""
        idle = [w for w in self.workers if w.film is None]
        while self.queue and (idle or len(self.workers) < self.size):
            worker = idle.pop() if idle else self._start()
            index = self.queue.popleft()
            self.started.setdefault(index, time.perf_counter())
            worker.film = index
            try:
                worker.conn.send((self.jobs[index], *self.options))
            except OSError:
                pass  # it died already: its sentinel says so next

    def _start(self) -> _Worker:
        ours, theirs = self.context.Pipe()
        process = self.context.Process(target=serve, args=(theirs, self.threads, os.getpid()), daemon=True)
        process.start()
        theirs.close()  # so that its death reads as the end of the pipe here
        worker = _Worker(process, ours)
        self.workers.append(worker)
        return worker

    def _heard(self, worker: _Worker) -> None:
        result = None
        if worker.conn.poll():
            try:
                result = worker.conn.recv()
            except (EOFError, OSError):
                result = None
        index, worker.film = worker.film, None
        if isinstance(result, JobResult) and index is not None:
            notes = tuple(self.deaths.get(index, ()))
            self._report(index, replace(result, retried=notes) if notes else result)
            return
        if worker.process.is_alive():
            # Nothing came and it lives: a closed pipe in a live worker is a broken one.
            worker.process.kill()
        worker.process.join()
        worker.conn.close()
        self.workers.remove(worker)
        if index is not None:
            self._died(index, worker.process.pid, worker.process.exitcode)

    def _died(self, index: int, pid: int, exitcode: int | None) -> None:
        """The film's worker died: run it again on a new one, unless it has used its retries."""
        job = self.jobs[index]
        note = f"its worker (pid {pid}) died mid-film ({_how(exitcode)})"
        notes = self.deaths.setdefault(index, [])
        notes.append(note)
        if len(notes) <= self.retries:
            log.warning("%s: %s: running it again on another worker", job.video, note)
            self.queue.appendleft(index)
            return
        _tidy(job)
        self._report(index, failure(job, f"{note} ({len(notes)} times; [batch] retries = {self.retries})",
                                    self.started[index], retried=tuple(notes)))

    def _report(self, index: int, result: JobResult) -> None:
        self.results[index] = result
        self.on_result(result)

    def close(self) -> None:
        """Every worker told to stop once the films are done, and waited for."""
        for worker in self.workers:
            try:
                worker.conn.send(None)
            except OSError:
                pass
        self._ended(time.monotonic() + STOP_GRACE)

    def stop(self) -> None:
        """Every worker stopped now (SIGTERM: each removes its temporary files)."""
        for worker in self.workers:
            if worker.process.is_alive():
                worker.process.terminate()
        self._ended(time.monotonic() + STOP_GRACE)

    def _ended(self, deadline: float) -> None:
        for worker in self.workers:
            worker.process.join(max(0.0, deadline - time.monotonic()))
            if worker.process.is_alive():
                worker.process.kill()
                worker.process.join()
            worker.conn.close()
        self.workers.clear()


def serve(conn: connection.Connection, threads: int, parent: int) -> None:
    """A worker process: films from ``conn``, one at a time, each result sent back; None
    ends it, and so does the death of the batch (``parent``), however it died."""
    code = 0
    try:
        worker_init(threads)
        _stop_with(parent)
        while True:
            task = conn.recv()
            if task is None:
                break
            conn.send(run_job(*task))
    except SystemExit as exc:  # SIGTERM or SIGHUP (interrupt.worker_signals)
        code = exc.code if isinstance(exc.code, int) else 1
    except EOFError:
        pass  # the batch is gone
    except BaseException:  # noqa: BLE001 - said here, then the batch hears of a death
        log.exception("a batch worker failed")
        code = 1
    # From here on a stop signal just ends the process. Raised as SystemExit inside the
    # interpreter's exit handlers, it printed their tracebacks (issue 22); a stopped
    # film's own clean-up has run already, in the ``finally`` blocks on the way here.
    for s in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, signal.SIG_DFL)
    sys.exit(code)


def _stop_with(parent: int) -> None:
    """SIGTERM here when the batch's process dies, even by ``kill -9`` (Linux): a worker
    must not go on with a film nobody will write, nor hold its lock."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return  # not Linux: the closed pipe ends it after its film
    if os.getppid() != parent:  # it died before we asked
        os.kill(os.getpid(), signal.SIGTERM)


def _how(exitcode: int | None) -> str:
    if exitcode is not None and exitcode < 0:
        try:
            return f"killed by {signal.Signals(-exitcode).name}"
        except ValueError:
            return f"killed by signal {-exitcode}"
    return f"exit status {exitcode}"


def _tidy(job: Job) -> None:
    """What a killed worker left of a film that will not run again: its temporary files
    and its lock file, removed as the next run would (taking the outputs' lock)."""
    folder = job.out_dir or job.video.parent
    if not folder.is_dir():
        return
    try:
        with OutputSet(folder, job.video.stem, inputs=(job.video,)):
            pass
    except (OSError, SubpipeError) as exc:
        log.warning("could not tidy up %s: %s", folder, exc)
