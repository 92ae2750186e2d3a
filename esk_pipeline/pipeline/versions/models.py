"""What the version store records: its config, a version's entry, the registry and its errors.

The registry (catalog.py keeps its snapshots) is the single source of truth: which versions
exist, their files with checksums (each version's manifest of content-addressed blobs), tags
and the current version. Whatever the location holds that it does not name is a leftover
that opening the store removes.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, ValidationError

from esk_pipeline.pipeline.options import DataStorageOptions

__all__ = [
    "STAGED_DIR",
    "DataStorageConfig",
    "DatasetVersion",
    "FileEntry",
    "Registry",
    "StagedDataset",
    "StorageError",
    "VersionNotFoundError",
    "VersionStatus",
]

_MIB = 1024 * 1024
STAGED_DIR = "staged"


class StorageError(Exception):
    """A storage operation that cannot be done; the message says what and why."""


class VersionNotFoundError(StorageError, KeyError):
    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class VersionStatus(StrEnum):
    DRAFT = "draft"
    STABLE = "stable"
    DEPRECATED = "deprecated"
    ARCHIVED = "archived"


class DataStorageConfig(DataStorageOptions):
    # An import may unpack to at most this much (checked on each member before it is written).
    max_import_bytes: int = Field(default=4096 * _MIB, ge=1)


class FileEntry(BaseModel):
    sha256: str
    size: int
    # A Parquet copy's records per domain: counted once per content, carried to later versions.
    domains: dict[str, int] | None = None


class StagedDataset(BaseModel):
    """A dataset's files stored as blobs but not yet a version (`DataStorage.stage_dataset`):
    what a commit on another machine needs."""

    files: dict[str, FileEntry]
    metadata: dict[str, Any] | None = None

    def marker_name(self) -> str:
        """The object that keeps the staged blobs from garbage collection until the commit."""
        digest = hashlib.sha256(self.model_dump_json().encode()).hexdigest()
        return f"{STAGED_DIR}/{digest}.json"


class DatasetVersion(BaseModel):
    """One committed version as the registry records it (`tags` and `path` are filled on read)."""

    version: str
    status: VersionStatus
    description: str = ""
    created_by: str = "unknown"
    created_at: datetime
    parent: str | None = None
    # The version's manifest: filled from its object (catalog.py), which `manifest` names.
    files: dict[str, FileEntry] = Field(default_factory=dict)
    manifest: str | None = None
    train_samples: int
    eval_samples: int
    domain_distribution: dict[str, int]
    train_distribution: dict[str, int]
    eval_distribution: dict[str, int]
    archive: str | None = None
    archive_sha256: str | None = None
    status_before_archive: VersionStatus | None = None
    tags: list[str] = Field(default_factory=list)
    path: Path | None = None

    @property
    def size_bytes(self) -> int:
        return sum(f.size for f in self.files.values())

    @property
    def is_archived(self) -> bool:
        return self.status is VersionStatus.ARCHIVED


class Registry(BaseModel):
    """The registry: what each snapshot (catalog.py) holds."""

    format: int = 1
    versions: list[DatasetVersion] = Field(default_factory=list)
    tags: dict[str, str] = Field(default_factory=dict)
    current: str | None = None

    def find(self, version: str) -> DatasetVersion | None:
        return next((v for v in self.versions if v.version == version), None)

    def live(self) -> list[DatasetVersion]:
        """Versions with a folder under versions/ (not archived)."""
        return [v for v in self.versions if not v.is_archived]

    @classmethod
    def from_bytes(cls, data: bytes, where: str) -> Registry:
        try:
            return cls.model_validate_json(data)
        except ValidationError as exc:
            problem = f"{where}: unreadable registry ({exc.error_count()} errors)"
            raise StorageError(problem) from exc

    def to_bytes(self) -> bytes:
        """The snapshot: each version names its manifest object instead of listing files."""
        per_version = {"tags", "path", "files"}
        payload = self.model_dump_json(
            indent=2, exclude={"versions": {"__all__": per_version}}, exclude_none=True
        )
        return payload.encode("utf-8")
