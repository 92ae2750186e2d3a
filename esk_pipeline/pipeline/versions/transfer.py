"""Moving versions in and out: export, import, archive past max_versions, restore, verify.

An export is one .tar.gz (or .zip) holding `manifest.json` (the version's registry entry with
checksums) and its files under `data/`; an import checks every name and checksum before it
commits. Old versions are compressed into `archive/` while more than `max_versions` live
(tagged and current versions never are); `checkout` restores one. `verify` re-hashes files
(each version's local folder, or its blobs on object storage). Unpacking happens in a scratch
folder on this machine. `Transfer` is a base class of `DataStorage` (store.py).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import tarfile
import tempfile
import uuid
import zipfile
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from pydantic import ValidationError

from esk_pipeline.pipeline import fsutil
from esk_pipeline.pipeline.fsutil import scratch_prefix

from . import _layout
from ._archive_files import write_tar, write_zip
from ._blobs import DigestCache, blob_name
from .models import DatasetVersion, Registry, StorageError, VersionStatus

__all__ = ["EXPORT_FORMAT", "MAX_IMPORT_MEMBERS", "Transfer"]

if TYPE_CHECKING:
    from upath import UPath

    from ._blobs import BlobStore
    from .location import Location
    from .models import DataStorageConfig, StagedDataset

EXPORT_FORMAT = "esk-dataset-export/1"
# An export holds a manifest and a version's files (a few, or a few hundred shards): far more
# members can only be an attack (each costs an inode and time, whatever its size).
MAX_IMPORT_MEMBERS = 10_000


class Transfer:
    """Export, import, archive, restore and verify (mixed into DataStorage)."""

    config: DataStorageConfig
    versions_dir: Path | UPath
    location: Location
    blobs: BlobStore
    _locked: Callable[[], contextlib.AbstractContextManager[None]]
    _load: Callable[[], Registry]
    _update: Callable[..., tuple[Registry, Any]]
    _resolve: Callable[[Registry, str], DatasetVersion]
    _read_current_pointer: Callable[[], str | None]
    _collect_garbage: Callable[[Registry], None]
    _commit: Callable[..., DatasetVersion]
    checkout: Callable[[str], Path | UPath]
    _stage_files: Callable[[dict[str, Path], DigestCache], StagedDataset]
    get_version: Callable[[str], DatasetVersion]

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

    def export_version(self, ref: str, out_file: str | Path) -> Path:
        """One .tar.gz (or .zip, by suffix) holding manifest.json and the version's files."""
        out_file = Path(out_file)
        entry = self._resolve(self._load(), ref)
        manifest = {
            "format": EXPORT_FORMAT,
            "version": entry.model_dump(mode="json", exclude={"tags", "path"}, exclude_none=True),
        }
        manifest_bytes = json.dumps(manifest, ensure_ascii=False, indent=2).encode("utf-8")
        with self._readable(entry) as open_file:
            problems = _verify_files(entry, open_file)
            if problems:
                raise StorageError(f"{entry.version} is damaged: {problems[0]}")
            write = write_zip if out_file.name.endswith(".zip") else write_tar
            writer = functools.partial(write, manifest_bytes, open_file, entry)
            fsutil.atomic_write_with(out_file, writer)
        return out_file

    def import_version(
        self, archive: str | Path, version_tag: str | None = None, checkout: bool = False
    ) -> DatasetVersion:
        """Add a version from an export, after checking every file against its manifest.

        Importing the same version twice returns the existing one; a different version under a
        taken name needs `version_tag`. `current` moves to it only with `checkout` (or into a
        store with no current version): the commit itself leaves `current` where it was.
        """
        archive = Path(archive)
        if not archive.is_file():
            raise StorageError(f"{archive}: no such file")
        with self._locked(), _scratch_folder("import") as folder:  # re-entrant lock
            manifest = _extract_export(archive, folder, self.config.max_import_bytes)
            try:
                source = DatasetVersion.model_validate(manifest["version"])
            except (KeyError, ValidationError) as exc:
                raise StorageError(f"{archive}: manifest is not a dataset version ({exc})") from exc
            data = folder / "data"
            try:
                for name in source.files:
                    _layout.stored_path(data, name)
            except StorageError as exc:
                raise StorageError(f"{archive}: refused, {exc}") from exc
            problems = _verify_files(source, _folder_opener(data), _present(data))
            if problems:
                raise StorageError(f"{archive}: corrupt archive, {problems[0]}")
            name = _layout.normalise_version(version_tag or source.version)
            existing = self._load().find(name)
            if existing is not None:
                if _content(existing) != _content(source):
                    raise StorageError(
                        f"{name} already exists with other content; import with another version_tag"
                    )
                if checkout:
                    self.checkout(name)
                return self.get_version(name)
            return self._commit_imported(source, data, name, checkout)

    def _commit_imported(
        self, source: DatasetVersion, data: Path, name: str, checkout: bool
    ) -> DatasetVersion:
        kept = source.status_before_archive or source.status
        status = VersionStatus.STABLE if kept is VersionStatus.ARCHIVED else kept
        metadata = _layout.read_json(data / "metadata.json") or {}
        sources = {n: data / n for n in source.files if n != "metadata.json"}
        staged = self._stage_files(sources, DigestCache(None))
        version = self._commit(
            staged.files,
            {**(metadata.get("dataset") or {}), "imported_from": source.version},
            name,
            source.description,
            status,
            source.created_by,
            "minor",
            created_at=source.created_at,
            make_current=checkout,
        )
        self.location.delete(staged.marker_name())
        return version

    # ------------------------------------------------------------- archiving

    def _archive_old(self) -> None:
        """Compress the oldest untagged, non-current versions while more than max_versions live.

        The archives are written first, then one registry change marks their versions
        archived; an archive no snapshot names (a crash in between) is removed by recovery.
        """
        registry = self._load()
        written = {}
        for entry in _to_archive(registry, self.config.max_versions):
            # Unique: two machines archiving one version must not overwrite each other's.
            name = f"{_layout.ARCHIVE_DIR}/{entry.version}-{uuid.uuid4().hex[:12]}.tar.gz"
            with self._readable(entry) as open_file:
                write = functools.partial(write_tar, None, open_file, entry)
                self.location.write_with(name, write)
            with self.location.open(name) as handle:
                written[entry.version] = (name, hashlib.file_digest(handle, "sha256").hexdigest())
        if not written:
            return

        def mark(registry: Registry) -> None:
            for entry in _to_archive(registry, self.config.max_versions):
                if entry.version in written:
                    entry.status_before_archive = entry.status
                    entry.status = VersionStatus.ARCHIVED
                    entry.archive, entry.archive_sha256 = written[entry.version]

        registry, _ = self._update(mark)
        self._collect_garbage(registry)

    def _restore(self, entry: DatasetVersion) -> None:
        """Unpack an archived version, check it, store its blobs and make it live again."""
        archive = entry.archive or ""
        with _scratch_folder(entry.version) as unpacked:
            try:
                self.location.get_file(archive, unpacked / "archive.tar.gz")
            except FileNotFoundError:
                raise StorageError(f"{entry.version}: archive {archive} is missing") from None
            if fsutil.file_digest(unpacked / "archive.tar.gz") != entry.archive_sha256:
                raise StorageError(f"{entry.version}: archive {archive} is damaged")
            with tarfile.open(unpacked / "archive.tar.gz", "r:gz") as tar:
                tar.extractall(unpacked / "files", filter="data")
            files = unpacked / "files"
            problems = _verify_files(entry, _folder_opener(files), _present(files))
            if problems:
                raise StorageError(f"{entry.version}: archive is damaged: {problems[0]}")
            for name, file in entry.files.items():
                self.blobs.put(files / name, file.sha256)

        def unarchive(registry: Registry) -> None:
            found = self._resolve(registry, entry.version)
            if found.is_archived:
                found.status = found.status_before_archive or VersionStatus.STABLE
                found.status_before_archive = None
                found.archive = found.archive_sha256 = None

        self._update(unarchive)
        self.location.delete(archive)

    @contextlib.contextmanager
    def _readable(self, entry: DatasetVersion) -> Iterator[Callable[[str], IO[bytes]]]:
        """Opens the version's files by name: its blobs, or, archived, its unpacked archive."""
        if not entry.is_archived:
            yield lambda name: self.location.open(blob_name(entry.files[name].sha256))
            return
        with _scratch_folder("archived") as tmp:
            with (
                self.location.open(entry.archive or "") as handle,
                tarfile.open(fileobj=handle, mode="r:gz") as tar,
            ):
                tar.extractall(tmp, filter="data")
            yield _folder_opener(tmp)

    def _verify_entry(self, entry: DatasetVersion) -> list[str]:
        if entry.is_archived:
            archive = entry.archive or ""
            try:
                with self.location.open(archive) as handle:
                    digest = hashlib.file_digest(handle, "sha256").hexdigest()
            except FileNotFoundError:
                return [f"{entry.version}: archive {entry.archive} is missing"]
            if digest != entry.archive_sha256:
                return [f"{entry.version}: archive {entry.archive} checksum mismatch"]
            return []
        if not self.location.is_local:
            with self._readable(entry) as open_file:
                return _verify_files(entry, open_file)
        folder = Path(self.versions_dir) / entry.version
        if not folder.is_dir():
            return [f"{entry.version}: folder {folder} is missing"]
        return _verify_files(entry, _folder_opener(folder), _present(folder))


