"""Many files: collect them from folders or a CSV manifest, run each, report all.

One failing file never stops the rest. Each worker process loads its models once and
reuses them for every file it is given; the stage cache makes reruns cheap. This is the
local engine; ray_engine.py runs the same films on a Ray cluster, through the same
halves of the pipeline (``pipeline.make`` where the work is, ``pipeline.write`` here).
"""

from __future__ import annotations

import csv
import json
import logging
import os
import signal
import threading
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator

from .atomic import remove_leftovers
from .cache import StageCache
from .config import BatchSettings, Config, load_config, with_overrides
from .errors import ConfigError, OutputError, SubpipeError, UsageError
from .interrupt import worker_signals
from .listen import load_transcriber
from .media import probe
from .pipeline import RunRequest, RunResult, findings_record, run, writable_folder
from .srtio import write_text
from .types import LANGUAGES

log = logging.getLogger(__name__)

# Containers by extension; files with other extensions are probed (rushes often have none).
MEDIA_EXTENSIONS = {".mp4", ".mkv", ".mov", ".mxf", ".ts", ".m2ts", ".mts", ".avi", ".webm",
                    ".wav", ".mp3", ".m4a", ".aac", ".flac", ".ogg", ".opus", ".mpg", ".mpeg"}
NEVER_MEDIA = {".srt", ".json", ".html", ".txt", ".csv", ".toml", ".md", ".py", ".done", ".tmp", ".lock",
               ".jpg", ".jpeg", ".png", ".pdf", ".xml"}
MANIFEST_COLUMNS = ("path", "lang", "targets", "config")
REPORT_NAME = "subpipe-batch.json"


@dataclass(frozen=True)
class Job:
    video: Path
    lang: str = "auto"
    targets: tuple[str, ...] = ()
    config: Path | None = None
    out_dir: Path | None = None
    backend: str | None = None  # --backend, over the config's [asr] backend
    device: str | None = None  # --device, over the config's [asr] device
    strict: bool = False  # --strict: a file with any finding fails


@dataclass(frozen=True)
class Skipped:
    """An input that was not run: where it came from and why."""

    where: str
    reason: str


@dataclass(frozen=True)
class JobResult:
    """One file's outcome. ``findings``: what the run found, as the manifest records it
    (counts by kind, untranscribed speech and damaged audio with their times)."""

    file: str
    status: str  # ok | failed | findings (--strict and something was found)
    duration: float = 0.0
    lang: str = ""
    cues: int = 0
    seconds: float = 0.0
    error: str = ""
    outputs: tuple[str, ...] = field(default_factory=tuple)
    findings: dict = field(default_factory=dict)
    # Ray: the node that made it, the worker deaths it was run again after (one line
    # each), and whether its outputs were already done and recorded (nothing was run).
    node: str = ""
    retried: tuple[str, ...] = ()
    already_done: bool = False


def collect(inputs: Iterable[Path], lang: str, targets: tuple[str, ...], out: Path | None,
            config: Path | None) -> tuple[list[Job], list[Skipped]]:
    """Jobs from folders (recursively) and CSV manifests; what was not run (files that are
    not media, bad rows) comes back as skipped. An input that does not exist is a UsageError."""
    jobs: list[Job] = []
    skipped: list[Skipped] = []
    missing = [str(item) for item in inputs if not item.exists()]
    if missing:
        raise UsageError(f"{', '.join(missing)}: no such file or folder")
    for item in inputs:
        if item.is_dir():
            for video in _media_in(item, skipped):
                rel_dir = video.parent.relative_to(item)
                jobs.append(Job(video, lang, targets, config, (out / rel_dir) if out else None))
        elif item.suffix.lower() == ".csv":
            rows, bad = _manifest(item, lang, targets, out, config)
            jobs += rows
            skipped += bad
        else:
            jobs.append(Job(item, lang, targets, config, out))
    return _without_clashes(jobs, skipped)


def nothing_to_do(inputs: Iterable[Path], skipped: list[Skipped]) -> str:
    """Why a batch found no job, in words: doing nothing is no success."""
    where = ", ".join(str(i) for i in inputs)
    if not skipped:
        return f"nothing to subtitle: {where} holds no files"
    return f"nothing to subtitle in {where}: {len(skipped)} file(s) or row(s) skipped, listed above"


def check_report(path: Path) -> None:
    """Fail now, before hours of work, when the report can't be written at ``path``."""
    if path.is_dir():
        raise OutputError(f"report {path} is a folder: give a file name with --report")
    writable_folder(path.parent, create=True, what="report folder")


