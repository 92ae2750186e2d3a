from __future__ import annotations

import errno
import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile
import textwrap
import zipfile
from pathlib import Path

import pytest

from esk_pipeline.pipeline.data_writer import DataWriter, DataWriterConfig
from esk_pipeline.pipeline.fsutil import is_leftover
from esk_pipeline.pipeline.ids import row_id
from esk_pipeline.pipeline.versions import (
    EXPORT_FORMAT,
    DataStorage,
    DataStorageConfig,
    StorageError,
    VersionNotFoundError,
    VersionStatus,
)

DOMAINS = ["housing", "payments", "roads"]


def _records(n: int = 60) -> list[dict]:
    return [
        {
            "text": f"запрос {i}",
            "domain": DOMAINS[i % 3],
            "label_source": "reviewer:alice",
            "label_origin": "human_verified",  # the trust policy's own tests are the writer's
            "confidence": 0.9,
        }
        for i in range(n)
    ]


def _write(tmp_path: Path, records: list[dict], name: str, **overrides) -> Path:
    config = DataWriterConfig(
        output_dir=tmp_path / "datasets",
        eval_fraction=0.2,
        min_eval_samples=1,
        min_samples_per_domain=2,
        balance_domains=False,
        seed=1,
        **overrides,
    )
    train_path, _, _ = DataWriter(config).write_datasets(records, name)
    return train_path.parent


def _storage(tmp_path: Path, **overrides) -> DataStorage:
    values = dict(storage_dir=tmp_path / "store", max_versions=100, auto_archive_old=True)
    values.update(overrides)
    return DataStorage(DataStorageConfig(**values))


def _objects_bytes(storage: DataStorage) -> int:
    return sum(p.stat().st_size for p in storage.objects_dir.rglob("*") if p.is_file())


def test_commit_auto_increments_and_keeps_the_seed_folder_shape(tmp_path):
    storage = _storage(tmp_path)
    dataset = _write(tmp_path, _records(), "ds")
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
    registry = json.loads((storage.root / "versions.json").read_text())
    assert registry["current"] == "v3.0.0"
    assert first.train_samples + first.eval_samples == 60
    assert first.domain_distribution == {d: 20 for d in DOMAINS}
    assert storage.get_version("1.0.0").description == "first"
    assert [v.version for v in storage.list_versions(status="stable")] == ["v1.1.1"]
    assert storage.get_version("latest").version == "v3.0.0"
    assert storage.get_stats()["total_versions"] == 4


def test_identical_files_are_stored_once(tmp_path):
    storage = _storage(tmp_path)
    dataset = _write(tmp_path, _records(600), "ds")
    storage.commit_dataset(dataset)
    after_first = _objects_bytes(storage)
    storage.commit_dataset(dataset)
    metadata_size = (storage.root / "versions" / "v1.1.0" / "metadata.json").stat().st_size
    assert _objects_bytes(storage) - after_first <= metadata_size + 100
    assert (storage.root / "versions/v1.0.0/train.jsonl").stat().st_ino == (
        storage.root / "versions/v1.1.0/train.jsonl"
    ).stat().st_ino


def test_verify_finds_a_flipped_byte(tmp_path):
    storage = _storage(tmp_path)
    storage.commit_dataset(_write(tmp_path, _records(), "ds"))
    assert storage.verify() == []
    target = storage.root / "versions" / "v1.0.0" / "eval.jsonl"
    target.chmod(0o644)
    data = bytearray(target.read_bytes())
    data[10] ^= 0x01
    target.write_bytes(bytes(data))
    problems = storage.verify("v1.0.0")
    assert problems == ["v1.0.0: eval.jsonl checksum mismatch (file was changed)"]


