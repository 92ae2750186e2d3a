"""Archiving, restoring, export and import (and what an import refuses)."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
import zipfile
from pathlib import Path

import pytest

from esk_pipeline.pipeline.versions import (
    EXPORT_FORMAT,
    DataStorage,
    DataStorageConfig,
    StorageError,
    VersionStatus,
)
from esk_pipeline_tests.pipeline_tests.versions_tests.support import (
    make_storage,
    sample_records,
    write_dataset,
)


def test_old_versions_are_archived_and_restored_by_checkout(tmp_path):
    storage = make_storage(tmp_path, max_versions=2)
    dataset = write_dataset(tmp_path, sample_records(), "ds")
    storage.commit_dataset(dataset)
    storage.tag_version("v1.0.0", "production")
    for _ in range(3):
        storage.commit_dataset(write_dataset(tmp_path, sample_records(60 + _ * 3), f"ds{_}"))
    statuses = {v.version: v.status for v in storage.list_versions()}
    assert statuses == {
        "v1.0.0": VersionStatus.DRAFT,  # tagged: never archived
        "v1.1.0": VersionStatus.ARCHIVED,
        "v1.2.0": VersionStatus.ARCHIVED,
        "v1.3.0": VersionStatus.DRAFT,  # current
    }
    archive = storage.root / storage.get_version("v1.1.0").archive
    assert archive.is_file() and archive.name.startswith("v1.1.0-")
    assert not (storage.root / "versions" / "v1.1.0").exists()
    assert storage.verify() == []
    diff = storage.compare_versions("v1.1.0", "v1.3.0")  # readable while archived
    assert diff.records_before == 60
    path = storage.checkout("v1.1.0")
    assert path == storage.root / "versions" / "v1.1.0"
    assert (path / "train.jsonl").is_file()
    assert storage.get_version("current").version == "v1.1.0"
    assert storage.get_version("v1.1.0").status is VersionStatus.DRAFT
    assert not archive.exists()
    assert storage.verify() == []


def test_export_import_round_trip_and_corrupt_archives_are_refused(tmp_path):
    storage = make_storage(tmp_path)
    storage.commit_dataset(write_dataset(tmp_path, sample_records(), "ds"), status="stable")
    exported = storage.export_version("v1.0.0", tmp_path / "v1.tar.gz")
    zipped = storage.export_version("v1.0.0", tmp_path / "v1.zip")
    other = DataStorage(DataStorageConfig(storage_dir=tmp_path / "other"))
    imported = other.import_version(exported)
    assert imported.version == "v1.0.0" and imported.status is VersionStatus.STABLE
    assert other.import_version(exported).version == "v1.0.0"  # idempotent
    assert other.import_version(zipped, version_tag="v2.0.0").train_samples == 54
    assert other.verify() == []
    original = storage.get_version("v1.0.0").files
    assert imported.files["train.jsonl"] == original["train.jsonl"]

    tampered = tmp_path / "tampered.tar.gz"
    with tarfile.open(exported) as src, tarfile.open(tampered, "w:gz") as dst:
        for member in src.getmembers():
            data = src.extractfile(member).read()
            if member.name == "data/train.jsonl":
                data = data.replace("запрос".encode(), "ЗАПРОС".encode(), 1)
            member.size = len(data)
            dst.addfile(member, __import__("io").BytesIO(data))
    third = DataStorage(DataStorageConfig(storage_dir=tmp_path / "third"))
    with pytest.raises(StorageError, match=r"corrupt archive, v1\.0\.0: train\.jsonl checksum"):
        third.import_version(tampered)
    truncated = tmp_path / "truncated.tar.gz"
    truncated.write_bytes(exported.read_bytes()[:200])
    with pytest.raises(StorageError, match="corrupt or unreadable"):
        third.import_version(truncated)
    assert third.list_versions() == []


def _export_naming(archive: Path, name: str, payload: bytes) -> Path:
    """A well-formed export whose manifest lists one file under `name`; the tar holds the payload
    under data/ (a member outside data/ would be refused before the name is looked at)."""
    version = {
        "version": "v9.0.0",
        "status": "stable",
        "created_at": "2026-01-01T00:00:00Z",
        "files": {name: {"sha256": hashlib.sha256(payload).hexdigest(), "size": len(payload)}},
        "train_samples": 0,
        "eval_samples": 0,
        "domain_distribution": {},
        "train_distribution": {},
        "eval_distribution": {},
    }
    manifest = json.dumps({"format": EXPORT_FORMAT, "version": version}).encode()
    with tarfile.open(archive, "w:gz") as tar:
        folder = tarfile.TarInfo("data")
        folder.type, folder.mode = tarfile.DIRTYPE, 0o755
        tar.addfile(folder)
        for member, data in [("manifest.json", manifest), ("data/a\\b", payload)]:
            info = tarfile.TarInfo(member)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return archive


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()
    }


@pytest.mark.parametrize("kind", ["parent", "absolute", "backslash"])
def test_import_refuses_unsafe_file_names_and_writes_nothing_outside(tmp_path, kind):
    storage = make_storage(tmp_path)
    outside = tmp_path / "outside.txt"
    outside.write_bytes(b"precious\n")
    name = {"parent": "../x", "absolute": str(outside), "backslash": "a\\b"}[kind]
    archive = _export_naming(tmp_path / "evil.tar.gz", name, b"evil\n")
    before = _snapshot(tmp_path)
    with pytest.raises(StorageError, match="unsafe file name") as error:
        storage.import_version(archive)
    assert repr(name) in str(error.value)
    after = _snapshot(tmp_path)
    assert {k: v for k, v in after.items() if k != "store/.lock"} == {
        k: v for k, v in before.items() if k != "store/.lock"
    }
    assert storage.list_versions() == [] and not (storage.root / "x").exists()


def _bomb_export(archive: Path, payload_bytes: int) -> Path:
    """A gzip'd tar export whose one data file is `payload_bytes` of zeros (about 1000x)."""
    manifest = json.dumps({"format": EXPORT_FORMAT, "version": {}}).encode()
    with tarfile.open(archive, "w:gz") as tar:
        info = tarfile.TarInfo("manifest.json")
        info.size = len(manifest)
        tar.addfile(info, io.BytesIO(manifest))
        info = tarfile.TarInfo("data/train.jsonl")
        info.size = payload_bytes
        with open("/dev/zero", "rb") as zeros:
            tar.addfile(info, zeros)
    return archive


