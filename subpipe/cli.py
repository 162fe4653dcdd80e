"""The command line: a thin shell over the library. Errors become exit codes here only.

    subpipe run | translate | export | burn | check | eval | batch | review | models | cache clean
"""

from __future__ import annotations

import logging
import sys
import time
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Callable, Iterator

import click

from . import __version__
from .asr.device import resolve_device
from .asr.weights import model_inventory, resolve_whisper
from .batch.jobs import Job, Skipped, collect, nothing_to_do
from .batch.local import run_all
from .batch.report import JobResult, check_report, summary_table, write_report
from .batch.worker import stage_cache
from .burn import FITS, BurnRequest, burn, parse_aspect
from .cache import StageCache
from .check import check_file, exit_status, format_json, format_text
from .config import BACKENDS, ENGINES, Config, load_config, with_formats, with_overrides
from .cores import usable_cpus
from .errors import SubpipeError, UsageError
from .evaluate import evaluate_files
from .evaluate import format_json as eval_json
from .evaluate import format_text as eval_text
from .formats import FORMATS, chosen
from .formats.names import REPORT_NAME
from .interrupt import Interrupted, interrupted, signals_interrupt
from .listen import speech_of
from .media import choose_stream, probe, read_audio
from .pipeline import RunRequest, export_file, translate_file, writable_folder
from .pipeline import run as run_pipeline
from .review import notes_command, review_command
from .translate.lm_weights import available as lm_available
from .translate.lm_weights import resolve_lm
from .translate.routes import engine_inventory
from .types import LANGUAGES

DEVICE_HELP = ("Where Whisper runs (default: [asr] device, cpu); auto takes the GPU when there is one. "
               "On a GPU: [asr] gpu_backend, greedy through the graph-captured decoder.")


# What `export` writes an SRT as: every format but SRT itself.
_EXPORTED = tuple(name for name in FORMATS if name != "srt")

# Options several commands share, worded once.
_edit_option = click.option("--edit", is_flag=True,
                            help="Serve the review page for editing on 127.0.0.1 (the address is printed; "
                                 "Ctrl-C stops it).")
_port_option = click.option("--port", type=click.IntRange(0, 65535), default=0, show_default=True,
                            help="Port for --edit (0: any free port).")
_config_option = click.option("--config", "config_path", type=click.Path(path_type=Path), default=None,
                              help="Project config (TOML) over configs/default.toml.")
_force_option = click.option("--force", is_flag=True, help="Overwrite outputs even if an editor changed them.")
_formats_option = click.option("--format", "formats", default=None, metavar="FORMATS",
                               help=f"Write each track as these, comma-separated: {', '.join(FORMATS)} "
                                    "(default: [output] formats, srt).")


class _Formatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        prefix = "Warning: " if record.levelno >= logging.WARNING else ""
        return prefix + record.getMessage()


def _setup_logging(verbose: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_Formatter())
    root = logging.getLogger("subpipe")
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO if verbose else logging.WARNING)
    root.propagate = False


def _config(path: Path | None) -> Config:
    return load_config(path)


class _Fail(click.ClickException):
    """A library error at the boundary: one line on stderr and the convention's exit code."""

    def __init__(self, error: SubpipeError):
        super().__init__(str(error))
        self.exit_code = error.exit_code

    def show(self, file=None) -> None:  # noqa: ANN001 - click's signature
        click.echo(f"Error: {self.format_message()}", err=True)


class _Stopped(click.ClickException):
    """A stop signal (Ctrl-C, SIGTERM, SIGHUP): one line, and exit 128 + its number."""

    def __init__(self, stop: Interrupted, detail: str = "") -> None:
        detail = detail or "outputs already written are whole, and nothing partial was left"
        super().__init__(f"interrupted by {stop.name}: {detail}")
        self.exit_code = stop.exit_code

    def show(self, file=None) -> None:  # noqa: ANN001 - click's signature
        click.echo(f"Error: {self.format_message()}", err=True)


