"""DataStorage: versioned, verifiable, comparable datasets on a local folder.

Layout (the seed's, plus what makes it safe):

    storage_dir/
      versions.json          the registry: the single source of truth (versions, tags, current)
      versions/vX.Y.Z/       train.jsonl, eval.jsonl (or shards), __parquet__/..., metadata.json
      current                symlink -> versions/vX.Y.Z (a text file naming it without symlinks)
      objects/ab/<sha256>    content-addressed blobs; version files are hard links to them, so
                             identical files across versions are stored once
      archive/vX.Y.Z.tar.gz  versions archived past max_versions; checkout restores them
      .lock                  serialises every change (commit, tag, checkout, archive, import)

Safety: a commit stages its folder under storage_dir, fsyncs, renames it into versions/ and only
then replaces versions.json (write temp, fsync, os.replace). Opening the store removes whatever a
crash left behind that the registry does not name (staging folders, unregistered version folders,
temporary and unreferenced blobs), so the store is always the old or the new state.

Diffs work on records, not files: every version keeps Parquet copies of its records under
`__parquet__/` and `compare_versions` joins them on row_id with Arrow (a million records in
about a second).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import re
import shutil
import tarfile
import tempfile
import uuid
import zipfile
import zlib
from collections.abc import Iterator
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pa_json
import pyarrow.parquet as pq
from filelock import FileLock, Timeout
from pydantic import BaseModel, Field, ValidationError

from esk_pipeline.pipeline.dataset_layout import PARQUET_DIR, SPLITS
from esk_pipeline.pipeline.ids import row_ids
from esk_pipeline.settings import get_settings

REGISTRY_FILE = "versions.json"
EXPORT_FORMAT = "esk-dataset-export/1"
# Names from users become folder names and tags: always checked with fullmatch (a `$` would
# let "v1.0.0\n" through).
_SEMVER = re.compile(r"v?(\d+)\.(\d+)\.(\d+)")
_TAG_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_.-]{0,63}")
_RESERVED_REFS = ("current", "latest")
_DATA_FILE = re.compile(r"(?P<split>train|eval)(?P<shard>-\d{5}-of-\d{5})?\.jsonl")
_SHARD = re.compile(r"(?P<stem>.+)-00000-of-(?P<n>\d{5})(?P<ext>\..+)")
# The only file names a version holds (data files, Parquet copies, README.md, metadata.json):
# relative, no folders but __parquet__, no leading dot, nothing a path could be built from
# (checked with fullmatch).
_STORED_NAME = re.compile(rf"(?:{PARQUET_DIR}/)?[A-Za-z0-9_-][A-Za-z0-9_.-]*")
# link() errors that mean "no hard links here", where a checksummed copy is the fallback.
_NO_HARD_LINKS = frozenset({errno.EXDEV, errno.EPERM, errno.ENOTSUP, errno.EMLINK})
_CHUNK = 1 << 20


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


class DataStorageConfig(BaseModel):
    storage_dir: Path = Field(default_factory=lambda: get_settings().data_storage.storage_dir)
    max_versions: int = Field(
        default_factory=lambda: get_settings().data_storage.max_versions, ge=1
    )
    auto_archive_old: bool = Field(
        default_factory=lambda: get_settings().data_storage.auto_archive_old
    )
    lock_timeout_seconds: float = 600.0
    # An import may unpack to at most this much (checked on each member before it is written).
    max_import_bytes: int = Field(
        default_factory=lambda: get_settings().data_storage.max_import_mb * 1024 * 1024, ge=1
    )


class FileEntry(BaseModel):
    sha256: str
    size: int


class DatasetVersion(BaseModel):
    """One committed version as the registry records it (`tags` and `path` are filled on read)."""

    version: str
    status: VersionStatus
    description: str = ""
    created_by: str = "unknown"
    created_at: datetime
    parent: str | None = None
    files: dict[str, FileEntry]
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


class _Registry(BaseModel):
    format: int = 1
    versions: list[DatasetVersion] = Field(default_factory=list)
    tags: dict[str, str] = Field(default_factory=dict)
    current: str | None = None

    def find(self, version: str) -> DatasetVersion | None:
        return next((v for v in self.versions if v.version == version), None)


class DomainChange(BaseModel):
    before: int
    after: int
    delta: int
    train_before: int
    train_after: int
    eval_before: int
    eval_after: int


class RelabelledExample(BaseModel):
    row_id: str
    old_domain: str | None
    new_domain: str | None
    split: str | None


class SplitMove(BaseModel):
    row_id: str
    old_split: str
    new_split: str


class VersionDiff(BaseModel):
    """Record-level changes from one version to another, keyed by row_id."""

    from_version: str
    to_version: str
    records_before: int
    records_after: int
    added: int
    removed: int
    relabelled: int
    moved: int
    unchanged: int
    domain_changes: dict[str, DomainChange]
    relabel_pairs: dict[str, int] = Field(description='"old -> new": count, most frequent first')
    added_examples: list[str]
    removed_examples: list[str]
    relabelled_examples: list[RelabelledExample]
    moved_examples: list[SplitMove]
    files_changed: list[str]
    summary: str


class DataStorage:
    """Semantic versions of train/eval datasets with git-like operations (see module docstring)."""

    def __init__(self, config: DataStorageConfig | None = None):
        self.config = config or DataStorageConfig()
        self.root = Path(self.config.storage_dir).absolute()
        self.versions_dir = self.root / "versions"
        self.objects_dir = self.root / "objects"
        self.archive_dir = self.root / "archive"
        for folder in (self.versions_dir, self.objects_dir, self.archive_dir):
            folder.mkdir(parents=True, exist_ok=True)
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
        bump: Literal["major", "minor", "patch"] = "minor",
    ) -> DatasetVersion:
        """Commit a train and an eval file (a first shard brings its siblings) as a new version.

        Without `version_tag` the latest version gets a `bump` (minor by default); the first
        version is v1.0.0. Parquet copies next to the files (`__parquet__/`) are reused, else built.
        A README.md and the writer's metadata.json next to the train file come along.
        """
        sources: dict[str, Path] = {}
        for split, given in (("train", Path(train_path)), ("eval", Path(eval_path))):
            for source in _expand_shards(given):
                shard = _SHARD_SUFFIX.search(source.name)
                name = f"{split}{shard.group(0) if shard else ''}.jsonl"
                sources[name] = source
                parquet = source.parent / PARQUET_DIR / f"{source.stem}.parquet"
                if parquet.is_file():
                    sources[f"{PARQUET_DIR}/{Path(name).stem}.parquet"] = parquet
        folder = Path(train_path).parent
        if (folder / "README.md").is_file():
            sources["README.md"] = folder / "README.md"
        return self._commit(
            sources,
            _read_json(folder / "metadata.json"),
            version_tag,
            description,
            status,
            created_by,
            bump,
        )

    def commit_dataset(
        self,
        dataset_dir: str | Path,
        version_tag: str | None = None,
        description: str = "",
        status: VersionStatus | str = VersionStatus.DRAFT,
        created_by: str = "unknown",
        bump: Literal["major", "minor", "patch"] = "minor",
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
        if not any(_DATA_FILE.fullmatch(name) for name in sources):
            raise StorageError(f"{dataset_dir}: no train*.jsonl / eval*.jsonl files")
        if only_if_changed and (same := self._current_if_identical(sources)) is not None:
            return same
        return self._commit(
            sources,
            _read_json(dataset_dir / "metadata.json"),
            version_tag,
            description,
            status,
            created_by,
            bump,
        )

    def _commit(
        self,
        sources: dict[str, Path],
        dataset_metadata: dict[str, Any] | None,
        version_tag: str | None,
        description: str,
        status: VersionStatus | str,
        created_by: str,
        bump: Literal["major", "minor", "patch"],
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
            version = self._new_version_name(registry, version_tag, bump)
            staging = self.root / f".staging-{uuid.uuid4().hex}"
            staging.mkdir()
            try:
                files = {
                    name: self._link_object(src, staging, name) for name, src in sources.items()
                }
                for name in _data_files(files):
                    parquet = f"{PARQUET_DIR}/{Path(name).stem}.parquet"
                    if parquet not in files:
                        files[parquet] = self._build_parquet(staging / name, staging, parquet)
                counts = _split_counts(staging, files)
                entry = DatasetVersion(
                    version=version,
                    status=status,
                    description=description,
                    created_by=created_by,
                    created_at=created_at or datetime.now(UTC),
                    parent=registry.current,
                    files={},
                    **counts,
                )
                metadata = entry.model_dump(mode="json", exclude={"files", "tags", "path"})
                metadata["dataset"] = dataset_metadata
                meta_tmp = staging / ".metadata.json"
                meta_tmp.write_text(
                    json.dumps(metadata, ensure_ascii=False, indent=2, sort_keys=True) + "\n",
                    encoding="utf-8",
                )
                files["metadata.json"] = self._link_object(meta_tmp, staging, "metadata.json")
                meta_tmp.unlink()
                entry.files = dict(sorted(files.items()))
                _fsync_tree(staging)
                target = self.versions_dir / version
                os.rename(staging, target)
                _fsync_dir(self.versions_dir)
            except BaseException:
                shutil.rmtree(staging, ignore_errors=True)
                raise
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
        if any(_sha256(path) != stored[name] for name, path in sources.items()):
            return None
        return self._public(registry, current)

    # --------------------------------------------------------------- reading

    def list_versions(self, status: VersionStatus | str | None = None) -> list[DatasetVersion]:
        """All versions, oldest first; only those with `status` when given."""
        registry = self._load()
        wanted = VersionStatus(status) if status is not None else None
        return [
            self._public(registry, v)
            for v in sorted(registry.versions, key=lambda v: _semver(v.version))
            if wanted is None or v.status == wanted
        ]

    def get_version(self, ref: str) -> DatasetVersion:
        """A version by name (v1.2.0 or 1.2.0), tag, "current" or "latest"."""
        registry = self._load()
        return self._public(registry, self._resolve(registry, ref))

    def get_stats(self) -> dict[str, Any]:
        """Counts and sizes: total_size_mb is bytes on disk (shared blobs once, archives)."""
        registry = self._load()
        on_disk = sum(p.stat().st_size for p in self.objects_dir.rglob("*") if p.is_file())
        on_disk += sum(p.stat().st_size for p in self.archive_dir.glob("*.tar.gz"))
        by_status = {s.value: 0 for s in VersionStatus}
        for v in registry.versions:
            by_status[v.status.value] += 1
        ordered = sorted(registry.versions, key=lambda v: _semver(v.version))
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

    # ------------------------------------------------------------ operations

    def checkout(self, ref: str) -> Path:
        """Point `current` at a version (restoring it from the archive if needed); its folder."""
        with self._locked():
            registry = self._load()
            entry = self._resolve(registry, ref)
            if entry.status is VersionStatus.ARCHIVED:
                self._restore(registry, entry)
            registry.current = entry.version
            self._save(registry)
            self._point_current(entry.version)
            if self.config.auto_archive_old:
                self._archive_old(registry)
            return self.versions_dir / entry.version

    def tag_version(self, version: str, tag: str) -> DatasetVersion:
        """Name a version (e.g. "production"); a tag moves if it already named another version."""
        if not _TAG_NAME.fullmatch(tag) or _SEMVER.fullmatch(tag) or tag in _RESERVED_REFS:
            raise StorageError(
                f"invalid tag {tag!r}: use letters, digits, _.- and not a version or "
                f"{'/'.join(_RESERVED_REFS)}"
            )
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
            if entry.status is VersionStatus.ARCHIVED:
                entry.status_before_archive = status
            else:
                entry.status = status
            self._save(registry)
            return self._public(registry, entry)

    def verify(self, ref: str | None = None) -> list[str]:
        """Every problem found by re-hashing files against the registry (empty when intact)."""
        registry = self._load()
        entries = [self._resolve(registry, ref)] if ref else registry.versions
        problems: list[str] = []
        for entry in entries:
            problems.extend(self._verify_entry(entry))
        if ref is None and registry.current:
            pointed = self._read_current_pointer()
            if pointed != registry.current:
                problems.append(f"current points to {pointed}, registry says {registry.current}")
        return problems

    def compare_versions(self, a: str, b: str, examples: int = 10) -> VersionDiff:
        """Record-level diff from `a` to `b` (added, removed, relabelled, moved, per domain)."""
        registry = self._load()
        old_entry, new_entry = self._resolve(registry, a), self._resolve(registry, b)
        with self._readable(old_entry) as old_dir, self._readable(new_entry) as new_dir:
            old = _records_table(old_dir, old_entry)
            new = _records_table(new_dir, new_entry)
        return _diff(old_entry, new_entry, old, new, examples)

    def export_version(self, ref: str, out_file: str | Path) -> Path:
        """One .tar.gz (or .zip, by suffix) holding manifest.json and the version's files."""
        out_file = Path(out_file)
        registry = self._load()
        entry = self._resolve(registry, ref)
        manifest = {
            "format": EXPORT_FORMAT,
            "version": entry.model_dump(mode="json", exclude={"tags", "path"}),
        }
        out_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = out_file.with_name(f".{out_file.name}.tmp-{uuid.uuid4().hex}")
        manifest_bytes = json.dumps(manifest, ensure_ascii=False, indent=2).encode("utf-8")
        try:
            with self._readable(entry) as folder:
                problems = self._verify_files(entry, folder)
                if problems:
                    raise StorageError(f"{entry.version} is damaged: {problems[0]}")
                if out_file.name.endswith(".zip"):
                    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as archive:
                        archive.writestr("manifest.json", manifest_bytes)
                        for name in entry.files:
                            archive.write(folder / name, f"data/{name}")
                else:
                    with tarfile.open(tmp, "w:gz") as archive:
                        info = tarfile.TarInfo("manifest.json")
                        info.size = len(manifest_bytes)
                        archive.addfile(info, _BytesReader(manifest_bytes))
                        for name in entry.files:
                            archive.add(folder / name, f"data/{name}")
            os.replace(tmp, out_file)
        finally:
            tmp.unlink(missing_ok=True)
        return out_file

    def import_version(self, archive: str | Path, version_tag: str | None = None) -> DatasetVersion:
        """Add a version from an export, after checking every file against its manifest.

        Importing the same version twice returns the existing one; a different version under a
        taken name needs `version_tag`.
        """
        archive = Path(archive)
        if not archive.is_file():
            raise StorageError(f"{archive}: no such file")
        with (
            self._locked(),  # re-entrant: _commit takes it again
            tempfile.TemporaryDirectory(dir=self.root, prefix=".import-") as tmp,
        ):
            folder = Path(tmp)
            manifest = _extract_export(archive, folder, self.config.max_import_bytes)
            try:
                source = DatasetVersion.model_validate(manifest["version"])
            except (KeyError, ValidationError) as exc:
                raise StorageError(f"{archive}: manifest is not a dataset version ({exc})") from exc
            data = folder / "data"
            try:
                for name in source.files:
                    _stored_path(data, name)
            except StorageError as exc:
                raise StorageError(f"{archive}: refused, {exc}") from exc
            problems = self._verify_files(source, data)
            if problems:
                raise StorageError(f"{archive}: corrupt archive, {problems[0]}")
            name = _normalise_version(version_tag or source.version)
            existing = self._load().find(name)
            if existing is not None:
                if _content(existing) == _content(source):
                    return self.get_version(name)
                raise StorageError(
                    f"{name} already exists with other content; import with another version_tag"
                )
            status = source.status_before_archive or source.status
            if status is VersionStatus.ARCHIVED:
                status = VersionStatus.STABLE
            metadata = _read_json(data / "metadata.json") or {}
            sources = {n: data / n for n in source.files if n != "metadata.json"}
            return self._commit(
                sources,
                {**(metadata.get("dataset") or {}), "imported_from": source.version},
                name,
                source.description,
                status,
                source.created_by,
                "minor",
                created_at=source.created_at,
            )

    # -------------------------------------------------------------- internals

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        try:
            with self._lock:
                yield
        except Timeout as exc:
            raise StorageError(f"{self.root}: another process holds the storage lock") from exc

    def _load(self) -> _Registry:
        path = self.root / REGISTRY_FILE
        if not path.exists():
            return _Registry()
        try:
            return _Registry.model_validate_json(path.read_bytes())
        except ValidationError as exc:
            raise StorageError(f"{path}: unreadable registry ({exc.error_count()} errors)") from exc

    def _save(self, registry: _Registry) -> None:
        """Replace versions.json atomically: write a temp file, fsync it, os.replace it."""
        payload = registry.model_dump_json(
            indent=2, exclude={"versions": {"__all__": {"tags", "path"}}}
        )
        _atomic_write(self.root / REGISTRY_FILE, payload.encode("utf-8"))

    def _public(self, registry: _Registry, entry: DatasetVersion) -> DatasetVersion:
        tags = sorted(t for t, v in registry.tags.items() if v == entry.version)
        path = None if entry.status is VersionStatus.ARCHIVED else self.versions_dir / entry.version
        return entry.model_copy(update={"tags": tags, "path": path})

    def _resolve(self, registry: _Registry, ref: str) -> DatasetVersion:
        ordered = sorted(registry.versions, key=lambda v: _semver(v.version))
        if ref == "current":
            name = registry.current
        elif ref == "latest":
            name = ordered[-1].version if ordered else None
        elif ref in registry.tags:
            name = registry.tags[ref]
        else:
            name = _normalise_version(ref) if _SEMVER.fullmatch(ref) else ref
        entry = registry.find(name) if name else None
        if entry is None:
            known = ", ".join([v.version for v in ordered][-5:] + sorted(registry.tags)) or "none"
            raise VersionNotFoundError(f"no version or tag {ref!r} (known: {known})")
        return entry

    def _new_version_name(
        self, registry: _Registry, version_tag: str | None, bump: Literal["major", "minor", "patch"]
    ) -> str:
        if version_tag is not None:
            if not _SEMVER.fullmatch(version_tag):
                raise StorageError(f"version {version_tag!r} is not semantic (vMAJOR.MINOR.PATCH)")
            name = _normalise_version(version_tag)
            if registry.find(name):
                raise StorageError(f"version {name} already exists")
            return name
        if not registry.versions:
            return "v1.0.0"
        major, minor, patch = max(_semver(v.version) for v in registry.versions)
        bumped = {
            "major": (major + 1, 0, 0),
            "minor": (major, minor + 1, 0),
            "patch": (major, minor, patch + 1),
        }[bump]
        return "v{}.{}.{}".format(*bumped)

    def _link_object(self, source: Path, folder: Path, name: str) -> FileEntry:
        """Store `source` as a blob (once per content) and hard-link it as `name` in `folder`.

        The name must be one the store writes (see `_stored_path`), and an existing file is
        never replaced: only a file system without hard links falls back to a copy.
        """
        target = _stored_path(folder, name)
        digest = hashlib.sha256()
        tmp = self.objects_dir / f"tmp-{uuid.uuid4().hex}"
        size = 0
        try:
            with source.open("rb") as src, tmp.open("wb") as dst:
                while chunk := src.read(_CHUNK):
                    digest.update(chunk)
                    dst.write(chunk)
                    size += len(chunk)
                dst.flush()
                os.fsync(dst.fileno())
            sha = digest.hexdigest()
            blob = self.objects_dir / sha[:2] / sha
            if blob.exists():
                tmp.unlink()
            else:
                blob.parent.mkdir(exist_ok=True)
                tmp.chmod(0o444)
                os.rename(tmp, blob)
        finally:
            tmp.unlink(missing_ok=True)
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(blob, target)
        except OSError as exc:
            if isinstance(exc, FileExistsError) or exc.errno not in _NO_HARD_LINKS:
                raise
            shutil.copyfile(blob, target)  # no hard links here: a plain copy, still checksummed
        return FileEntry(sha256=sha, size=size)

    def _build_parquet(self, jsonl: Path, folder: Path, name: str) -> FileEntry:
        """The Parquet copy of a JSONL file that diffs read (row_id filled in from the text)."""
        table = _read_jsonl(jsonl)
        target = _stored_path(folder, name)
        tmp = target.with_name(f".{target.name}.tmp")
        tmp.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, tmp, compression="zstd")
        entry = self._link_object(tmp, folder, name)
        tmp.unlink()
        return entry

    def _point_current(self, version: str) -> None:
        """Move the `current` symlink atomically (a pointer file where symlinks are unavailable)."""
        current = self.root / "current"
        tmp = self.root / f"current.tmp-{uuid.uuid4().hex}"
        try:
            os.symlink(f"versions/{version}", tmp)
        except (OSError, NotImplementedError):
            _atomic_write(current, f"{version}\n".encode())
            return
        os.replace(tmp, current)
        _fsync_dir(self.root)

    def _read_current_pointer(self) -> str | None:
        current = self.root / "current"
        if current.is_symlink():
            return Path(os.readlink(current)).name
        if current.is_file():
            return current.read_text(encoding="utf-8").strip()
        return None

    def _recover(self, registry: _Registry) -> None:
        """Remove what an interrupted operation left behind; the registry decides what is real."""
        for leftover in self.root.glob(".staging-*"):
            shutil.rmtree(leftover, ignore_errors=True)
        for leftover in self.root.glob(".import-*"):
            shutil.rmtree(leftover, ignore_errors=True)
        for leftover in [*self.root.glob("*.tmp-*"), *self.root.glob(".*.tmp-*")]:
            leftover.unlink(missing_ok=True)
        live = {v.version for v in registry.versions if v.status is not VersionStatus.ARCHIVED}
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

    def _collect_garbage(self, registry: _Registry) -> None:
        """Delete blobs no live version uses (and temporary blobs of an interrupted write)."""
        used = {
            f.sha256
            for v in registry.versions
            if v.status is not VersionStatus.ARCHIVED
            for f in v.files.values()
        }
        for blob in self.objects_dir.glob("*/*"):
            if blob.name not in used:
                blob.unlink(missing_ok=True)
        for tmp in self.objects_dir.glob("tmp-*"):
            tmp.unlink(missing_ok=True)

    def _archive_old(self, registry: _Registry) -> None:
        """Compress the oldest untagged, non-current versions while more than max_versions live."""
        live = sorted(
            (v for v in registry.versions if v.status is not VersionStatus.ARCHIVED),
            key=lambda v: _semver(v.version),
        )
        protected = {registry.current, *registry.tags.values()}
        excess = len(live) - self.config.max_versions
        for entry in [v for v in live if v.version not in protected][: max(0, excess)]:
            relative = f"archive/{entry.version}.tar.gz"
            target = self.root / relative
            tmp = target.with_name(f".{target.name}.tmp-{uuid.uuid4().hex}")
            with tarfile.open(tmp, "w:gz") as archive:
                for name in entry.files:
                    archive.add(self.versions_dir / entry.version / name, name)
            with tmp.open("rb") as handle:
                os.fsync(handle.fileno())
            os.rename(tmp, target)
            entry.status_before_archive = entry.status
            entry.status = VersionStatus.ARCHIVED
            entry.archive = relative
            entry.archive_sha256 = _sha256(target)
            self._save(registry)
            shutil.rmtree(self.versions_dir / entry.version)
        if excess > 0:
            self._collect_garbage(registry)

    def _restore(self, registry: _Registry, entry: DatasetVersion) -> None:
        """Unpack an archived version, check it, and make it live again."""
        archive = self.root / (entry.archive or "")
        if not archive.is_file() or _sha256(archive) != entry.archive_sha256:
            raise StorageError(f"{entry.version}: archive {archive} is missing or damaged")
        staging = self.root / f".staging-{uuid.uuid4().hex}"
        unpacked = self.root / f".staging-{uuid.uuid4().hex}"
        try:
            with tarfile.open(archive, "r:gz") as tar:
                tar.extractall(unpacked, filter="data")
            problems = self._verify_files(entry, unpacked)
            if problems:
                raise StorageError(f"{entry.version}: archive is damaged: {problems[0]}")
            staging.mkdir()
            for name in entry.files:
                self._link_object(unpacked / name, staging, name)
            _fsync_tree(staging)
            os.rename(staging, self.versions_dir / entry.version)
            _fsync_dir(self.versions_dir)
        finally:
            shutil.rmtree(unpacked, ignore_errors=True)
            shutil.rmtree(staging, ignore_errors=True)
        entry.status = entry.status_before_archive or VersionStatus.STABLE
        entry.status_before_archive = None
        entry.archive = None
        entry.archive_sha256 = None
        self._save(registry)
        archive.unlink()

    @contextlib.contextmanager
    def _readable(self, entry: DatasetVersion) -> Iterator[Path]:
        """The version's folder; an archived version is unpacked into a temporary one."""
        if entry.status is not VersionStatus.ARCHIVED:
            yield self.versions_dir / entry.version
            return
        with tempfile.TemporaryDirectory(prefix="esk-archived-") as tmp:
            with tarfile.open(self.root / (entry.archive or ""), "r:gz") as tar:
                tar.extractall(tmp, filter="data")
            yield Path(tmp)

    def _verify_entry(self, entry: DatasetVersion) -> list[str]:
        if entry.status is VersionStatus.ARCHIVED:
            archive = self.root / (entry.archive or "")
            if not archive.is_file():
                return [f"{entry.version}: archive {entry.archive} is missing"]
            if _sha256(archive) != entry.archive_sha256:
                return [f"{entry.version}: archive {entry.archive} checksum mismatch"]
            return []
        folder = self.versions_dir / entry.version
        if not folder.is_dir():
            return [f"{entry.version}: folder {folder} is missing"]
        return self._verify_files(entry, folder)

    @staticmethod
    def _verify_files(entry: DatasetVersion, folder: Path) -> list[str]:
        problems = []
        for name, expected in entry.files.items():
            path = folder / name
            if not path.is_file():
                problems.append(f"{entry.version}: {name} is missing")
            elif path.stat().st_size != expected.size or _sha256(path) != expected.sha256:
                problems.append(f"{entry.version}: {name} checksum mismatch (file was changed)")
        present = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}
        for extra in sorted(present - set(entry.files)):
            problems.append(f"{entry.version}: unexpected file {extra}")
        return problems


