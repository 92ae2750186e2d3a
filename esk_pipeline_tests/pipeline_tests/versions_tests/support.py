"""Shared by the version store's tests: sample records, a written dataset, a store."""

from __future__ import annotations

from pathlib import Path

from esk_pipeline.pipeline.fsutil import is_leftover
from esk_pipeline.pipeline.splits import DataWriter, DataWriterConfig
from esk_pipeline.pipeline.versions import DataStorage, DataStorageConfig, VersionStatus

DOMAINS = ["housing", "payments", "roads"]


def sample_records(n: int = 60) -> list[dict]:
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


def write_dataset(tmp_path: Path, records: list[dict], name: str, **overrides) -> Path:
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


def make_storage(tmp_path: Path, **overrides) -> DataStorage:
    values = dict(storage_dir=tmp_path / "store", max_versions=100, auto_archive_old=True)
    values.update(overrides)
    return DataStorage(DataStorageConfig(**values))


def objects_bytes(storage: DataStorage) -> int:
    return storage.blobs.size_on_disk()


def consistent(store: Path) -> list[str]:
    """The store as a fresh process sees it: complete versions only, nothing half-written."""
    storage = DataStorage(DataStorageConfig(storage_dir=store, max_versions=3))
    live = {v.version for v in storage.list_versions() if v.status is not VersionStatus.ARCHIVED}
    assert {p.name for p in (store / "versions").iterdir()} == live
    assert not [p for p in [*store.iterdir(), *(store / "versions").iterdir()] if is_leftover(p)]
    assert storage.verify() == []
    return [v.version for v in storage.list_versions()]