class _Cli(click.Group):
    """Every failure ends in one ``Error: ...`` line on stderr and the convention's status;
    SIGTERM and SIGHUP stop a command as Ctrl-C does."""

    def main(self, *args, **kwargs):  # noqa: ANN002, ANN003, ANN201 - click's signature
        kwargs["standalone_mode"] = False
        try:
            with signals_interrupt():
                status = super().main(*args, **kwargs)
        except click.UsageError as exc:
            command = exc.ctx.command_path if exc.ctx else "subpipe"
            click.echo(f"Error: {exc.format_message()} (see '{command} --help')", err=True)
            sys.exit(2)
        except click.ClickException as exc:
            exc.show()
            sys.exit(exc.exit_code)
        except (click.Abort, KeyboardInterrupt) as exc:
            # Stopped before a command ran: click turns the interrupt into Abort.
            stop = exc.__context__ if isinstance(exc, click.Abort) else exc
            stopped = _Stopped(interrupted(stop if isinstance(stop, KeyboardInterrupt) else KeyboardInterrupt()))
            stopped.show()
            sys.exit(stopped.exit_code)
        sys.exit(status if isinstance(status, int) else 0)

    def invoke(self, ctx: click.Context):  # noqa: ANN201 - click's signature
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt as stop:  # ours, or one a library made of it
            raise _Stopped(interrupted(stop)) from None


@click.group(cls=_Cli)
@click.version_option(__version__, prog_name="subpipe")
@click.option("-v", "--verbose", is_flag=True, help="Log each stage on stderr.")
def main(verbose: bool) -> None:
    """Bilingual broadcast subtitles from Urdu and Mandarin footage."""
    _setup_logging(verbose)


@main.command()
@click.argument("video", type=click.Path(path_type=Path))
@click.option("--lang", type=click.Choice([*LANGUAGES, "auto"]), default="auto", show_default=True,
              help="Language spoken; auto picks among the project's languages.")
@click.option("--audio-stream", type=click.IntRange(min=0), default=None,
              help="Audio stream to use, counting audio streams from 0 "
                   "(default: the first tagged with --lang, else the first).")
@click.option("--out", "out_dir", type=click.Path(path_type=Path), default=None,
              help="Folder for the outputs (default: beside the video).")
@_config_option
@click.option("--to", "targets", default="", metavar="LANGS",
              help="Translate into these languages, comma-separated (e.g. zh,en).")
@click.option("--backend", type=click.Choice(BACKENDS), default=None,
              help="Speech backend (default: [asr] backend, faster-whisper).")
@click.option("--device", default=None, metavar="cpu|cuda|cuda:N|auto", help=DEVICE_HELP)
@click.option("--review", is_flag=True, help="Also write VIDEO.review.html (and its proxy) for sign-off.")
@_edit_option
@_port_option
@click.option("--strict", is_flag=True, help="Exit 1 when the run finds anything for an editor (for overnight jobs).")
@_formats_option
@_force_option
def run(video: Path, lang: str, audio_stream: int | None, out_dir: Path | None,
        config_path: Path | None, targets: str, backend: str | None, device: str | None, review: bool,
        edit: bool, port: int, strict: bool, formats: str | None, force: bool) -> None:
    """Transcribe VIDEO and write VIDEO.<lang>.srt (and translations with --to)."""
    wanted = _format_names(formats)
    if edit and not review:
        raise click.UsageError("--edit serves the review page: give --review too")
    try:
        config = with_formats(with_overrides(_config(config_path), backend=backend, device=device), wanted)
        request = RunRequest(video=video, lang=lang, audio_stream=audio_stream, out_dir=out_dir,
                             force=force, targets=_languages(targets), review=review)
        with _ProgressBar() as bar:
            result = run_pipeline(request, config, progress=bar.start)
    except SubpipeError as exc:
        raise _Fail(exc) from None
    _report(result)
    if strict and result.findings:
        click.echo(f"Error: --strict: the outputs were written, but the run found {len(result.findings)} "
                   "thing(s) for an editor (above)", err=True)
        sys.exit(1)
    if edit:
        _serve_desk(video, config, out_dir, port)


