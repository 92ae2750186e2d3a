"""Writing a Parquet file's rows into the log table in bounded batches, with any client, and
folding the columns a table lacks into its `metadata` JSON (`merge_metadata`).

`LogSource.insert_parquet` calls it with its own client; the embedded engine's worker process
calls it with the chDB client it holds.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from clickhouse_connect.driver.client import Client

__all__ = ["INSERT_BATCH_ROWS", "ParquetInsert", "insert_parquet_batches", "merge_metadata"]

# Rows per insert when a file's rows are written: bounds the memory of whoever reads the file.
INSERT_BATCH_ROWS = 20_000


@dataclass(frozen=True)
class ParquetInsert:
    rows: int
    rows_without_ts: int


def insert_parquet_batches(
    client: Client,
    table: str,
    table_columns: dict[str, str],
    path: str,
    *,
    missing_ts: dt.datetime,
    dedup_token: str,
) -> ParquetInsert:
    """`LogSource.insert_parquet` done with a client: wherever the client lives."""
    file = pq.ParquetFile(path)
    names = [name for name in file.schema_arrow.names if name in table_columns]
    rows = without_ts = 0
    for i, batch in enumerate(file.iter_batches(batch_size=INSERT_BATCH_ROWS, columns=names)):
        frame = pa.Table.from_batches([batch])
        if "ts" in names:
            ts = frame["ts"]
            without_ts += ts.null_count
            filled = pc.fill_null(ts, pa.scalar(pd.Timestamp(missing_ts), ts.type))
            frame = frame.set_column(names.index("ts"), "ts", filled)
        client.insert_arrow(
            table, frame, settings={"insert_deduplication_token": f"{dedup_token}-{i}"}
        )
        rows += frame.num_rows
    return ParquetInsert(rows=rows, rows_without_ts=without_ts)


def merge_metadata(frame: pd.DataFrame, extra: list[str]) -> pd.Series:
    """Fold the extra columns (and an existing `metadata` JSON) into one JSON string per row."""
    records = frame[extra].astype(object).where(frame[extra].notna(), None).to_dict("records")
    existing = frame["metadata"] if "metadata" in frame.columns else None
    merged = []
    for i, record in enumerate(records):
        base = json.loads(existing.iat[i]) if existing is not None and existing.iat[i] else {}
        base.update(
            {
                k: v if isinstance(v, str | int | float | bool) else None if v is None else str(v)
                for k, v in record.items()
            }
        )
        merged.append(json.dumps(base, ensure_ascii=False))
    return pd.Series(merged, index=frame.index)
