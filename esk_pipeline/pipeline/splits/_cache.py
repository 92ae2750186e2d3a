"""What the writer learnt from each part, kept between writes so an unchanged part is not read.

Parts of trusted labels are addressed by a digest of what they were made from, with the
overlay applied when they are read (`parts.PartRecord.content`): the same content name is the
same records. What each
of the writer's passes takes from a part is a function of those records and of a few small
inputs (the config; for pass two, eval's records in that part, the cap's thresholds and the
dropped domains), so it is stored under a digest of exactly those (`entry_key`) and found
again by the next write. A pass-one summary spares reading the part to plan; a pass-two
outcome, with the part's files still in the previous folder, spares reading and writing it.

Entries are `.npz` files (arrays, plus a JSON document; loaded without pickle) in a folder
beside the dataset (`<output_dir>/.cache/<dataset_name>/`), written whole; a write removes the
entries it did not use (`sweep`), so the folder holds one write's worth. Parts without an
address (a plain mapping of frames) are neither looked up nor stored.
"""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from esk_pipeline.pipeline import fsutil
from esk_pipeline.pipeline.parts import digest

_META = "__meta__"
_FRAME = "__frame__"
_VERSION = "splits-cache-1"  # change when what an entry holds, or how it is used, changes


def part_address(parts: Mapping[str, pd.DataFrame], name: str) -> str | None:
    """The digest naming a part's content when its mapping names one (`FrameParts`), else
    None."""
    records = getattr(parts, "records", None)
    record = records.get(name) if isinstance(records, Mapping) else None
    address = getattr(record, "content", None)
    return str(address) if address else None


def entry_key(kind: str, *pieces: object) -> str:
    """The name of an entry: its kind and a digest of everything it depends on."""
    return f"{kind}-{digest(_VERSION, kind, *(json.dumps(p, sort_keys=True) for p in pieces))}"


def hashes_digest(values: np.ndarray) -> str:
    """A digest of a uint64 array (its bytes in order)."""
    return digest(np.ascontiguousarray(values, dtype=np.uint64).tobytes())


class PartCache:
    """Entries by key in one folder (see the module docstring)."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.used: set[str] = set()

    @classmethod
    def beside(cls, output_dir: Path, dataset_name: str) -> PartCache:
        return cls(output_dir / ".cache" / dataset_name)

    def load(self, key: str) -> tuple[dict[str, Any], dict[str, np.ndarray], pd.DataFrame | None]:
        """(document, arrays, frame) of an entry; raises KeyError when there is none."""
        path = self.folder / f"{key}.npz"
        try:
            with np.load(path, allow_pickle=False) as stored:
                arrays = {name: stored[name] for name in stored.files}
        except (OSError, ValueError) as error:
            raise KeyError(key) from error
        self.used.add(key)
        meta = json.loads(arrays.pop(_META).tobytes().decode("utf-8"))
        frame = arrays.pop(_FRAME, None)
        return meta, arrays, None if frame is None else from_parquet(frame.tobytes())

    def save(
        self,
        key: str,
        meta: dict[str, Any],
        arrays: Mapping[str, np.ndarray] | None = None,
        frame: pd.DataFrame | None = None,
    ) -> None:
        contents = dict(arrays or {})
        contents[_META] = np.frombuffer(json.dumps(meta).encode("utf-8"), dtype=np.uint8)
        if frame is not None:
            contents[_FRAME] = np.frombuffer(to_parquet(frame), dtype=np.uint8)
        with fsutil.atomic_file(self.folder / f"{key}.npz") as f:
            np.savez(f, **contents)
        self.used.add(key)

    def sweep(self) -> None:
        """Remove the entries this write did not use."""
        if not self.folder.is_dir():
            return
        for path in self.folder.glob("*.npz"):
            if path.stem not in self.used:
                with contextlib.suppress(OSError):
                    path.unlink()


def to_parquet(frame: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    return buffer.getvalue()


def from_parquet(data: bytes) -> pd.DataFrame:
    return pd.read_parquet(io.BytesIO(data))