_SHARD_SUFFIX = re.compile(r"-\d{5}-of-\d{5}(?=\.)")


class _BytesReader:
    """A minimal file object over bytes for tarfile.addfile."""

    def __init__(self, data: bytes):
        self._data, self._pos = data, 0

    def read(self, size: int = -1) -> bytes:
        end = len(self._data) if size < 0 else self._pos + size
        chunk, self._pos = self._data[self._pos : end], min(end, len(self._data))
        return chunk


def _semver(name: str) -> tuple[int, int, int]:
    match = _SEMVER.fullmatch(name)
    if not match:
        return (0, 0, 0)
    return (int(match.group(1)), int(match.group(2)), int(match.group(3)))


def _normalise_version(name: str) -> str:
    return "v{}.{}.{}".format(*_semver(name)) if _SEMVER.fullmatch(name) else name


def _expand_shards(path: Path) -> list[Path]:
    """A first shard (`x-00000-of-00003.jsonl`) stands for all of its shards."""
    if not path.is_file():
        raise StorageError(f"{path}: no such file")
    match = _SHARD.fullmatch(path.name)
    if not match:
        return [path]
    n = int(match.group("n"))
    stem, ext = match.group("stem"), match.group("ext")
    shards = [path.with_name(f"{stem}-{i:05d}-of-{n:05d}{ext}") for i in range(n)]
    missing = [s.name for s in shards if not s.is_file()]
    if missing:
        raise StorageError(f"{path.parent}: shards missing: {', '.join(missing)}")
    return shards


