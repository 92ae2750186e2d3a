"""Integrity: verify, crashes at any point, concurrent writers."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from esk_pipeline.pipeline import fsutil
from esk_pipeline.pipeline.versions import (
    DataStorage,
    DataStorageConfig,
)
from esk_pipeline_tests.pipeline_tests.versions_tests.support import (
    consistent,
    make_storage,
    sample_records,
    write_dataset,
)


def test_verify_finds_a_flipped_byte(tmp_path):
    storage = make_storage(tmp_path)
    storage.commit_dataset(write_dataset(tmp_path, sample_records(), "ds"))
    assert storage.verify() == []
    target = storage.root / "versions" / "v1.0.0" / "eval.jsonl"
    target.chmod(0o644)
    data = bytearray(target.read_bytes())
    data[10] ^= 0x01
    target.write_bytes(bytes(data))
    problems = storage.verify("v1.0.0")
    assert problems == ["v1.0.0: eval.jsonl checksum mismatch (file was changed)"]


CHILD = textwrap.dedent(
    """
    import os, signal, sys
    from pathlib import Path
    from esk_pipeline.pipeline.versions import DataStorage, DataStorageConfig

    store, dataset, kill_at = sys.argv[1], sys.argv[2], int(sys.argv[3])
    storage = DataStorage(DataStorageConfig(storage_dir=Path(store), max_versions=3))
    calls = 0

    def counting(function):
        def wrapper(*args, **kwargs):
            global calls
            calls += 1
            if calls == kill_at:
                os.kill(os.getpid(), signal.SIGKILL)
            return function(*args, **kwargs)
        return wrapper

    for name in ("fsync", "rename", "replace", "link", "symlink", "unlink"):
        setattr(os, name, counting(getattr(os, name)))
    storage.commit_dataset(dataset)
    print(calls)
    """
)


def test_a_commit_killed_at_any_point_leaves_the_old_or_the_new_state(tmp_path):
    store = tmp_path / "store"
    dataset = write_dataset(tmp_path, sample_records(), "ds")
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    DataStorage(DataStorageConfig(storage_dir=store, max_versions=3)).commit_dataset(dataset)
    run = [sys.executable, str(script), str(store), str(dataset)]
    dry = subprocess.run([*run, "0"], capture_output=True, text=True, check=True)
    total = int(dry.stdout.strip())  # operations of one full commit (v1.1.0)
    print(f"a commit takes {total} file-system operations")
    versions = consistent(store)
    assert versions == ["v1.0.0", "v1.1.0"]
    # Spread over the whole commit, plus the last steps around the registry switch.
    points = sorted({*range(1, total, max(1, total // 4)), total - 2, total - 1})
    outcomes = set()
    for kill_at in points:
        before = consistent(store)
        result = subprocess.run([*run, str(kill_at)], capture_output=True, text=True)
        assert result.returncode == -9, result.stderr
        after = consistent(store)
        assert after in (before, [*before, f"v1.{len(before)}.0"])
        outcomes.add(len(after) - len(before))
    assert outcomes == {0, 1}  # some kills landed before the registry switch, some after


def test_concurrent_commits_are_serialised(tmp_path):
    dataset = write_dataset(tmp_path, sample_records(), "ds")
    store = tmp_path / "store"
    code = (
        "import sys; from pathlib import Path;"
        "from esk_pipeline.pipeline.versions import DataStorage, DataStorageConfig;"
        "s = DataStorage(DataStorageConfig(storage_dir=Path(sys.argv[1])));"
        "[s.commit_dataset(sys.argv[2]) for _ in range(3)]"
    )
    workers = [
        subprocess.Popen([sys.executable, "-c", code, str(store), str(dataset)]) for _ in range(2)
    ]
    assert [w.wait(timeout=120) for w in workers] == [0, 0]
    versions = consistent(store)
    assert versions == [f"v1.{i}.0" for i in range(6)]


def test_opening_the_store_removes_what_interrupted_writes_left(tmp_path):
    store = make_storage(tmp_path)
    store.commit_dataset(write_dataset(tmp_path, sample_records(), "ds"))
    leftovers = [
        fsutil.temp_path(store.root / "registry" / "00000002.json"),
        fsutil.temp_path(store.versions_dir / "v1.1.0"),
        fsutil.temp_path(store.root / "objects" / "ab" / "blob"),
        store.root / "objects" / "ab" / ("ab" * 32),  # a blob no version names
        store.root / "archive" / "v1.1.0.tar.gz",  # an archive no version names
        store.versions_dir / "v9.0.0",  # a folder the registry does not name
    ]
    for path in leftovers:
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.name.startswith(".") or path.parent.name in ("ab", "archive"):
            path.write_bytes(b"half")
        else:
            path.mkdir()
    reopened = make_storage(tmp_path)
    assert [p for p in leftovers if p.exists()] == []
    assert [v.version for v in reopened.list_versions()] == ["v1.0.0"]
    assert reopened.verify() == []
