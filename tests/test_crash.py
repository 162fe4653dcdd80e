"""Issue 12, case 4: kill -9 a run at chosen points of writing its outputs. After each,
the set on disk is the old one or the new one; the next run, without --force, succeeds;
every output then matches its record; and no temporary file survives it.

``$SUBPIPE_CRASH_AT`` names the point where the process kills itself (atomic.crash_point).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from subpipe.digest import sha256_file
from subpipe.outputs import OutputSet

REPO = Path(__file__).resolve().parent.parent
TRACKS = ("film.ur.srt", "film.en.srt", "film.ur-en.srt")
# Every step of a run's writing, in order: the lock; the cache's memo of the input's
# hash; each output staged; the manifest that commits them (written, then renamed); each
# output renamed into place; the manifest without pending; the batch's report.
POINTS = ("lock.taken", "atomic.before_rename:1", "commit.staged:1", "commit.staged:2", "commit.staged:3",
          "atomic.before_rename:2", "commit.recorded", "commit.renamed:1", "commit.renamed:2",
          "commit.renamed:3", "atomic.before_rename:3", "commit.done", "atomic.before_rename:4")


def subpipe(tmp_path: Path, *args: str | Path, crash_at: str = "") -> subprocess.CompletedProcess:
    env = dict(os.environ, SUBPIPE_CACHE=str(tmp_path / "cache"))
    env.pop("SUBPIPE_CRASH_AT", None)
    if crash_at:
        env["SUBPIPE_CRASH_AT"] = crash_at
    return subprocess.run([sys.executable, "-m", "subpipe.cli", *map(str, args)], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=600)


def the_set(folder: Path) -> dict[str, bytes]:
    return {name: (folder / name).read_bytes() for name in TRACKS}


def test_kill_9_at_any_point_leaves_the_old_set_or_the_new_one(media: Path, tiny_asr: str, tmp_path: Path) -> None:
    # Old and new differ in the Urdu direction marks only: the new set is made from the
    # stage cache the first run filled, so each killed run reaches its writing at once.
    base = tiny_asr + "[vad]\nenabled = false\n"
    old_config, new_config = tmp_path / "old.toml", tmp_path / "new.toml"
    old_config.write_text(base + '[output]\nurdu_direction_marks = "rle"\n')
    new_config.write_text(base + '[output]\nurdu_direction_marks = "rlm"\n')
    films, outs = tmp_path / "films", tmp_path / "outs"
    for i, _ in enumerate(POINTS):
        (films / f"p{i:02d}").mkdir(parents=True)
        shutil.copy(media / "tone.wav", films / f"p{i:02d}" / "film.wav")
    run = ("--lang", "ur", "--to", "en")

    first = subpipe(tmp_path, "batch", films / "p00", "--out", outs / "p00", *run, "--config", old_config)
    assert first.returncode == 0, first.stderr
    (outs / "p00" / "subpipe-batch.json").unlink()
    for i in range(1, len(POINTS)):
        shutil.copytree(outs / "p00", outs / f"p{i:02d}")
    old = the_set(outs / "p00")

    def crash(i: int) -> subprocess.CompletedProcess:
        # The report is the one the next run writes: its half-written copy must go too.
        return subpipe(tmp_path, "batch", films / f"p{i:02d}", "--out", outs / f"p{i:02d}", *run,
                       "--report", outs / "subpipe-batch.json", "--config", new_config, crash_at=POINTS[i])

    with ThreadPoolExecutor(3) as pool:
        crashed = list(pool.map(crash, range(len(POINTS))))
    for point, result in zip(POINTS, crashed):
        assert result.returncode == -9, f"{point} was never reached: {result.stderr}"

    # What each killed run left, once recovered (on a copy: the next run recovers the original).
    recovered = []
    for i in range(len(POINTS)):
        copy = shutil.copytree(outs / f"p{i:02d}", tmp_path / "copies" / f"p{i:02d}")
        with OutputSet(copy, "film"):
            pass
        recovered.append(the_set(copy))

    again = subpipe(tmp_path, "batch", films, "--out", outs, *run, "--config", new_config)
    assert again.returncode == 0, again.stderr
    new = the_set(outs / "p00")
    assert new != old
    for i, point in enumerate(POINTS):
        folder = outs / f"p{i:02d}"
        assert recovered[i] in (old, new), point
        assert the_set(folder) == new, point
        manifest = json.loads((folder / "film.subpipe.json").read_text(encoding="utf-8"))
        assert "pending" not in manifest
        assert {name: sha256_file(folder / name) for name in TRACKS} == {
            name: manifest["files"][name]["sha256"] for name in TRACKS}, point
        assert [p.name for p in folder.iterdir() if p.name.startswith(".")] == [], point
    # Killed before the commit point, the old set stood; after it, the new one.
    assert [r == new for r in recovered] == [p in ("commit.recorded", "commit.renamed:1", "commit.renamed:2",
                                                   "commit.renamed:3", "atomic.before_rename:3", "commit.done",
                                                   "atomic.before_rename:4") for p in POINTS]
    assert [p.name for p in outs.iterdir() if p.is_file()] == ["subpipe-batch.json"]
    assert not [p for p in (tmp_path / "cache").rglob("*.tmp")]
