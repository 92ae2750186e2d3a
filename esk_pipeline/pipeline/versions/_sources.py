"""A dataset's files stored as blobs, each data file with its Parquet copy and domain counts.

Only content the store does not hold yet is uploaded, and a data file whose content an earlier
version already has reuses that version's Parquet copy and counts instead of rebuilding them.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from esk_pipeline.pipeline import fsutil
from esk_pipeline.pipeline.fsutil import scratch_prefix

from . import _layout
from ._blobs import BlobStore, DigestCache, blob_name
from ._records import domain_counts, write_parquet
from .location import Location
from .models import FileEntry, Registry, StorageError


def store_sources(
    sources: dict[str, Path],
    digest_cache: DigestCache,
    *,
    registry: Registry,
    blobs: BlobStore,
    location: Location,
) -> dict[str, FileEntry]:
    """Each source (stored name -> file) as a blob, plus a Parquet copy with its per-domain
    counts for each data file (reused when `registry` has seen the content)."""
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
    files = {name: blobs.put(source, digests[name]) for name, source in sources.items()}
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
            files[parquet] = _build_parquet(sources[name], blobs)
    return files


def _build_parquet(jsonl: Path, blobs: BlobStore) -> FileEntry:
    """The Parquet copy of a JSONL file that diffs read (row_id filled in from the text)."""
    with tempfile.TemporaryDirectory(prefix=scratch_prefix("parquet")) as tmp:
        local = Path(tmp) / "copy.parquet"
        write_parquet(jsonl, local)
        entry = blobs.put(local, fsutil.file_digest(local))
        return entry.model_copy(update={"domains": domain_counts(local)})