def _stored_path(folder: Path, name: str) -> Path:
    """`folder / name` for a name a version may hold; refuses any other name.

    Names come from manifests and registries, so `../x`, `/etc/x`, `a\\b` or other folders
    must never become paths: the store only ever writes the shapes `_STORED_NAME` allows.
    """
    path = folder / name
    if not _STORED_NAME.fullmatch(name) or not path.resolve().is_relative_to(folder.resolve()):
        raise StorageError(
            f"unsafe file name {name!r}: a version holds only names like train.jsonl, "
            f"{PARQUET_DIR}/train.parquet, README.md and metadata.json"
        )
    return path


def _data_files(files: dict[str, Any]) -> list[str]:
    return sorted(name for name in files if _DATA_FILE.fullmatch(name))


def _read_json(path: Path) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise StorageError(f"{path}: not valid JSON ({exc})") from exc


def _read_jsonl(path: Path) -> pa.Table:
    if path.stat().st_size == 0:
        return pa.table({"row_id": pa.array([], pa.string()), "domain": pa.array([], pa.string())})
    try:
        table = pa_json.read_json(path)
    except pa.ArrowInvalid as exc:
        raise StorageError(f"{path}: not valid JSON Lines ({exc})") from exc
    if "row_id" not in table.column_names:
        if "text" not in table.column_names:
            raise StorageError(f"{path}: records have neither row_id nor text")
        table = table.append_column("row_id", pa.array(row_ids(table["text"].to_pylist())))
    if "domain" not in table.column_names:
        raise StorageError(f"{path}: records have no domain")
    return table


