"""The dataset folder on disk: record frames, JSONL and Parquet shards, the atomic swap.

JSON Lines are deterministic (fixed key order, no ASCII escaping, compact separators), and
so is the Parquet writer, so the same records give the same bytes: a part whose records did
not change gives the same file, which is then linked from the previous folder, not written.
The folder is built with `fsutil.atomic_folder`: readers see the old dataset or the new one,
never half of one.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import math
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from esk_pipeline.pipeline import fsutil
from esk_pipeline.pipeline.dataset_layout import PARQUET_DIR
from esk_pipeline.pipeline.progress import SILENT, ProgressReporter
from esk_pipeline.pipeline.splits.models import RECORD_COLUMNS, RECORD_SCHEMA

_JSONL_ROWS = 50_000  # records serialised at a time: bounds the lines in memory, paces progress
_FORMAT = "jsonl-pandas+parquet-zstd"  # change when the bytes for the same records change
FILE_FORMAT = f"{_FORMAT}|{pa.__version__}"  # what the bytes of the same records depend on


def by_row_id(frame: pd.DataFrame) -> pd.DataFrame:
    """`frame` in row_id order (stable), with a fresh index; one already in order is not sorted
    again (what trusted_labels' parts and this package's own steps hand on)."""
    if frame["row_id"].is_monotonic_increasing:
        return frame.reset_index(drop=True)
    return frame.sort_values("row_id", kind="stable").reset_index(drop=True)


def records(frame: pd.DataFrame) -> pd.DataFrame:
    """The written columns, canonically ordered by row_id, plus `user_id` and `tier` where
    present: kept in memory, never written (the leakage check reads the one, the estimate the
    other: an LLM label agreeing with the local model has a tier its origin does not tell)."""
    out = by_row_id(frame)
    out = out.assign(confidence=out["confidence"].round(6), p_correct=out["p_correct"].round(6))
    extra = [column for column in ("user_id", "tier") if column in out]
    return out[[*RECORD_COLUMNS, *extra]]


def shard_names(base: str, n: int, shard_size: int | None, ext: str) -> list[str]:
    """`train.jsonl`, or `train-00000-of-00003.jsonl`... when sharding splits the records."""
    shards = max(1, math.ceil(n / shard_size)) if shard_size else 1
    if shards == 1:
        return [f"{base}.{ext}"]
    return [f"{base}-{i:05d}-of-{shards:05d}.{ext}" for i in range(shards)]


def _shard_frames(frame: pd.DataFrame, shard_size: int | None) -> list[pd.DataFrame]:
    if not shard_size or len(frame) <= shard_size:
        return [frame]
    return [frame.iloc[i : i + shard_size] for i in range(0, len(frame), shard_size)]


def jsonl_bytes(frame: pd.DataFrame) -> bytes:
    """Deterministic JSON Lines: fixed key order, no ASCII escaping, compact separators."""
    if frame.empty:
        return b""
    text = frame[list(RECORD_COLUMNS)].to_json(
        orient="records", lines=True, force_ascii=False, double_precision=15
    )
    return (text if text.endswith("\n") else text + "\n").encode("utf-8")


def records_fingerprint(frame: pd.DataFrame, names: list[str]) -> str:
    """What a part's files are made of: its records (hashed column by column, in order), the
    file names they are cut into, and the writers' versions."""
    sha = hashlib.sha256(f"{FILE_FORMAT}|{'|'.join(names)}".encode())
    sha.update(pd.util.hash_pandas_object(frame[list(RECORD_COLUMNS)], index=False).to_numpy())
    return sha.hexdigest()


def _parquet_bytes(frame: pd.DataFrame) -> bytes:
    table = pa.Table.from_pandas(
        frame[list(RECORD_COLUMNS)], schema=RECORD_SCHEMA, preserve_index=False
    )
    buffer = io.BytesIO()
    pq.write_table(table.replace_schema_metadata(None), buffer, compression="zstd")
    return buffer.getvalue()