@main.command()
@click.argument("srt_file", metavar="FILE.srt", type=click.Path(path_type=Path))
@click.option("--to", "targets", required=True, metavar="LANGS",
              help="Target languages, comma-separated (e.g. zh,en).")
@click.option("--lang", type=click.Choice(LANGUAGES), default=None,
              help="Language of FILE.srt (default: from its name, <film>.<lang>.srt).")
@click.option("--out", "out_dir", type=click.Path(path_type=Path), default=None,
              help="Folder for the outputs (default: beside FILE.srt).")
@_config_option
@_formats_option
@_force_option
def translate(srt_file: Path, targets: str, lang: str | None, out_dir: Path | None,
              config_path: Path | None, formats: str | None, force: bool) -> None:
    """Translate FILE.srt cue for cue (same count, same times) into other languages."""
    wanted = _format_names(formats)
    try:
        config = with_formats(_config(config_path), wanted)
        result = translate_file(srt_file, lang, _languages(targets), config, out_dir=out_dir, force=force)
    except SubpipeError as exc:
        raise _Fail(exc) from None
    _report(result)


@main.command()
@click.argument("srt_file", metavar="TRACK.srt", type=click.Path(path_type=Path))
@click.option("--format", "formats", required=True, metavar="FORMATS",
              help=f"What to write, comma-separated: {', '.join(_EXPORTED)}.")
@click.option("--out", "out_dir", type=click.Path(path_type=Path), default=None,
              help="Folder for the files (default: beside TRACK.srt).")
@click.option("--lang", default=None,
              help="Language of TRACK.srt: ur, zh, en or a pair such as ur-zh (default: from its name, "
                   "<film>.<lang>.srt).")
@click.option("--video", type=click.Path(path_type=Path), default=None,
              help="The film: its picture size (ASS) and frame rate (TTML) (default: 1920x1080 at the rules' rate).")
@_config_option
@_force_option
def export(srt_file: Path, formats: str, out_dir: Path | None, lang: str | None, video: Path | None,
           config_path: Path | None, force: bool) -> None:
    """Write TRACK.srt (an editor's corrected track) as <film>.<lang>.<ext> in other formats."""
    wanted = _format_names(formats, _EXPORTED)
    try:
        paths = export_file(srt_file, lang, chosen(wanted), _config(config_path), out_dir=out_dir, video=video,
                            force=force)
    except SubpipeError as exc:
        raise _Fail(exc) from None
    for path in paths:
        click.echo(str(path))


@main.command("burn")
@click.argument("video", type=click.Path(path_type=Path))
@click.option("--track", type=click.Path(path_type=Path), default=None, metavar="FILE",
              help="The subtitles: SRT, WebVTT, TTML, or an ASS script used as it is (default: the film's "
                   "one <stem>.<lang>.srt beside it).")
@click.option("--bilingual", is_flag=True, help="Burn the film's bilingual track (<stem>.<src>-<tgt>.srt).")
@click.option("--aspect", default=None, metavar="W:H",
              help="The output picture's shape, e.g. 9:16 for vertical clips (default: the film's).")
@click.option("--fit", type=click.Choice(FITS), default="pad", show_default=True,
              help="With --aspect: crop the picture to fill the shape, or pad it with black.")
@click.option("-o", "--output", type=click.Path(path_type=Path), default=None, metavar="OUT.mp4",
              help="The film to write (default: <stem>.<lang>.burned.mp4 beside the video).")
