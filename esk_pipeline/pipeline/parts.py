"""A table stored as named parts: one Parquet file per part, named by a digest of what the part
was made from, and a manifest naming the current parts.

A value too large to hold in memory at once (every day's trusted labels) is a `FrameParts`: a
`Mapping[str, DataFrame]` whose parts are read from their store when asked for and not kept.
A maker that finds a part's inputs unchanged names the part it stored last time instead of
making it again; since a part's file name (its *address*) is a digest of its inputs, an
unchanged part is neither recomputed nor rewritten.

`FolderPartStore` keeps parts in a folder or under an object-storage prefix (any universal-
pathlib path): `<folder>/<address>.parquet` and `<folder>/manifest.json`. Part files are
written first and the manifest last, so a reader of the manifest always finds its parts; a
file neither the current nor the previous manifest names is removed once it is old enough that
no run still making parts can be about to name it (`collect_garbage`). `MemoryPartStore`
holds them in a dict (tests, one-frame callers).

A reader that needs only a small summary of each part (counts, a few columns of some rows)
can keep it beside the part (`FrameParts.derived`: `<folder>/<address>.<kind>.parquet`): the
address names the part's content, so the summary is made once per part and an unchanged part
is not read again; it goes when its part goes.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Protocol

import pandas as pd

from esk_pipeline.pipeline import fsutil

if TYPE_CHECKING:
    from upath import UPath

__all__ = [
    "FolderPartStore",
    "FrameParts",
    "MemoryPartStore",
    "PartRecord",
    "PartStore",
    "derived",
    "digest",
    "write_whole",
]

MANIFEST = "manifest.json"
_SUFFIX = ".parquet"
_KIND = re.compile(r"[a-z][a-z-]*")


def digest(*pieces: str | bytes) -> str:
    """A short hex digest of `pieces` in order (each length-prefixed, so no two lists of
    pieces give the same bytes)."""
    sha = hashlib.sha256()
    for piece in pieces:
        data = piece.encode("utf-8") if isinstance(piece, str) else piece
        sha.update(len(data).to_bytes(8, "little"))
        sha.update(data)
    return sha.hexdigest()[:32]


@dataclass(frozen=True)
class PartRecord:
    """One part: where its frame is stored, and the digests of the inputs it was made from
    (opaque here; its maker compares them to decide whether the part can be reused)."""

    address: str
    inputs: dict[str, str] = field(default_factory=dict)


class PartStore(Protocol):
    """Frames stored by address."""

    def has(self, address: str) -> bool: ...

    def read(self, address: str, columns: list[str] | None = None) -> pd.DataFrame: ...

    def write(self, address: str, frame: pd.DataFrame) -> None: ...


def derived(
    store: PartStore,
    address: str,
    kinds: list[str],
    make: Callable[[], dict[str, pd.DataFrame]],
) -> dict[str, pd.DataFrame]:
    """The summaries `kinds` of the part at `address`: made by `make` (from the part) the
    first time and kept beside the part (an address names content: they never go stale)."""
    for kind in kinds:
        if not _KIND.fullmatch(kind):
            raise ValueError(f"a summary kind is lower-case letters and dashes, got {kind!r}")
    if all(store.has(f"{address}.{kind}") for kind in kinds):
        return {kind: store.read(f"{address}.{kind}") for kind in kinds}
    made = make()
    for kind in kinds:
        store.write(f"{address}.{kind}", made[kind])
    return made


class MemoryPartStore:
    """Parts in a dict: for callers that want the whole table anyway, and for tests."""

    def __init__(self) -> None:
        self.frames: dict[str, pd.DataFrame] = {}

    def has(self, address: str) -> bool:
        return address in self.frames

    def read(self, address: str, columns: list[str] | None = None) -> pd.DataFrame:
        frame = self.frames[address]
        return frame[columns].copy() if columns is not None else frame.copy()

    def write(self, address: str, frame: pd.DataFrame) -> None:
        self.frames[address] = frame.copy()


class FolderPartStore:
    """Parts as `<folder>/<address>.parquet`, and the manifest of the current ones."""

    def __init__(self, folder: UPath | Path):
        self.folder = folder

    def has(self, address: str) -> bool:
        return self._path(address).exists()

    def read(self, address: str, columns: list[str] | None = None) -> pd.DataFrame:
        with self._path(address).open("rb") as f:
            return pd.read_parquet(f, columns=columns)

    def write(self, address: str, frame: pd.DataFrame) -> None:
        buffer = io.BytesIO()
        frame.to_parquet(buffer)
        write_whole(self._path(address), lambda f: f.write(buffer.getbuffer()))

    def manifest(self) -> dict[str, PartRecord] | None:
        """The current parts by name, or None when no parts value was ever written here."""
        path = self.folder / MANIFEST
        if not path.exists():
            return None
        parts = json.loads(path.read_text(encoding="utf-8"))["parts"]
        return {name: PartRecord(p["address"], p.get("inputs", {})) for name, p in parts.items()}

    def write_manifest(self, records: Mapping[str, PartRecord]) -> None:
        value = {
            "parts": {
                name: {"address": r.address, "inputs": r.inputs} for name, r in records.items()
            }
        }
        text = json.dumps(value, indent=1, sort_keys=True).encode("utf-8")
        write_whole(self.folder / MANIFEST, lambda f: f.write(text))

    def collect_garbage(self, keep: Iterable[str], *, older_than: float = 0.0) -> int:
        """Remove part files whose address is not in `keep` and that were last written more
        than `older_than` seconds ago (a run still making its parts may have written one it
        has not named in a manifest yet); returns how many went."""
        if not self.folder.exists():
            return 0
        wanted = set(keep)
        before = time.time() - older_than
        gone = 0
        for path in list(self.folder.iterdir()):
            # A part's summaries (`<address>.<kind>.parquet`) go with their part.
            address = path.name[: -len(_SUFFIX)].split(".")[0]
            if not path.name.endswith(_SUFFIX) or address in wanted:
                continue
            if older_than and _modified(path) > before:
                continue
            path.unlink()
            gone += 1
        return gone

    def _path(self, address: str):
        return self.folder / f"{address}{_SUFFIX}"


class FrameParts(Mapping[str, pd.DataFrame]):
    """{part name: DataFrame} over a `PartStore`: each access reads the part again, nothing
    is kept. `records` says where each part is and what it was made from."""

    def __init__(self, store: PartStore, records: Mapping[str, PartRecord]):
        self.store = store
        self.records = dict(records)

    def __getitem__(self, name: str) -> pd.DataFrame:
        return self.store.read(self.records[name].address)

    def __iter__(self) -> Iterator[str]:
        return iter(self.records)

    def __len__(self) -> int:
        return len(self.records)

    def columns(self, name: str, columns: list[str]) -> pd.DataFrame:
        """Only these columns of one part (cheaper than the whole part)."""
        return self.store.read(self.records[name].address, columns=columns)

    def derived(
        self,
        name: str,
        kinds: list[str],
        columns: list[str],
        make: Callable[[pd.DataFrame], dict[str, pd.DataFrame]],
    ) -> dict[str, pd.DataFrame]:
        """Summaries of one part, kept beside it (see the module docstring): `make` gets these
        columns of the part, read only when the summaries of this part's content were not
        kept before, and returns a frame per kind."""
        address = self.records[name].address
        return derived(self.store, address, kinds, lambda: make(self.columns(name, columns)))


def _modified(path: Any) -> float:
    """When a file was last written (now, when the file system does not say)."""
    try:
        return float(path.stat().st_mtime)
    except (OSError, AttributeError, TypeError, ValueError):
        return time.time()


def write_whole(path: Any, write: Callable[[IO[bytes]], Any]) -> None:
    """Write a whole file so no reader ever sees half of it.

    On a local disk: beside the target, then rename. An object store makes an object visible
    only once its upload is complete, so there the value is written in place.
    """
    if getattr(path, "protocol", "") not in ("", "file", "local"):
        with path.open("wb") as f:
            write(f)
        return
    local = Path(path.path) if hasattr(path, "path") else Path(path)
    local.parent.mkdir(parents=True, exist_ok=True)
    with fsutil.atomic_file(local) as f:
        write(f)
