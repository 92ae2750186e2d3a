"""The version store: semantic versions of train/eval datasets on a folder or object storage.

`DataStorage` (store.py) commits a dataset folder as a new version, tags, checks out, lists,
compares (diff.py), exports, imports and archives versions (transfer.py). What it records is
in models.py, where it lives in location.py, its commit point (registry snapshots) in
catalog.py; privately, its names and layout in _layout.py, its content-addressed file content
in _blobs.py and the records' tables in _records.py.
"""

from .diff import DomainChange, RelabelledExample, SplitMove, VersionDiff
from .models import (
    DatasetVersion,
    DataStorageConfig,
    FileEntry,
    StagedDataset,
    StorageError,
    VersionNotFoundError,
    VersionStatus,
)
from .store import DataStorage
from .transfer import EXPORT_FORMAT

__all__ = [
    "EXPORT_FORMAT",
    "DataStorage",
    "DataStorageConfig",
    "DatasetVersion",
    "DomainChange",
    "FileEntry",
    "RelabelledExample",
    "SplitMove",
    "StagedDataset",
    "StorageError",
    "VersionDiff",
    "VersionNotFoundError",
    "VersionStatus",
]
