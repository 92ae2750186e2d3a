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
no run still making parts can be about to name it (`collect_garbage`); a maker that takes a
file as stored touches it (`touch`), so an old file it is about to name counts as new.
`MemoryPartStore` holds them in a dict (tests, one-frame callers).

A reader that needs only a small summary of each part (counts, a few columns of some rows)
can keep it beside the part (`FrameParts.derived`: `<folder>/<address>.<kind>.parquet`): the
address names the part's content, so the summary is made once per part and an unchanged part
is not read again; it goes when its part goes. A part may carry an overlay (`patch`: rows to
leave out, values to set, by row id hash) applied when it is read, so a small change to a
large part is stored as that change; a summary of one row per row follows it the same way.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Protocol

import numpy as np
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
    "changes_since",
    "derived",
    "digest",
    "patch",
    "row_hashes",
    "write_whole",
]

MANIFEST = "manifest.json"
_SUFFIX = ".parquet"
_KIND = re.compile(r"[a-z][a-z0-9-]*")


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
    """One part: where its frame is stored, the digests of the inputs it was made from
    (opaque here; its maker compares them to decide whether the part can be reused), and the
    address of the overlay applied to the stored frame when it is read ("": none; `patch`)."""

    address: str
    inputs: dict[str, str] = field(default_factory=dict)
    overlay: str = ""

    @property
    def content(self) -> str:
        """What names the part's content: its frame's address, with its overlay's."""
        return f"{self.address}.{self.overlay}" if self.overlay else self.address


def changes_since(
    previous: Mapping[str, PartRecord], current: Mapping[str, PartRecord]
) -> dict[str, str]:
    """What became of each part since `previous` (the lineage of a new value): "new",
    "unchanged", "overlay" (the stored frame kept, what is applied over it changed),
    "made again: <the inputs that changed, by name>", or "gone"."""
    changes = {}
    for name, record in current.items():
        last = previous.get(name)
        if last is None:
            changes[name] = "new"
        elif last.content == record.content:
            changes[name] = "unchanged"
        elif last.address == record.address:
            changes[name] = "overlay"
        else:
            names = sorted(set(last.inputs) | set(record.inputs))
            changed = [n for n in names if last.inputs.get(n) != record.inputs.get(n)]
            changes[name] = f"made again: {', '.join(changed) or 'its content'}"
    return changes | {name: "gone" for name in previous if name not in current}


def row_hashes(row_ids: pd.Series) -> np.ndarray:
    """64-bit hashes of row ids: how an overlay names its rows."""
    return pd.util.hash_pandas_object(row_ids, index=False).to_numpy(dtype=np.uint64)


def patch(frame: pd.DataFrame, overlay: pd.DataFrame) -> pd.DataFrame:
    """`frame` (with `row_id`) as an overlay changes it: the overlay's rows (`row`: hashes of
    row ids) with `drop` are left out, and its other columns' values replace the frame's in
    the rows it names (where they are not missing). Applying it twice changes nothing more."""
    if overlay.empty:
        return frame
    rows = row_hashes(frame["row_id"])
    dropped = overlay.loc[overlay["drop"].to_numpy(dtype=bool), "row"].to_numpy(dtype=np.uint64)
    keep = ~np.isin(rows, dropped)
    frame = frame[keep].reset_index(drop=True) if not keep.all() else frame.copy()
    rows = rows[keep]
    changes = overlay[~overlay["drop"].to_numpy(dtype=bool)]
    if len(changes):
        at = pd.Index(changes["row"].to_numpy(dtype=np.uint64)).get_indexer(rows)
        hit = at >= 0
        for column in changes.columns.difference(["row", "drop"]):
            if column in frame.columns:
                values = changes[column].to_numpy(dtype=object)[at[hit]]
                frame.loc[hit, column] = values
    return frame


class PartStore(Protocol):
    """Frames stored by address."""

    def has(self, address: str) -> bool: ...

    def touch(self, address: str) -> bool: ...

    def read(self, address: str, columns: list[str] | None = None) -> pd.DataFrame: ...

    def write(self, address: str, frame: pd.DataFrame) -> None: ...


def derived(
    store: PartStore,
    address: str,
    kind: str,
    make: Callable[[], dict[str, pd.DataFrame]],
) -> pd.DataFrame:
    """The summary `kind` of the part at `address`. `make` (from the part) gives it with the
    summaries made together with it, the first time; all are kept beside the part (an address
    names content: they never go stale)."""
    if store.has(f"{address}.{kind}"):
        store.touch(f"{address}.{kind}")
        return store.read(f"{address}.{kind}")
    made = make()
    for name, frame in made.items():
        if not _KIND.fullmatch(name):
            raise ValueError(f"a summary kind is lower-case letters, digits, dashes: {name!r}")
        store.write(f"{address}.{name}", frame)
    return made[kind]


