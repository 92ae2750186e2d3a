"""Names in the version store: version names (semver), tags, references, file names, `current`.

    storage_dir/ (a folder, or a prefix on object storage)
      registry/<n>.json        registry snapshots, the highest is the registry (catalog.py)
      manifests/<sha256>.json  each version's files with checksums, named by the snapshots
      staged/<sha256>.json     datasets staged for a commit on another machine (store.py)
      objects/ab/<sha256>      content-addressed blobs (see _blobs.py)
      archive/vX.Y.Z-<id>.tar.gz  versions archived past max_versions (see transfer.py)
      versions/vX.Y.Z/         train.jsonl, eval.jsonl (or shards), __parquet__/..., metadata.json:
                               hard links to the blobs on a local folder; on object storage
                               copied only by `checkout`
      current                  local only: symlink -> versions/vX.Y.Z (a file without symlinks)
      .lock                    local only: serialises this machine's writers

Names from users become folder names and tags, so every check here uses `fullmatch` (a `$`
would let "v1.0.0\\n" through).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any, Literal

from esk_pipeline.pipeline import fsutil
from esk_pipeline.pipeline.dataset_layout import PARQUET_DIR

from .models import DatasetVersion, FileEntry, Registry, StorageError, VersionNotFoundError

Bump = Literal["major", "minor", "patch"]
VERSIONS_DIR = "versions"
ARCHIVE_DIR = "archive"

SEMVER = re.compile(r"v?(\d+)\.(\d+)\.(\d+)")
_TAG_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_.-]{0,63}")
RESERVED_REFS = ("current", "latest")
# A split's data file: `train.jsonl`, a shard of it, or a part's (`train-2026-01-05.jsonl`).
DATA_FILE = re.compile(
    r"(?P<split>train|eval)(?:-(?P<part>[A-Za-z0-9][A-Za-z0-9_.-]*?))?"
    r"(?P<shard>-\d{5}-of-\d{5})?\.jsonl"
)
_FIRST_SHARD = re.compile(r"(?P<stem>.+)-00000-of-(?P<n>\d{5})(?P<ext>\..+)")
SHARD_SUFFIX = re.compile(r"-\d{5}-of-\d{5}(?=\.)")
# The only file names a version holds (data files, Parquet copies, README.md, metadata.json):
# relative, no folders but __parquet__, no leading dot, nothing a path could be built from.
_STORED_NAME = re.compile(rf"(?:{PARQUET_DIR}/)?[A-Za-z0-9_-][A-Za-z0-9_.-]*")


def semver(name: str) -> tuple[int, int, int]:
    """(major, minor, patch) of a version name; (0, 0, 0) for anything else."""
    match = SEMVER.fullmatch(name)
    if not match:
        return (0, 0, 0)
    return (int(match.group(1)), int(match.group(2)), int(match.group(3)))


def normalise_version(name: str) -> str:
    """ "1.2.0" -> "v1.2.0"; a name that is not a version is returned as it is."""
    return "v{}.{}.{}".format(*semver(name)) if SEMVER.fullmatch(name) else name


def by_version(versions: list[DatasetVersion]) -> list[DatasetVersion]:
    """Oldest first, by semantic version."""
    return sorted(versions, key=lambda v: semver(v.version))


def new_version_name(registry: Registry, version_tag: str | None, bump: Bump) -> str:
    """`version_tag` checked and normalised, or the latest version bumped (v1.0.0 first)."""
    if version_tag is not None:
        if not SEMVER.fullmatch(version_tag):
            raise StorageError(f"version {version_tag!r} is not semantic (vMAJOR.MINOR.PATCH)")
        name = normalise_version(version_tag)
        if registry.find(name):
            raise StorageError(f"version {name} already exists")
        return name
    if not registry.versions:
        return "v1.0.0"
    major, minor, patch = max(semver(v.version) for v in registry.versions)
    bumped = {
        "major": (major + 1, 0, 0),
        "minor": (major, minor + 1, 0),
        "patch": (major, minor, patch + 1),
    }[bump]
    return "v{}.{}.{}".format(*bumped)


def check_tag(tag: str) -> None:
    if not _TAG_NAME.fullmatch(tag) or SEMVER.fullmatch(tag) or tag in RESERVED_REFS:
        raise StorageError(
            f"invalid tag {tag!r}: use letters, digits, _.- and not a version or "
            f"{'/'.join(RESERVED_REFS)}"
        )


def resolve(registry: Registry, ref: str) -> DatasetVersion:
    """A version by name (v1.2.0 or 1.2.0), tag, "current" or "latest"."""
    ordered = by_version(registry.versions)
    if ref == "current":
        name = registry.current
    elif ref == "latest":
        name = ordered[-1].version if ordered else None
    elif ref in registry.tags:
        name = registry.tags[ref]
    else:
        name = normalise_version(ref)
    entry = registry.find(name) if name else None
    if entry is None:
        known = ", ".join([v.version for v in ordered][-5:] + sorted(registry.tags)) or "none"
        raise VersionNotFoundError(f"no version or tag {ref!r} (known: {known})")
    return entry


def expand_shards(path: Path) -> list[Path]:
    """A first shard (`x-00000-of-00003.jsonl`) stands for all of its shards."""
    if not path.is_file():
        raise StorageError(f"{path}: no such file")
    match = _FIRST_SHARD.fullmatch(path.name)
    if not match:
        return [path]
    n = int(match.group("n"))
    stem, ext = match.group("stem"), match.group("ext")
    shards = [path.with_name(f"{stem}-{i:05d}-of-{n:05d}{ext}") for i in range(n)]
    missing = [s.name for s in shards if not s.is_file()]
    if missing:
        raise StorageError(f"{path.parent}: shards missing: {', '.join(missing)}")
    return shards


def check_stored_name(name: str) -> None:
    """Refuses a file name a version may not hold (see `stored_path`)."""
    if not _STORED_NAME.fullmatch(name):
        raise _unsafe(name)


def stored_path(folder: Path, name: str) -> Path:
    """`folder / name` for a name a version may hold; refuses any other name.

    Names come from manifests and registries, so `../x`, `/etc/x`, `a\\b` or other folders
    must never become paths: the store only ever writes the shapes `_STORED_NAME` allows.
    """
    check_stored_name(name)
    path = folder / name
    if not path.resolve().is_relative_to(folder.resolve()):
        raise _unsafe(name)
    return path


def _unsafe(name: str) -> StorageError:
    return StorageError(
        f"unsafe file name {name!r}: a version holds only names like train.jsonl, "
        f"{PARQUET_DIR}/train.parquet, README.md and metadata.json"
    )


def data_files(files: dict[str, Any]) -> list[str]:
    """The train/eval JSONL names among a version's files, sorted."""
    return sorted(name for name in files if DATA_FILE.fullmatch(name))