@_config_option
@_force_option
def burn_command(video: Path, track: Path | None, bilingual: bool, aspect: str | None, fit: str,
                 output: Path | None, config_path: Path | None, force: bool) -> None:
    """Burn subtitles into VIDEO (H.264/AAC MP4 through libass); the video itself is never touched."""
    try:
        config = _config(config_path)
        request = BurnRequest(video, track, bilingual, parse_aspect(aspect) if aspect else None, fit, output, force)
        with _ProgressBar("burning") as bar:
            path = burn(request, config, progress=bar.start)
    except SubpipeError as exc:
        raise _Fail(exc) from None
    click.echo(str(path))


class _Jobs(click.ParamType):
    """--jobs: a whole number from 1, or auto."""

    name = "N|auto"

    def convert(self, value, param, ctx):  # noqa: ANN001, ANN201 - click's signature
        if value is None or value == "auto":
            return None
        try:
            number = int(value)
        except (TypeError, ValueError):
            self.fail(f"'{value}' is not a whole number or auto", param, ctx)
        if number < 1:
            self.fail(f"{number} is not at least 1", param, ctx)
        return number


@main.command()
@click.argument("inputs", nargs=-1, required=True, type=click.Path(path_type=Path), metavar="INPUT...")
@click.option("--jobs", "workers", type=_Jobs(), default="1", show_default=True,
              help="Files at a time; each worker gets its share of the cores and loads models once "
                   "(auto: one per core here, or per free CPU or GPU of a Ray cluster).")
@click.option("--engine", type=click.Choice(ENGINES), default=None,
              help="Where the files run: worker processes here, or actors on a Ray cluster "
                   "(default: [batch] engine, local).")
@click.option("--address", default=None, metavar="HOST:PORT",
              help="The Ray cluster to join (default: RAY_ADDRESS, else [batch] address, else a Ray "
                   "started for the run and stopped after it).")
@click.option("--out", "out_dir", type=click.Path(path_type=Path), default=None,
              help="Output folder; a folder INPUT's layout is kept under it (default: beside each video).")
@click.option("--lang", type=click.Choice([*LANGUAGES, "auto"]), default="auto", show_default=True,
              help="Language spoken, for rows and folders that don't say.")
@click.option("--to", "targets", default="", metavar="LANGS", help="Translate into these languages (e.g. zh,en).")
@_config_option
@click.option("--report", "report_path", type=click.Path(path_type=Path), default=None,
              help="Machine-readable report (default: subpipe-batch.json in --out, else here).")
@click.option("--backend", type=click.Choice(BACKENDS), default=None,
              help="Speech backend for every file (default: each config's [asr] backend).")
