"""DataStorage: versioned, verifiable, comparable datasets on a local folder.

A commit links the dataset's files into a folder staged beside `versions/` (blobs.py), adds
Parquet copies and metadata.json, fsyncs it and renames it into place (fsutil.atomic_folder);
only then is versions.json replaced. Opening the store removes whatever a crash left behind
that the registry does not name (temporary files and folders, unregistered version folders,
unreferenced blobs), so the store is always in the old or the new state. Every change holds
`.lock`. Export, import, archiving and verification are in transfer.py.
"""

from __future__ import annotations

import contextlib
import json
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from esk_pipeline.pipeline import fsutil
from esk_pipeline.pipeline.dataset_layout import PARQUET_DIR

from . import _layout
from ._blobs import BlobStore
from ._layout import Bump
from ._records import records_table, split_counts, write_parquet
from .diff import VersionDiff, diff_tables
from .models import (
    DatasetVersion,
    DataStorageConfig,
    FileEntry,
    Registry,
    StorageError,
    VersionStatus,
)
from .transfer import Transfer


class DataStorage(Transfer):
    """Semantic versions of train/eval datasets with git-like operations (see module docstring)."""

    def __init__(self, config: DataStorageConfig | None = None):
        self.config = config or DataStorageConfig()
        self.root = Path(self.config.storage_dir).absolute()
        self.versions_dir = self.root / "versions"
        self.objects_dir = self.root / "objects"
        self.archive_dir = self.root / "archive"
        for folder in (self.versions_dir, self.objects_dir, self.archive_dir):
            folder.mkdir(parents=True, exist_ok=True)
        self.blobs = BlobStore(self.objects_dir)
        self._lock = FileLock(self.root / ".lock", timeout=self.config.lock_timeout_seconds)
        with self._locked():
            self._recover(self._load())

    # ----------------------------------------------------------------- commits

    def commit_version(
        self,
        train_path: str | Path,
        eval_path: str | Path,
        version_tag: str | None = None,
        description: str = "",
        status: VersionStatus | str = VersionStatus.DRAFT,
        created_by: str = "unknown",
        bump: Bump = "minor",
    ) -> DatasetVersion:
        """Commit a train and an eval file (a first shard brings its siblings) as a new version.

        Without `version_tag` the latest version gets a `bump` (minor by default); the first
        version is v1.0.0. Parquet copies next to the files (`__parquet__/`) are reused, else built.
        A README.md and the writer's metadata.json next to the train file come along.
        """
        sources: dict[str, Path] = {}
        for split, given in (("train", Path(train_path)), ("eval", Path(eval_path))):
            for source in _layout.expand_shards(given):
                shard = _layout.SHARD_SUFFIX.search(source.name)
                name = f"{split}{shard.group(0) if shard else ''}.jsonl"
                sources[name] = source
                parquet = source.parent / PARQUET_DIR / f"{source.stem}.parquet"
                if parquet.is_file():
                    sources[_layout.parquet_name(name)] = parquet
        folder = Path(train_path).parent
        if (folder / "README.md").is_file():
            sources["README.md"] = folder / "README.md"
        metadata = _layout.read_json(folder / "metadata.json")
        return self._commit(sources, metadata, version_tag, description, status, created_by, bump)

    def commit_dataset(
        self,
        dataset_dir: str | Path,
        version_tag: str | None = None,
        description: str = "",
        status: VersionStatus | str = VersionStatus.DRAFT,
        created_by: str = "unknown",
        bump: Bump = "minor",
        only_if_changed: bool = False,
    ) -> DatasetVersion:
        """Commit a whole DataWriter folder (data files, Parquet copies, card, metadata).

        With `only_if_changed`, a folder whose files are byte-identical to the current
        version's returns that version instead of committing a copy (a re-run that changed
        nothing makes no new version).
        """
        dataset_dir = Path(dataset_dir)
        if not dataset_dir.is_dir():
            raise StorageError(f"{dataset_dir}: not a dataset folder")
        sources = {
            p.relative_to(dataset_dir).as_posix(): p
            for p in sorted(dataset_dir.rglob("*"))
            if p.is_file()
            and not any(part.startswith(".") for part in p.relative_to(dataset_dir).parts)
        }
        sources.pop("metadata.json", None)
        if not _layout.data_files(sources):
            raise StorageError(f"{dataset_dir}: no train*.jsonl / eval*.jsonl files")
        if only_if_changed and (same := self._current_if_identical(sources)) is not None:
            return same
        metadata = _layout.read_json(dataset_dir / "metadata.json")
        return self._commit(sources, metadata, version_tag, description, status, created_by, bump)

    def _commit(
        self,
        sources: dict[str, Path],
        dataset_metadata: dict[str, Any] | None,
        version_tag: str | None,
        description: str,
        status: VersionStatus | str,
        created_by: str,
        bump: Bump,
        created_at: datetime | None = None,
    ) -> DatasetVersion:
        status = VersionStatus(status)
        if status is VersionStatus.ARCHIVED:
            raise StorageError("a new version cannot be committed as archived")
        for name, source in sources.items():
            if not source.is_file():
                raise StorageError(f"{source}: no such file (for {name})")
        with self._locked():
            registry = self._load()
            version = _layout.new_version_name(registry, version_tag, bump)
            with fsutil.atomic_folder(self.versions_dir / version) as staging:
                files = {n: self._link_object(src, staging, n) for n, src in sources.items()}
                for name in _layout.data_files(files):
                    parquet = _layout.parquet_name(name)
                    if parquet not in files:
                        files[parquet] = self._build_parquet(staging / name, staging, parquet)
                entry = DatasetVersion(
                    version=version,
                    status=status,
                    description=description,
                    created_by=created_by,
                    created_at=created_at or datetime.now(UTC),
                    parent=registry.current,
                    files={},
                    **split_counts(staging, files),
                )
                metadata = entry.model_dump(mode="json", exclude={"files", "tags", "path"})
                metadata["dataset"] = dataset_metadata
                text = json.dumps(metadata, ensure_ascii=False, indent=2, sort_keys=True) + "\n"
                meta = text.encode("utf-8")
                files["metadata.json"] = self._link_bytes(meta, staging, "metadata.json")
                entry.files = dict(sorted(files.items()))
            registry.versions.append(entry)
            registry.current = version
            self._save(registry)
            self._point_current(version)
            if self.config.auto_archive_old:
                self._archive_old(registry)
            return self._public(registry, registry.find(version) or entry)

    def _current_if_identical(self, sources: dict[str, Path]) -> DatasetVersion | None:
        registry = self._load()
        current = registry.find(registry.current) if registry.current else None
        if current is None:
            return None
        stored = {n: f.sha256 for n, f in current.files.items() if n in sources}
        if stored.keys() != sources.keys():
            return None
        if any(fsutil.file_digest(path) != stored[name] for name, path in sources.items()):
            return None
        return self._public(registry, current)

    # --------------------------------------------------------------- reading

    def list_versions(self, status: VersionStatus | str | None = None) -> list[DatasetVersion]:
        """All versions, oldest first; only those with `status` when given."""
        registry = self._load()
        wanted = VersionStatus(status) if status is not None else None
        return [
            self._public(registry, v)
            for v in _layout.by_version(registry.versions)
            if wanted is None or v.status == wanted
        ]

    def get_version(self, ref: str) -> DatasetVersion:
        """A version by name (v1.2.0 or 1.2.0), tag, "current" or "latest"."""
        registry = self._load()
        return self._public(registry, self._resolve(registry, ref))

    def get_stats(self) -> dict[str, Any]:
        """Counts and sizes: total_size_mb is bytes on disk (shared blobs once, archives)."""
        registry = self._load()
        on_disk = self.blobs.size_on_disk()
        on_disk += sum(p.stat().st_size for p in self.archive_dir.glob("*.tar.gz"))
        by_status = {s.value: 0 for s in VersionStatus}
        for v in registry.versions:
            by_status[v.status.value] += 1
        ordered = _layout.by_version(registry.versions)
        return {
            "storage_dir": str(self.root),
            "total_versions": len(registry.versions),
            "by_status": by_status,
            "archived_versions": by_status[VersionStatus.ARCHIVED.value],
            "total_size_mb": round(on_disk / 1e6, 3),
            "logical_size_mb": round(sum(v.size_bytes for v in registry.versions) / 1e6, 3),
            "current": registry.current,
            "latest": ordered[-1].version if ordered else None,
            "tags": dict(sorted(registry.tags.items())),
        }

    def compare_versions(self, a: str, b: str, examples: int = 10) -> VersionDiff:
        """Record-level diff from `a` to `b` (added, removed, relabelled, moved, per domain)."""
        registry = self._load()
        old_entry, new_entry = self._resolve(registry, a), self._resolve(registry, b)
        with self._readable(old_entry) as old_dir, self._readable(new_entry) as new_dir:
            old = records_table(old_dir, old_entry)
            new = records_table(new_dir, new_entry)
        return diff_tables(old_entry, new_entry, old, new, examples)

    # ------------------------------------------------------------ operations

    def checkout(self, ref: str) -> Path:
        """Point `current` at a version (restoring it from the archive if needed); its folder."""
        with self._locked():
            registry = self._load()
            entry = self._resolve(registry, ref)
            if entry.is_archived:
                self._restore(registry, entry)
            registry.current = entry.version
            self._save(registry)
            self._point_current(entry.version)
            if self.config.auto_archive_old:
                self._archive_old(registry)
            return self.versions_dir / entry.version

    def tag_version(self, version: str, tag: str) -> DatasetVersion:
        """Name a version (e.g. "production"); a tag moves if it already named another version."""
        _layout.check_tag(tag)
        with self._locked():
            registry = self._load()
            entry = self._resolve(registry, version)
            registry.tags[tag] = entry.version
            self._save(registry)
            return self._public(registry, entry)

    def set_status(self, ref: str, status: VersionStatus | str) -> DatasetVersion:
        """Promote or deprecate a version (archiving is done by the store, not by hand)."""
        status = VersionStatus(status)
        if status is VersionStatus.ARCHIVED:
            raise StorageError("versions are archived automatically past max_versions")
        with self._locked():
            registry = self._load()
            entry = self._resolve(registry, ref)
            if entry.is_archived:
                entry.status_before_archive = status
            else:
                entry.status = status
            self._save(registry)
            return self._public(registry, entry)

    # -------------------------------------------------------------- internals

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        try:
            with self._lock:
                yield
        except Timeout as exc:
            raise StorageError(f"{self.root}: another process holds the storage lock") from exc

    def _load(self) -> Registry:
        return Registry.load(self.root)

    def _save(self, registry: Registry) -> None:
        registry.save(self.root)

    def _public(self, registry: Registry, entry: DatasetVersion) -> DatasetVersion:
        tags = sorted(t for t, v in registry.tags.items() if v == entry.version)
        path = None if entry.is_archived else self.versions_dir / entry.version
        return entry.model_copy(update={"tags": tags, "path": path})

    def _resolve(self, registry: Registry, ref: str) -> DatasetVersion:
        return _layout.resolve(registry, ref)

    def _link_object(self, source: Path, folder: Path, name: str) -> FileEntry:
        return self.blobs.link(source, folder, name)

    def _link_bytes(self, data: bytes, folder: Path, name: str) -> FileEntry:
        """Link `data` as `name`, via a temporary file beside it."""
        tmp = fsutil.temp_path(folder / name)
        try:
            tmp.write_bytes(data)
            return self._link_object(tmp, folder, name)
        finally:
            tmp.unlink(missing_ok=True)

    def _build_parquet(self, jsonl: Path, folder: Path, name: str) -> FileEntry:
        """The Parquet copy of a JSONL file that diffs read (row_id filled in from the text)."""
        tmp = fsutil.temp_path(_layout.stored_path(folder, name))
        tmp.parent.mkdir(parents=True, exist_ok=True)
        try:
            write_parquet(jsonl, tmp)
            return self._link_object(tmp, folder, name)
        finally:
            tmp.unlink(missing_ok=True)

    def _point_current(self, version: str) -> None:
        _layout.point_current(self.root, version)

    def _read_current_pointer(self) -> str | None:
        return _layout.read_current_pointer(self.root)

    def _recover(self, registry: Registry) -> None:
        """Remove what an interrupted operation left behind; the registry decides what is real."""
        for folder in (self.root, self.versions_dir, self.archive_dir):
            fsutil.remove_leftovers(folder)
        live = {v.version for v in registry.live()}
        for folder in self.versions_dir.iterdir():
            if folder.name not in live:
                shutil.rmtree(folder, ignore_errors=True)
        archives = {v.archive for v in registry.versions if v.archive}
        for path in self.archive_dir.iterdir():
            if path.relative_to(self.root).as_posix() not in archives:
                path.unlink(missing_ok=True)
        self._collect_garbage(registry)
        if registry.current and self._read_current_pointer() != registry.current:
            self._point_current(registry.current)

    def _collect_garbage(self, registry: Registry) -> None:
        """Delete blobs no live version uses (and temporary blobs of an interrupted write)."""
        self.blobs.collect_garbage(f.sha256 for v in registry.live() for f in v.files.values())
