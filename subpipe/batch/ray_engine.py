"""`subpipe batch --engine ray`: a batch's films on a Ray cluster, the outputs written here.

One actor per job slot (``--jobs``), each holding its models (ray_worker.py); the films
travel to the actors in parts (transport.py). This driver takes each film's outputs
(lock, guard) before it hands the film out and commits what comes back through the
same ``pipeline.write`` as the local engine, so what may be overwritten, and how a set
of outputs is committed, is exactly as there.

A worker that dies mid-film costs that film nothing: it is run again on another actor
(``[batch] retries`` times) and a new actor takes the dead one's place; nothing was
written for it meanwhile. A film past ``[batch] film_timeout`` is stopped and fails. A
stop signal ends every actor (their copies of films removed) before it goes on up.

Without an address, Ray is started for the run (``ray.init(address="local")``, so a
cluster left running on the machine is never joined by accident) and stopped after it.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
import time
from collections import deque
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

from ..config import BatchSettings, Config, ray_address_ok
from ..errors import ModelError, SubpipeError, UsageError
from ..interrupt import handlers_kept
from ..manifest import Manifest
from ..outputs import OutputSet
from ..pipeline import Refusals, RunRequest, done_before, prepare, refusals, write
from .jobs import Job
from .ray_worker import FilmOutcome, FilmTask, FilmWorker, NodeReport
from .report import JobResult, failure, result_of
from .transport import MediaRef, MediaServer, remove_stale
from .worker import request_of, time_up

log = logging.getLogger(__name__)

INSTALL = "pip install 'subpipe[ray]'"
# How often the driver looks up from waiting: a stop signal and the time limits are
# noticed within this many seconds.
TICK = 0.5


@dataclass(frozen=True)
class RayPlan:
    """How the batch runs on Ray: ``workers`` actors (None: one per free CPU, or GPU),
    the cluster's ``address`` ('' starts one for the run), the batch's settings, and
    the config whose devices and weights the actors are made for."""

    workers: int | None
    address: str
    settings: BatchSettings
    config: Config
    force: bool = False
    use_cache: bool = True
    review: bool = False


def address_of(flag: str | None, settings: BatchSettings) -> str:
    """--address, else RAY_ADDRESS, else ``[batch] address``; '' means a Ray of our own.
    One that is no HOST:PORT (nor auto, nor a Ray Client address, refused later) is a
    usage error naming where it came from."""
    env = os.environ.get("RAY_ADDRESS", "")
    address = flag or env or settings.address
    if address in ("", "auto") or address.startswith("ray://") or ray_address_ok(address):
        return address
    source = "--address" if flag else "RAY_ADDRESS" if env else "[batch] address"
    raise UsageError(f"{source} {address!r} is not the HOST:PORT of a Ray cluster's head (such as 10.0.0.5:6379)")


def run_on_ray(jobs: list[Job], plan: RayPlan,
               on_result: Callable[[JobResult], None] = lambda r: None) -> list[JobResult]:
    """Every job on the cluster; the results in input order. ``on_result`` hears each
    as it finishes (outputs committed)."""
    with connected(plan) as ray:
        batch = _Batch(ray, jobs, plan, on_result)
        try:
            batch.run()
        finally:
            batch.close()
        return [batch.results[i] for i in range(len(jobs))]


@contextmanager
def connected(plan: RayPlan) -> Iterator[Any]:
    """Ray joined (or started, and stopped again when the block ends)."""
    try:
        import ray
    except ImportError:
        raise UsageError(f"--engine ray needs Ray, which is not installed: {INSTALL}") from None
    address = plan.address
    if address.startswith("ray://"):
        raise UsageError(f"{address}: Ray Client addresses are not supported; run subpipe on a node of the "
                         "cluster (e.g. with 'ray job submit') and give the head's HOST:PORT")
    if address and address != "auto":
        _reachable(address)
        _admitted(address)
    quiet = {"log_to_driver": False, "logging_level": logging.ERROR}
    _errors_to_log()
    # Ray sets its own SIGTERM handler as it starts; ours stop the batch cleanly.
    with handlers_kept():
        try:
            if address:
                ray.init(address=address, **quiet)
            else:
                cpus = os.cpu_count() or 1
                wanted = (plan.workers or 1) * plan.settings.cpus_per_actor
                # Its workers run at the driver's priority, not Ray's usual nice 15: on
                # this machine they are the work, as the local engine's workers are.
                ray.init(address="local", num_cpus=max(cpus, wanted), include_dashboard=False,
                         _system_config={"worker_niceness": 0}, **quiet)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            where = f"the Ray cluster at {address}" if address else "a local Ray"
            raise UsageError(f"cannot start or join {where}: {_first_line(exc)}") from None
    try:
        yield ray
    finally:
        with handlers_kept():
            ray.shutdown()
        if not address:
            remove_stale()  # copies of films left by workers that were killed


def _errors_to_log() -> None:
    """Ray prints what its nodes publish about this job (a worker that died, ...) on the
    driver's stdout, where subpipe prints only the paths it wrote. The batch says such
    things in its own words, so Ray's go to the log (seen with -v) instead."""
    from ray._private import worker

    printer = getattr(worker, "print_to_stdstream", None)
    if printer is None or getattr(printer, "subpipe", False):
        return

    def to_log(data: dict, ignore_prefix: bool) -> None:
        for line in data.get("lines", []):
            log.info("(ray %s) %s", data.get("pid", ""), line)

    to_log.subpipe = True  # type: ignore[attr-defined]
    worker.print_to_stdstream = to_log


