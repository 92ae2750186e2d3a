"""Raw logs from ClickHouse, and their ETL into cleaned texts (+ rejected rows)."""

import datetime as dt
import time

import pandas as pd
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetKey,
    AssetObservation,
    AssetOut,
    AssetsDefinition,
    AssetSpec,
    BackfillPolicy,
    DailyPartitionsDefinition,
    Output,
    asset,
    multi_asset,
)

from esk_pipeline.assets.automation import EAGER
from esk_pipeline.assets.metadata import bar_chart, counts_table, preview, table_metadata
from esk_pipeline.assets.progress import step_progress
from esk_pipeline.resources.clickhouse import ClickHouseResource
from esk_pipeline.resources.etl import ETLResource

ETL_CODE_VERSION = "etl-1"

ESK_LOGS = AssetKey("esk_logs")


def day_observation(day: str, rows: int) -> AssetObservation:
    """An observation of one day of esk_logs: its row count."""
    return AssetObservation(asset_key=ESK_LOGS, partition=day, metadata={"dagster/row_count": rows})


def raw_logs(context: AssetExecutionContext, clickhouse: ClickHouseResource) -> Output:
    """One day of the `esk_logs` table, every column, as logged."""
    source = clickhouse.get_source()
    days = [dt.date.fromisoformat(key) for key in context.partition_keys]
    counts = source.day_counts()
    progress = step_progress(
        context, sum(counts.get(day, 0) for day in days), "raw_logs", unit="rows"
    )
    frames = {}
    for key, day in zip(context.partition_keys, days, strict=True):
        started = time.perf_counter()
        frames[key] = frame = source.read_day(day)
        progress.advance(len(frame))
        context.log_event(day_observation(key, len(frame)))
        # Per partition: a range run records each day's own numbers (the sensor compares
        # dagster/row_count with ClickHouse's count of the day).
        context.add_asset_metadata(
            {
                "source": source.description,
                "rows": len(frame),
                **table_metadata(frame),
                "preview": preview(frame, ["ts", "user_id", "channel", "text"]),
                "seconds": round(time.perf_counter() - started, 3),
            },
            partition_key=key,
        )
    progress.close()
    return Output(frames)


def cleaned_texts(
    context: AssetExecutionContext, raw_logs: dict[str, pd.DataFrame], etl: ETLResource
):
    """The ETL of each day: every raw row ends up in exactly one of the two outputs."""
    processor = etl.processor()
    cleaned: dict[str, pd.DataFrame] = {}
    rejected: dict[str, pd.DataFrame] = {}
    rows_in = rows_out = rows_rejected = 0
    # A day is cleaned in one vectorised pass (deduplication spans the day): progress by day.
    progress = step_progress(context, sum(map(len, raw_logs.values())), "cleaned_texts")
    for key in context.partition_keys:
        started = time.perf_counter()
        raw = raw_logs.get(key, pd.DataFrame(columns=["ts", "text", "user_id"]))
        result = processor.clean(raw, source="clickhouse:esk_logs")
        progress.advance(len(raw))
        cleaned[key], rejected[key] = result.cleaned, result.rejected
        stats = result.stats
        rows_in += stats.rows_in
        rows_out += stats.rows_out
        rows_rejected += stats.rows_rejected
        context.add_asset_metadata(
            {
                "rows_in": stats.rows_in,
                "rows_out": stats.rows_out,
                "rows_rejected": stats.rows_rejected,
                "kept_share": round(stats.rows_out / stats.rows_in, 4) if stats.rows_in else 0.0,
                **table_metadata(result.cleaned),
                "preview": preview(result.cleaned, ["row_id", "ts", "user_id", "text"]),
                "seconds": round(time.perf_counter() - started, 3),
            },
            asset_key="cleaned_texts",
            partition_key=key,
        )
        context.add_asset_metadata(
            {
                "rows": stats.rows_rejected,
                **table_metadata(result.rejected),
                "rejected_by_reason": counts_table(stats.rejected_by_reason, "reason"),
                "chart": bar_chart(stats.rejected_by_reason),
                "preview": preview(result.rejected, ["reason", "detail", "text"]),
            },
            asset_key="rejected_texts",
            partition_key=key,
        )
    progress.close()
    kept = pd.concat(cleaned.values(), ignore_index=True)
    yield Output(cleaned, output_name="cleaned_texts")
    yield Output(rejected, output_name="rejected_texts")
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


def build_ingest_assets(
    partitions: DailyPartitionsDefinition,
) -> list[AssetSpec | AssetsDefinition]:
    """esk_logs, raw_logs and cleaned_texts (+ rejected_texts), over the given daily partitions."""
    # The table other systems write: Dagster's external asset, where the lineage starts. Its
    # observations record each day's row count, which new_log_days_sensor compares with the
    # count raw_logs last read.
    esk_logs = AssetSpec(
        ESK_LOGS,
        description="The contact centre's request log table in ClickHouse (or the embedded "
        "engine), written by other systems. Observed per day by new_log_days_sensor and by every "
        "raw_logs run: dagster/row_count is the day's row count at that moment.",
        group_name="ingest",
        kinds={"clickhouse"},
        partitions_def=partitions,
    )
    raw = asset(
        partitions_def=partitions,
        backfill_policy=BackfillPolicy.single_run(),
        group_name="ingest",
        kinds={"clickhouse", "parquet"},
        deps=[ESK_LOGS],
    )(raw_logs)
    etl = multi_asset(
        outs={
            "cleaned_texts": AssetOut(
                kinds={"parquet"},
                code_version=ETL_CODE_VERSION,
                automation_condition=EAGER,
                description="Normalised, PII-masked, deduplicated texts with a stable row_id.",
            ),
            "rejected_texts": AssetOut(
                kinds={"parquet"},
                code_version=ETL_CODE_VERSION,
                automation_condition=EAGER,
                description="Every row the ETL did not keep, with the reason (empty, "
                "duplicate, ...).",
            ),
        },
        partitions_def=partitions,
        backfill_policy=BackfillPolicy.single_run(),
        group_name="ingest",
        check_specs=[
            AssetCheckSpec(
                "rows_accounted", asset="cleaned_texts", description="rows in = kept + rejected"
            ),
            AssetCheckSpec("no_empty_texts", asset="cleaned_texts"),
            AssetCheckSpec(
                "unique_row_ids",
                asset="cleaned_texts",
                description="no duplicate left after dedup",
            ),
        ],
    )(cleaned_texts)
    return [esk_logs, raw, etl]
