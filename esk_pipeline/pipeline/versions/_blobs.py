"""Content-addressed blobs: each distinct file is stored once, under its sha256.

`objects/ab/<sha256>` holds a file's bytes (read-only on a local folder). A version is a
manifest naming blobs, so a file that did not change since an earlier version is neither
uploaded nor copied again. On a local folder, a version's folder view hard-links its blobs
(a file system without hard links gets a plain copy). Blobs no version uses are deleted by
`collect_garbage`; on object storage only once older than a grace period, since a commit
elsewhere may be uploading them before its registry snapshot names them.

File digests are cached (`DigestCache`) by path, inode, size and modification time, so a
shard the writer left unchanged is not read again at the next commit.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import shutil
import time
from collections.abc import Iterable, Mapping
from pathlib import Path

from esk_pipeline.pipeline import fsutil

from ._layout import stored_path
from .location import LocalLocation, Location
from .models import FileEntry, StorageError

OBJECTS_DIR = "objects"
DIGEST_CACHE = ".esk-version-digests.json"
# link() errors that mean "no hard links here", where a checksummed copy is the fallback.
_NO_HARD_LINKS = frozenset({errno.EXDEV, errno.EPERM, errno.ENOTSUP, errno.EMLINK})


def blob_name(sha256: str) -> str:
    return f"{OBJECTS_DIR}/{sha256[:2]}/{sha256}"


class BlobStore:
    """The `objects/` of a version store, at its location."""

    def __init__(self, location: Location):
        self.location = location

    def put(self, source: Path, sha256: str) -> FileEntry:
        """Store a local file as the blob of its (already known) digest, unless it exists."""
        name = blob_name(sha256)
        size = source.stat().st_size
        if self.location.exists(name):
            return FileEntry(sha256=sha256, size=size)
        before = _signature(source)
        if isinstance(self.location, LocalLocation):
            target = self.location.path(name)
            fsutil.atomic_write_with(target, lambda tmp: _copy_checked(source, tmp, sha256))
            target.chmod(0o444)
        else:
            self.location.put_file(source, name)
            if _signature(source) != before:
                self.location.delete(name)
                raise StorageError(f"{source}: changed while it was being committed")
        return FileEntry(sha256=sha256, size=size)

    def put_bytes(self, data: bytes) -> FileEntry:
        """Store bytes as a blob (metadata.json), unless that content is stored already."""
        sha = hashlib.sha256(data).hexdigest()
        name = blob_name(sha)
        if not self.location.exists(name):
            self.location.put_bytes(name, data)
            if isinstance(self.location, LocalLocation):
                self.location.path(name).chmod(0o444)
        return FileEntry(sha256=sha, size=len(data))

    def link(self, sha256: str, folder: Path, name: str) -> None:
        """Hard-link a blob as `name` in a local `folder` (a copy without hard links).

        The name must be one the store writes (see `_layout.stored_path`), and an existing
        file is never replaced.
        """
        assert isinstance(self.location, LocalLocation)
        target = stored_path(folder, name)
        blob = self.location.path(blob_name(sha256))
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(blob, target)
        except OSError as exc:
            if isinstance(exc, FileExistsError) or exc.errno not in _NO_HARD_LINKS:
                raise
            # No hard links here: a plain copy, still checksummed, flushed (the folder's own
            # sync skips files, which are otherwise blobs flushed when written).
            with blob.open("rb") as source, target.open("xb") as copy:
                shutil.copyfileobj(source, copy)
                copy.flush()
                os.fsync(copy.fileno())

    def collect_garbage(self, used: Iterable[str], grace_seconds: float) -> None:
        """Delete blobs not in `used` that are older than `grace_seconds` (and, on a local
        folder, temporary files an interrupted write left)."""
        keep = set(used)
        cutoff = time.time() - grace_seconds
        for name, (_, modified) in self.location.listing(OBJECTS_DIR).items():
            if name.rsplit("/", 1)[-1] not in keep and modified <= cutoff:
                self.location.delete(name)

    def size_on_disk(self) -> int:
        return sum(size for size, _ in self.location.listing(OBJECTS_DIR).values())


class DigestCache:
    """sha256 of local files, remembered in one JSON file by device, inode, size and mtime.

    The file sits outside the dataset folder (a writer replaces the folder whole), so a shard
    the writer kept, renamed or hard-linked from its previous folder is not read again; a
    file rewritten has another inode or mtime and is hashed again. Without a writable place
    the cache is simply not kept.
    """

    def __init__(self, cache_file: Path | None):
        self.cache_file = cache_file
        self._entries = _read_cache(cache_file) if cache_file else {}

    def digests(self, files: Mapping[str, Path]) -> dict[str, str]:
        found, keys, changed = {}, [], False
        for name, path in files.items():
            stat = path.stat()
            key = f"{stat.st_dev}:{stat.st_ino}"
            keys.append(key)
            signature = [stat.st_size, stat.st_mtime_ns]
            cached = self._entries.get(key)
            if cached is not None and cached[:2] == signature:
                found[name] = cached[2]
                continue
            found[name] = fsutil.file_digest(path)
            self._entries[key] = [*signature, found[name]]
            changed = True
        if changed and self.cache_file is not None:
            kept = {key: self._entries[key] for key in keys}  # the files of this dataset
            with contextlib.suppress(OSError):  # read-only: no cache, the digests still right
                fsutil.atomic_write_text(self.cache_file, json.dumps(kept))
        return found


def _read_cache(path: Path) -> dict[str, list]:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def _signature(path: Path) -> tuple[int, int]:
    stat = path.stat()
    return stat.st_size, stat.st_mtime_ns


def _copy_checked(source: Path, tmp: Path, sha256: str) -> None:
    """Copy `source` to `tmp`; refuses a file that changed since it was hashed."""
    shutil.copyfile(source, tmp)
    if fsutil.file_digest(tmp) != sha256:
        raise StorageError(f"{source}: changed while it was being committed")