def split_of(name: str) -> str:
    """ "train" or "eval" for a data file name."""
    return DATA_FILE.fullmatch(name).group("split")  # type: ignore[union-attr]


def parquet_name(data_file: str) -> str:
    """The Parquet copy's name for a data file: train.jsonl -> __parquet__/train.parquet."""
    return f"{PARQUET_DIR}/{Path(data_file).stem}.parquet"


def read_json(path: Path) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise StorageError(f"{path}: not valid JSON ({exc})") from exc


def point_current(root: Path, version: str) -> None:
    """Move the `current` symlink atomically (a pointer file where symlinks are unavailable).

    fsutil has no atomic symlink, so this one is here: a symlink under fsutil's temporary name,
    then os.replace (recovery removes a leftover like any other).
    """
    current = root / "current"
    tmp = fsutil.temp_path(current)
    try:
        os.symlink(f"versions/{version}", tmp)
    except (OSError, NotImplementedError):
        fsutil.atomic_write_bytes(current, f"{version}\n".encode())
        return
    os.replace(tmp, current)
    fsutil.fsync_dir(root)


def read_current_pointer(root: Path) -> str | None:
    current = root / "current"
    if current.is_symlink():
        return Path(os.readlink(current)).name
    if current.is_file():
        return current.read_text(encoding="utf-8").strip()
    return None


def same_content(a: dict[str, FileEntry], b: dict[str, FileEntry]) -> bool:
    """Whether two manifests hold the same files (metadata.json, which dates, aside)."""

    def content(files: dict[str, FileEntry]) -> dict[str, str]:
        return {n: f.sha256 for n, f in files.items() if n != "metadata.json"}

    return content(a) == content(b)
