"""The atomic-write protocol: a failed write keeps the old content; recovery knows one name."""

import contextlib
import hashlib
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from esk_pipeline.pipeline import fsutil


class _Crash(Exception):
    pass


def test_a_failed_file_write_keeps_the_old_content_and_no_temp(tmp_path):
    target = tmp_path / "registry.json"
    fsutil.atomic_write_text(target, "old")
    with pytest.raises(_Crash), fsutil.atomic_file(target) as handle:
        handle.write(b"half of the new")
        raise _Crash
    assert target.read_text() == "old"
    assert list(tmp_path.iterdir()) == [target]


def test_atomic_write_with_gives_the_writer_a_temporary_sibling(tmp_path):
    target = tmp_path / "sub" / "frame.csv"
    seen = []

    def write(path):
        seen.append(path)
        path.write_text("a,b\n")

    fsutil.atomic_write_with(target, write)
    assert target.read_text() == "a,b\n"
    assert seen[0].parent == target.parent and fsutil.is_leftover(seen[0])
    assert not seen[0].exists()


def test_a_folder_is_replaced_whole_and_a_failed_build_leaves_the_old_one(tmp_path):
    target = tmp_path / "dataset"
    with fsutil.atomic_folder(target) as staging:
        (staging / "train.jsonl").write_text("v1")
    with pytest.raises(_Crash), fsutil.atomic_folder(target) as staging:
        (staging / "train.jsonl").write_text("v2, unfinished")
        raise _Crash
    assert (target / "train.jsonl").read_text() == "v1"
    with fsutil.atomic_folder(target) as staging:
        (staging / "eval.jsonl").write_text("v3")
    assert sorted(p.name for p in target.iterdir()) == ["eval.jsonl"]
    assert list(tmp_path.iterdir()) == [target]


def test_recovery_removes_exactly_the_temporary_names(tmp_path):
    kept = tmp_path / "versions.json"
    kept.write_text("{}")
    stale_file = fsutil.temp_path(kept)
    stale_file.write_text("half")
    stale_folder = fsutil.temp_path(tmp_path / "v1.0.0")
    (stale_folder / "deep").mkdir(parents=True)
    removed = fsutil.remove_leftovers(tmp_path)
    assert sorted(removed) == sorted([stale_file, stale_folder])
    assert list(tmp_path.iterdir()) == [kept]


def test_file_digest_matches_hashlib(tmp_path):
    path = tmp_path / "blob"
    data = bytes(range(256)) * 5000
    path.write_bytes(data)
    assert fsutil.file_digest(path) == hashlib.sha256(data).hexdigest()
    assert fsutil.file_digest(path, "md5") == hashlib.md5(data).hexdigest()


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    return child.pid


def test_scratch_of_dead_processes_is_removed_and_nothing_else(tmp_path: Path) -> None:
    dead = tmp_path / f"{fsutil.SCRATCH_MARK}{_dead_pid()}-upload-abc"
    (dead / "inner").mkdir(parents=True)
    (dead / "inner" / "part.csv").write_text("x")
    live = tmp_path / f"{fsutil.scratch_prefix('etl')}def"
    others = [tmp_path / "esk-upload-old", tmp_path / "someone-elses", tmp_path / "esk-pipeline"]
    for folder in [live, *others]:
        folder.mkdir()
    assert fsutil.remove_dead_scratch(tmp_path) == [dead]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in [live, *others])


def test_scratch_of_an_earlier_process_with_this_id_is_removed(tmp_path: Path) -> None:
    """In a container the API is pid 1 after every restart: the scratch its killed
    predecessor left (uploads, exports) carries the same pid, but not the same start."""
    live = tmp_path / f"{fsutil.scratch_prefix('upload')}abc"
    started = fsutil.process_started(os.getpid())
    assert started is not None and f"-{os.getpid()}-s{started}-upload-" in live.name
    earlier = tmp_path / f"{fsutil.SCRATCH_MARK}{os.getpid()}-s{int(started) - 1}-upload-abc"
    for folder in (live, earlier):
        folder.mkdir()
    assert fsutil.remove_dead_scratch(tmp_path) == [earlier]
    assert [p.name for p in tmp_path.iterdir()] == [live.name]


def test_a_folder_swap_cut_short_leaves_the_old_or_the_new_folder(tmp_path, monkeypatch):
    """Replacing a folder is one exchange where the file system has it: a process killed
    between moving the old folder aside and moving the new one in would leave no target."""
    target = tmp_path / "dataset"
    with fsutil.atomic_folder(target) as staging:
        (staging / "train.jsonl").write_text("v1")

    real_rename = os.rename
    renames: list[object] = []

    def rename_then_die(src: object, dst: object) -> None:
        renames.append(src)
        if len(renames) == 2:
            raise SystemExit("killed between moving the old folder aside and the new one in")
        real_rename(src, dst)

    monkeypatch.setattr(os, "rename", rename_then_die)
    with contextlib.suppress(SystemExit), fsutil.atomic_folder(target) as staging:
        (staging / "train.jsonl").write_text("v2")
    assert (target / "train.jsonl").read_text() in ("v1", "v2")