def _split_counts(folder: Path, files: dict[str, FileEntry]) -> dict[str, Any]:
    """Sample counts and domain distributions per split, from the Parquet copies."""
    totals: dict[str, dict[str, int]] = {s: {} for s in SPLITS}
    for name in _data_files(files):
        split = _DATA_FILE.fullmatch(name).group("split")  # type: ignore[union-attr]
        parquet = folder / PARQUET_DIR / f"{Path(name).stem}.parquet"
        domains = pq.read_table(parquet, columns=["domain"])["domain"].value_counts()
        for item in domains.to_pylist():
            key = str(item["values"])
            totals[split][key] = totals[split].get(key, 0) + int(item["counts"])
    overall: dict[str, int] = {}
    for split in SPLITS:
        for domain, n in totals[split].items():
            overall[domain] = overall.get(domain, 0) + n
    return {
        "train_samples": sum(totals["train"].values()),
        "eval_samples": sum(totals["eval"].values()),
        "domain_distribution": dict(sorted(overall.items())),
        "train_distribution": dict(sorted(totals["train"].items())),
        "eval_distribution": dict(sorted(totals["eval"].items())),
    }


def _records_table(folder: Path, entry: DatasetVersion) -> pa.Table:
    """(row_id, domain, split) of every record, one row per row_id (first occurrence wins)."""
    parts = []
    for name in _data_files(entry.files):
        split = _DATA_FILE.fullmatch(name).group("split")  # type: ignore[union-attr]
        path = folder / PARQUET_DIR / f"{Path(name).stem}.parquet"
        table = pq.read_table(path, columns=["row_id", "domain"])
        table = table.cast(pa.schema([("row_id", pa.string()), ("domain", pa.string())]))
        parts.append(table.append_column("split", pa.array([split] * len(table), pa.string())))
    if not parts:
        return pa.table({c: pa.array([], pa.string()) for c in ("row_id", "domain", "split")})
    table = pa.concat_tables(parts)
    if pc.count_distinct(table["row_id"]).as_py() != len(table):
        table = table.append_column("_i", pa.array(range(len(table))))
        firsts = table.group_by("row_id").aggregate([("_i", "min")])["_i_min"]
        table = table.take(firsts).drop_columns(["_i"])
    return table