class MemoryPartStore:
    """Parts in a dict: for callers that want the whole table anyway, and for tests."""

    def __init__(self) -> None:
        self.frames: dict[str, pd.DataFrame] = {}

    def has(self, address: str) -> bool:
        return address in self.frames

    def touch(self, address: str) -> bool:
        return address in self.frames  # nothing here is ever collected

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

    def touch(self, address: str) -> bool:
        """Mark a stored file as just used (its modification time set to now), so that a
        clean-up running beside this run (`collect_garbage`) counts it as new: a maker about
        to name a file it found stored touches it. False when the file is not there, or where
        the file system keeps only when a file was written (object storage): a maker that
        holds the frame then writes it again."""
        local = local_path(self._path(address))
        if local is None:
            return False
        try:
            os.utime(local)
        except FileNotFoundError:
            return False
        return True

    def read(self, address: str, columns: list[str] | None = None) -> pd.DataFrame:
        with self._path(address).open("rb") as f:
            return pd.read_parquet(f, columns=columns)

    def read_rows(self, address: str, columns: list[str], row_ids: set[str]) -> pd.DataFrame:
        """`read` of the rows whose `row_id` is in `row_ids` (filtered before conversion)."""
        with self._path(address).open("rb") as f:
            return pd.read_parquet(f, columns=columns, filters=[("row_id", "in", sorted(row_ids))])

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
        return {
            name: PartRecord(p["address"], p.get("inputs", {}), p.get("overlay", ""))
            for name, p in parts.items()
        }

    def write_manifest(self, records: Mapping[str, PartRecord]) -> None:
        value = {
            "parts": {
                name: {"address": r.address, "inputs": r.inputs, "overlay": r.overlay}
                for name, r in records.items()
            }
        }
        text = json.dumps(value, indent=1, sort_keys=True).encode("utf-8")
        write_whole(self.folder / MANIFEST, lambda f: f.write(text))

    def collect_garbage(self, keep: Iterable[str], *, older_than: float = 0.0) -> int:
        """Remove part files whose address is not in `keep`, and what interrupted writes left,
        that were last written more than `older_than` seconds ago (a run still making its
        parts may have written one it has not named in a manifest yet, or be writing one);
        returns how many went."""
        if not self.folder.exists():
            return 0
        wanted = set(keep)
        before = time.time() - older_than
        gone = 0
        for path in list(self.folder.iterdir()):
            # A part's summaries (`<address>[.<overlay>].<kind>.parquet`) go with their part;
            # what an interrupted write left (`fsutil.temp_path`) is named by no manifest.
            names = path.name[: -len(_SUFFIX)].split(".")
            unnamed = (
                path.name.endswith(_SUFFIX) and not set(names[: max(1, len(names) - 1)]) <= wanted
            )
            if not (unnamed or fsutil.is_leftover(path)):
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
        record = self.records[name]
        return self._patched(record, self.store.read(record.address))

    def __iter__(self) -> Iterator[str]:
        return iter(self.records)

    def __len__(self) -> int:
        return len(self.records)

    def columns(self, name: str, columns: list[str]) -> pd.DataFrame:
        """Only these columns of one part (cheaper than the whole part)."""
        record = self.records[name]
        if not record.overlay:
            return self.store.read(record.address, columns=columns)
        read = columns if "row_id" in columns else ["row_id", *columns]
        return self._patched(record, self.store.read(record.address, columns=read))[columns]

    def rows(self, name: str, columns: list[str], row_ids: set[str]) -> pd.DataFrame:
        """These columns of one part, at least for `row_ids` (with `row_id`): where the store
        can, only those rows are converted from the file."""
        record = self.records[name]
        read = columns if "row_id" in columns else ["row_id", *columns]
        read_rows = getattr(self.store, "read_rows", None)
        if read_rows is None:
            frame = self.store.read(record.address, columns=read)
        else:
            frame = read_rows(record.address, read, row_ids)
        return self._patched(record, frame)

    def _patched(self, record: PartRecord, frame: pd.DataFrame) -> pd.DataFrame:
        return patch(frame, self.store.read(record.overlay)) if record.overlay else frame

    def derived(
        self,
        name: str,
        kind: str,
        columns: list[str],
        make: Callable[[pd.DataFrame], dict[str, pd.DataFrame]],
        *,
        per_row: bool = False,
    ) -> pd.DataFrame:
        """A summary of one part, kept beside it (see the module docstring): `make` gets these
        columns of the part, read only when the summary was not kept before, and returns it
        with any others made from the same read, by kind. A `per_row` summary (rows with
        `row_id` and some of the part's columns) is made from the stored frame and patched by
        the part's overlay when read, so a new overlay needs no new summary; any other is made
        from the part as read, once per content."""
        record = self.records[name]
        if not per_row:
            return derived(
                self.store, record.content, kind, lambda: make(self.columns(name, columns))
            )
        read = columns if "row_id" in columns else ["row_id", *columns]
        kept = derived(
            self.store, record.address, kind, lambda: make(self.store.read(record.address, read))
        )
        return self._patched(record, kept)


def _modified(path: Any) -> float:
    """When a file was last written (now, when the file system does not say)."""
    try:
        return float(path.stat().st_mtime)
    except (OSError, AttributeError, TypeError, ValueError):
        return time.time()


def local_path(path: Any) -> Path | None:
    """The local file a (U)path names, or None where it is on object storage."""
    if getattr(path, "protocol", "") not in ("", "file", "local"):
        return None
    return Path(path.path) if hasattr(path, "path") else Path(path)


def write_whole(path: Any, write: Callable[[IO[bytes]], Any]) -> None:
    """Write a whole file so no reader ever sees half of it.

    On a local disk: beside the target, then rename. An object store makes an object visible
    only once its upload is complete, so there the value is written in place.
    """
    local = local_path(path)
    if local is None:
        with path.open("wb") as f:
            write(f)
        return
    local.parent.mkdir(parents=True, exist_ok=True)
    with fsutil.atomic_file(local) as f:
        write(f)
