"""Where a version store lives: a local folder or any fsspec URL (s3://bucket/prefix, ...).

The store needs few operations from its location, and one of them is the commit point:
`put_new` writes an object only if no object has that name, atomically. A local folder does
it with a fully written temporary file hard-linked into place (link fails if the name
exists); object storage with a conditional put (S3's `If-None-Match: *`, which s3fs sends
for `mode="create"`; AWS S3 has honoured it since August 2024, the tests run it on moto's
server). fsspec's other backends check and then write, so they are refused
(ATOMIC_CREATE_PROTOCOLS); an S3-compatible server must honour If-None-Match. Every other
write is of content-addressed or derived objects, where a retry or a concurrent writer
writes the same bytes.

Names are relative POSIX paths under the root ("objects/ab/<sha>", "registry/00000003.json").
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import fsspec

from esk_pipeline.pipeline import fsutil

from .models import StorageError

__all__ = [
    "ATOMIC_CREATE_PROTOCOLS",
    "FsspecLocation",
    "LocalLocation",
    "Location",
    "open_location",
]

# fsspec backends whose `pipe_file(mode="create")` is one conditional request.
ATOMIC_CREATE_PROTOCOLS = frozenset({"s3", "s3a"})


def open_location(where: str | Path) -> Location:
    """A local folder for a path (or file:// URL), else the fsspec file system of the URL."""
    text = str(where)
    if "://" not in text or text.startswith("file://"):
        return LocalLocation(Path(text.removeprefix("file://")).absolute())
    protocol = text.split("://", 1)[0]
    if protocol not in ATOMIC_CREATE_PROTOCOLS:
        raise StorageError(
            f"{text}: a version store needs a write that refuses an existing name atomically, "
            f"which {protocol}:// does not give here; use a local folder or "
            + ", ".join(f"{p}://" for p in sorted(ATOMIC_CREATE_PROTOCOLS))
        )
    return FsspecLocation(text)


class Location:
    """The operations a version store uses; names are relative to the root."""

    is_local: bool = False
    url: str

    def put_new(self, name: str, data: bytes) -> bool:
        """Write `name` only if it does not exist; False if it does (nothing written)."""
        raise NotImplementedError

    def put_bytes(self, name: str, data: bytes) -> None:
        """Write (or replace) `name` whole."""
        raise NotImplementedError

    def put_file(self, source: Path, name: str) -> None:
        """Upload a local file as `name` whole."""
        raise NotImplementedError

    def write_with(self, name: str, write: Callable[[Path], Any]) -> None:
        """Write `name` whole with a writer that wants a local path (tarfile, pyarrow)."""
        with tempfile.TemporaryDirectory(prefix=fsutil.scratch_prefix("upload")) as tmp:
            local = Path(tmp) / "file"
            write(local)
            self.put_file(local, name)

    def copy(self, source: str, target: str) -> None:
        """Copy one object to another name (server-side on object storage)."""
        raise NotImplementedError

    def get_file(self, name: str, target: Path) -> None:
        raise NotImplementedError

    def read_bytes(self, name: str) -> bytes:
        raise NotImplementedError

    def read_many(self, names: list[str]) -> dict[str, bytes]:
        """Several objects at once (concurrent requests on object storage)."""
        return {name: self.read_bytes(name) for name in names}

    def open(self, name: str) -> IO[bytes]:
        raise NotImplementedError

    def exists(self, name: str) -> bool:
        raise NotImplementedError

    def listing(self, prefix: str) -> dict[str, tuple[int, float]]:
        """Every object under `prefix` (recursive): name -> (size, modified epoch seconds)."""
        raise NotImplementedError

    def delete(self, name: str) -> None:
        """Remove `name` if present."""
        raise NotImplementedError


class LocalLocation(Location):
    """A folder on this machine; writes go through fsutil (temporary file, fsync, rename)."""

    is_local = True

    def __init__(self, root: Path):
        self.root = root
        self.url = str(root)
        root.mkdir(parents=True, exist_ok=True)

    def path(self, name: str) -> Path:
        return self.root / name

    def put_new(self, name: str, data: bytes) -> bool:
        target = self.path(name)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = fsutil.temp_path(target)
        try:
            with tmp.open("wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            try:
                os.link(tmp, target)  # atomic, and fails if the name exists
            except FileExistsError:
                return False
        finally:
            tmp.unlink(missing_ok=True)
        fsutil.fsync_dir(target.parent)
        return True

    def put_bytes(self, name: str, data: bytes) -> None:
        fsutil.atomic_write_bytes(self.path(name), data)

    def put_file(self, source: Path, name: str) -> None:
        fsutil.atomic_write_with(self.path(name), lambda tmp: shutil.copyfile(source, tmp))

    def write_with(self, name: str, write: Callable[[Path], Any]) -> None:
        fsutil.atomic_write_with(self.path(name), write)

    def get_file(self, name: str, target: Path) -> None:
        shutil.copyfile(self.path(name), target)

    def read_bytes(self, name: str) -> bytes:
        return self.path(name).read_bytes()

    def open(self, name: str) -> IO[bytes]:
        return self.path(name).open("rb")

    def exists(self, name: str) -> bool:
        return self.path(name).exists()

    def listing(self, prefix: str) -> dict[str, tuple[int, float]]:
        folder = self.path(prefix)
        if not folder.is_dir():
            return {}
        found = {}
        for path in folder.rglob("*"):
            if path.is_file() and not path.is_symlink():
                stat = path.stat()
                found[path.relative_to(self.root).as_posix()] = (stat.st_size, stat.st_mtime)
        return found

    def delete(self, name: str) -> None:
        path = self.path(name)
        if path.is_file():
            path.chmod(0o644)  # blobs are read-only
        path.unlink(missing_ok=True)


class FsspecLocation(Location):
    """A prefix on any fsspec file system; object stores write each object atomically."""

    def __init__(self, url: str):
        self.url = url.rstrip("/")
        self.fs, self.base = fsspec.core.url_to_fs(self.url)
        self.base = self.base.rstrip("/")
        # Listings are cached by fsspec per instance: a store must see other writers' commits.
        self.fs.invalidate_cache()

    def _full(self, name: str) -> str:
        return f"{self.base}/{name}"

    def put_new(self, name: str, data: bytes) -> bool:
        try:
            self.fs.pipe_file(self._full(name), data, mode="create")
        except OSError as exc:
            if _refused_as_existing(exc):
                return False
            raise
        return True

    def put_bytes(self, name: str, data: bytes) -> None:
        self.fs.pipe_file(self._full(name), data)

    def put_file(self, source: Path, name: str) -> None:
        self.fs.put_file(str(source), self._full(name))

    def copy(self, source: str, target: str) -> None:
        self.fs.copy(self._full(source), self._full(target))

    def get_file(self, name: str, target: Path) -> None:
        self.fs.get_file(self._full(name), str(target))

    def read_bytes(self, name: str) -> bytes:
        return self.fs.cat_file(self._full(name))

    def read_many(self, names: list[str]) -> dict[str, bytes]:
        if not names:
            return {}
        found = self.fs.cat([self._full(name) for name in names])
        return {name: found[self.fs._strip_protocol(self._full(name))] for name in names}

    def open(self, name: str) -> IO[bytes]:
        return self.fs.open(self._full(name), "rb")

    def exists(self, name: str) -> bool:
        self.fs.invalidate_cache(self._full(name))
        return self.fs.exists(self._full(name))

    def listing(self, prefix: str) -> dict[str, tuple[int, float]]:
        self.fs.invalidate_cache()
        try:
            found = self.fs.find(self._full(prefix), detail=True)
        except FileNotFoundError:
            return {}
        start = len(self.base) + 1
        return {
            path[start:]: (int(info.get("size") or 0), _modified(info))
            for path, info in found.items()
            if info.get("type") != "directory"
        }

    def delete(self, name: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.fs.rm_file(self._full(name))


def _refused_as_existing(exc: OSError) -> bool:
    """A conditional put refused: the name exists (412), or another conditional write of it
    is in flight (S3's 409 ConditionalRequestConflict); either way another writer has it."""
    if isinstance(exc, FileExistsError):
        return True
    response = getattr(exc.__cause__, "response", None) or {}
    code = response.get("Error", {}).get("Code")
    status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return code in ("PreconditionFailed", "ConditionalRequestConflict") or status in (409, 412)


def _modified(info: dict) -> float:
    """An object's modification time (S3's LastModified) as epoch seconds; now if unknown."""
    value = info.get("LastModified") or info.get("mtime") or info.get("created")
    if value is None:
        return time.time()
    return value.timestamp() if hasattr(value, "timestamp") else float(value)
