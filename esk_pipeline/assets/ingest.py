"""Stages 1-2: raw logs from ClickHouse, and their ETL into cleaned texts (+ rejected rows)."""

import datetime as dt
import time

import pandas as pd
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetOut,
    BackfillPolicy,
    Output,
    asset,
    multi_asset,
)

from esk_pipeline.assets.metadata import bar_chart, counts_table, preview
from esk_pipeline.assets.partitions import daily_partitions
from esk_pipeline.pipeline.etl import ETLConfig, ETLProcessor
from esk_pipeline.resources.clickhouse import ClickHouseResource

ETL_CODE_VERSION = "etl-1"


@asset(
    partitions_def=daily_partitions,
    backfill_policy=BackfillPolicy.single_run(),
    group_name="ingest",
    kinds={"clickhouse", "parquet"},
)
def raw_logs(context: AssetExecutionContext, clickhouse: ClickHouseResource) -> Output:
    """One day of the `esk_logs` table, every column, as logged."""
    source = clickhouse.get_source()
    started = time.perf_counter()
    frames = {key: source.read_day(dt.date.fromisoformat(key)) for key in context.partition_keys}
    rows = {key: len(frame) for key, frame in frames.items()}
    everything = pd.concat(frames.values(), ignore_index=True)
    return Output(
        frames,
        metadata={
            "source": source.description,
            "rows": sum(rows.values()),
            "rows_by_day": counts_table(rows, "day", "rows"),
            "columns": ", ".join(everything.columns),
            "preview": preview(everything, ["ts", "user_id", "channel", "text"]),
            "seconds": round(time.perf_counter() - started, 3),
        },
    )


@multi_asset(
    outs={
        "cleaned_texts": AssetOut(
            kinds={"parquet"},
            code_version=ETL_CODE_VERSION,
            description="Normalised, PII-masked, deduplicated texts with a stable row_id.",
        ),
        "rejected_texts": AssetOut(
            kinds={"parquet"},
            code_version=ETL_CODE_VERSION,
            description="Every row the ETL did not keep, with the reason (empty, duplicate, ...).",
        ),
    },
    partitions_def=daily_partitions,
    backfill_policy=BackfillPolicy.single_run(),
    group_name="ingest",
    check_specs=[
        AssetCheckSpec(
            "rows_accounted", asset="cleaned_texts", description="rows in = kept + rejected"
        ),
        AssetCheckSpec("no_empty_texts", asset="cleaned_texts"),
        AssetCheckSpec(
            "unique_row_ids", asset="cleaned_texts", description="no duplicate left after dedup"
        ),
    ],
)
def cleaned_texts(context: AssetExecutionContext, raw_logs: dict[str, pd.DataFrame]):
    """The ETL of each day: every raw row ends up in exactly one of the two outputs."""
    processor = ETLProcessor(ETLConfig())
    cleaned: dict[str, pd.DataFrame] = {}
    rejected: dict[str, pd.DataFrame] = {}
    rows_in = rows_out = rows_rejected = 0
    reasons: dict[str, int] = {}
    started = time.perf_counter()
    for key in context.partition_keys:
        raw = raw_logs.get(key, pd.DataFrame(columns=["ts", "text", "user_id"]))
        result = processor.clean(raw, source="clickhouse:esk_logs")
        cleaned[key], rejected[key] = result.cleaned, result.rejected
        rows_in += result.stats.rows_in
        rows_out += result.stats.rows_out
        rows_rejected += result.stats.rows_rejected
        for reason, n in result.stats.rejected_by_reason.items():
            reasons[reason] = reasons.get(reason, 0) + n
    kept = pd.concat(cleaned.values(), ignore_index=True)
    dropped = pd.concat(rejected.values(), ignore_index=True)
    yield Output(
        cleaned,
        output_name="cleaned_texts",
        metadata={
            "rows_in": rows_in,
            "rows_out": rows_out,
            "rows_rejected": rows_rejected,
            "kept_share": round(rows_out / rows_in, 4) if rows_in else 0.0,
            "preview": preview(kept, ["row_id", "ts", "user_id", "text"]),
            "seconds": round(time.perf_counter() - started, 3),
        },
    )
    yield Output(
        rejected,
        output_name="rejected_texts",
        metadata={
            "rows": rows_rejected,
            "rejected_by_reason": counts_table(reasons, "reason"),
            "chart": bar_chart(reasons),
            "preview": preview(dropped, ["reason", "detail", "text"]),
        },
    )
    yield AssetCheckResult(
        check_name="rows_accounted",
        asset_key="cleaned_texts",
        passed=rows_in == rows_out + rows_rejected,
        metadata={"rows_in": rows_in, "rows_out": rows_out, "rows_rejected": rows_rejected},
    )
    empty = int((kept["text"].str.strip() == "").sum()) if len(kept) else 0
    yield AssetCheckResult(
        check_name="no_empty_texts",
        asset_key="cleaned_texts",
        passed=empty == 0,
        severity=AssetCheckSeverity.ERROR,
        metadata={"empty_texts": empty},
    )
    # Per day: the same text on two days is one row id in two partitions, by design.
    duplicates = sum(int(frame["row_id"].duplicated().sum()) for frame in cleaned.values())
    yield AssetCheckResult(
        check_name="unique_row_ids",
        asset_key="cleaned_texts",
        passed=duplicates == 0,
        metadata={"duplicate_row_ids": duplicates},
    )
