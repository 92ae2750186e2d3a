"""The version store on S3 (moto's server over real HTTP): the same operations as on a folder,
a commit point that two writers cannot both take, unchanged shards never uploaded again, and
a commit killed at any request leaving the old or the new state."""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap

import pytest

from esk_pipeline.pipeline.versions import (
    DataStorage,
    DataStorageConfig,
    StorageError,
    VersionStatus,
)
from esk_pipeline.pipeline.versions.catalog import Catalog
from esk_pipeline.pipeline.versions.models import Registry, StagedDataset
from esk_pipeline_tests.pipeline_tests.versions_tests.support import (
    make_storage,
    sample_records,
    write_dataset,
)
from esk_pipeline_tests.s3 import fresh_bucket, s3_server  # noqa: F401


@pytest.fixture
def store_url(s3_server, monkeypatch):  # noqa: F811
    return fresh_bucket(s3_server, monkeypatch) + "/store"


def _s3_storage(url: str, **overrides) -> DataStorage:
    values = dict(storage_dir=url, max_versions=100, orphan_grace_seconds=0.0) | overrides
    return DataStorage(DataStorageConfig(**values))


def _objects(storage: DataStorage) -> set[str]:
    return set(storage.location.listing(""))


def test_commit_list_diff_tag_checkout_and_verify_on_s3(tmp_path, store_url):
    storage = _s3_storage(store_url)
    first = storage.commit_dataset(write_dataset(tmp_path, sample_records(60), "a"))
    records = sample_records(66)
    records[0]["domain"] = "roads"
    second = storage.commit_dataset(write_dataset(tmp_path, records, "b"), status="stable")
    assert [v.version for v in storage.list_versions()] == ["v1.0.0", "v1.1.0"]
    assert first.path is None and second.parent == "v1.0.0"
    assert first.train_samples + first.eval_samples == 60
    assert not any(name.startswith("versions/") for name in _objects(storage))  # no copies

    diff = storage.compare_versions("v1.0.0", "v1.1.0")
    assert (diff.records_before, diff.records_after, diff.added) == (60, 66, 6)
    assert diff.relabelled == 1

    storage.tag_version("v1.0.0", "production")
    assert storage.get_version("production").tags == ["production"]
    folder = storage.checkout("production")
    assert storage.get_version("current").version == "v1.0.0"
    assert {"README.md", "eval.jsonl", "metadata.json", "train.jsonl"} <= {
        p.name for p in folder.iterdir() if p.is_file()
    }
    written = tmp_path / "datasets" / "a" / "train.jsonl"
    assert (folder / "train.jsonl").read_bytes() == written.read_bytes()
    assert storage.verify() == []
    assert storage.get_stats()["total_versions"] == 2


def test_export_from_s3_imports_into_a_folder_and_back(tmp_path, store_url):
    remote = _s3_storage(store_url)
    remote.commit_dataset(write_dataset(tmp_path, sample_records(), "a"), status="stable")
    exported = remote.export_version("v1.0.0", tmp_path / "v1.tar.gz")
    local = make_storage(tmp_path)
    imported = local.import_version(exported)
    data = {n: f for n, f in remote.get_version("v1.0.0").files.items() if n != "metadata.json"}
    assert data.items() <= imported.files.items()
    zipped = local.export_version("v1.0.0", tmp_path / "x.zip")
    again = _s3_storage(store_url).import_version(zipped)
    assert again.version == "v1.0.0"  # the same content: no second version
    assert local.verify() == [] and remote.verify() == []


def test_old_versions_are_archived_on_s3_and_restored(tmp_path, store_url):
    storage = _s3_storage(store_url, max_versions=1)
    for i in range(3):
        storage.commit_dataset(write_dataset(tmp_path, sample_records(60 + 3 * i), f"d{i}"))
    statuses = {v.version: v.status for v in storage.list_versions()}
    assert statuses["v1.0.0"] is VersionStatus.ARCHIVED
    assert statuses["v1.2.0"] is VersionStatus.DRAFT
    assert storage.compare_versions("v1.0.0", "v1.2.0").records_before == 60
    storage.checkout("v1.0.0")
    assert storage.get_version("v1.0.0").status is VersionStatus.DRAFT
    assert storage.verify() == []