def test_diff_counts_added_removed_relabelled_and_moved_records(tmp_path):
    storage = _storage(tmp_path)
    base = _records(90)
    storage.commit_dataset(_write(tmp_path, base, "a"))
    old = storage.get_version("v1.0.0")
    changed = [dict(r) for r in base[5:]]  # 5 removed
    changed += [{**base[0], "text": f"новый {i}", "domain": "roads"} for i in range(7)]  # 7 added
    relabel_ids = set()
    for record in changed[:4]:  # 4 relabelled
        record["domain"] = "payments" if record["domain"] != "payments" else "housing"
        relabel_ids.add(row_id(record["text"]))
    storage.commit_dataset(_write(tmp_path, changed, "b"))
    diff = storage.compare_versions("v1.0.0", "v1.1.0", examples=3)
    assert (diff.added, diff.removed, diff.relabelled) == (7, 5, 4)
    assert diff.records_before == 90 and diff.records_after == 92
    assert {e.row_id for e in diff.relabelled_examples} <= relabel_ids
    assert len(diff.added_examples) == 3
    assert diff.domain_changes["roads"].delta == sum(
        1 for r in changed if r["domain"] == "roads"
    ) - sum(1 for r in base if r["domain"] == "roads")
    new = storage.get_version("v1.1.0")
    moved_expected = diff.moved
    split_of = {}
    for entry, folder in ((old, "v1.0.0"), (new, "v1.1.0")):
        for split in ("train", "eval"):
            path = storage.root / "versions" / folder / f"{split}.jsonl"
            for line in path.read_text().splitlines():
                split_of.setdefault(json.loads(line)["row_id"], {})[entry.version] = split
    moved = sum(1 for s in split_of.values() if len(set(s.values())) == 2 and len(s) == 2)
    assert moved == moved_expected
    assert "5 removed" in diff.summary and "4 relabelled" in diff.summary
    same = storage.compare_versions("v1.1.0", "v1.1.0")
    assert same.added == same.removed == same.relabelled == same.moved == 0


def test_old_versions_are_archived_and_restored_by_checkout(tmp_path):
    storage = _storage(tmp_path, max_versions=2)
    dataset = _write(tmp_path, _records(), "ds")
    storage.commit_dataset(dataset)
    storage.tag_version("v1.0.0", "production")
    for _ in range(3):
        storage.commit_dataset(_write(tmp_path, _records(60 + _ * 3), f"ds{_}"))
    statuses = {v.version: v.status for v in storage.list_versions()}
    assert statuses == {
        "v1.0.0": VersionStatus.DRAFT,  # tagged: never archived
        "v1.1.0": VersionStatus.ARCHIVED,
        "v1.2.0": VersionStatus.ARCHIVED,
        "v1.3.0": VersionStatus.DRAFT,  # current
    }
    assert (storage.root / "archive" / "v1.1.0.tar.gz").is_file()
    assert not (storage.root / "versions" / "v1.1.0").exists()
    assert storage.verify() == []
    diff = storage.compare_versions("v1.1.0", "v1.3.0")  # readable while archived
    assert diff.records_before == 60
    path = storage.checkout("v1.1.0")
    assert path == storage.root / "versions" / "v1.1.0"
    assert (path / "train.jsonl").is_file()
    assert storage.get_version("current").version == "v1.1.0"
    assert storage.get_version("v1.1.0").status is VersionStatus.DRAFT
    assert not (storage.root / "archive" / "v1.1.0.tar.gz").exists()
    assert storage.verify() == []


