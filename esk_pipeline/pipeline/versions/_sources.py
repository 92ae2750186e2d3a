"""Staging: a dataset's files stored as blobs, each data file with its Parquet copy and domain
counts, named by a staged marker until a commit (mixed into DataStorage).

Only content the store does not hold yet is uploaded, and a data file whose content an earlier
version already has reuses that version's Parquet copy and counts instead of rebuilding them.
Every digest is known before the first upload (`prepared_sources`), so the store can name
them in a staged marker first: garbage collection on another machine then spares each blob
from the moment it arrives.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from esk_pipeline.pipeline import fsutil
from esk_pipeline.pipeline.fsutil import scratch_prefix

from . import _layout
from ._blobs import DIGEST_CACHE, DigestCache, blob_name
from ._records import domain_counts, write_parquet
from .location import Location
from .models import FileEntry, Registry, StagedDataset, StorageError

if TYPE_CHECKING:
    from ._blobs import BlobStore


class Staging:
    """Stores a dataset's files as blobs ahead of a commit (mixed into DataStorage)."""

    location: Location
    blobs: BlobStore
    _load: Callable[[], Registry]
    _locked: Callable[[], contextlib.AbstractContextManager[None]]

    def stage_dataset(self, dataset_dir: str | Path) -> StagedDataset:
        """Store a DataWriter folder's files as blobs (content not stored yet only) and return
        their manifest, which `commit_staged` turns into a version on this or any machine
        sharing the store. Staged blobs are kept for `staged_ttl_seconds`."""
        with self._locked():
            return self._stage(Path(dataset_dir))

    def _stage(self, dataset_dir: Path) -> StagedDataset:
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
        return self._stage_files(
            sources,
            DigestCache(dataset_dir.parent / DIGEST_CACHE),
            _layout.read_json(dataset_dir / "metadata.json"),
        )

    def _stage_files(
        self,
        sources: dict[str, Path],
        digest_cache: DigestCache,
        metadata: dict[str, Any] | None = None,
    ) -> StagedDataset:
        """Store sources (stored name -> file) as blobs, behind a staged marker written before
        the first upload: another machine's garbage collection spares them from then on. The
        commit that uses them deletes the marker."""
        with prepared_sources(
            sources, digest_cache, registry=self._load(), location=self.location
        ) as (files, uploads):
            staged = StagedDataset(files=files, metadata=metadata)
            self.location.put_bytes(staged.marker_name(), staged.model_dump_json().encode())
            for sha256, local in uploads.items():
                self.blobs.put(local, sha256)
        return staged


@contextlib.contextmanager
def prepared_sources(
    sources: dict[str, Path],
    digest_cache: DigestCache,
    *,
    registry: Registry,
    location: Location,
) -> Iterator[tuple[dict[str, FileEntry], dict[str, Path]]]:
    """(entry of every stored name, local file of every blob to upload by digest): each
    source, plus a Parquet copy with its per-domain counts for each data file (reused when
    `registry` has seen the content, else built in a scratch folder that lives as long as
    the context)."""
    for name, source in sources.items():
        _layout.check_stored_name(name)
        if not source.is_file():
            raise StorageError(f"{source}: no such file (for {name})")
    counted = {
        f.sha256: f.domains
        for v in registry.versions
        for f in v.files.values()
        if f.domains is not None
    }
    copies = {
        v.files[name].sha256: v.files[_layout.parquet_name(name)]
        for v in registry.versions
        for name in _layout.data_files(v.files)
        if _layout.parquet_name(name) in v.files
    }
    digests = digest_cache.digests(sources)
    files = {
        name: FileEntry(sha256=digests[name], size=source.stat().st_size)
        for name, source in sources.items()
    }
    uploads = {digests[name]: source for name, source in sources.items()}
    with tempfile.TemporaryDirectory(prefix=scratch_prefix("parquet")) as tmp:
        for name in _layout.data_files(files):
            parquet = _layout.parquet_name(name)
            copy = copies.get(files[name].sha256)
            if parquet in files:
                entry = files[parquet]
                domains = counted.get(entry.sha256) or domain_counts(sources[parquet])
                files[parquet] = entry.model_copy(update={"domains": domains})
            elif copy is not None and copy.domains and location.exists(blob_name(copy.sha256)):
                files[parquet] = copy
            else:
                local = Path(tmp) / f"{len(uploads)}.parquet"
                write_parquet(sources[name], local)
                sha = fsutil.file_digest(local)
                files[parquet] = FileEntry(
                    sha256=sha, size=local.stat().st_size, domains=domain_counts(local)
                )
                uploads[sha] = local
        yield files, uploads
