"""Atomic file and folder writes, and file digests: the one protocol every store uses.

A reader never sees half a file or half a folder: everything is written beside its target
under a temporary name, flushed to disk, then renamed into place. Every temporary name
contains `TEMP_MARK`, so recovery after a crash knows one pattern (`remove_leftovers`).
Scratch folders in the system temporary folder are named by `scratch_prefix` (the project's
mark and the owning process id), so `remove_dead_scratch` removes those of processes that
died (kill -9) at the next start, and never anyone else's.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import functools
import hashlib
import os
import re
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

__all__ = [
    "SCRATCH_MARK",
    "TEMP_MARK",
    "atomic_file",
    "atomic_folder",
    "atomic_write_bytes",
    "atomic_write_text",
    "atomic_write_with",
    "file_digest",
    "fsync_dir",
    "fsync_tree",
    "is_leftover",
    "owner_alive",
    "process_alive",
    "process_started",
    "remove_dead_scratch",
    "remove_leftovers",
    "scratch_prefix",
    "temp_path",
]

TEMP_MARK = ".esk-tmp-"
SCRATCH_MARK = "esk-pipeline-scratch-"
# The owner's pid and, where known, its start time (`process_started`).
_SCRATCH_NAME = re.compile(rf"{re.escape(SCRATCH_MARK)}(\d+)-(?:s(\d+)-)?")


def scratch_prefix(kind: str) -> str:
    """The name prefix of a scratch folder in the system temporary folder (for `tempfile`):
    the owning process's id and start time, so a later process given the same id (after a
    restart, in a container) is not taken for the owner."""
    started = process_started(os.getpid())
    return f"{SCRATCH_MARK}{os.getpid()}-{f's{started}-' if started else ''}{kind}-"


def process_alive(pid: int) -> bool:
    """Whether a process with this id exists on this machine."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: it exists
        return True
    return True


def process_started(pid: int) -> str | None:
    """When the process with this id started (clock ticks since boot, from /proc), or None
    where that cannot be read (no such process, no /proc). With `process_alive` it tells a
    process from a later one that was given the same id (after a restart, in a container)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    # The fields after the command name, which is in parentheses and may hold anything.
    fields = stat.rpartition(")")[2].split()
    return fields[19] if len(fields) > 19 else None


def remove_dead_scratch(root: Path | None = None) -> list[Path]:
    """Delete the project's scratch folders whose process is gone; returns what was removed.
    Only names made by `scratch_prefix` are touched, and never a live process's."""
    root = Path(root or tempfile.gettempdir())
    removed = []
    for path in root.iterdir():
        owner = _SCRATCH_NAME.match(path.name)
        if owner is None or owner_alive(int(owner[1]), owner[2]):
            continue
        _remove(path)
        removed.append(path)
    return removed


def owner_alive(pid: int, started: str | None) -> bool:
    """Whether the process that recorded itself as (`pid`, `started`: its `process_started`,
    None where not recorded) is alive: its id exists and, where the start time is known, the
    process with that id started then (not a later one given the same id)."""
    if not process_alive(pid):
        return False
    return started is None or process_started(pid) in (started, None)


def temp_path(target: Path) -> Path:
    """A hidden, unique name beside `target` (unique per writer: threads never share one)."""
    return target.with_name(f".{target.name}{TEMP_MARK}{uuid.uuid4().hex}")


def is_leftover(path: Path) -> bool:
    """True for a temporary file or folder an interrupted write left behind."""
    return TEMP_MARK in path.name


def remove_leftovers(folder: Path) -> list[Path]:
    """Delete what interrupted writes left directly in `folder`; returns what was removed."""
    if not folder.is_dir():
        return []
    removed = []
    for path in folder.iterdir():
        if not is_leftover(path):
            continue
        _remove(path)
        removed.append(path)
    return removed


@contextlib.contextmanager
def atomic_file(target: Path) -> Iterator[IO[bytes]]:
    """Write `target` whole or not at all: yields a binary handle on a temporary sibling."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path(target)
    try:
        with tmp.open("wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    fsync_dir(target.parent)


def atomic_write_bytes(target: Path, data: bytes) -> None:
    with atomic_file(target) as handle:
        handle.write(data)


def atomic_write_text(target: Path, text: str) -> None:
    atomic_write_bytes(target, text.encode("utf-8"))


def atomic_write_with(target: Path, write: Callable[[Path], Any]) -> None:
    """Atomic write for writers that want a path (pandas, pyarrow): `write(temp_path)`."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path(target)
    try:
        write(tmp)
        with tmp.open("rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    fsync_dir(target.parent)


@contextlib.contextmanager
def atomic_folder(target: Path, sync_files: bool = True) -> Iterator[Path]:
    """Build a folder under a temporary name, then put it at `target` in one rename.

    An existing `target` is replaced in one exchange with the staging folder where the system
    has one (Linux), then the old folder is deleted, so a crash leaves the old folder or the
    new one (plus leftovers recovery removes). Elsewhere the old folder is moved aside first:
    a crash between the two renames leaves no `target` until the next write.
    `sync_files=False` flushes only the folder entries, for files already durable elsewhere
    (hard links).
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = temp_path(target)
    staging.mkdir()
    try:
        yield staging
        fsync_tree(staging, sync_files)
        if target.exists() and _exchange(staging, target):
            fsync_dir(target.parent)
            shutil.rmtree(staging)  # the old folder, now under the staging name
            return
        old = temp_path(target) if target.exists() else None
        if old is not None:
            os.rename(target, old)
        os.rename(staging, target)
        fsync_dir(target.parent)
        if old is not None:
            shutil.rmtree(old)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


_RENAME_EXCHANGE = 2  # linux/fs.h


def _exchange(first: Path, second: Path) -> bool:
    """Swap two paths in one step (Linux `renameat2` with RENAME_EXCHANGE); False where the
    system or file system cannot, and the caller moves the old one aside first instead."""
    renameat2 = getattr(_libc(), "renameat2", None)
    if renameat2 is None:
        return False
    at_cwd = -100  # AT_FDCWD: the paths are absolute or relative to the working folder
    done = renameat2(at_cwd, os.fsencode(first), at_cwd, os.fsencode(second), _RENAME_EXCHANGE)
    if done == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
        return False
    raise OSError(code, os.strerror(code), str(first), None, str(second))


@functools.cache
def _libc() -> ctypes.CDLL | None:
    try:
        return ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None


def fsync_dir(folder: Path) -> None:
    """Make a folder's entries (a rename, a new file) durable."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_tree(folder: Path, sync_files: bool = True) -> None:
    """Flush every file (unless `sync_files` is False) and folder entry under `folder`."""
    for path in folder.rglob("*") if sync_files else ():
        if path.is_file() and not path.is_symlink():
            with path.open("rb") as handle:
                os.fsync(handle.fileno())
    for sub in sorted({p.parent for p in folder.rglob("*")} | {folder}):
        fsync_dir(sub)


def file_digest(path: Path, algorithm: str = "sha256") -> str:
    """Hex digest of a file's bytes, read in chunks (hashlib.file_digest)."""
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, algorithm).hexdigest()


def _remove(path: Path) -> None:
    """Delete a file or a whole folder (a symlink itself, never what it points to)."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)
