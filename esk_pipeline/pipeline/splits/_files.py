"""The dataset folder on disk: record frames, JSONL and Parquet shards, the atomic swap.

JSON Lines are deterministic (fixed key order, no ASCII escaping, compact separators), so
the same records give the same bytes. The folder is built with `fsutil.atomic_folder`:
readers see the old dataset or the new one, never half of one.
"""

from __future__ import annotations

import json
import math
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from esk_pipeline.pipeline import fsutil
from esk_pipeline.pipeline.dataset_layout import PARQUET_DIR, UNVERIFIED
from esk_pipeline.pipeline.progress import SILENT, ProgressReporter
from esk_pipeline.pipeline.splits.models import RECORD_COLUMNS, RECORD_SCHEMA, DatasetStats

_JSONL_ROWS = 50_000  # records serialised at a time: bounds the lines in memory, paces progress


def records(frame: pd.DataFrame) -> pd.DataFrame:
    """The written columns, canonically ordered by row_id, plus `user_id` and `tier` where
    present: kept in memory, never written (the leakage check reads the one, the estimate the
    other: an LLM label agreeing with the local model has a tier its origin does not tell)."""
    out = frame.sort_values("row_id", kind="stable").reset_index(drop=True)
    out = out.assign(confidence=out["confidence"].round(6), p_correct=out["p_correct"].round(6))
    extra = [column for column in ("user_id", "tier") if column in out]
    return out[[*RECORD_COLUMNS, *extra]]


def split_sizes(
    train: pd.DataFrame, eval_: pd.DataFrame, unverified: pd.DataFrame
) -> list[tuple[str, int]]:
    return [("train", len(train)), ("eval", len(eval_)), (UNVERIFIED, len(unverified))]


def shard_names(split: str, n: int, shard_size: int | None, ext: str) -> list[str]:
    """`train.jsonl`, or `train-00000-of-00003.jsonl`... when sharding splits the records."""
    shards = max(1, math.ceil(n / shard_size)) if shard_size else 1
    if shards == 1:
        return [f"{split}.{ext}"]
    return [f"{split}-{i:05d}-of-{shards:05d}.{ext}" for i in range(shards)]


def _shard_frames(frame: pd.DataFrame, shard_size: int | None) -> list[pd.DataFrame]:
    if not shard_size or len(frame) <= shard_size:
        return [frame]
    return [frame.iloc[i : i + shard_size] for i in range(0, len(frame), shard_size)]


def _json_value(value: Any) -> Any:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, np.generic):
        return value.item()
    return value


def jsonl_bytes(frame: pd.DataFrame) -> bytes:
    """Deterministic JSON Lines: fixed key order, no ASCII escaping, compact separators."""
    columns = list(RECORD_COLUMNS)
    lines = [
        json.dumps(
            {c: _json_value(v) for c, v in zip(columns, row, strict=True)},
            ensure_ascii=False,
            separators=(",", ":"),
        )
        for row in frame[columns].itertuples(index=False, name=None)
    ]
    return ("\n".join(lines) + "\n").encode("utf-8") if lines else b""


def _write_parquet(frame: pd.DataFrame, path: Path) -> None:
    table = pa.Table.from_pandas(
        frame[list(RECORD_COLUMNS)], schema=RECORD_SCHEMA, preserve_index=False
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table.replace_schema_metadata(None), path, compression="zstd")


def write_dataset_folder(
    dataset_dir: Path,
    splits: dict[str, pd.DataFrame],
    stats: DatasetStats,
    shard_size: int | None,
    describe: Callable[[Path], None] | None = None,
    progress: ProgressReporter = SILENT,
) -> None:
    """Write every split's JSONL and Parquet shards (names from `stats`) as one folder swap.

    `describe(folder)` adds the card and metadata once the data files are in place; `progress`
    gets a "writing" phase counting the records as their JSONL is written. What a
    crashed write of this dataset left beside it is removed first (writes of one dataset are
    not meant to run concurrently; other datasets' leftovers are left alone).
    """
    _remove_leftovers_of(dataset_dir)
    with fsutil.atomic_folder(dataset_dir) as staging:
        (staging / PARQUET_DIR).mkdir()
        progress.phase("writing", sum(map(len, splits.values())), "records")
        for split, frame in splits.items():
            parts = _shard_frames(frame, shard_size)
            for name, part in zip(stats.shards[split], parts, strict=True):
                with (staging / name).open("wb") as out:
                    for start in range(0, len(part), _JSONL_ROWS):
                        out.write(jsonl_bytes(part.iloc[start : start + _JSONL_ROWS]))
                        progress.advance(min(_JSONL_ROWS, len(part) - start))
            for name, part in zip(stats.parquet_files[split], parts, strict=True):
                _write_parquet(part, staging / name)
        if describe is not None:
            describe(staging)


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