def test_an_unchanged_dataset_uploads_nothing_but_its_metadata(tmp_path, store_url):
    storage = _s3_storage(store_url)
    dataset = write_dataset(tmp_path, sample_records(600), "ds", shard_size=100)
    storage.commit_dataset(dataset)
    before = _objects(storage)
    second = storage.commit_dataset(dataset)
    added = _objects(storage) - before
    assert {n.split("/")[0] for n in added} == {"objects", "manifests", "registry"}
    assert [n for n in added if n.startswith("manifests/")] == [f"manifests/{second.manifest}.json"]
    assert [n for n in added if n.startswith("objects/")] == [
        f"objects/{second.files['metadata.json'].sha256[:2]}/"
        + second.files["metadata.json"].sha256
    ]
    diff = storage.compare_versions("v1.0.0", "v1.1.0")
    assert diff.unchanged == 600 and diff.files_changed == []


def test_only_one_of_two_writers_takes_the_next_snapshot(store_url):
    catalog = Catalog(_s3_storage(store_url).location)
    number, registry = catalog.read()
    assert catalog.write(number + 1, Registry(current="v1.0.0"))
    assert not catalog.write(number + 1, registry)  # the loser is told, nothing overwritten
    assert catalog.read() == (number + 1, Registry(current="v1.0.0"))


def test_a_writer_that_lost_the_race_applies_its_change_again(tmp_path, store_url):
    dataset = write_dataset(tmp_path, sample_records(), "ds")
    ours, theirs = _s3_storage(store_url), _s3_storage(store_url)
    ours.commit_dataset(dataset)
    real_write, raced = ours.catalog.write, []

    def write_after_theirs(number, registry):
        if not raced:  # another machine commits between our read and our write
            raced.append(theirs.commit_dataset(dataset).version)
        return real_write(number, registry)

    ours.catalog.write = write_after_theirs
    mine = ours.commit_dataset(dataset)
    assert (raced, mine.version, mine.parent) == (["v1.1.0"], "v1.2.0", "v1.1.0")
    assert [v.version for v in theirs.list_versions()] == ["v1.0.0", "v1.1.0", "v1.2.0"]


def test_a_change_that_always_loses_the_race_fails_and_changes_nothing(
    tmp_path, store_url, monkeypatch
):
    storage = _s3_storage(store_url)
    storage.commit_dataset(write_dataset(tmp_path, sample_records(), "ds"))
    monkeypatch.setattr(storage.catalog, "write", lambda number, registry: False)
    with pytest.raises(StorageError, match="gave up after"):
        storage.tag_version("v1.0.0", "production")
    assert _s3_storage(store_url).get_version("v1.0.0").tags == []


CHILD = textwrap.dedent(
    """
    import os, signal, sys
    from esk_pipeline.pipeline.versions import DataStorage, DataStorageConfig
    from esk_pipeline.pipeline.versions.location import FsspecLocation

    store, dataset, kill_at = sys.argv[1], sys.argv[2], int(sys.argv[3])
    calls = 0

    def counting(function):
        def wrapper(*args, **kwargs):
            global calls
            calls += 1
            if calls == kill_at:
                os.kill(os.getpid(), signal.SIGKILL)
            return function(*args, **kwargs)
        return wrapper

    for name in ("put_new", "put_bytes", "put_file", "copy", "delete"):
        setattr(FsspecLocation, name, counting(getattr(FsspecLocation, name)))
    config = DataStorageConfig(storage_dir=store, max_versions=2, orphan_grace_seconds=0)
    DataStorage(config).commit_dataset(dataset)
    print(calls)
    """
)


def _consistent(url: str) -> list[str]:
    """The store as a fresh process sees it: whole versions only, and no orphan object but
    the blobs a killed commit's staged marker still names (kept for staged_ttl_seconds)."""
    storage = _s3_storage(url, max_versions=2)
    assert storage.verify() == []
    registry = storage._load()
    used = {f.sha256 for v in registry.live() for f in v.files.values()}
    staged = {
        f.sha256
        for name in storage.location.listing("staged")
        for f in StagedDataset.model_validate_json(storage.location.read_bytes(name)).files.values()
    }
    blobs = {n.rsplit("/", 1)[-1] for n in storage.location.listing("objects")}
    assert used <= blobs <= used | staged
    archives = set(storage.location.listing("archive"))
    assert archives == {v.archive for v in registry.versions if v.archive}
    return [v.version for v in storage.list_versions()]


