"""The manifest reader on whatever a disk or an editor leaves, and the output set: its
lock, and outputs committed together with their record (issue 12, cases 2, 4, 6, 8)."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from subpipe.errors import OutputBusy, OutputError, OverwriteRefused
from subpipe.manifest import Manifest, Record
from subpipe.outputs import OutputSet

REPO = Path(__file__).resolve().parent.parent
META = {"model": "base", "backend": "faster-whisper", "settings": {"beam": 3}}


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def commit(folder: Path, texts: dict[str, str], force: bool = False) -> tuple[Path, ...]:
    with OutputSet(folder, "film") as outputs:
        return outputs.commit({folder / name: text for name, text in texts.items()}, META, force)


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def assert_matches_its_record(folder: Path) -> None:
    manifest = json.loads((folder / "film.subpipe.json").read_text(encoding="utf-8"))
    assert "pending" not in manifest
    for name, record in manifest["files"].items():
        assert sha((folder / name).read_bytes()) == record["sha256"], name


CUE = "1\n00:00:01,000 --> 00:00:02,000\n"
OLD = {"film.zh.srt": CUE + "旧\n", "film.en.srt": CUE + "old\n"}
NEW = {"film.zh.srt": CUE + "新\n", "film.en.srt": CUE + "new\n"}


def on_disk(folder: Path) -> dict[str, str]:
    return {name: (folder / name).read_text(encoding="utf-8") for name in OLD}


# ---- reading a manifest -----------------------------------------------------------

def written(folder: Path) -> bytes:
    commit(folder, OLD)
    return (folder / "film.subpipe.json").read_bytes()


@pytest.mark.parametrize("encoding", ["utf-8-sig", "utf-16", "utf-16-be"])
def test_a_manifest_an_editor_re_saved_with_a_byte_order_mark_is_read(tmp_path: Path, encoding: str) -> None:
    text = written(tmp_path).decode("utf-8")
    data = text.encode(encoding)
    if encoding == "utf-16-be":
        data = b"\xfe\xff" + data
    (tmp_path / "film.subpipe.json").write_bytes(data)
    manifest = Manifest(tmp_path / "film.subpipe.json")
    assert manifest.damage is None and set(manifest.records) == set(OLD)
    assert manifest.refusals(tmp_path / name for name in OLD) == []
    assert commit(tmp_path, NEW)  # replaced as ours, no --force needed


@pytest.mark.parametrize("data, damage", [
    ('{"files": {}}'.encode("utf-16-le"), "is not valid JSON"),  # UTF-16 needs its mark
    (b"\x89PNG\r\n\x1a\n\x00\x00\xff\xd8", "is not UTF-8 or UTF-16 text"),
    (b"[" * 200_000 + b"]" * 200_000, "is JSON nested too deeply"),
    (b'{"files": ' * 100_000 + b"{}" + b"}" * 100_000, "is JSON nested too deeply"),
    (b'{"version": 1, "files": {', "is not valid JSON"),
    (b"[1, 2]", "is not a subpipe manifest (no table of files)"),
    (b'{"version": 7, "files": {}}', "has version 7, which this subpipe can't read"),
])
def test_a_manifest_that_cant_be_read_vouches_for_nothing_and_says_why(tmp_path: Path, data: bytes,
                                                                      damage: str) -> None:
    written(tmp_path)
    (tmp_path / "film.subpipe.json").write_bytes(data)
    manifest = Manifest(tmp_path / "film.subpipe.json")
    assert (manifest.damage, manifest.records) == (damage, {})
    with pytest.raises(OverwriteRefused) as info:
        commit(tmp_path, NEW)
    assert str(info.value) == (f"film.zh.srt, film.en.srt exist, and film.subpipe.json {damage}, "
                               "so it vouches for nothing: use --force to overwrite")
    assert on_disk(tmp_path) == OLD
    commit(tmp_path, NEW, force=True)  # --force rewrites it
    assert on_disk(tmp_path) == NEW
    assert_matches_its_record(tmp_path)


def test_the_records_that_can_be_read_still_vouch(tmp_path: Path) -> None:
    doc = json.loads(written(tmp_path))
    doc["files"]["film.en.srt"]["sha256"] = 12
    (tmp_path / "film.subpipe.json").write_text(json.dumps(doc), encoding="utf-8")
    manifest = Manifest(tmp_path / "film.subpipe.json")
    assert manifest.damage == "has damaged records ('film.en.srt')"
    assert [(p.name, why) for p, why in manifest.refusals(tmp_path / n for n in OLD)] == [("film.en.srt", "damaged")]


@pytest.mark.parametrize("change, message", [
    (lambda f: (f / "film.en.srt").write_text("edited\n"), "film.en.srt was changed since subpipe wrote it"),
    (lambda f: (f / "film.subpipe.json").unlink(),
     "film.zh.srt, film.en.srt exist, and there is no film.subpipe.json to say that subpipe wrote them"),
    (lambda f: (f / "film.subpipe.json").write_text('{"version": 1, "files": {}}'),
     "film.zh.srt, film.en.srt were not written by subpipe (film.subpipe.json has no record of them)"),
])
def test_a_refusal_says_what_is_actually_wrong(tmp_path: Path, change, message: str) -> None:  # noqa: ANN001
    written(tmp_path)
    change(tmp_path)
    with pytest.raises(OverwriteRefused) as info:
        commit(tmp_path, NEW)
    assert str(info.value) == f"{message}: use --force to overwrite"


@pytest.mark.parametrize("name", ["film.en.srt", "film.subpipe.json"])
def test_a_folder_where_an_output_goes_is_named_even_with_force(tmp_path: Path, name: str) -> None:
    (tmp_path / name).mkdir()
    with pytest.raises(OutputError) as info:
        commit(tmp_path, NEW, force=True)
    assert str(info.value) == (f"{tmp_path / name} is a folder, where subpipe writes an output: "
                               "move it away, or choose another --out")
    assert not (tmp_path / "film.zh.srt").exists() and leftovers(tmp_path) == []


JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
                    max_leaves=20)
NAMES = st.sampled_from(["film.zh.srt", "film.en.srt", "film.ur-zh.srt", "../escape", "", ".", "a/b"])


def documents() -> st.SearchStrategy[dict]:
    record = st.fixed_dictionaries({"sha256": st.sampled_from([sha(b"x"), "0" * 63, 7]),
                                    "model": st.text(max_size=4) | st.integers()},
                                   optional={"backend": JSON, "settings": JSON, "extra": JSON})
    return st.fixed_dictionaries({"files": st.dictionaries(NAMES, record | JSON, max_size=3)},
                                 optional={"version": st.sampled_from([1, 2, "1"]), "review": JSON,
                                           "pending": st.dictionaries(NAMES, st.text(max_size=20) | JSON,
                                                                      max_size=2)})


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=300) | JSON.map(lambda v: json.dumps(v).encode())
       | documents().map(lambda d: json.dumps(d).encode("utf-16")) | documents().map(lambda d: json.dumps(d).encode()))
def test_any_manifest_is_read_without_crashing(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "film.subpipe.json"
    path.write_bytes(data)
    (tmp_path / "film.zh.srt").write_text("x")
    manifest = Manifest(path)
    for name, record in manifest.records.items():
        assert isinstance(record, Record) and len(record.sha256) == 64
    for name, tmp in manifest.pending.items():  # never a name outside the folder
        assert "/" not in name and name not in ("", ".", "..") and tmp.startswith(f".{name}.")
    for refused, why in manifest.refusals([tmp_path / "film.zh.srt"]):
        assert why in ("changed", "no record", "damaged")
        assert (why == "damaged") == (manifest.damage is not None and "film.zh.srt" not in manifest.records)


RECORDS = st.dictionaries(
    st.text(st.characters(blacklist_characters="/\0", blacklist_categories=("Cs",)), min_size=1, max_size=12)
    .filter(lambda n: n not in (".", "..")),
    st.builds(Record, st.text("0123456789abcdef", min_size=64, max_size=64), st.text(max_size=8),
              st.text(max_size=8), st.dictionaries(st.text(max_size=5), st.integers() | st.text(max_size=5))),
    max_size=5)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(records=RECORDS, review=JSON)
def test_what_is_saved_is_read_back(tmp_path: Path, records: dict[str, Record], review: object) -> None:
    manifest = Manifest(tmp_path / "film.subpipe.json")
    manifest.records, manifest.extra = dict(records), {"review": review}
    manifest.save()
    again = Manifest(tmp_path / "film.subpipe.json")
    assert again.damage is None and again.records == records and again.pending == {}
    # Compared as JSON: NaN is not equal to itself; keys are saved sorted.
    assert json.dumps(again.extra["review"], sort_keys=True) == json.dumps(review, sort_keys=True)


# ---- committing a set ---------------------------------------------------------------

def test_a_full_disk_while_the_manifest_is_written_leaves_the_old_set(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    commit(tmp_path, OLD)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    real_fsync = os.fsync

    def full_disk(fd: int) -> None:
        if ".film.subpipe.json." in os.readlink(f"/proc/self/fd/{fd}"):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", full_disk)
    with pytest.raises(OutputError) as info:
        commit(tmp_path, NEW)
    assert str(info.value) == f"cannot write {tmp_path / 'film.subpipe.json'}: No space left on device"
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before  # no new file, no temporary one
    monkeypatch.setattr(os, "fsync", real_fsync)
    commit(tmp_path, NEW)  # no false "changed since": the old set is ours
    assert on_disk(tmp_path) == NEW
    assert_matches_its_record(tmp_path)


@pytest.mark.parametrize("point, expected", [("commit.staged", OLD), ("commit.recorded", NEW),
                                             ("commit.renamed", NEW)])
def test_an_interrupt_while_committing_leaves_the_old_set_or_the_new_one(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, point: str, expected: dict[str, str]) -> None:
    commit(tmp_path, OLD)

    def interrupt(name: str) -> None:
        if name == point and not stopped:  # as a signal handler does, later ones are ignored
            stopped.append(name)
            raise KeyboardInterrupt

    stopped: list[str] = []
    monkeypatch.setattr("subpipe.outputs.crash_point", interrupt)
    with pytest.raises(KeyboardInterrupt):
        commit(tmp_path, NEW)
    assert on_disk(tmp_path) == expected
    assert_matches_its_record(tmp_path)
    assert leftovers(tmp_path) == []


def test_the_next_run_finishes_a_committed_set_a_killed_run_left(tmp_path: Path) -> None:
    commit(tmp_path, OLD)
    # As a run killed after the commit point leaves it: the record says new, the files are
    # old, the new ones wait under their temporary names; one was renamed already.
    manifest = Manifest(tmp_path / "film.subpipe.json")
    for name, text in NEW.items():
        manifest.record(tmp_path / name, text, **META)
    manifest.pending = {"film.zh.srt": ".film.zh.srt.k1ll3d.tmp", "film.en.srt": ".film.en.srt.k1ll3d.tmp"}
    manifest.replaces = {name: sha(text.encode()) for name, text in OLD.items()}  # what each replaces
    (tmp_path / ".film.zh.srt.k1ll3d.tmp").write_text(NEW["film.zh.srt"], encoding="utf-8")
    (tmp_path / "film.en.srt").write_text(NEW["film.en.srt"], encoding="utf-8")
    (tmp_path / ".film.review.html.x9.tmp").write_text("half a page")  # and a stray of its own
    (tmp_path / ".film.zh.zh.srt.x9.tmp").write_text("another film's")  # not this set's: kept
    manifest.save()
    with OutputSet(tmp_path, "film"):
        pass
    assert on_disk(tmp_path) == NEW
    assert_matches_its_record(tmp_path)
    assert leftovers(tmp_path) == [".film.zh.zh.srt.x9.tmp"]


# ---- the lock -----------------------------------------------------------------------

def test_a_second_run_on_the_same_outputs_is_told_at_once(tmp_path: Path) -> None:
    with OutputSet(tmp_path, "film"):
        assert (tmp_path / ".film.subpipe.lock").read_text() == f"{os.getpid()}\n"
        with pytest.raises(OutputBusy) as info:
            OutputSet(tmp_path, "film").__enter__()
        assert info.value.exit_code == 3
        assert str(info.value) == (f"another subpipe run (pid {os.getpid()}) is writing the outputs of film in "
                                   f"{tmp_path}: wait for it to finish, or choose another --out")
        with OutputSet(tmp_path, "other"):  # another film's outputs are another set
            pass
    assert leftovers(tmp_path) == []  # the lock file goes with the run


def test_the_lock_does_not_outlive_a_killed_run(tmp_path: Path) -> None:
    code = ("import os, sys; from pathlib import Path; from subpipe.outputs import OutputSet\n"
            "with OutputSet(Path(sys.argv[1]), 'film'):\n    os.kill(os.getpid(), 9)\n")
    killed = subprocess.run([sys.executable, "-c", code, str(tmp_path)], cwd=REPO, timeout=60)
    assert killed.returncode == -9
    assert (tmp_path / ".film.subpipe.lock").exists()  # the file stays, the lock does not
    commit(tmp_path, NEW)
    assert leftovers(tmp_path) == []