def _reachable(address: str) -> None:
    """Fail in seconds, not after Ray's minute of retries, when nothing answers there."""
    host, _, port = address.rpartition(":")
    try:
        socket.create_connection((host, int(port)), timeout=5).close()
    except (OSError, ValueError) as exc:
        why = getattr(exc, "strerror", None) or exc
        raise UsageError(f"no Ray cluster answers at {address}: {why} (start one with "
                         "'ray start --head', or leave out --address to run a Ray of subpipe's own)") from None


def _admitted(address: str) -> None:
    """Fail at once when the cluster requires a token this driver lacks (or has wrong):
    ray.init retries for 20 s, printing a line of its log each second, and then says
    only that it failed to connect. One GCS client, made alone, says why in a moment."""
    try:
        from ray._raylet import GcsClient
        from ray.exceptions import AuthenticationError
    except ImportError:
        return  # another Ray: ray.init says what it says
    try:
        with _stderr_dropped():  # the C++ client's own line about it
            GcsClient(address=address)
    except AuthenticationError:
        given = "refused the token given" if os.environ.get("RAY_AUTH_TOKEN") else "this driver has no token"
        raise UsageError(f"the Ray cluster at {address} requires authentication and {given}: set "
                         "RAY_AUTH_MODE=token and the cluster's token in RAY_AUTH_TOKEN "
                         "(or ~/.ray/auth_token)") from None
    except Exception:  # noqa: BLE001 - anything else is ray.init's to report, in its words
        return


@contextmanager
def _stderr_dropped() -> Iterator[None]:
    """File descriptor 2 to /dev/null inside: native code writes there, past Python's sys.stderr."""
    sys.stderr.flush()
    saved = os.dup(2)
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 2)
    os.close(null)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


@dataclass
class _Film:
    """A film handed out: its outputs held here (locked) until what was made is written."""

    index: int
    job: Job
    request: RunRequest
    config: Config
    glossary: Any
    outputs: OutputSet
    guard: Refusals
    size: int
    started: float
    retried: list[str] = field(default_factory=list)


@dataclass
class _Actor:
    handle: Any
    ready: Any  # the ready() call's ref while starting, then None
    report: NodeReport | None = None
    film: _Film | None = None
    work: Any = None  # the make() call's ref
    since: float = 0.0