@pytest.mark.parametrize("kind", ["tar.gz", "zip"])
def test_import_refuses_an_archive_over_the_unpacked_limit_before_writing_it(tmp_path, kind):
    if kind == "tar.gz":
        archive = _bomb_export(tmp_path / "bomb.tar.gz", 64 << 20)
    else:
        archive = tmp_path / "bomb.zip"
        with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
            zf.writestr("manifest.json", json.dumps({"format": EXPORT_FORMAT}))
            with zf.open("data/train.jsonl", "w") as member:
                for _ in range(64):
                    member.write(bytes(1 << 20))
    assert archive.stat().st_size < 1 << 20
    storage = make_storage(tmp_path, max_import_bytes=8 << 20)
    with pytest.raises(StorageError, match=r"unpacks to more than the limit of 8 MB"):
        storage.import_version(archive)
    leftovers = [p for p in storage.root.rglob("*") if p.is_file() and p.name != ".lock"]
    assert leftovers == []
    assert storage.list_versions() == []


def _export_with(archive: Path, names: list[str]) -> Path:
    """An export (tar.gz or zip by suffix) with a manifest and empty members named `names`."""
    manifest = json.dumps({"format": EXPORT_FORMAT, "version": {}}).encode()
    if archive.suffix == ".zip":
        with zipfile.ZipFile(archive, "w") as zf:
            zf.writestr("manifest.json", manifest)
            for name in names:
                zf.writestr(name, b"")
        return archive
    with tarfile.open(archive, "w:gz") as tar:
        info = tarfile.TarInfo("manifest.json")
        info.size = len(manifest)
        tar.addfile(info, io.BytesIO(manifest))
        for name in names:
            tar.addfile(tarfile.TarInfo(name), io.BytesIO(b""))
    return archive


@pytest.mark.parametrize("suffix", [".tar.gz", ".zip"])
def test_import_refuses_members_outside_the_export_layout_and_names_them(tmp_path, suffix):
    archive = _export_with(
        tmp_path / f"extra{suffix}", ["data/train.jsonl", "notes.txt", "bin/run.sh"]
    )
    storage = make_storage(tmp_path)
    with pytest.raises(
        StorageError, match=r"outside an export's layout.*'notes.txt'.*'bin/run.sh'"
    ):
        storage.import_version(archive)
    assert storage.list_versions() == []


@pytest.mark.parametrize("suffix", [".tar.gz", ".zip"])
def test_import_refuses_an_archive_with_too_many_members(tmp_path, suffix, monkeypatch):
    from esk_pipeline.pipeline.versions import transfer

    monkeypatch.setattr(transfer, "MAX_IMPORT_MEMBERS", 50)
    archive = _export_with(tmp_path / f"many{suffix}", [f"data/{i}.txt" for i in range(60)])
    storage = make_storage(tmp_path)
    with pytest.raises(StorageError, match="more than 50 members"):
        storage.import_version(archive)
    assert storage.list_versions() == []
