"""What a batch tells: one result per film, a table for people and a JSON report for tools."""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterable

from ..atomic import remove_leftovers, write_text
from ..errors import OutputError
from ..findings import record
from ..pipeline import RunResult, writable_folder
from .jobs import Job, Skipped


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


def failure(job: Job, error: str, started: float, **more: object) -> JobResult:
    return JobResult(str(job.video), "failed", seconds=_since(started), error=error, **more)


def result_of(job: Job, result: RunResult, started: float, **more: object) -> JobResult:
    """A finished run as the report has it; under --strict any finding fails the file."""
    found = record(result.findings)
    status, error = "ok", ""
    if job.strict and result.findings:
        status, error = "findings", f"{len(result.findings)} finding(s) under --strict: {_counted(found['counts'])}"
    return JobResult(str(job.video), status, result.duration, result.lang, result.cues, _since(started), error,
                     outputs=tuple(str(p) for p in result.outputs), findings=found, **more)


def check_report(path: Path, inputs: Iterable[Path] = ()) -> None:
    """Fail now, before hours of work, when the report can't be written at ``path``, or
    would replace one of the batch's ``inputs`` (a film, a CSV manifest, a config)."""
    if path.is_dir():
        raise OutputError(f"report {path} is a folder: give a file name with --report")
    if path.exists() and any(_same_file(path, source) for source in inputs):
        raise OutputError(f"report {path} is one of the batch's inputs: give another --report")
    writable_folder(path.parent, create=True, what="report folder")


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


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def _counted(counts: dict[str, int]) -> str:
    return ", ".join(f"{n} {kind}" for kind, n in counts.items())


def _since(started: float) -> float:
    return round(time.perf_counter() - started, 2)