def test_export_import_round_trip_and_corrupt_archives_are_refused(tmp_path):
    storage = _storage(tmp_path)
    storage.commit_dataset(_write(tmp_path, _records(), "ds"), status="stable")
    exported = storage.export_version("v1.0.0", tmp_path / "v1.tar.gz")
    zipped = storage.export_version("v1.0.0", tmp_path / "v1.zip")
    other = DataStorage(DataStorageConfig(storage_dir=tmp_path / "other"))
    imported = other.import_version(exported)
    assert imported.version == "v1.0.0" and imported.status is VersionStatus.STABLE
    assert other.import_version(exported).version == "v1.0.0"  # idempotent
    assert other.import_version(zipped, version_tag="v2.0.0").train_samples == 48
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
    both where `data/<name>` would resolve and under data/, so only the name can be refused."""
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
        for member, data in [("manifest.json", manifest), ("x", payload), ("data/a\\b", payload)]:
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
    storage = _storage(tmp_path)
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


def test_link_copies_only_without_hard_links_and_never_replaces_a_file(tmp_path, monkeypatch):
    storage = _storage(tmp_path)
    source = tmp_path / "train.jsonl"
    source.write_text('{"text": "a", "domain": "roads"}\n', encoding="utf-8")
    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / "eval.jsonl").write_text("keep me\n", encoding="utf-8")
    with pytest.raises(FileExistsError):
        storage._link_object(source, folder, "eval.jsonl")
    assert (folder / "eval.jsonl").read_text(encoding="utf-8") == "keep me\n"
    with pytest.raises(StorageError, match=r"unsafe file name '\.\./train\.jsonl'"):
        storage._link_object(source, folder, "../train.jsonl")

    def no_hard_links(src, dst):
        raise OSError(errno.EXDEV, "cross-device link")

    monkeypatch.setattr(os, "link", no_hard_links)
    entry = storage._link_object(source, folder, "train.jsonl")
    assert (folder / "train.jsonl").read_bytes() == source.read_bytes()
    assert entry.size == source.stat().st_size


def test_tags_and_unknown_references(tmp_path):
    storage = _storage(tmp_path)
    dataset = _write(tmp_path, _records(), "ds")
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


def test_sharded_files_are_committed_together(tmp_path):
    storage = _storage(tmp_path)
    dataset = _write(tmp_path, _records(), "ds", shard_size=20)
    version = storage.commit_version(dataset / "train-00000-of-00003.jsonl", dataset / "eval.jsonl")
    assert {f"train-0000{i}-of-00003.jsonl" for i in range(3)} <= set(version.files)
    assert version.train_samples == 48


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


def _consistent(store: Path) -> list[str]:
    """The store as a fresh process sees it: complete versions only, nothing half-written."""
    storage = DataStorage(DataStorageConfig(storage_dir=store, max_versions=3))
    live = {v.version for v in storage.list_versions() if v.status is not VersionStatus.ARCHIVED}
    assert {p.name for p in (store / "versions").iterdir()} == live
    assert not [p for p in [*store.iterdir(), *(store / "versions").iterdir()] if is_leftover(p)]
    assert storage.verify() == []
    return [v.version for v in storage.list_versions()]


def test_a_commit_killed_at_any_point_leaves_the_old_or_the_new_state(tmp_path):
    store = tmp_path / "store"
    dataset = _write(tmp_path, _records(), "ds")
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    DataStorage(DataStorageConfig(storage_dir=store, max_versions=3)).commit_dataset(dataset)
    run = [sys.executable, str(script), str(store), str(dataset)]
    dry = subprocess.run([*run, "0"], capture_output=True, text=True, check=True)
    total = int(dry.stdout.strip())  # operations of one full commit (v1.1.0)
    print(f"a commit takes {total} file-system operations")
    versions = _consistent(store)
    assert versions == ["v1.0.0", "v1.1.0"]
    # Spread over the whole commit, plus the last steps around the registry switch.
    points = sorted({*range(1, total, max(1, total // 4)), total - 2, total - 1})
    outcomes = set()
    for kill_at in points:
        before = _consistent(store)
        result = subprocess.run([*run, str(kill_at)], capture_output=True, text=True)
        assert result.returncode == -9, result.stderr
        after = _consistent(store)
        assert after in (before, [*before, f"v1.{len(before)}.0"])
        outcomes.add(len(after) - len(before))
    assert outcomes == {0, 1}  # some kills landed before the registry switch, some after


def test_concurrent_commits_are_serialised(tmp_path):
    dataset = _write(tmp_path, _records(), "ds")
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
    versions = _consistent(store)
    assert versions == [f"v1.{i}.0" for i in range(6)]


def test_only_if_changed_returns_the_current_version_for_identical_files(tmp_path):
    from esk_pipeline.pipeline.versions import DataStorage, DataStorageConfig

    folder = tmp_path / "dataset"
    folder.mkdir()
    (folder / "train.jsonl").write_text('{"row_id": "a", "text": "t", "domain": "x"}\n')
    (folder / "eval.jsonl").write_text('{"row_id": "b", "text": "u", "domain": "x"}\n')
    storage = DataStorage(DataStorageConfig(storage_dir=tmp_path / "store"))
    first = storage.commit_dataset(folder, only_if_changed=True)
    again = storage.commit_dataset(folder, only_if_changed=True)
    assert again.version == first.version and len(storage.list_versions()) == 1

    (folder / "eval.jsonl").write_text('{"row_id": "b", "text": "u", "domain": "y"}\n')
    changed = storage.commit_dataset(folder, only_if_changed=True)
    assert changed.version != first.version and changed.parent == first.version
    assert storage.commit_dataset(folder).version not in {first.version, changed.version}


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
    storage = _storage(tmp_path, max_import_bytes=8 << 20)
    with pytest.raises(StorageError, match=r"unpacks to more than the limit of 8 MB"):
        storage.import_version(archive)
    leftovers = [p for p in storage.root.rglob("*") if p.is_file() and p.name != ".lock"]
    assert leftovers == []
    assert storage.list_versions() == []
