"""Commits, version names, tags and references."""

from __future__ import annotations

import json
import os
import shutil

import pandas as pd
import pytest

from esk_pipeline.pipeline.splits import DataWriter, DataWriterConfig
from esk_pipeline.pipeline.versions import (
    DataStorage,
    DataStorageConfig,
    StorageError,
    VersionNotFoundError,
    VersionStatus,
)
from esk_pipeline_tests.pipeline_tests.versions_tests.support import (
    DOMAINS,
    make_storage,
    sample_records,
    write_dataset,
)


def test_commit_auto_increments_and_keeps_the_seed_folder_shape(tmp_path):
    storage = make_storage(tmp_path)
    dataset = write_dataset(tmp_path, sample_records(), "ds")
    first = storage.commit_dataset(dataset, description="first", created_by="test")
    second = storage.commit_version(dataset / "train.jsonl", dataset / "eval.jsonl")
    patch = storage.commit_dataset(dataset, bump="patch", status=VersionStatus.STABLE)
    named = storage.commit_dataset(dataset, version_tag="3.0.0")
    assert [first.version, second.version, patch.version, named.version] == [
        "v1.0.0",
        "v1.1.0",
        "v1.1.1",
        "v3.0.0",
    ]
    with pytest.raises(StorageError, match="already exists"):
        storage.commit_dataset(dataset, version_tag="v3.0.0")
    folder = storage.root / "versions" / "v1.0.0"
    assert {"train.jsonl", "eval.jsonl", "metadata.json", "README.md"} <= {
        p.name for p in folder.iterdir()
    }
    assert (folder / "__parquet__" / "train.parquet").is_file()
    assert os.readlink(storage.root / "current") == "versions/v3.0.0"
    snapshots = sorted((storage.root / "registry").iterdir())
    assert json.loads(snapshots[-1].read_text())["current"] == "v3.0.0"
    assert first.train_samples + first.eval_samples == 60
    assert first.domain_distribution == {d: 20 for d in DOMAINS}
    assert storage.get_version("1.0.0").description == "first"
    assert [v.version for v in storage.list_versions(status="stable")] == ["v1.1.1"]
    assert storage.get_version("latest").version == "v3.0.0"
    assert storage.get_stats()["total_versions"] == 4


def test_sharded_files_are_committed_together(tmp_path):
    storage = make_storage(tmp_path)
    dataset = write_dataset(tmp_path, sample_records(), "ds", shard_size=20)
    version = storage.commit_version(dataset / "train-00000-of-00003.jsonl", dataset / "eval.jsonl")
    assert {f"train-0000{i}-of-00003.jsonl" for i in range(3)} <= set(version.files)
    assert version.train_samples == 54  # 60 records, 6 drawn to eval


def test_a_writer_file_brings_every_file_of_its_split(tmp_path):
    storage = make_storage(tmp_path)
    records = sample_records()
    config = DataWriterConfig(
        output_dir=tmp_path / "datasets", eval_fraction=0.2, min_eval_samples=1, seed=1
    )
    days = {"2026-01-01": pd.DataFrame(records[:30]), "2026-01-02": pd.DataFrame(records[30:])}
    train_path, eval_path, stats = DataWriter(config).write_parts(days, dataset_name="ds")
    version = storage.commit_version(train_path, eval_path)
    assert {"train-2026-01-01.jsonl", "train-2026-01-02.jsonl", "eval.jsonl"} <= set(version.files)
    assert "__parquet__/train-2026-01-02.parquet" in version.files
    assert version.train_samples == stats.train_samples
    assert version.eval_samples == stats.eval_samples


