"""The store's config: literal defaults, and DATA_STORAGE_* only through the settings mapping."""

from __future__ import annotations

from pathlib import Path

from esk_pipeline import configs
from esk_pipeline.pipeline.versions import DataStorage, DataStorageConfig
from esk_pipeline.settings import Settings


def test_defaults_are_literal_and_the_environment_comes_through_the_mapping(tmp_path, monkeypatch):
    monkeypatch.setenv("DATA_STORAGE_STORAGE_DIR", str(tmp_path / "env-store"))
    monkeypatch.setenv("DATA_STORAGE_MAX_VERSIONS", "3")
    monkeypatch.setenv("DATA_STORAGE_MAX_IMPORT_MB", "7")
    plain = DataStorageConfig()
    assert plain.storage_dir == Path("data/storage") and plain.max_versions == 100
    assert plain.auto_archive_old is True and plain.max_import_bytes == 4096 << 20
    mapped = configs.storage_config(Settings.load())
    assert mapped.storage_dir == tmp_path / "env-store"
    assert (mapped.max_versions, mapped.max_import_bytes) == (3, 7 << 20)
    assert DataStorage(mapped).root == (tmp_path / "env-store").absolute()
