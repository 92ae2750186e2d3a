"""A version's records as Arrow tables, read from the Parquet copies every version keeps.

Each data file (`train.jsonl`, shards, `eval.jsonl`) has a Parquet copy under `__parquet__/`
with at least `row_id` and `domain`; counts and diffs read those, never the JSONL. A copy's
records per domain are counted once, when its content is first stored, and kept in the
manifest (`FileEntry.domains`).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pa_json
import pyarrow.parquet as pq

from esk_pipeline.pipeline.dataset_layout import SPLITS
from esk_pipeline.pipeline.ids import row_ids

from ._layout import data_files, parquet_name, split_of
from .models import FileEntry, StorageError

_COLUMNS = ("row_id", "domain", "split")


def read_jsonl(path: Path) -> pa.Table:
    """A data file's records; `row_id` is filled in from the text where it is missing."""
    if path.stat().st_size == 0:
        return pa.table({"row_id": pa.array([], pa.string()), "domain": pa.array([], pa.string())})
    try:
        table = pa_json.read_json(path)
    except pa.ArrowInvalid as exc:
        raise StorageError(f"{path}: not valid JSON Lines ({exc})") from exc
    if "row_id" not in table.column_names:
        if "text" not in table.column_names:
            raise StorageError(f"{path}: records have neither row_id nor text")
        table = table.append_column("row_id", pa.array(row_ids(table["text"].to_pylist())))
    if "domain" not in table.column_names:
        raise StorageError(f"{path}: records have no domain")
    return table


def write_parquet(jsonl: Path, target: Path) -> None:
    """The Parquet copy of a JSONL file that diffs read."""
    pq.write_table(read_jsonl(jsonl), target, compression="zstd")


def domain_counts(parquet: Path | IO[bytes]) -> dict[str, int]:
    """Records per domain in a Parquet copy (what a manifest keeps for each copy)."""
    domains = pq.read_table(parquet, columns=["domain"])["domain"]
    return {str(item["values"]): int(item["counts"]) for item in domains.value_counts().to_pylist()}


def split_counts(files: dict[str, FileEntry]) -> dict[str, Any]:
    """Sample counts and domain distributions per split, from the Parquet copies' counts."""
    totals: dict[str, dict[str, int]] = {s: {} for s in SPLITS}
    for name in data_files(files):
        split = split_of(name)
        for domain, n in (files[parquet_name(name)].domains or {}).items():
            totals[split][domain] = totals[split].get(domain, 0) + n
    overall: dict[str, int] = {}
    for split in SPLITS:
        for domain, n in totals[split].items():
            overall[domain] = overall.get(domain, 0) + n
    return {
        "train_samples": sum(totals["train"].values()),
        "eval_samples": sum(totals["eval"].values()),
        "domain_distribution": dict(sorted(overall.items())),
        "train_distribution": dict(sorted(totals["train"].items())),
        "eval_distribution": dict(sorted(totals["eval"].items())),
    }


def records_table(names: list[str], open_file: Callable[[str], IO[bytes]]) -> pa.Table:
    """(row_id, domain, split) of the records of data files `names`, one row per row_id
    (first occurrence wins); `open_file` opens a stored file by name."""
    parts = []
    for name in names:
        with open_file(parquet_name(name)) as handle:
            table = pq.read_table(handle, columns=["row_id", "domain"])
        table = table.cast(pa.schema([("row_id", pa.string()), ("domain", pa.string())]))
        split = pa.array([split_of(name)] * len(table), pa.string())
        parts.append(table.append_column("split", split))
    if not parts:
        return pa.table({c: pa.array([], pa.string()) for c in _COLUMNS})
    table = pa.concat_tables(parts)
    if pc.count_distinct(table["row_id"]).as_py() != len(table):
        table = table.append_column("_i", pa.array(range(len(table))))
        firsts = table.group_by("row_id").aggregate([("_i", "min")])["_i_min"]
        table = table.take(firsts).drop_columns(["_i"])
    return table