@click.option("--device", default=None, metavar="cpu|cuda|cuda:N|auto", help=DEVICE_HELP)
@click.option("--no-cache", is_flag=True, help="Neither read nor write the stage cache.")
@click.option("--review", is_flag=True, help="Also write a review page (and proxy) for each video.")
@click.option("--strict", is_flag=True, help="A file with any finding counts as failed (exit 1).")
@_formats_option
@_force_option
def batch(inputs: tuple[Path, ...], workers: int | None, engine: str | None, address: str | None,
          out_dir: Path | None, lang: str, targets: str, config_path: Path | None, report_path: Path | None,
          backend: str | None, device: str | None, no_cache: bool, review: bool, strict: bool,
          formats: str | None, force: bool) -> None:
    """Subtitle every media file in folders (recursively) or CSV manifests (path,lang,targets,config).

    One failing file never stops the rest; exit status 1 if any failed. Files that are not
    media are listed as skipped; finding nothing to subtitle is an error (exit 2).
    """
    try:
        # A bad config fails once, up front; so does a GPU asked for and missing here
        # (on Ray, the GPUs that count are the cluster's: the workers check them).
        wanted = _format_names(formats)
        config = with_formats(with_overrides(_config(config_path), backend=backend, device=device), wanted)
        engine = engine or config.batch.engine
        if address is not None and engine != "ray":
            raise click.UsageError("--address is for --engine ray")
        if engine == "local":
            resolve_device(config.asr.device)
        jobs, skipped = collect(inputs, lang, _languages(targets), out_dir, config_path)
        if backend is not None or device is not None or strict or wanted:
            jobs = [replace(job, backend=backend, device=device, strict=strict, formats=wanted) for job in jobs]
        for item in skipped:
            click.echo(f"Warning: skipped {item.where}: {item.reason}", err=True)
        if not jobs:
            raise UsageError(nothing_to_do(inputs, skipped))
        # Every place the batch will write is checked now, not after hours of work.
        if out_dir is not None:
            writable_folder(out_dir, create=True, what="output folder")
        report = report_path or (out_dir or Path.cwd()) / REPORT_NAME
        check_report(report, [*inputs, *(j.video for j in jobs), *(j.config for j in jobs if j.config)])
        if engine == "local":
            stage_cache(config.batch, not no_cache).check()

            def start(show: Callable[[JobResult], None]) -> list[JobResult]:
                return run_all(jobs, workers or usable_cpus(), force, not no_cache, review, on_result=show,
                               settings=config.batch)
        else:  # each worker checks the cache on its node, where it is used
            from .batch.ray_engine import RayPlan, address_of, run_on_ray  # Ray only when its engine is used

            plan = RayPlan(workers, address_of(address, config.batch), config.batch, config, force, not no_cache,
                           review)

            def start(show: Callable[[JobResult], None]) -> list[JobResult]:
                return run_on_ray(jobs, plan, on_result=show)
        results = _run_batch(jobs, start, skipped, report, engine)
        click.echo(summary_table(results, skipped), err=True)
        write_report(report, results, skipped, engine=engine)
    except SubpipeError as exc:
        raise _Fail(exc) from None
    failed = sum(r.status != "ok" for r in results)
    sys.exit(1 if failed else 0)


def _run_batch(jobs: list[Job], start: Callable[[Callable[[JobResult], None]], list[JobResult]],
               skipped: list[Skipped], report: Path, engine: str) -> list[JobResult]:
    """Run the jobs, showing each file as it finishes (and, on a terminal, the progress);
    when a signal stops the batch, the report lists the files that finished and the ones
    that did not run."""
    results = []
    progress = _BatchProgress(len(jobs))

    def show(result: JobResult) -> None:
        results.append(result)
        with progress.aside():
            for path in ([] if result.already_done else result.outputs):
                click.echo(path)
            if result.status != "ok":
                click.echo(f"Warning: {result.file} {'failed' if result.status == 'failed' else 'has findings'}: "
                           f"{result.error}", err=True)
        progress.add(result)

    try:
        with progress:
            return start(show)
    except KeyboardInterrupt as caught:  # Ray's wait may raise its own for our signal
        stop = interrupted(caught)
        done = {r.file for r in results}
        try:
            write_report(report, results, skipped, interrupted=stop.name,
                         not_run=[j for j in jobs if str(j.video) not in done], engine=engine)
            where = f"listed in {report}"
        except SubpipeError:
            where = "the report could not be written"
        raise _Stopped(stop, f"{len(results)} of {len(jobs)} file(s) finished ({where}); "
                             "nothing partial was left") from None