def _diff(
    old_entry: DatasetVersion,
    new_entry: DatasetVersion,
    old: pa.Table,
    new: pa.Table,
    examples: int,
) -> VersionDiff:
    old = old.append_column("in_old", pa.array([True] * len(old), pa.bool_()))
    new = new.append_column("in_new", pa.array([True] * len(new), pa.bool_()))
    joined = old.join(
        new, keys="row_id", join_type="full outer", left_suffix="_old", right_suffix="_new"
    )
    in_old = pc.fill_null(joined["in_old"], False)
    in_new = pc.fill_null(joined["in_new"], False)
    both = pc.and_(in_old, in_new)
    relabel_mask = pc.and_(
        both, pc.fill_null(pc.not_equal(joined["domain_old"], joined["domain_new"]), True)
    )
    move_mask = pc.and_(both, pc.not_equal(joined["split_old"], joined["split_new"]))
    added_rows = joined.filter(pc.and_(in_new, pc.invert(in_old)))
    removed_rows = joined.filter(pc.and_(in_old, pc.invert(in_new)))
    relabelled = joined.filter(relabel_mask)
    moved = joined.filter(move_mask)
    changed = pc.or_(relabel_mask, move_mask)
    unchanged = int(pc.sum(pc.and_(both, pc.invert(changed))).as_py() or 0)

    pairs = (
        relabelled.group_by(["domain_old", "domain_new"])
        .aggregate([("row_id", "count")])
        .to_pylist()
    )
    pairs.sort(key=lambda p: (-p["row_id_count"], str(p["domain_old"]), str(p["domain_new"])))
    relabel_pairs = {f"{p['domain_old']} -> {p['domain_new']}": p["row_id_count"] for p in pairs}

    def first(table: pa.Table) -> pa.Table:
        return table.take(pc.select_k_unstable(table, examples, [("row_id", "ascending")]))

    diff = VersionDiff(
        from_version=old_entry.version,
        to_version=new_entry.version,
        records_before=len(old),
        records_after=len(new),
        added=len(added_rows),
        removed=len(removed_rows),
        relabelled=len(relabelled),
        moved=len(moved),
        unchanged=unchanged,
        domain_changes=_domain_changes(old, new),
        relabel_pairs=relabel_pairs,
        added_examples=sorted(first(added_rows)["row_id"].to_pylist()),
        removed_examples=sorted(first(removed_rows)["row_id"].to_pylist()),
        relabelled_examples=sorted(
            (
                RelabelledExample(
                    row_id=r["row_id"],
                    old_domain=r["domain_old"],
                    new_domain=r["domain_new"],
                    split=r["split_new"],
                )
                for r in first(relabelled).to_pylist()
            ),
            key=lambda e: e.row_id,
        ),
        moved_examples=sorted(
            (
                SplitMove(row_id=r["row_id"], old_split=r["split_old"], new_split=r["split_new"])
                for r in first(moved).to_pylist()
            ),
            key=lambda e: e.row_id,
        ),
        files_changed=sorted(
            name
            for name in set(old_entry.files) | set(new_entry.files)
            if name != "metadata.json"
            and (old_entry.files.get(name) or FileEntry(sha256="", size=0)).sha256
            != (new_entry.files.get(name) or FileEntry(sha256="", size=0)).sha256
        ),
        summary="",
    )
    diff.summary = _summary(diff)
    return diff


