"""Names in the store: version names, bumps, tags, references and the file names a version holds."""

from __future__ import annotations

from pathlib import Path

import pytest

from esk_pipeline.pipeline.versions import StorageError, VersionNotFoundError
from esk_pipeline.pipeline.versions._layout import (
    check_tag,
    new_version_name,
    normalise_version,
    resolve,
    semver,
    stored_path,
)
from esk_pipeline.pipeline.versions.models import DatasetVersion, Registry


def _entry(version: str) -> DatasetVersion:
    return DatasetVersion(
        version=version,
        status="draft",
        created_at="2026-01-01T00:00:00Z",
        files={},
        train_samples=0,
        eval_samples=0,
        domain_distribution={},
        train_distribution={},
        eval_distribution={},
    )


def test_version_names_are_checked_whole_and_bumped_from_the_highest():
    assert semver("v1.10.2") == (1, 10, 2) and semver("v1.0.0\n") == (0, 0, 0)
    assert normalise_version("2.3.4") == "v2.3.4" and normalise_version("prod") == "prod"
    registry = Registry(versions=[_entry("v1.9.0"), _entry("v1.10.0")])
    assert new_version_name(Registry(), None, "minor") == "v1.0.0"
    assert new_version_name(registry, None, "minor") == "v1.11.0"
    assert new_version_name(registry, None, "major") == "v2.0.0"
    assert new_version_name(registry, None, "patch") == "v1.10.1"
    with pytest.raises(StorageError, match="not semantic"):
        new_version_name(registry, "v1.0.0\n", "minor")
    with pytest.raises(StorageError, match="already exists"):
        new_version_name(registry, "1.9.0", "minor")


def test_references_resolve_by_name_tag_current_and_latest():
    registry = Registry(
        versions=[_entry("v1.10.0"), _entry("v1.9.0")], tags={"prod": "v1.9.0"}, current="v1.9.0"
    )
    assert resolve(registry, "latest").version == "v1.10.0"  # by semver, not by order
    assert resolve(registry, "current").version == "v1.9.0"
    assert resolve(registry, "prod").version == "v1.9.0"
    assert resolve(registry, "1.10.0").version == "v1.10.0"
    with pytest.raises(VersionNotFoundError, match=r"known: v1\.9\.0, v1\.10\.0, prod"):
        resolve(registry, "v2.0.0")


@pytest.mark.parametrize("tag", ["current", "latest", "v1.0.0", "1bad", "a/b", "x" * 65])
def test_tags_that_would_be_confused_with_versions_or_paths_are_refused(tag):
    with pytest.raises(StorageError, match="invalid tag"):
        check_tag(tag)


@pytest.mark.parametrize("name", ["../x", "/etc/passwd", "a\\b", ".hidden", "sub/x.jsonl"])
def test_only_the_names_a_version_holds_become_paths(tmp_path: Path, name):
    assert (
        stored_path(tmp_path, "__parquet__/train.parquet") == tmp_path / "__parquet__/train.parquet"
    )
    with pytest.raises(StorageError, match="unsafe file name"):
        stored_path(tmp_path, name)