@pytest.mark.parametrize("listed", ["../outside/train-x.jsonl", "eval.jsonl", "notes.txt"])
def test_a_listed_file_is_a_data_file_name_of_its_split_in_the_folder(tmp_path, listed):
    """metadata.json names files, never paths: an entry with a folder, of another split or not
    a data file is refused, not read from wherever it points."""
    storage = make_storage(tmp_path)
    records = sample_records()
    config = DataWriterConfig(
        output_dir=tmp_path / "datasets", eval_fraction=0.2, min_eval_samples=1, seed=1
    )
    days = {"2026-01-01": pd.DataFrame(records)}
    train_path, eval_path, _ = DataWriter(config).write_parts(days, dataset_name="ds")
    outside = train_path.parent.parent / "outside"
    outside.mkdir()
    shutil.copyfile(train_path, outside / "train-x.jsonl")
    shutil.copyfile(train_path, train_path.parent / "notes.txt")
    metadata_file = train_path.parent / "metadata.json"
    metadata = json.loads(metadata_file.read_text())
    metadata["stats"]["shards"]["train"].append(listed)
    metadata_file.write_text(json.dumps(metadata))
    with pytest.raises(StorageError, match="not a train data file"):
        storage.commit_version(train_path, eval_path)


def test_only_if_changed_returns_the_current_version_for_identical_files(tmp_path):
    folder = tmp_path / "dataset"
    folder.mkdir()
    (folder / "train.jsonl").write_text('{"row_id": "a", "text": "t", "domain": "x"}\n')
    (folder / "eval.jsonl").write_text('{"row_id": "b", "text": "u", "domain": "x"}\n')
    storage = DataStorage(DataStorageConfig(storage_dir=tmp_path / "store"))
    first = storage.commit_dataset(folder, only_if_changed=True)
    snapshots = sorted((tmp_path / "store" / "registry").iterdir())
    again = storage.commit_dataset(folder, only_if_changed=True)
    assert again.version == first.version and len(storage.list_versions()) == 1
    # Decided inside the registry change (so a concurrent identical commit elsewhere is seen),
    # and a change that changes nothing writes no snapshot.
    assert sorted((tmp_path / "store" / "registry").iterdir()) == snapshots

    (folder / "eval.jsonl").write_text('{"row_id": "b", "text": "u", "domain": "y"}\n')
    changed = storage.commit_dataset(folder, only_if_changed=True)
    assert changed.version != first.version and changed.parent == first.version
    assert storage.commit_dataset(folder).version not in {first.version, changed.version}


def test_tags_and_unknown_references(tmp_path):
    storage = make_storage(tmp_path)
    dataset = write_dataset(tmp_path, sample_records(), "ds")
    storage.commit_dataset(dataset)
    storage.commit_dataset(dataset)
    storage.tag_version("v1.0.0", "production")
    assert storage.get_version("production").version == "v1.0.0"
    assert storage.get_version("v1.0.0").tags == ["production"]
    storage.tag_version("v1.1.0", "production")  # a tag moves
    assert storage.get_version("production").version == "v1.1.0"
    with pytest.raises(StorageError, match="invalid tag"):
        storage.tag_version("v1.0.0", "v2.0.0")
    with pytest.raises(VersionNotFoundError, match=r"no version or tag 'v9\.9\.9'"):
        storage.checkout("v9.9.9")


def test_a_store_with_a_versions_json_registry_is_taken_over(tmp_path):
    storage = make_storage(tmp_path)
    storage.commit_dataset(write_dataset(tmp_path, sample_records(), "ds"))
    storage.tag_version("v1.0.0", "production")
    legacy = storage._load().model_dump_json(exclude={"versions": {"__all__": {"manifest"}}})
    (storage.root / "versions.json").write_text(legacy)  # the old layout: files listed inline
    shutil.rmtree(storage.root / "registry")
    shutil.rmtree(storage.root / "manifests")
    reopened = make_storage(tmp_path)
    assert reopened.get_version("production").version == "v1.0.0"
    assert not (storage.root / "versions.json").exists() and reopened.verify() == []


def test_a_snapshot_names_each_manifest_and_lists_no_files(tmp_path):
    storage = make_storage(tmp_path)
    version = storage.commit_dataset(write_dataset(tmp_path, sample_records(), "ds"))
    snapshot = json.loads(sorted((storage.root / "registry").iterdir())[-1].read_text())
    [entry] = snapshot["versions"]
    assert "files" not in entry and entry["manifest"] == version.manifest
    manifest = json.loads((storage.root / "manifests" / f"{version.manifest}.json").read_text())
    assert manifest.keys() == version.files.keys()