def _domain_changes(old: pa.Table, new: pa.Table) -> dict[str, DomainChange]:
    def counts(table: pa.Table) -> dict[tuple[str, str], int]:
        rows = table.group_by(["domain", "split"]).aggregate([("row_id", "count")]).to_pylist()
        return {(str(r["domain"]), r["split"]): r["row_id_count"] for r in rows}

    before, after = counts(old), counts(new)
    domains = sorted({d for d, _ in before} | {d for d, _ in after})
    changes = {}
    for d in domains:
        tb, eb = before.get((d, "train"), 0), before.get((d, "eval"), 0)
        ta, ea = after.get((d, "train"), 0), after.get((d, "eval"), 0)
        changes[d] = DomainChange(
            before=tb + eb,
            after=ta + ea,
            delta=ta + ea - tb - eb,
            train_before=tb,
            train_after=ta,
            eval_before=eb,
            eval_after=ea,
        )
    return changes


def _summary(diff: VersionDiff) -> str:
    """Two or three sentences a person reads in seconds."""
    delta = diff.records_after - diff.records_before
    text = (
        f"{diff.from_version} -> {diff.to_version}: {diff.records_before:,} -> "
        f"{diff.records_after:,} records ({delta:+,}); {diff.added:,} added, {diff.removed:,} "
        f"removed, {diff.relabelled:,} relabelled, {diff.moved:,} moved between train and eval."
    )
    shifts = sorted(
        ((d, c.delta) for d, c in diff.domain_changes.items() if c.delta),
        key=lambda x: (-abs(x[1]), x[0]),
    )[:3]
    if shifts:
        text += " Biggest domain changes: " + ", ".join(f"{d} {n:+,}" for d, n in shifts) + "."
    if diff.relabel_pairs:
        pair, n = next(iter(diff.relabel_pairs.items()))
        text += f" Most common relabel: {pair} ({n:,})."
    if not (diff.added or diff.removed or diff.relabelled or diff.moved):
        text += " The records are identical."
    return text


