"""DataStorage: versioned, verifiable, comparable datasets on a local folder or object storage.

The store lives at any location (location.py): a local folder by default, or an fsspec URL
such as s3://bucket/prefix. A version is a manifest of content-addressed blobs (_blobs.py)
kept in the registry: a commit uploads only content not stored yet (a digest cache beside
the sources spares re-reading unchanged files), then writes the next registry snapshot with
a write that fails if another writer took it first (catalog.py). That snapshot is the commit:
before it the store is in the old state, after it in the new one. Opening the store removes
what a crash left that no snapshot names.

On a local folder each live version also has a folder of hard links to its blobs
(`versions/vX.Y.Z/`, loadable as a Hugging Face dataset) and `current` points at one; this
machine's writers take `.lock`. Export, import, archiving and verification are in transfer.py,
recovery and garbage collection in _housekeeping.py, staging a dataset's files in _sources.py.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from filelock import FileLock, Timeout
from upath import UPath

from esk_pipeline.pipeline.dataset_layout import PARQUET_DIR

from . import _layout
from ._blobs import DIGEST_CACHE, BlobStore, DigestCache, blob_name
from ._housekeeping import Housekeeping
from ._layout import ARCHIVE_DIR, VERSIONS_DIR, Bump
from ._records import split_counts
from ._sources import Staging
from .catalog import Catalog
from .diff import VersionDiff, diff_versions
from .location import LocalLocation, open_location
from .models import (
    DatasetVersion,
    DataStorageConfig,
    FileEntry,
    Registry,
    StagedDataset,
    StorageError,
    VersionStatus,
)
from .transfer import Transfer

__all__ = ["DataStorage"]

T = TypeVar("T")
# Tries of one registry change against concurrent writers before giving up.
_MAX_ATTEMPTS = 50


class DataStorage(Staging, Transfer, Housekeeping):
    """Semantic versions of train/eval datasets with git-like operations (see module docstring)."""

    def __init__(self, config: DataStorageConfig | None = None):
        self.config = config or DataStorageConfig()
        self.location = open_location(self.config.storage_dir)
        local = isinstance(self.location, LocalLocation)
        self.root: Path | UPath = self.location.root if local else UPath(self.location.url)
        self.versions_dir = self.root / VERSIONS_DIR
        if local:
            self.versions_dir.mkdir(parents=True, exist_ok=True)
        self.blobs = BlobStore(self.location)
        self.catalog = Catalog(self.location)
        # Without a lock (object storage) a concurrent commit's uploads look like orphans.
        self._grace = 0.0 if local else self.config.orphan_grace_seconds
        timeout = self.config.lock_timeout_seconds
        self._lock = FileLock(self.root / ".lock", timeout=timeout) if local else None
        with self._locked():
            self.catalog.adopt_legacy()
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

        A file a DataWriter wrote brings every file of its split that the folder's metadata.json
        lists (the per-day `train-<day>.jsonl` files), under their own names.

        Without `version_tag` the latest version gets a `bump` (minor by default); the first
        version is v1.0.0. Parquet copies next to the files (`__parquet__/`) are reused, else built.
        A README.md and the writer's metadata.json next to the train file come along.
        """
        sources: dict[str, Path] = {}
        for split, given in (("train", Path(train_path)), ("eval", Path(eval_path))):
            for name, source in _split_files(split, given):
                sources[name] = source
                parquet = source.parent / PARQUET_DIR / f"{source.stem}.parquet"
                if parquet.is_file():
                    sources[_layout.parquet_name(name)] = parquet
        folder = Path(train_path).parent
        if (folder / "README.md").is_file():
            sources["README.md"] = folder / "README.md"
        with self._locked():
            staged = self._stage_files(
                sources,
                DigestCache(folder.parent / DIGEST_CACHE),
                _layout.read_json(folder / "metadata.json"),
            )
            return self.commit_staged(staged, version_tag, description, status, created_by, bump)

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
        with self._locked():  # (on object storage, fresh blobs are spared by the grace period)
            staged = self._stage(Path(dataset_dir))
            return self.commit_staged(
                staged, version_tag, description, status, created_by, bump, only_if_changed
            )

    def commit_staged(
        self,
        staged: StagedDataset,
        version_tag: str | None = None,
        description: str = "",
        status: VersionStatus | str = VersionStatus.DRAFT,
        created_by: str = "unknown",
        bump: Bump = "minor",
        only_if_changed: bool = False,
    ) -> DatasetVersion:
        """Commit a staged dataset (see `stage_dataset`) as a new version; `only_if_changed`
        as in `commit_dataset`."""
        with self._locked():
            missing = [
                name
                for name, file in staged.files.items()
                if not self.location.exists(blob_name(file.sha256))
            ]
            if missing:
                raise StorageError(
                    f"staged files are gone from {self.location.url} ({', '.join(missing[:3])}): "
                    "staged longer ago than staged_ttl_seconds? Stage the dataset again"
                )
            version = self._commit(
                staged.files,
                staged.metadata,
                version_tag,
                description,
                status,
                created_by,
                bump,
                only_if_changed=only_if_changed,
            )
            self.location.delete(staged.marker_name())
            return version

    def _commit(
        self,
        files: dict[str, FileEntry],
        dataset_metadata: dict[str, Any] | None,
        version_tag: str | None,
        description: str,
        status: VersionStatus | str,
        created_by: str,
        bump: Bump,
        created_at: datetime | None = None,
        only_if_changed: bool = False,
        make_current: bool = True,
    ) -> DatasetVersion:
        status = VersionStatus(status)
        if status is VersionStatus.ARCHIVED:
            raise StorageError("a new version cannot be committed as archived")
        for name in files:
            _layout.check_stored_name(name)
        with self._locked():

            def add(registry: Registry) -> DatasetVersion:
                current = registry.find(registry.current) if registry.current else None
                if only_if_changed and current and _layout.same_content(current.files, files):
                    return current  # a writer elsewhere committed this content meanwhile
                version = _layout.new_version_name(registry, version_tag, bump)
                entry = DatasetVersion(
                    version=version,
                    status=status,
                    description=description,
                    created_by=created_by,
                    created_at=created_at or datetime.now(UTC),
                    parent=registry.current,
                    files={},
                    **split_counts(files),
                )
                metadata = entry.model_dump(mode="json", exclude={"files", "tags", "path"})
                metadata["dataset"] = dataset_metadata
                text = json.dumps(metadata, ensure_ascii=False, indent=2, sort_keys=True) + "\n"
                meta = self.blobs.put_bytes(text.encode("utf-8"))
                entry.files = dict(sorted({**files, "metadata.json": meta}.items()))
                registry.versions.append(entry)
                if make_current or registry.current is None:
                    registry.current = version
                return entry

            _, entry = self._update(add)
            if self.config.auto_archive_old:
                self._archive_old()
            return self.get_version(entry.version)

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
        on_disk += sum(size for size, _ in self.location.listing(ARCHIVE_DIR).values())
        by_status = {s.value: 0 for s in VersionStatus}
        for v in registry.versions:
            by_status[v.status.value] += 1
        ordered = _layout.by_version(registry.versions)
        return {
            "storage_dir": self.location.url,
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
        with self._readable(old_entry) as open_old, self._readable(new_entry) as open_new:
            return diff_versions(old_entry, new_entry, open_old, open_new, examples)

    # ------------------------------------------------------------ operations

    def checkout(self, ref: str) -> Path | UPath:
        """Point `current` at a version (restoring it from the archive if needed); its folder.

        On a local folder every live version has its folder already (hard links); on object
        storage the version's files are copied there now (server-side), once.
        """
        with self._locked():
            entry = self._resolve(self._load(), ref)
            if entry.is_archived:
                self._restore(entry)

            def point(registry: Registry) -> None:
                registry.current = self._resolve(registry, entry.version).version

            self._update(point)
            if self.config.auto_archive_old:
                self._archive_old()
            return self._materialise(self.get_version(entry.version))

    def tag_version(self, version: str, tag: str) -> DatasetVersion:
        """Name a version (e.g. "production"); a tag moves if it already named another version."""
        _layout.check_tag(tag)
        with self._locked():

            def tag_it(registry: Registry) -> DatasetVersion:
                entry = self._resolve(registry, version)
                registry.tags[tag] = entry.version
                return entry

            registry, entry = self._update(tag_it)
            return self._public(registry, entry)

    def set_status(self, ref: str, status: VersionStatus | str) -> DatasetVersion:
        """Promote or deprecate a version (archiving is done by the store, not by hand)."""
        status = VersionStatus(status)
        if status is VersionStatus.ARCHIVED:
            raise StorageError("versions are archived automatically past max_versions")
        with self._locked():

            def set_it(registry: Registry) -> DatasetVersion:
                entry = self._resolve(registry, ref)
                if entry.is_archived:
                    entry.status_before_archive = status
                else:
                    entry.status = status
                return entry

            registry, entry = self._update(set_it)
            return self._public(registry, entry)

    # -------------------------------------------------------------- internals

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """Serialises this machine's writers on a local folder (so recovery may remove any
        orphan at once); on object storage the registry's conditional write is the only
        guard, and recovery spares orphans younger than the grace period."""
        if self._lock is None:
            yield
            return
        try:
            with self._lock:
                yield
        except Timeout as exc:
            raise StorageError(f"{self.root}: another process holds the storage lock") from exc

    def _load(self) -> Registry:
        return self.catalog.read()[1]

    def _update(self, change: Callable[[Registry], T]) -> tuple[Registry, T]:
        """Apply `change` to the latest registry and commit it as the next snapshot (none when
        it changed nothing); when another writer committed first, re-read and apply it again
        (catalog.py)."""
        for _ in range(_MAX_ATTEMPTS):
            number, registry = self.catalog.read()
            before = registry.model_copy(deep=True)
            result = change(registry)
            if registry == before or self.catalog.write(number + 1, registry):
                self._sync_folders(registry)
                return registry, result
        raise StorageError(f"{self.root}: gave up after {_MAX_ATTEMPTS} concurrent changes")

    def _public(self, registry: Registry, entry: DatasetVersion) -> DatasetVersion:
        tags = sorted(t for t, v in registry.tags.items() if v == entry.version)
        local = self.location.is_local and not entry.is_archived
        path = self.versions_dir / entry.version if local else None
        return entry.model_copy(update={"tags": tags, "path": path})

    def _resolve(self, registry: Registry, ref: str) -> DatasetVersion:
        return _layout.resolve(registry, ref)

    def _materialise(self, entry: DatasetVersion) -> Path | UPath:
        """The version's folder (copied from its blobs on object storage, where missing)."""
        if entry.path is not None:
            return entry.path
        folder = f"{VERSIONS_DIR}/{entry.version}"
        present = self.location.listing(folder)
        for name, file in entry.files.items():
            target = f"{folder}/{name}"
            if present.get(target, (None,))[0] != file.size:
                self.location.copy(blob_name(file.sha256), target)
        return UPath(f"{self.location.url}/{folder}")


def _split_files(split: str, given: Path) -> list[tuple[str, Path]]:
    """(name in the version, file) of what committing `given` as `split` brings: the split's
    files its DataWriter folder lists, else the file (or its shards) named as the split."""
    metadata = _layout.read_json(given.parent / "metadata.json") or {}
    stats = metadata.get("stats") if isinstance(metadata, dict) else None
    shards = stats.get("shards") if isinstance(stats, dict) else None
    listed = shards.get(split) if isinstance(shards, dict) else None
    if isinstance(listed, list) and given.name in listed:
        for name in map(str, listed):
            match = _layout.DATA_FILE.fullmatch(name)
            if match is None or match["split"] != split or not (given.parent / name).is_file():
                raise StorageError(
                    f"{given.parent / 'metadata.json'}: {name!r} is not a {split} data file "
                    "of this folder"
                )
        return [(str(name), given.parent / str(name)) for name in listed]
    named = []
    for source in _layout.expand_shards(given):
        shard = _layout.SHARD_SUFFIX.search(source.name)
        named.append((f"{split}{shard.group(0) if shard else ''}.jsonl", source))
    return named
