"""``subpipe review``: the command line of the editor's desk (cli.py adds it to ``main``).

Two uses of one command:

    subpipe review film.mp4 [--tracks film.ur.srt film.zh.srt ...] [-o film.review.html]
    subpipe review --notes notes.json film.review.html
"""

from __future__ import annotations

import sys
from pathlib import Path

import click


@click.command()
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
@click.option("--config", "config_path", type=click.Path(path_type=Path), default=None,
              help="Project config (TOML) over configs/default.toml.")
def review(paths: tuple[Path, ...], tracks: tuple[Path, ...], tracks_dir: Path | None,
           output: Path | None, notes: Path | None, config_path: Path | None) -> None:
    """Write a review page for VIDEO (player, cues side by side, rule breaks, sign-off),
    or, with --notes, apply the editor's sign-off to PAGE."""
    # Imported here: cli.py imports this module to add the command.
    from .cli import _Fail
    from .errors import SubpipeError

    try:
        if notes is not None:
            _notes(notes, paths, bool(tracks or tracks_dir or output))
            return
        if not paths:
            raise click.UsageError("give the VIDEO to review (or --notes NOTES.json PAGE.html)")
        _page(paths[0], [*tracks, *paths[1:]] or None, tracks_dir, output, config_path)
    except SubpipeError as exc:
        raise _Fail(exc) from None


def _page(video: Path, tracks: list[Path] | None, tracks_dir: Path | None,
          output: Path | None, config_path: Path | None) -> None:
    from .config import load_config
    from .review import review_command

    if tracks and tracks_dir is not None:
        raise click.UsageError("give --tracks or --tracks-dir, not both")
    config = load_config(config_path)
    for path in review_command(video, tracks, output, config, tracks_dir=tracks_dir):
        click.echo(str(path))


def _notes(notes: Path, paths: tuple[Path, ...], building: bool) -> None:
    from .review import notes_command

    if building or len(paths) != 1:
        raise click.UsageError("--notes takes the notes and one review page: "
                               "subpipe review --notes NOTES.json PAGE.html")
    status, lines = notes_command(notes, paths[0])
    for line in lines:
        click.echo(line)
    if status:
        click.echo(f"{len(lines)} cue(s) flagged", err=True)
    sys.exit(status)