class _BatchProgress:
    """On a terminal, one line on stderr: files done, hours of audio done, and the rate
    as times real time (audio heard per second of wall time). Nothing otherwise."""

    def __init__(self, total: int) -> None:
        self.total, self.done, self.audio = total, 0, 0.0
        self.shown = sys.stderr.isatty()
        self.started = time.monotonic()

    def add(self, result: JobResult) -> None:
        self.done += 1
        if not result.already_done:
            self.audio += result.duration
        self._draw()

    def line(self) -> str:
        wall = max(time.monotonic() - self.started, 1e-6)
        return (f"{self.done}/{self.total} files done, {self.audio / 3600:.2f} h of audio, "
                f"{self.audio / wall:.1f}x real time")

    @contextmanager
    def aside(self) -> Iterator[None]:
        """Clear the line while something else is printed (``add`` draws it again)."""
        if self.shown:
            click.echo("\r\033[K", nl=False, err=True)
        yield

    def _draw(self) -> None:
        if self.shown:
            click.echo(f"\r\033[K{self.line()}", nl=False, err=True)

    def __enter__(self) -> "_BatchProgress":
        self._draw()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.shown:
            click.echo("\r\033[K", nl=False, err=True)


@main.group()
def cache() -> None:
    """The stage cache (extracted audio, transcripts, translations)."""


@cache.command("clean")
def cache_clean() -> None:
    """Remove every cached stage result (model weights are kept)."""
    freed = StageCache().clean()
    click.echo(f"removed {freed / 1e6:,.1f} MB of cached stage results", err=True)


def _format_names(text: str | None, allowed: tuple[str, ...] = tuple(FORMATS)) -> tuple[str, ...] | None:
    """--format: formats, comma-separated, each once (None when not given)."""
    if text is None:
        return None
    names = tuple(dict.fromkeys(t.strip().lower() for t in text.split(",") if t.strip()))
    unknown = [t for t in names if t not in allowed]
    if unknown or not names:
        raise click.BadParameter(f"'{unknown[0] if unknown else text}' is not one of {', '.join(allowed)}",
                                 param_hint="'--format'")
    return names


def _languages(text: str) -> tuple[str, ...]:
    langs = tuple(t.strip() for t in text.split(",") if t.strip())
    unknown = [t for t in langs if t not in LANGUAGES]
    if unknown:
        raise click.BadParameter(f"'{unknown[0]}' is not one of {', '.join(LANGUAGES)}", param_hint="'--to'")
    return langs


# How the run's summary line names each category of finding (findings.CATEGORIES).
_KIND_WORDS = {"rule": "rule break(s)", "untranscribed": "untranscribed stretch(es) of speech",
               "media": "damaged stretch(es) of audio", "timing": "timing finding(s)",
               "script": "script finding(s)", "translation": "translation flag(s)"}


def _report(result) -> None:  # noqa: ANN001 - a pipeline.RunResult
    """Written paths on stdout; what an editor should look at on stderr, counted by kind."""
    for path in result.outputs:
        click.echo(str(path))
    counts = result.counts()
    if counts:
        parts = [f"{counts.get(kind, 0)} {words}" for kind, words in _KIND_WORDS.items()
                 if kind == "rule" or kind in counts]
        click.echo(f"{', '.join(parts)}: -v lists them here, subpipe check FILE lists the rule breaks",
                   err=True)


@main.command()
@click.argument("srt_file", metavar="FILE", type=click.Path(path_type=Path))
@click.option("--lang", default=None,
              help="Language of the file: ur, zh, en, or a bilingual pair such as ur-zh "
                   "(default: guessed from the text).")