def _without_clashes(jobs: list[Job], skipped: list[Skipped]) -> tuple[list[Job], list[Skipped]]:
    """Two films whose outputs would share names (film.mp4, film.mov in one folder) can't
    both be written: the second is skipped, never allowed to replace the first's."""
    seen: dict[tuple[Path, str], Path] = {}
    kept = []
    for job in jobs:
        where = ((job.out_dir or job.video.parent).resolve(), job.video.stem)
        if where in seen:
            skipped.append(Skipped(str(job.video), f"its outputs would replace those of {seen[where]}"))
            continue
        seen[where] = job.video
        kept.append(job)
    return kept, skipped


def _media_in(folder: Path, skipped: list[Skipped]) -> Iterator[Path]:
    """Media under ``folder``; every other file is added to ``skipped`` with why, except
    hidden files and the outputs subpipe wrote there itself."""
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith(".")):
        ext = path.suffix.lower()
        if _written_by_us(path):
            continue
        if ext in MEDIA_EXTENSIONS:
            yield path
        elif ext in NEVER_MEDIA:
            skipped.append(Skipped(str(path), "not media"))
        else:
            reason = _no_audio(path)
            if reason:
                skipped.append(Skipped(str(path), reason))
            else:
                yield path


def _written_by_us(path: Path) -> bool:
    """An output of an earlier run beside its video: a track, a manifest, a review page
    and its proxy (which is media, but never to be subtitled), a batch report."""
    name = path.name
    if name == REPORT_NAME or name.endswith((".subpipe.json", ".review.html")):
        return True
    if name.endswith(".proxy.mp4"):
        return path.with_name(name.removesuffix(".proxy.mp4") + ".review.html").exists()
    if path.suffix == ".srt":
        stem = name.rsplit(".", 2)[0]
        return path.with_name(f"{stem}.subpipe.json").exists()
    return False


def _no_audio(path: Path) -> str:
    """Why a file of no known extension is no media ('' when it has audio)."""
    try:
        return "" if probe(path).audio_streams else "no audio stream"
    except SubpipeError:
        return "not media (ffmpeg can't read it)"


def _manifest(path: Path, lang: str, targets: tuple[str, ...], out: Path | None,
              config: Path | None) -> tuple[list[Job], list[Skipped]]:
    """Rows ``path,lang,targets[,config]``; paths are relative to the manifest's folder."""
    jobs, skipped = [], []
    try:
        with open(path, encoding="utf-8-sig", newline="") as f:
            reader = csv.DictReader(f)
            missing = [c for c in MANIFEST_COLUMNS[:1] if c not in (reader.fieldnames or [])]
            if missing:
                raise UsageError(f"manifest {path} needs a header row with the columns {', '.join(MANIFEST_COLUMNS)}")
            unknown = [c for c in reader.fieldnames or [] if c not in MANIFEST_COLUMNS]
            if unknown:
                raise UsageError(f"manifest {path} has an unknown column '{unknown[0]}'")
            for row in reader:
                where = f"{path}:{reader.line_num}"
                job, reason = _row(row, path.parent, lang, targets, out, config)
                if job is None:
                    skipped.append(Skipped(where, reason))
                else:
                    jobs.append(job)
    except UnicodeDecodeError:
        raise UsageError(f"manifest {path} is not UTF-8 text") from None
    except OSError as exc:
        raise UsageError(f"cannot read manifest {path}: {exc.strerror}") from None
    return jobs, skipped


def _row(row: dict, base: Path, lang: str, targets: tuple[str, ...], out: Path | None,
         config: Path | None) -> tuple[Job | None, str]:
    raw = (row.get("path") or "").strip()
    if not raw:
        return None, "no path"
    video = Path(raw) if Path(raw).is_absolute() else base / raw
    if not video.is_file():
        return None, f"{raw}: no such file"
    row_lang = (row.get("lang") or "").strip() or lang
    if row_lang not in (*LANGUAGES, "auto"):
        return None, f"bad language '{row_lang}' (use {', '.join(LANGUAGES)} or auto)"
    row_targets = tuple(t.strip() for t in (row.get("targets") or "").replace(";", ",").split(",") if t.strip())
    bad = [t for t in row_targets if t not in LANGUAGES]
    if bad:
        return None, f"bad target language '{bad[0]}'"
    row_config = (row.get("config") or "").strip()
    cfg = (base / row_config) if row_config else config
    if cfg is not None and not cfg.is_file():
        return None, f"config {row_config} not found"
    if row_config:
        try:
            load_config(cfg)  # a bad setting is named now, not after the files before it
        except ConfigError as exc:
            return None, str(exc)
    return Job(video, row_lang, row_targets or targets, cfg, out), ""


