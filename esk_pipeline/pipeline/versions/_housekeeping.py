"""Keeping the store in line with its registry (mixed into DataStorage): local version folders
and the `current` pointer follow each registry change, opening the store removes what an
interrupted operation left, and blobs no version or recent staged dataset uses are deleted."""

from __future__ import annotations

import contextlib
import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING

from esk_pipeline.pipeline import fsutil

from . import _layout
from ._layout import ARCHIVE_DIR, VERSIONS_DIR
from .catalog import MANIFEST_DIR, REGISTRY_DIR, manifest_name
from .location import LocalLocation
from .models import STAGED_DIR, Registry, StagedDataset

if TYPE_CHECKING:
    from collections.abc import Callable

    from upath import UPath

    from ._blobs import BlobStore
    from .location import Location
    from .models import DataStorageConfig


class Housekeeping:
    """Folders, the current pointer, recovery and garbage collection (mixed into DataStorage)."""

    config: DataStorageConfig
    root: Path | UPath
    versions_dir: Path | UPath
    location: Location
    blobs: BlobStore
    _grace: float
    _load: Callable[[], Registry]

    def _read_current_pointer(self) -> str | None:
        if not isinstance(self.location, LocalLocation):
            return self._load().current  # object storage: the registry is the pointer
        return _layout.read_current_pointer(self.root)

    def _sync_folders(self, registry: Registry) -> None:
        """Local folders follow the registry: a hard-linked folder per live version, none
        for any other, `current` naming the current one (each step atomic and repeatable,
        so a crash between the registry and these is repaired by the next one)."""
        if not isinstance(self.location, LocalLocation):
            return
        live = {v.version: v for v in registry.live()}
        fsutil.remove_leftovers(self.versions_dir)
        for folder in self.versions_dir.iterdir():
            if folder.name not in live:
                shutil.rmtree(folder, ignore_errors=True)
        for version, entry in live.items():
            if not (self.versions_dir / version).is_dir():
                # Hard links to blobs, which were flushed when written: only entries to flush.
                with fsutil.atomic_folder(self.versions_dir / version, sync_files=False) as staging:
                    for name, file in entry.files.items():
                        self.blobs.link(file.sha256, staging, name)
        if registry.current and self._read_current_pointer() != registry.current:
            _layout.point_current(self.root, registry.current)

    def _recover(self, registry: Registry) -> None:
        """Remove what an interrupted operation left behind; the registry decides what is real.

        On object storage only what is older than the grace period: it may be a commit in
        flight on another machine.
        """
        if isinstance(self.location, LocalLocation):
            for folder in (self.root, self.root / REGISTRY_DIR, self.root / ARCHIVE_DIR):
                fsutil.remove_leftovers(folder)
        cutoff = time.time() - self._grace
        archives = {v.archive for v in registry.versions if v.archive}
        for name, (_, modified) in self.location.listing(ARCHIVE_DIR).items():
            if name not in archives and modified <= cutoff:
                self.location.delete(name)
        if not isinstance(self.location, LocalLocation):
            live = {f"{VERSIONS_DIR}/{v.version}/" for v in registry.live()}
            for name, (_, modified) in self.location.listing(VERSIONS_DIR).items():
                if not any(name.startswith(prefix) for prefix in live) and modified <= cutoff:
                    self.location.delete(name)
        self._collect_garbage(registry)
        self._sync_folders(registry)

    def _collect_garbage(self, registry: Registry) -> None:
        """Delete manifests no version names, then blobs no live version or recent staged
        dataset uses (and temporary files of an interrupted write); staged datasets past
        their time go first."""
        used = {f.sha256 for v in registry.live() for f in v.files.values()}
        manifests = {manifest_name(v.manifest) for v in registry.versions if v.manifest}
        cutoff = time.time() - self._grace
        for name, (_, modified) in self.location.listing(MANIFEST_DIR).items():
            if name not in manifests and modified <= cutoff:
                self.location.delete(name)
        expired = time.time() - self.config.staged_ttl_seconds
        for name, (_, modified) in self.location.listing(STAGED_DIR).items():
            if modified <= expired:
                self.location.delete(name)
                continue
            with contextlib.suppress(FileNotFoundError, ValueError):
                staged = StagedDataset.model_validate_json(self.location.read_bytes(name))
                used.update(f.sha256 for f in staged.files.values())
        self.blobs.collect_garbage(used, self._grace)