def test_a_commit_killed_at_any_s3_request_leaves_the_old_or_the_new_state(tmp_path, store_url):
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    for name in ("first", "second"):
        _s3_storage(store_url, max_versions=2).commit_dataset(
            write_dataset(tmp_path, sample_records(), name)
        )
    run = [sys.executable, str(script), store_url]
    dataset = write_dataset(tmp_path, sample_records(61), "dry")
    dry = subprocess.run([*run, str(dataset), "0"], capture_output=True, text=True, check=True)
    total = int(dry.stdout.strip())  # writes of one commit that archives the oldest version
    print(f"a commit on S3 takes {total} writes")
    assert total >= 8
    outcomes = set()
    for kill_at in range(1, total + 1):
        before = _consistent(store_url)
        dataset = write_dataset(tmp_path, sample_records(61 + kill_at), f"d{kill_at}")
        result = subprocess.run([*run, str(dataset), str(kill_at)], capture_output=True)
        assert result.returncode == -9, result.stderr
        after = _consistent(store_url)
        assert after[: len(before)] == before and len(after) - len(before) in (0, 1)
        outcomes.add(len(after) - len(before))
    assert outcomes == {0, 1}


def test_a_dataset_staged_on_one_worker_is_committed_on_another(tmp_path, store_url):
    dataset = write_dataset(tmp_path, sample_records(), "ds")
    staged = _s3_storage(store_url).stage_dataset(dataset)
    shutil.rmtree(dataset)  # the other worker never sees the folder
    other = _s3_storage(store_url)  # opening collects orphans: staged blobs are not orphans
    version = other.commit_staged(staged, status="stable")
    assert version.train_samples + version.eval_samples == 60
    assert other.verify() == [] and other.location.listing("staged") == {}
    again = other.commit_staged(staged, only_if_changed=True)
    assert again.version == version.version


def test_garbage_collection_elsewhere_spares_the_blobs_of_a_commit_in_flight(
    tmp_path, store_url, monkeypatch
):
    """Another machine collects garbage with no grace period between each upload of a
    commit: the staged marker, written before the first upload, keeps every blob."""
    dataset = write_dataset(tmp_path, sample_records(), "ds")
    storage = _s3_storage(store_url, orphan_grace_seconds=0)
    put = storage.blobs.put
    collections = []

    def collected_first(source, sha256):
        collections.append(_s3_storage(store_url, orphan_grace_seconds=0))  # opening collects
        return put(source, sha256)

    monkeypatch.setattr(storage.blobs, "put", collected_first)
    version = storage.commit_dataset(dataset, status="stable")
    assert len(collections) >= 4 and storage.verify() == []
    assert version.train_samples + version.eval_samples == 60
    assert storage.location.listing("staged") == {}


def test_a_staged_dataset_past_its_time_is_collected(tmp_path, store_url):
    staged = _s3_storage(store_url).stage_dataset(write_dataset(tmp_path, sample_records(), "ds"))
    late = _s3_storage(store_url, staged_ttl_seconds=0.0)
    with pytest.raises(StorageError, match="staged files are gone"):
        late.commit_staged(staged)
    assert late.location.listing("objects") == {} and late.list_versions() == []


def test_recovery_spares_a_fresh_version_folder_another_machine_is_writing(tmp_path, store_url):
    storage = _s3_storage(store_url)
    storage.commit_dataset(write_dataset(tmp_path, sample_records(), "ds"))
    # Another machine checks out a version this registry does not show live yet.
    storage.location.put_bytes("versions/v9.9.9/train.jsonl", b"{}\n")
    _s3_storage(store_url, orphan_grace_seconds=3600)
    assert storage.location.exists("versions/v9.9.9/train.jsonl")
    _s3_storage(store_url, orphan_grace_seconds=0)
    assert not storage.location.exists("versions/v9.9.9/train.jsonl")
