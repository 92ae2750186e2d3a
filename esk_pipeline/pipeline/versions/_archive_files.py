"""A version's files as one archive: a gzip'd tar (exports and the store's own archives) or a
zip (exports), written from a function that opens each file by its name in the version."""

from __future__ import annotations

import io
import shutil
import tarfile
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import IO

from .models import DatasetVersion

__all__ = ["write_tar", "write_zip"]


def write_tar(
    manifest: bytes | None,
    open_file: Callable[[str], IO[bytes]],
    entry: DatasetVersion,
    tmp: Path,
) -> None:
    """A gzip'd tar of the version's files: under data/ with a manifest (an export), else bare."""
    prefix = "data/" if manifest is not None else ""
    stamp = entry.created_at.timestamp()
    with tarfile.open(tmp, "w:gz") as archive:
        if manifest is not None:
            archive.addfile(_member("manifest.json", len(manifest), stamp), io.BytesIO(manifest))
        for name, file in entry.files.items():
            with open_file(name) as handle:
                archive.addfile(_member(f"{prefix}{name}", file.size, stamp), handle)


def _member(name: str, size: int, mtime: float) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = size, int(mtime), 0o644
    return info


def write_zip(
    manifest: bytes, open_file: Callable[[str], IO[bytes]], entry: DatasetVersion, tmp: Path
) -> None:
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("manifest.json", manifest)
        for name in entry.files:
            with open_file(name) as handle, archive.open(f"data/{name}", "w") as member:
                shutil.copyfileobj(handle, member)