class _Batch:
    def __init__(self, ray: Any, jobs: list[Job], plan: RayPlan, on_result: Callable[[JobResult], None]):
        self.ray, self.jobs, self.plan, self.on_result = ray, jobs, plan, on_result
        self.settings = plan.settings
        self.results: dict[int, JobResult] = {}
        self.queue: deque[int] = deque(range(len(jobs)))
        self.actors: list[_Actor] = []
        self.open: dict[int, _Film] = {}
        self.start_errors: list[str] = []
        self.ran = False  # whether any worker started
        self.level = logging.getLogger("subpipe").getEffectiveLevel()
        self.driver_node = ray.get_runtime_context().get_node_id()
        self.server = None

    # ---- the cluster's side --------------------------------------------------------

    def run(self) -> None:
        need = self._need()
        workers = self._workers(need)
        self.threads = self._threads(workers)
        if not self.plan.address:
            # A Ray of our own is this machine: each actor asks for its share of the
            # cores, so Ray starts it with that many threads (OMP_NUM_THREADS), as the
            # local engine starts its workers: the same --jobs makes the same bytes.
            need["CPU"] = float(self.threads)
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        files = {i: os.fspath(job.video.resolve()) for i, job in enumerate(self.jobs)}
        # The films are read where they lie: on this node, whatever node asks.
        here = NodeAffinitySchedulingStrategy(node_id=self.driver_node, soft=False)
        self.server = self.ray.remote(MediaServer).options(num_cpus=0, max_concurrency=8,
                                                           scheduling_strategy=here).remote(files)
        self.worker_class = self.ray.remote(FilmWorker).options(
            num_cpus=need.get("CPU", 0), num_gpus=need.get("GPU", 0), max_restarts=0, max_task_retries=0,
            max_concurrency=2)  # a film, and discard() beside it
        for _ in range(workers):
            self._start_actor()
        while self.queue or self.open:
            self._hand_out()
            waiting = [a.ready for a in self.actors if a.ready is not None] + \
                      [a.work for a in self.actors if a.work is not None]
            if not waiting:
                self._no_worker_left()
                continue
            done, _ = self.ray.wait(waiting, num_returns=1, timeout=TICK)
            for ref in done:
                actor = next(a for a in self.actors if ref in (a.ready, a.work))
                if ref is actor.ready:
                    self._started(actor)
                else:
                    self._finished(actor)
            self._enforce_time_limit()

    def _need(self) -> dict[str, float]:
        """What each actor asks of a node: CPUs, and GPUs when a device is cuda."""
        a, t = self.plan.config.asr.device, self.plan.config.translate.device
        cuda = a.startswith("cuda") or t.startswith("cuda") or (
            "auto" in (a, t) and self.ray.cluster_resources().get("GPU", 0) > 0)
        need = {"CPU": float(self.settings.cpus_per_actor)}
        if cuda:
            need["GPU"] = self.settings.gpus_per_actor
        nodes = [n.get("Resources", {}) for n in self.ray.nodes() if n.get("Alive")]
        if not any(all(r.get(k, 0) >= v for k, v in need.items()) for r in nodes):
            asks = ", ".join(f"{v:g} {k}" for k, v in need.items())
            raise UsageError(f"no node of the Ray cluster has {asks} for one worker ([batch] cpus_per_actor, "
                             "gpus_per_actor; [asr] and [translate] device)")
        return need

    def _workers(self, need: dict[str, float]) -> int:
        total = self.ray.cluster_resources()
        room = int(min(total.get(k, 0) // v for k, v in need.items()))
        if self.plan.workers is None:
            free = self.ray.available_resources()
            workers = max(1, int(min(free.get(k, 0) // v for k, v in need.items())))
        else:
            workers = self.plan.workers
        workers = min(workers, len(self.jobs))
        if workers > room:
            log.warning("the Ray cluster has room for %d of the %d workers now; the others start when it has room",
                        room, workers)
        return workers

    def _threads(self, workers: int) -> int:
        # A Ray of our own is this machine: each worker gets its share of the cores, as
        # in the local engine (so the same --jobs gives the same threads, and outputs).
        if not self.plan.address:
            return max(self.settings.cpus_per_actor, (os.cpu_count() or 1) // workers)
        return self.settings.cpus_per_actor

    def _start_actor(self) -> None:
        cache = self.settings.cache
        handle = self.worker_class.remote(self.threads, cache, self.plan.use_cache)
        self.actors.append(_Actor(handle, handle.ready.remote(self.plan.config)))

    def _started(self, actor: _Actor) -> None:
        ref, actor.ready = actor.ready, None
        try:
            report = self.ray.get(ref)
        except self.ray.exceptions.RayError as exc:
            report = NodeReport("?", 0, "", "", error=_first_line(exc))
        from .. import __version__

        if not report.error and report.version != __version__:
            report = NodeReport(report.node, report.pid, report.version, "",
                                error=f"it has subpipe {report.version}, this driver {__version__}: install the same "
                                      "version on every node")
        if report.error:
            self.start_errors.append(report.error)
            log.warning("a worker on node %s can't run films: %s", report.node, report.error)
            self._end(actor)
            return
        actor.report, self.ran = report, True
        log.info("worker pid %d on node %s: %s", report.pid, report.node, report.weights)

    def _finished(self, actor: _Actor) -> None:
        film, ref = actor.film, actor.work
        actor.film, actor.work = None, None
        try:
            outcome: FilmOutcome = self.ray.get(ref)
        except self.ray.exceptions.RayError as exc:
            self._died(actor, film, exc)
            return
        for name, level, message in outcome.logs:
            logging.getLogger(name).log(level, "%s", message)
        self._close(film, self._written(film, outcome))

    def _died(self, actor: _Actor, film: _Film, exc: Exception) -> None:
        """The worker died mid-film: the film goes back to the front of the queue (another
        actor takes it) unless it has used its retries; a new actor takes the dead one's place."""
        report = actor.report
        note = f"its worker (pid {report.pid} on node {report.node}) died mid-film ({_first_line(exc).rstrip('.')})"
        film.retried.append(note)
        self._end(actor)
        if len(film.retried) <= self.settings.retries:
            log.warning("%s: %s: running it again on another worker", film.job.video, note)
            self.queue.appendleft(film.index)
        else:
            self._close(film, failure(film.job, f"{note} ({len(film.retried)} times; [batch] retries = "
                                                f"{self.settings.retries})", film.started,
                                      retried=tuple(film.retried)))
        self._start_actor()

    def _enforce_time_limit(self) -> None:
        limit = self.settings.film_timeout
        if limit <= 0:
            return
        for actor in [a for a in self.actors if a.film is not None]:
            if time.monotonic() - actor.since > limit:
                film = actor.film
                actor.film, actor.work = None, None
                self._end(actor)
                self._close(film, failure(film.job, time_up(limit), film.started, node=actor.report.node,
                                          retried=tuple(film.retried)))
                self._start_actor()

    def _no_worker_left(self) -> None:
        """No actor is starting or working, and films wait: the workers failed to start."""
        reason = self.start_errors[-1] if self.start_errors else "no worker could be started"
        if not self.ran:
            raise ModelError(f"no worker of the Ray cluster can run films: {reason}")
        while self.queue:
            index = self.queue.popleft()
            self._report(index, failure(self.jobs[index], f"not run: no worker left ({reason})", time.perf_counter()))

    def _end(self, *actors: _Actor) -> None:
        """End actors: each removes its copies of films (a few seconds allowed), then is killed."""
        for actor in actors:
            self.actors.remove(actor)
        asked = [actor.handle.discard.remote() for actor in actors]
        if asked:
            self.ray.wait(asked, num_returns=len(asked), timeout=5)
        for actor in actors:
            self._kill(actor.handle)

    def _kill(self, handle: Any) -> None:
        try:
            self.ray.kill(handle, no_restart=True)
        except (self.ray.exceptions.RayError, ValueError):
            pass  # gone already

    # ---- the driver's side: each film's outputs ------------------------------------

    def _hand_out(self) -> None:
        for actor in self.actors:
            while actor.report is not None and actor.film is None and self.queue:
                index = self.queue.popleft()
                film = self.open.get(index) or self._opened(index)
                if film is None:
                    continue
                media = MediaRef(index, os.fspath(film.request.video.resolve()), film.size, self.driver_node,
                                 self.server, round(self.settings.part_mb * 1_000_000))
                task = FilmTask(film.request, film.config, film.glossary, film.guard, media, self.level)
                actor.film, actor.work, actor.since = film, actor.handle.make.remote(task), time.monotonic()

    def _opened(self, index: int) -> _Film | None:
        """The film's outputs taken (locked, recovered, guarded) before any work is sent;
        None when it is already done, or can't be run (its result is then reported)."""
        job, started = self.jobs[index], time.perf_counter()
        try:
            request, config = request_of(job, self.plan.force, self.plan.review)
            glossary, out = prepare(request, config)
            outputs = OutputSet(out, request.video.stem, inputs=(request.video,)).__enter__()
        except SubpipeError as exc:
            self._report(index, failure(job, str(exc), started))
            return None
        try:
            if done_before(outputs, request, config, glossary):
                outputs.__exit__(None, None, None)
                self._report(index, _already_done(job, outputs.manifest, started))
                return None
            guard = refusals(outputs, request, config)
            if request.lang != "auto":
                guard(request.lang)  # refused now, before the film travels
            film = _Film(index, job, request, config, glossary, outputs, guard, request.video.stat().st_size, started)
        except SubpipeError as exc:
            outputs.__exit__(None, None, None)
            self._report(index, failure(job, str(exc), started))
            return None
        self.open[index] = film
        return film

    def _written(self, film: _Film, outcome: FilmOutcome) -> JobResult:
        more = {"node": outcome.node, "retried": tuple(film.retried)}
        if outcome.made is None:
            return failure(film.job, outcome.error, film.started, **more)
        try:
            result = write(outcome.made, film.request, film.config, film.glossary, film.outputs)
        except SubpipeError as exc:
            return failure(film.job, str(exc), film.started, **more)
        return result_of(film.job, result, film.started, **more)

    def _close(self, film: _Film, result: JobResult) -> None:
        self.open.pop(film.index, None)
        film.outputs.__exit__(None, None, None)
        self._report(film.index, result)

    def _report(self, index: int, result: JobResult) -> None:
        self.results[index] = result
        self.on_result(result)

    def close(self) -> None:
        """Every actor stopped (their films' copies removed), every film's outputs let go."""
        self._end(*self.actors)
        for film in list(self.open.values()):
            film.outputs.__exit__(None, None, None)
        self.open.clear()
        if self.server is not None:
            self._kill(self.server)


def _already_done(job: Job, manifest: Manifest, started: float) -> JobResult:
    outputs = tuple(str(manifest.path.parent / name) for name in sorted(manifest.records))
    findings = manifest.extra.get("findings", {})
    return JobResult(str(job.video), "ok", seconds=round(time.perf_counter() - started, 2), outputs=outputs,
                     findings=findings if isinstance(findings, dict) else {}, already_done=True)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