def _content(entry: DatasetVersion) -> dict[str, str]:
    return {n: f.sha256 for n, f in entry.files.items() if n != "metadata.json"}


def _extract_export(archive: Path, folder: Path, max_bytes: int) -> dict[str, Any]:
    """Unpack an export safely and return its manifest; refuses anything malformed.

    The unpacked size is bounded before anything is written: a zip's declared sizes (zipfile
    never unpacks more than a member declares) are added up first; a tar is streamed, and each
    member's size is checked against what is left of the limit before it is written.
    """
    try:
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as zf:
                members = zf.infolist()
                for member in members:
                    name = member.filename
                    if name.startswith("/") or ".." in Path(name).parts:
                        raise StorageError(f"{archive}: unsafe path {name} in archive")
                _check_unpacked_size(archive, sum(m.file_size for m in members), max_bytes)
                zf.extractall(folder)
        else:
            with tarfile.open(archive, "r|*") as tar:  # a stream: headers read as it goes
                unpacked = 0
                for member in tar:
                    unpacked += member.size
                    _check_unpacked_size(archive, unpacked, max_bytes)
                    tar.extract(member, folder, filter="data")
    except (tarfile.TarError, zipfile.BadZipFile, zlib.error, EOFError, OSError) as exc:
        raise StorageError(f"{archive}: corrupt or unreadable archive ({exc})") from exc
    manifest = _read_json(folder / "manifest.json")
    if not manifest or manifest.get("format") != EXPORT_FORMAT:
        raise StorageError(f"{archive}: not a dataset export (no {EXPORT_FORMAT} manifest)")
    return manifest


def _check_unpacked_size(archive: Path, size: int, max_bytes: int) -> None:
    if size > max_bytes:
        raise StorageError(
            f"{archive}: refused, it unpacks to more than the limit of "
            f"{max_bytes / 1024 / 1024:g} MB (DATA_STORAGE_MAX_IMPORT_MB)"
        )


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f"{path.name}.tmp-{uuid.uuid4().hex}")
    try:
        with tmp.open("wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    _fsync_dir(path.parent)


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_tree(folder: Path) -> None:
    """Directory entries of a staged version (file contents were fsynced as blobs)."""
    for sub in sorted({p.parent for p in folder.rglob("*")} | {folder}):
        _fsync_dir(sub)