def _to_archive(registry: Registry, max_versions: int) -> list[DatasetVersion]:
    """The oldest live versions past `max_versions`, never the current or a tagged one."""
    live = _layout.by_version(registry.live())
    protected = {registry.current, *registry.tags.values()}
    excess = len(live) - max_versions
    return [v for v in live if v.version not in protected][: max(0, excess)]


def _verify_files(
    entry: DatasetVersion,
    open_file: Callable[[str], IO[bytes]],
    present: set[str] | None = None,
) -> list[str]:
    """Checksum problems of the entry's files; with `present` (a folder's files), also
    files the entry does not name."""
    problems = []
    for name, expected in entry.files.items():
        try:
            with open_file(name) as handle:
                digest = hashlib.file_digest(handle, "sha256").hexdigest()
        except FileNotFoundError:
            problems.append(f"{entry.version}: {name} is missing")
            continue
        if digest != expected.sha256:
            problems.append(f"{entry.version}: {name} checksum mismatch (file was changed)")
    for extra in sorted((present or set()) - set(entry.files)):
        problems.append(f"{entry.version}: unexpected file {extra}")
    return problems


def _folder_opener(folder: Path) -> Callable[[str], IO[bytes]]:
    return lambda name: (folder / name).open("rb")


def _present(folder: Path) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}