@click.option("--video", type=click.Path(path_type=Path), default=None,
              help="The video: cues must end before its audio does, its frame rate sets the gap, and "
                   "speech with no subtitle (voice activity) is reported.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@_config_option
def check(srt_file: Path, lang: str | None, video: Path | None, fmt: str, config_path: Path | None) -> None:
    """Report every cue of FILE (SRT, WebVTT, ASS or TTML) that breaks a subtitle rule (exit 1 if any does)."""
    try:
        config = _config(config_path)
        fps = audio_end = speech = None
        if video is not None:
            info = probe(video)
            fps, audio_end = info.fps, info.audio_end
            audio = read_audio(info, choose_stream(info, None, None if lang is None else lang.split("-")[0]))
            # The speech ``run`` accounts for: the same function, the same [vad] settings.
            speech = speech_of(audio.samples, config)
        report = check_file(srt_file, config.rules, lang=lang, fps=fps, audio_end=audio_end, speech=speech)
    except SubpipeError as exc:
        raise _Fail(exc) from None
    status = exit_status(report)
    if fmt == "json" or status != 2:
        text = format_json(report) if fmt == "json" else format_text(report)
        click.echo(text if text.endswith("\n") else text + "\n", nl=False)
    if status == 2:
        click.echo(f"Error: {format_text(report).strip()}", err=True)
    sys.exit(status)


@main.command("eval")
@click.argument("hypothesis", metavar="HYP", type=click.Path(path_type=Path))
@click.option("--ref", "reference", required=True, type=click.Path(path_type=Path), metavar="REF",
              help="The reference: an SRT (or WebVTT, ASS, TTML), or a TSV with start, end and text "
                   "(or one column per language: eng, urd, cmn).")
@click.option("--lang", type=click.Choice(LANGUAGES), default=None,
              help="Language of HYP (default: from its name, film.zh.srt, else its script).")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@_config_option
def eval_command(hypothesis: Path, reference: Path, lang: str | None, fmt: str, config_path: Path | None) -> None:
    """Score the track HYP against a reference: CER (Mandarin) or WER (Urdu, English), chrF and
    BLEU by cues matched in time, speech recall, cue precision and rule compliance."""
    try:
        config = _config(config_path)
        result = evaluate_files(hypothesis, reference, config.rules, lang)
    except SubpipeError as exc:
        raise _Fail(exc) from None
    click.echo(eval_json(result) if fmt == "json" else eval_text(result), nl=False)


@main.command()
@_config_option
@click.option("--verify/--no-verify", default=True, show_default=True,
              help="Check each present file against its recorded sha256.")
@click.option("--prepare", is_flag=True,
              help="Find, verify and convert the configured weights now (else on first use).")
def models(config_path: Path | None, verify: bool, prepare: bool) -> None:
    """List the models subpipe can use, where each comes from and whether it is ready."""
    try:
        config = _config(config_path)
        if prepare:
            a = config.asr
            resolved = resolve_whisper(a.model, explicit=a.model_path, explicit_sha256=a.model_sha256)
            click.echo(str(resolved.path))
            # The translation model too, converted once, when its weights are installed.
            if config.translate.lm_directions and lm_available(config.translate.lm_model_path):
                click.echo(str(resolve_lm(config.translate.lm_model_path).path))
            return
        rows = model_inventory(config.asr.model, explicit=config.asr.model_path, verify=verify)
        engines = engine_inventory(config)
    except SubpipeError as exc:
        raise _Fail(exc) from None
    click.echo(f"{'MODEL':<14} {'SOURCE':<28} {'STATUS':<12} {'SIZE':>10}  LOCATION")
    for row in rows:
        size = f"{row.size / 1e6:,.1f} MB" if row.size else "-"
        click.echo(f"{row.model:<14} {row.source:<28} {row.status:<12} {size:>10}  {row.location}")
    click.echo("")
    click.echo(f"{'TRANSLATION':<12} {'DIRECTIONS':<30} {'STATUS':<34} {'SIZE':>10}  {'LICENCE':<20}  SOURCE")
    for e in engines:
        size = f"{e.size / 1e6:,.1f} MB" if e.size else "-"
        click.echo(f"{e.engine:<12} {e.directions:<30} {e.status:<34} {size:>10}  {e.licence:<20}  {e.source}")


class _ProgressBar:
    """A bar over the film's duration on a terminal; nothing otherwise."""

    def __init__(self, label: str = "transcribing") -> None:
        self.bar = None
        self.done = 0
        self.label = label

    def start(self, total: float):
        if not sys.stderr.isatty():
            return None
        self.bar = click.progressbar(length=max(1, round(total)), label=self.label, file=sys.stderr)
        self.bar.__enter__()
        return self.update

    def update(self, seconds: float) -> None:
        step = min(int(seconds), self.bar.length) - self.done
        if step > 0:
            self.bar.update(step)
            self.done += step

    def __enter__(self) -> "_ProgressBar":
        return self

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)


