"""Content-addressed blobs: each distinct file is stored once, versions hard-link to it.

`objects/ab/<sha256>` holds a file's bytes, read-only. A version's files are hard links to
their blobs, so identical files across versions cost nothing; a file system without hard
links gets a plain copy (still checksummed). Blobs no live version uses are deleted by
`collect_garbage`, and with them any temporary file an interrupted write left.
"""

from __future__ import annotations

import errno
import os
import shutil
from collections.abc import Iterable
from pathlib import Path

from esk_pipeline.pipeline import fsutil

from ._layout import stored_path
from .models import FileEntry, StorageError

# link() errors that mean "no hard links here", where a checksummed copy is the fallback.
_NO_HARD_LINKS = frozenset({errno.EXDEV, errno.EPERM, errno.ENOTSUP, errno.EMLINK})


class BlobStore:
    """The `objects/` folder of a version store."""

    def __init__(self, objects_dir: Path):
        self.objects_dir = objects_dir
        objects_dir.mkdir(parents=True, exist_ok=True)

    def blob_path(self, sha256: str) -> Path:
        return self.objects_dir / sha256[:2] / sha256

    def link(self, source: Path, folder: Path, name: str) -> FileEntry:
        """Store `source` as a blob (once per content) and hard-link it as `name` in `folder`.

        The name must be one the store writes (see `layout.stored_path`), and an existing file
        is never replaced: only a file system without hard links falls back to a copy.
        """
        target = stored_path(folder, name)
        sha = fsutil.file_digest(source)
        blob = self.blob_path(sha)
        if not blob.exists():
            fsutil.atomic_write_with(blob, lambda tmp: _copy_checked(source, tmp, sha))
            blob.chmod(0o444)
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(blob, target)
        except OSError as exc:
            if isinstance(exc, FileExistsError) or exc.errno not in _NO_HARD_LINKS:
                raise
            shutil.copyfile(blob, target)  # no hard links here: a plain copy, still checksummed
        return FileEntry(sha256=sha, size=blob.stat().st_size)

    def collect_garbage(self, used: Iterable[str]) -> None:
        """Delete blobs whose digest is not in `used` (temporary files of a write included)."""
        keep = set(used)
        for blob in self.objects_dir.glob("*/*"):
            if blob.name not in keep:
                blob.unlink(missing_ok=True)
        fsutil.remove_leftovers(self.objects_dir)

    def size_on_disk(self) -> int:
        return sum(p.stat().st_size for p in self.objects_dir.rglob("*") if p.is_file())


def _copy_checked(source: Path, tmp: Path, sha256: str) -> None:
    """Copy `source` to `tmp`; refuses a file that changed since it was hashed."""
    shutil.copyfile(source, tmp)
    if fsutil.file_digest(tmp) != sha256:
        raise StorageError(f"{source}: changed while it was being committed")
