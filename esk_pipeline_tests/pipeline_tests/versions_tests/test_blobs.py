"""Content-addressed blobs: stored once, hard-linked, never replacing a file."""

from __future__ import annotations

import errno
import os

import pytest

from esk_pipeline.pipeline import fsutil
from esk_pipeline.pipeline.versions import (
    StorageError,
)
from esk_pipeline_tests.pipeline_tests.versions_tests.support import (
    make_storage,
    objects_bytes,
    sample_records,
    write_dataset,
)


def test_identical_files_are_stored_once(tmp_path):
    storage = make_storage(tmp_path)
    dataset = write_dataset(tmp_path, sample_records(600), "ds")
    storage.commit_dataset(dataset)
    after_first = objects_bytes(storage)
    storage.commit_dataset(dataset)
    metadata_size = (storage.root / "versions" / "v1.1.0" / "metadata.json").stat().st_size
    assert objects_bytes(storage) - after_first <= metadata_size + 100
    assert (storage.root / "versions/v1.0.0/train.jsonl").stat().st_ino == (
        storage.root / "versions/v1.1.0/train.jsonl"
    ).stat().st_ino


def test_link_copies_only_without_hard_links_and_never_replaces_a_file(tmp_path, monkeypatch):
    storage = make_storage(tmp_path)
    source = tmp_path / "train.jsonl"
    source.write_text('{"text": "a", "domain": "roads"}\n', encoding="utf-8")
    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / "eval.jsonl").write_text("keep me\n", encoding="utf-8")
    entry = storage.blobs.put(source, fsutil.file_digest(source))
    with pytest.raises(FileExistsError):
        storage.blobs.link(entry.sha256, folder, "eval.jsonl")
    assert (folder / "eval.jsonl").read_text(encoding="utf-8") == "keep me\n"
    with pytest.raises(StorageError, match=r"unsafe file name '\.\./train\.jsonl'"):
        storage.blobs.link(entry.sha256, folder, "../train.jsonl")

    def no_hard_links(src, dst):
        raise OSError(errno.EXDEV, "cross-device link")

    monkeypatch.setattr(os, "link", no_hard_links)
    synced, real_fsync = [], os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: synced.append(fd) or real_fsync(fd))
    storage.blobs.link(entry.sha256, folder, "train.jsonl")
    assert (folder / "train.jsonl").read_bytes() == source.read_bytes()
    assert len(synced) == 1  # the copy is flushed: its folder's sync skips files
    assert entry.size == source.stat().st_size


def test_files_unchanged_since_the_last_commit_are_not_read_again(tmp_path, monkeypatch):
    storage = make_storage(tmp_path)
    dataset = write_dataset(tmp_path, sample_records(), "ds", shard_size=20)
    storage.commit_dataset(dataset)
    hashed = []
    real_digest = fsutil.file_digest
    monkeypatch.setattr(
        fsutil, "file_digest", lambda path: hashed.append(path) or real_digest(path)
    )
    storage.commit_dataset(dataset)
    assert hashed == []
    (dataset / "README.md").write_text("another card\n", encoding="utf-8")
    version = storage.commit_dataset(dataset)
    assert hashed[0] == dataset / "README.md" and len(hashed) == 2  # + its new blob's copy
    assert storage.verify(version.version) == []
