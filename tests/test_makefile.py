"""The Makefile's batch rules: `make subs` builds every video once, keyed by its path
relative to MEDIA, and after a touch rebuilds only that one; `make check` lints them."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def make(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["make", "--no-print-directory", "-C", str(REPO), *args],
                          capture_output=True, text=True, timeout=600)


def test_subs_rebuilds_only_what_is_out_of_date(media: Path, tiny_config: Path, tmp_path: Path) -> None:
    videos, subs = tmp_path / "media", tmp_path / "subs"
    (videos / "a").mkdir(parents=True)
    (videos / "b").mkdir()
    shutil.copy(media / "tone.wav", videos / "a" / "film.wav")
    shutil.copy(media / "tone.mkv", videos / "b" / "film.mkv")
    common = (f"MEDIA={videos}", f"SUBS={subs}", "LANG=zh", f"CONFIG={tiny_config}")

    first = make("-j2", "subs", *common)
    assert first.returncode == 0, first.stdout + first.stderr
    # Two jobs on this machine's cores: each gets its share of threads, no more.
    share = max(1, (os.cpu_count() or 1) // 2)
    assert first.stdout.count(f"OMP_NUM_THREADS={share} ") == 2
    a, b = subs / "a" / "film.zh.srt", subs / "b" / "film.zh.srt"  # equal names, no collision
    assert a.is_file() and b.is_file()
    before = {p: p.stat().st_mtime_ns for p in (a, b)}

    again = make("subs", *common)
    assert again.returncode == 0 and "subpipe run" not in again.stdout

    later = time.time() + 5  # an editor replaced the film after its subtitles were made
    os.utime(videos / "b" / "film.mkv", (later, later))
    third = make("subs", *common)
    assert third.returncode == 0, third.stdout + third.stderr
    assert third.stdout.count("subpipe run") == 1 and "b/film.mkv" in third.stdout
    assert a.stat().st_mtime_ns == before[a]
    assert b.stat().st_mtime_ns != before[b]

    check = make("check", f"SUBS={subs}", f"CONFIG={tiny_config}")
    # The random model's cues may or may not break a rule; each file gets a verdict.
    assert check.returncode in (0, 2), check.stdout + check.stderr
    assert check.stdout.count("film.zh.srt") == 2


def test_batch_runs_a_folder_as_one_subpipe_batch(media: Path, tiny_config: Path, tmp_path: Path) -> None:
    videos, subs = tmp_path / "media", tmp_path / "subs"
    (videos / "a").mkdir(parents=True)
    shutil.copy(media / "tone.wav", videos / "a" / "film.wav")
    shutil.copy(media / "tone.mkv", videos / "other.mkv")
    common = (f"MEDIA={videos}", f"SUBS={subs}", "LANG=zh", f"CONFIG={tiny_config}")

    done = make("batch", *common, "JOBS=2")
    assert done.returncode == 0, done.stdout + done.stderr
    assert (subs / "a" / "film.zh.srt").is_file() and (subs / "other.zh.srt").is_file()
    assert (subs / "subpipe-batch.json").is_file()
    # The engine and the cluster pass through as they are given (the Ray engine itself
    # is tested in test_ray.py).
    planned = make("-n", "batch", *common, "ENGINE=ray", "JOBS=auto", "ADDRESS=10.0.0.5:6379")
    command = " ".join(planned.stdout.replace("\\\n", " ").split())  # make -n keeps the recipe's line breaks
    assert "--engine ray --jobs auto --address 10.0.0.5:6379" in command
    missing = make("batch", f"MEDIA={tmp_path / 'nowhere'}")
    assert missing.returncode != 0 and "is not a folder" in missing.stdout + missing.stderr