@contextlib.contextmanager
def _scratch_folder(kind: str) -> Iterator[Path]:
    """A scratch folder on this machine (fsutil.remove_dead_scratch removes a killed one's)."""
    with tempfile.TemporaryDirectory(prefix=scratch_prefix(kind)) as tmp:
        yield Path(tmp)


def _content(entry: DatasetVersion) -> dict[str, str]:
    return {n: f.sha256 for n, f in entry.files.items() if n != "metadata.json"}


def _extract_export(archive: Path, folder: Path, max_bytes: int) -> dict[str, Any]:
    """Unpack an export safely and return its manifest; refuses anything malformed.

    The unpacked size is bounded before anything is written: a zip's declared sizes (zipfile
    never unpacks more than a member declares) are added up first; a tar is streamed, and each
    member's size is checked against what is left of the limit before it is written. At most
    MAX_IMPORT_MEMBERS members, and only the export's layout (manifest.json, data/...): any
    other member refuses the archive, and the error names them.
    """
    outside: list[str] = []
    try:
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as zf:
                members = zf.infolist()
                _check_member_count(archive, len(members))
                for member in members:
                    name = member.filename
                    if name.startswith("/") or ".." in Path(name).parts:
                        raise StorageError(f"{archive}: unsafe path {name} in archive")
                    if not _in_export_layout(name):
                        outside.append(name)
                _check_layout(archive, outside)
                _check_unpacked_size(archive, sum(m.file_size for m in members), max_bytes)
                zf.extractall(folder)
        else:
            with tarfile.open(archive, "r|*") as tar:  # a stream: headers read as it goes
                unpacked = 0
                for count, member in enumerate(tar, start=1):
                    _check_member_count(archive, count)
                    if not _in_export_layout(member.name):
                        outside.append(member.name)
                        continue
                    unpacked += member.size
                    _check_unpacked_size(archive, unpacked, max_bytes)
                    tar.extract(member, folder, filter="data")
            _check_layout(archive, outside)
    except (tarfile.TarError, zipfile.BadZipFile, zlib.error, EOFError, OSError) as exc:
        raise StorageError(f"{archive}: corrupt or unreadable archive ({exc})") from exc
    manifest = _layout.read_json(folder / "manifest.json")
    if not manifest or manifest.get("format") != EXPORT_FORMAT:
        raise StorageError(f"{archive}: not a dataset export (no {EXPORT_FORMAT} manifest)")
    return manifest


def _in_export_layout(name: str) -> bool:
    return name in ("manifest.json", "data", "data/") or name.startswith("data/")


def _check_member_count(archive: Path, count: int) -> None:
    if count > MAX_IMPORT_MEMBERS:
        raise StorageError(
            f"{archive}: refused, it has more than {MAX_IMPORT_MEMBERS} members "
            "(an export holds a manifest and a version's few files)"
        )


def _check_layout(archive: Path, outside: list[str]) -> None:
    if outside:
        shown = ", ".join(repr(name) for name in outside[:10])
        more = f" and {len(outside) - 10} more" if len(outside) > 10 else ""
        raise StorageError(
            f"{archive}: refused, members outside an export's layout "
            f"(manifest.json, data/...): {shown}{more}"
        )


def _check_unpacked_size(archive: Path, size: int, max_bytes: int) -> None:
    if size > max_bytes:
        raise StorageError(
            f"{archive}: refused, it unpacks to more than the limit of "
            f"{max_bytes / 1024 / 1024:g} MB (DATA_STORAGE_MAX_IMPORT_MB)"
        )