# ---- running ----------------------------------------------------------------------

_engines: dict[str, object] = {}


def load_once(config: Config):  # noqa: ANN202 - a Transcriber
    """Models are loaded once per worker process and reused for every file."""
    key = json.dumps(asdict(config.asr), sort_keys=True, default=str)
    if key not in _engines:
        _engines[key] = load_transcriber(config)
    return _engines[key]


def request_of(job: Job, force: bool = False, review: bool = False) -> tuple[RunRequest, Config]:
    """The run a job asks for, with its config (its row's, --backend over it)."""
    config = with_overrides(load_config(job.config), backend=job.backend, device=job.device)
    return RunRequest(job.video, job.lang, None, job.out_dir, force, job.targets, review), config


def stage_cache(settings: BatchSettings, enabled: bool = True) -> StageCache:
    """The stage cache a batch uses: ``[batch] cache`` when set, else the user's."""
    return StageCache(Path(settings.cache) if settings.cache else None, enabled=enabled)


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


def failure(job: Job, error: str, started: float, **more: object) -> JobResult:
    return JobResult(str(job.video), "failed", seconds=_since(started), error=error, **more)


def result_of(job: Job, result: RunResult, started: float, **more: object) -> JobResult:
    """A finished run as the report has it; under --strict any finding fails the file."""
    record = findings_record(result.findings)
    status, error = "ok", ""
    if job.strict and result.findings:
        status, error = "findings", f"{len(result.findings)} finding(s) under --strict: {_counted(record['counts'])}"
    return JobResult(str(job.video), status, result.duration, result.lang, result.cues, _since(started), error,
                     outputs=tuple(str(p) for p in result.outputs), findings=record, **more)


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


def _counted(counts: dict[str, int]) -> str:
    return ", ".join(f"{n} {kind}" for kind, n in counts.items())


def _since(started: float) -> float:
    return round(time.perf_counter() - started, 2)


def _worker_init(threads: int) -> None:
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
            context.Pool(workers, initializer=_worker_init, initargs=(threads,), maxtasksperchild=None) as pool:
        for result in pool.imap(_run_packed, [(job, force, use_cache, review, settings) for job in jobs]):
            results.append(result)
            on_result(result)
        pool.close()
        pool.join()
    return results


def summary_table(results: list[JobResult], skipped: list[Skipped]) -> str:
    """A plain-text table for people: file, duration, language, cues, findings, seconds, status, error."""
    rows = [("FILE", "DURATION", "LANG", "CUES", "FINDINGS", "SECONDS", "STATUS", "ERROR")]
    for r in results:
        found = sum(r.findings.get("counts", {}).values())
        rows.append((r.file, f"{r.duration:.1f}", r.lang or "-", str(r.cues), str(found) if r.findings else "-",
                     f"{r.seconds:.1f}", r.status, r.error))
    for s in skipped:
        rows.append((s.where, "-", "-", "-", "-", "-", "skipped", s.reason))
    widths = [max(len(row[i]) for row in rows) for i in range(7)]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row[:7], widths)) + "  " + row[7] for row in rows)


def write_report(path: Path, results: list[JobResult], skipped: list[Skipped], *, interrupted: str | None = None,
                 not_run: Iterable[Job] = (), engine: str = "local") -> None:
    """The report, written whole; a killed batch's half-written one is cleared away first."""
    remove_leftovers(path)
    write_text(path, report_json(results, skipped, interrupted=interrupted, not_run=not_run, engine=engine))


def report_json(results: list[JobResult], skipped: list[Skipped], *, interrupted: str | None = None,
                not_run: Iterable[Job] = (), engine: str = "local") -> str:
    """The machine-readable report. A batch stopped by a signal reports the files that
    finished, names the signal under ``interrupted`` and lists the rest under ``not_run``;
    ``retried`` names the files run again after a worker died, ``already_done`` counts
    the files whose outputs were done and recorded before (Ray)."""
    data = {
        "engine": engine,
        "files": [asdict(r) for r in results],
        "skipped": [asdict(s) for s in skipped],
        "ok": sum(r.status == "ok" for r in results),
        "failed": sum(r.status != "ok" for r in results),
        "retried": [r.file for r in results if r.retried],
        "already_done": sum(r.already_done for r in results),
        "interrupted": interrupted,
        "not_run": [str(job.video) for job in not_run],
    }
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"