class ShardWriter:
    """Writes a split's records a part at a time into a staging folder, as JSONL and Parquet
    files with stable names (`train-<part>.jsonl`, `__parquet__/train-<part>.parquet`; the
    part "" gives `train.jsonl`). A file whose bytes equal the same name's in the previous
    folder (by the sha256 its metadata.json lists) is hard-linked from there instead of
    written, so the version store finds it unchanged (same inode and mtime) without reading it.
    """

    def __init__(
        self,
        staging: Path,
        previous: Path,
        shard_size: int | None,
        progress: ProgressReporter = SILENT,
    ):
        self.staging = staging
        self.previous = previous
        self.shard_size = shard_size
        self.progress = progress
        self.shards: dict[str, list[str]] = {}
        self.parquet_files: dict[str, list[str]] = {}
        self.digests: dict[str, str] = {}  # name -> sha256 of every file written
        self.fingerprints: dict[str, str] = {}  # part's first file -> records_fingerprint
        self.reused = 0
        self._old, self._old_fingerprints = _listed(previous)
        (staging / PARQUET_DIR).mkdir(exist_ok=True)

    def write(
        self, split: str, part: str, frame: pd.DataFrame, *, keep_empty: bool = False
    ) -> list[str]:
        """Write one part of a split (nothing for no records, unless `keep_empty`); returns
        the JSONL files' names (its records fingerprint is `fingerprints[names[0]]`)."""
        self.shards.setdefault(split, [])
        self.parquet_files.setdefault(split, [])
        if frame.empty and not keep_empty:
            return []
        base = split if not part else f"{split}-{part}"
        names = shard_names(base, len(frame), self.shard_size, "jsonl")
        fingerprint = records_fingerprint(frame, names)
        self.fingerprints[names[0]] = fingerprint
        if self._old_fingerprints.get(names[0]) == fingerprint and self._link_all(names):
            self.shards[split] += names
            self.parquet_files[split] += [_parquet_of(n) for n in names]
            self.progress.advance(len(frame))
            return names
        chunks = _shard_frames(frame, self.shard_size)
        for name, chunk in zip(names, chunks, strict=True):
            data = b"".join(
                jsonl_bytes(chunk.iloc[start : start + _JSONL_ROWS])
                for start in range(0, len(chunk), _JSONL_ROWS)
            )
            self._place(name, data)
            self._place(_parquet_of(name), _parquet_bytes(chunk))
            self.shards[split].append(name)
            self.parquet_files[split].append(_parquet_of(name))
            self.progress.advance(len(chunk))
        return names

    def can_link(self, names: list[str], fingerprint: str) -> bool:
        """Whether the previous folder holds these files of records with this fingerprint."""
        if not names:
            return True
        if self._old_fingerprints.get(names[0]) != fingerprint:
            return False
        files = [*names, *map(_parquet_of, names)]
        return all(n in self._old and (self.previous / n).is_file() for n in files)

    def link(self, split: str, names: list[str], fingerprint: str, n_records: int) -> None:
        """Take a part's files (`can_link`) from the previous folder without its records."""
        self.shards.setdefault(split, [])
        self.parquet_files.setdefault(split, [])
        if not names:
            return
        if not self._link_all(names):
            raise FileNotFoundError(f"{names[0]} is no longer in {self.previous}")
        self.fingerprints[names[0]] = fingerprint
        self.shards[split] += names
        self.parquet_files[split] += [_parquet_of(n) for n in names]
        self.progress.advance(n_records)

    def finish(self, splits: tuple[str, ...]) -> None:
        """Give a split without any record its empty file (HF loaders expect one per split)."""
        for split in splits:
            if not self.shards.get(split):
                self.write(split, "", pd.DataFrame(columns=list(RECORD_COLUMNS)), keep_empty=True)

    def _link_all(self, names: list[str]) -> bool:
        """Link a part's files (JSONL and Parquet) from the previous folder, all or none."""
        files = [*names, *map(_parquet_of, names)]
        if not all(n in self._old and (self.previous / n).is_file() for n in files):
            return False
        for name in files:
            os.link(self.previous / name, self.staging / name)
            self.digests[name] = self._old[name]
        self.reused += len(files)
        return True

    def _place(self, name: str, data: bytes) -> None:
        digest = hashlib.sha256(data).hexdigest()
        target = self.staging / name
        old = self.previous / name
        if self._old.get(name) == digest and _same_size(old, len(data)):
            os.link(old, target)
            self.reused += 1
        else:
            target.write_bytes(data)
        self.digests[name] = digest


def _same_size(path: Path, size: int) -> bool:
    try:
        return path.is_file() and not path.is_symlink() and path.stat().st_size == size
    except OSError:
        return False


def _parquet_of(name: str) -> str:
    return f"{PARQUET_DIR}/{Path(name).stem}.parquet"


def _listed(folder: Path) -> tuple[dict[str, str], dict[str, str]]:
    """(file digests, part fingerprints) the previous folder's metadata.json lists."""
    try:
        metadata = json.loads((folder / "metadata.json").read_text(encoding="utf-8"))
        files, parts = metadata["files"], metadata.get("record_fingerprints") or {}
        return {str(k): str(v) for k, v in files.items()}, {
            str(k): str(v) for k, v in parts.items()
        }
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return {}, {}


@contextlib.contextmanager
def dataset_folder(dataset_dir: Path) -> Iterator[Path]:
    """A staging folder that replaces `dataset_dir` in one swap when the block succeeds.

    What a crashed write of this dataset left beside it is removed first (writes of one
    dataset are not meant to run concurrently; other datasets' leftovers are left alone).
    """
    _remove_leftovers_of(dataset_dir)
    with fsutil.atomic_folder(dataset_dir) as staging:
        yield staging


def _remove_leftovers_of(dataset_dir: Path) -> None:
    """`fsutil.remove_leftovers`, limited to the temporary names of this one dataset."""
    own = f".{dataset_dir.name}{fsutil.TEMP_MARK}"  # the prefix of fsutil.temp_path(dataset_dir)
    if dataset_dir.parent.is_dir():
        for path in dataset_dir.parent.iterdir():
            if fsutil.is_leftover(path) and path.name.startswith(own):
                if path.is_dir() and not path.is_symlink():
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    path.unlink(missing_ok=True)