@main.command()
@click.argument("paths", nargs=-1, metavar="VIDEO [TRACK.srt]... | PAGE.html",
                type=click.Path(path_type=Path))
@click.option("--tracks", "tracks", multiple=True, type=click.Path(path_type=Path),
              metavar="FILE.srt",
              help="Tracks to show, source first (default: every <stem>.<lang>.srt and "
                   "<stem>.<src>-<tgt>.srt beside the video). Further tracks may follow.")
@click.option("--tracks-dir", type=click.Path(path_type=Path), default=None,
              help="Look for the tracks here instead of beside the video (as 'run --out').")
@click.option("-o", "--output", type=click.Path(path_type=Path), default=None,
              help="The page to write (default: <stem>.review.html beside the video); "
                   "the proxy <stem>.proxy.mp4 goes beside it.")
@click.option("--notes", type=click.Path(path_type=Path), default=None,
              help="Apply the notes exported from a review PAGE: list the flagged cues "
                   "and record the sign-off in the manifest (exit 1 if any is flagged).")
@_edit_option
@_port_option
@_config_option
def review(paths: tuple[Path, ...], tracks: tuple[Path, ...], tracks_dir: Path | None,
           output: Path | None, notes: Path | None, edit: bool, port: int, config_path: Path | None) -> None:
    """Write a review page for VIDEO (player, cues side by side, rule breaks, sign-off),
    or, with --notes, apply the editor's sign-off to PAGE; --edit serves it for editing."""
    try:
        if notes is not None:
            _notes(notes, paths, bool(tracks or tracks_dir or output or edit))
            return
        if not paths:
            raise click.UsageError("give the VIDEO to review (or --notes NOTES.json PAGE.html)")
        if edit:
            if tracks or output or len(paths) > 1:
                raise click.UsageError("--edit works on the film's own tracks: give --tracks-dir, not --tracks or -o")
            _serve_desk(paths[0], _config(config_path), tracks_dir, port)
            return
        _page(paths[0], [*tracks, *paths[1:]] or None, tracks_dir, output, config_path)
    except SubpipeError as exc:
        raise _Fail(exc) from None


def _serve_desk(video: Path, config: Config, tracks_dir: Path | None, port: int) -> None:
    """The editing page's server, until Ctrl-C or SIGTERM (exit 130 or 143, files whole)."""
    from .desk import open_desk
    from .desk_server import serve

    try:
        desk = open_desk(video, config, tracks_dir=tracks_dir)
        serve(desk, port, announce=lambda url: click.echo(url))
    except SubpipeError as exc:
        raise _Fail(exc) from None
    except KeyboardInterrupt as stop:
        raise _Stopped(interrupted(stop), "the desk stopped; every saved file is whole") from None


def _page(video: Path, tracks: list[Path] | None, tracks_dir: Path | None,
          output: Path | None, config_path: Path | None) -> None:
    if tracks and tracks_dir is not None:
        raise click.UsageError("give --tracks or --tracks-dir, not both")
    config = _config(config_path)
    for path in review_command(video, tracks, output, config, tracks_dir=tracks_dir):
        click.echo(str(path))


def _notes(notes: Path, paths: tuple[Path, ...], building: bool) -> None:
    if building or len(paths) != 1:
        raise click.UsageError("--notes takes the notes and one review page: "
                               "subpipe review --notes NOTES.json PAGE.html")
    status, lines = notes_command(notes, paths[0])
    for line in lines:
        click.echo(line)
    if status:
        click.echo(f"{len(lines)} cue(s) flagged", err=True)
    sys.exit(status)


if __name__ == "__main__":
    main()
