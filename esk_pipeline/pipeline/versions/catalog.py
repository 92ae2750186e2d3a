"""The registry's snapshots: the version store's one commit point, safe on object storage.

Every change to the registry writes a whole new snapshot `registry/<n>.json` under the next
number, with a write that succeeds only if that name is still free (location.put_new: a
hard link on a local folder, a conditional put on S3). The highest number is the registry.
Two writers that read the same snapshot race for the same next name: one wins, the other
re-reads and re-applies its change. A crash before that write leaves the old registry, after
it the new one; nothing else a commit writes is visible until a snapshot names it.

A snapshot names each version's manifest (its files with checksums and counts) by checksum:
`manifests/<sha256>.json`, written before the snapshot and never changed, so a snapshot stays
small however many shards the versions have, a commit writes only its own manifest, and a
reader fetches each manifest once per process.

Only the last KEEP_SNAPSHOTS snapshots are kept; a write whose base snapshot is already pruned
is withdrawn and retried, so a writer that paused that long cannot commit unseen. A store
made before snapshots existed (`versions.json`) becomes snapshot 1 when it is first opened.
"""

from __future__ import annotations

import hashlib
import json
import re

from .location import Location
from .models import FileEntry, Registry

__all__ = [
    "KEEP_SNAPSHOTS",
    "LEGACY_REGISTRY",
    "MANIFEST_DIR",
    "REGISTRY_DIR",
    "Catalog",
    "manifest_name",
    "snapshot_name",
]

REGISTRY_DIR = "registry"
MANIFEST_DIR = "manifests"
LEGACY_REGISTRY = "versions.json"
KEEP_SNAPSHOTS = 20
_SNAPSHOT = re.compile(rf"{REGISTRY_DIR}/(\d{{8}})\.json")


def snapshot_name(number: int) -> str:
    return f"{REGISTRY_DIR}/{number:08d}.json"


def manifest_name(sha256: str) -> str:
    return f"{MANIFEST_DIR}/{sha256}.json"


class Catalog:
    """Reads the latest registry snapshot and writes the next one."""

    def __init__(self, location: Location):
        self.location = location
        self._manifests: dict[str, dict[str, FileEntry]] = {}  # by checksum: never changes

    def numbers(self) -> list[int]:
        """The snapshot numbers present, oldest first."""
        found = (_SNAPSHOT.fullmatch(name) for name in self.location.listing(REGISTRY_DIR))
        return sorted(int(m.group(1)) for m in found if m)

    def read(self) -> tuple[int, Registry]:
        """(number, registry) of the latest snapshot; (0, empty) for a new store."""
        for _ in range(5):  # a snapshot may be pruned between listing and reading
            numbers = self.numbers()
            if not numbers:
                return 0, Registry()
            name = snapshot_name(numbers[-1])
            try:
                data = self.location.read_bytes(name)
            except FileNotFoundError:
                continue
            registry = Registry.from_bytes(data, f"{self.location.url}/{name}")
            self._fill(registry)
            return numbers[-1], registry
        raise RuntimeError(f"{self.location.url}: registry snapshots keep disappearing")

    def write(self, number: int, registry: Registry) -> bool:
        """Write snapshot `number` (after any manifest not stored yet); False if another
        writer took that number first."""
        for version in registry.versions:
            files = {n: f.model_dump(exclude_none=True) for n, f in sorted(version.files.items())}
            data = json.dumps(files, separators=(",", ":")).encode()
            sha = hashlib.sha256(data).hexdigest()
            if sha not in self._manifests:
                if not self.location.exists(manifest_name(sha)):
                    self.location.put_bytes(manifest_name(sha), data)
                self._manifests[sha] = dict(version.files)
            version.manifest = sha
        data = registry.to_bytes()
        name = snapshot_name(number)
        if not self.location.put_new(name, data):
            # A put retried after a lost reply finds its own first write: the number is ours.
            return self._holds(name, data)
        numbers = self.numbers()
        if number > 1 and number - 1 not in numbers:
            # The snapshot this change was read from is pruned: so was `number` before this
            # write (a writer paused past KEEP_SNAPSHOTS commits). Not the registry: retry.
            self.location.delete(name)
            return False
        for old in numbers:
            if old <= number - KEEP_SNAPSHOTS:
                self.location.delete(snapshot_name(old))
        return True

    def _holds(self, name: str, data: bytes) -> bool:
        try:
            return self.location.read_bytes(name) == data
        except FileNotFoundError:
            return False

    def adopt_legacy(self) -> None:
        """Turn a `versions.json` registry into snapshot 1 (once; a no-op otherwise)."""
        if not self.location.exists(LEGACY_REGISTRY):
            return
        if not self.numbers():
            data = self.location.read_bytes(LEGACY_REGISTRY)
            registry = Registry.from_bytes(data, f"{self.location.url}/{LEGACY_REGISTRY}")
            self._fill(registry)  # (a versions.json lists the files itself)
            self.write(1, registry)
        self.location.delete(LEGACY_REGISTRY)

    def _fill(self, registry: Registry) -> None:
        """Each version's files from its manifest (fetched once per process)."""
        wanted = {v.manifest for v in registry.versions if v.manifest} - self._manifests.keys()
        for name, data in self.location.read_many([manifest_name(s) for s in wanted]).items():
            sha = name.removeprefix(f"{MANIFEST_DIR}/").removesuffix(".json")
            files = json.loads(data)
            self._manifests[sha] = {n: FileEntry.model_validate(f) for n, f in files.items()}
        for version in registry.versions:
            if version.manifest:
                version.files = dict(self._manifests[version.manifest])
