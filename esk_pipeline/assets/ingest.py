"""Raw logs from ClickHouse, and their ETL into cleaned texts (+ rejected rows).

Each raw_logs day records in its file the `DayPrint` of the rows it read (their count and a
hash of their content, taken before they are read), and each cleaned_texts day records in its
materialization what it was made from (`cleaned_from`: that print, and the cleaning's code
version and config). The runner and the partition sensor compare it with what cleaning the
day now would be made from: a day is cleaned again when either differs, and only then.
"""

import datetime as dt
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetIn,
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
from esk_pipeline.pipeline.etl import ETLConfig, ETLStats
from esk_pipeline.pipeline.fsutil import scratch_prefix
from esk_pipeline.pipeline.log_source import DayPrint
from esk_pipeline.resources.clickhouse import ClickHouseResource
from esk_pipeline.resources.day_stream import DayStream
from esk_pipeline.resources.etl import ETLResource
from esk_pipeline.resources.io_manager import READ_ON_ACCESS, DayFrames

ETL_CODE_VERSION = "etl-1"

ESK_LOGS = AssetKey("esk_logs")
# A day with no raw rows (never materialised) is cleaned as an empty frame of these columns.
RAW_COLUMNS = ["ts", "text", "user_id"]
# In a raw_logs day's file (`DataFrame.attrs`): the `DayPrint` of the rows it holds.
DAY_PRINT = "esk/day_print"
# In a cleaned_texts day's materialization: what it was made from (`cleaned_from`).
MADE_FROM = "made_from"
# The print of a day without rows (a sum of no hashes).
NO_ROWS = DayPrint(0, f"{0:016x}")


def day_observation(day: str, day_print: DayPrint) -> AssetObservation:
    """An observation of one day of esk_logs: its row count and content (`DayPrint`)."""
    return AssetObservation(
        asset_key=ESK_LOGS,
        partition=day,
        metadata={"dagster/row_count": day_print.rows, "day_print": str(day_print)},
    )


def cleaning_version(etl: ETLConfig) -> str:
    """The cleaning's version: the ETL's code version and the config fields that shape a row."""
    return f"{ETL_CODE_VERSION}+{etl.cleaning_fingerprint()}"


def cleaned_from(day_print: str, etl: ETLConfig) -> dict[str, str]:
    """What a cleaned_texts day is made from: its raw rows (their `DayPrint`, "" when unknown)
    and the cleaning (`cleaning_version`)."""
    return {"raw_logs": day_print, "cleaning": cleaning_version(etl)}


def raw_logs(context: AssetExecutionContext, clickhouse: ClickHouseResource) -> Iterator[Output]:
    """One day of the `esk_logs` table, every column, as logged: each day of a range is read
    and written before the next."""
    source = clickhouse.get_source()
    keys = context.partition_keys
    # Taken before any day is read: a row logged meanwhile leaves a print older than the rows
    # read, so the next build cleans the day again (never the reverse: rows newer than it).
    prints = source.day_prints(dt.date.fromisoformat(min(keys)), dt.date.fromisoformat(max(keys)))
    progress = step_progress(
        context,
        sum(prints.get(dt.date.fromisoformat(key), NO_ROWS).rows for key in keys),
        "raw_logs",
        unit="rows",
    )

    def read(key: str) -> pd.DataFrame:
        started = time.perf_counter()
        day_print = prints.get(dt.date.fromisoformat(key), NO_ROWS)
        frame = source.read_day(dt.date.fromisoformat(key))
        frame.attrs[DAY_PRINT] = str(day_print)
        progress.advance(len(frame))
        context.log_event(day_observation(key, day_print))
        # Per partition: a range run records each day's own numbers.
        context.add_asset_metadata(
            {
                "source": source.description,
                "rows": len(frame),
                "day_print": str(day_print),
                **table_metadata(frame),
                "preview": preview(frame, ["ts", "user_id", "channel", "text"], mask=True),
                "seconds": round(time.perf_counter() - started, 3),
            },
            partition_key=key,
        )
        return frame

    yield Output(DayStream("raw_logs", context.partition_keys, read))
    progress.close()


@dataclass
class _EtlTotals:
    """What the checks need of every day, summed as the days are cleaned."""

    rows_in: int = 0
    rows_out: int = 0
    rows_rejected: int = 0
    empty_texts: int = 0
    duplicate_row_ids: int = 0

    def add(self, stats: ETLStats, cleaned: pd.DataFrame) -> None:
        self.rows_in += stats.rows_in
        self.rows_out += stats.rows_out
        self.rows_rejected += stats.rows_rejected
        self.empty_texts += int((cleaned["text"].str.strip() == "").sum()) if len(cleaned) else 0
        # Per day: the same text on two days is one row id in two partitions, by design.
        self.duplicate_row_ids += int(cleaned["row_id"].duplicated().sum())


def cleaned_texts(context: AssetExecutionContext, raw_logs: DayFrames, etl: ETLResource):
    """The ETL of each day: every raw row ends up in exactly one of the two outputs.

    Each day is read, cleaned and its cleaned rows written before the next day is read; its
    rejected rows wait in a scratch file until `rejected_texts` is written, day by day too.
    """
    processor = etl.processor()
    totals = _EtlTotals()
    # A day is cleaned in one vectorised pass (deduplication spans the day): progress by day.
    progress = step_progress(context, sum(map(raw_logs.row_count, raw_logs)), "cleaned_texts")
    with tempfile.TemporaryDirectory(prefix=scratch_prefix("rejected-texts")) as scratch:

        def clean(key: str) -> pd.DataFrame:
            started = time.perf_counter()
            raw = raw_logs.get(key, pd.DataFrame(columns=RAW_COLUMNS))
            made_from = cleaned_from(raw_logs.recorded(key).get(DAY_PRINT, ""), processor.config)
            result = processor.clean(raw, source="clickhouse:esk_logs")
            progress.advance(len(raw))
            del raw
            stats = result.stats
            totals.add(stats, result.cleaned)
            context.add_asset_metadata(
                {
                    "rows_in": stats.rows_in,
                    "rows_out": stats.rows_out,
                    "rows_rejected": stats.rows_rejected,
                    "kept_share": round(stats.rows_out / stats.rows_in, 4)
                    if stats.rows_in
                    else 0.0,
                    **table_metadata(result.cleaned),
                    "preview": preview(result.cleaned, ["row_id", "ts", "user_id", "text"]),
                    "seconds": round(time.perf_counter() - started, 3),
                    MADE_FROM: made_from,
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
                    "preview": preview(result.rejected, ["reason", "detail", "text"], mask=True),
                },
                asset_key="rejected_texts",
                partition_key=key,
            )
            result.rejected.to_parquet(Path(scratch) / f"{key}.parquet")
            return result.cleaned

        def rejected(key: str) -> pd.DataFrame:
            return pd.read_parquet(Path(scratch) / f"{key}.parquet")

        keys = context.partition_keys
        yield Output(DayStream("cleaned_texts", keys, clean), output_name="cleaned_texts")
        progress.close()
        yield Output(DayStream("rejected_texts", keys, rejected), output_name="rejected_texts")
    yield AssetCheckResult(
        check_name="rows_accounted",
        asset_key="cleaned_texts",
        passed=totals.rows_in == totals.rows_out + totals.rows_rejected,
        metadata={
            "rows_in": totals.rows_in,
            "rows_out": totals.rows_out,
            "rows_rejected": totals.rows_rejected,
        },
    )
    yield AssetCheckResult(
        check_name="no_empty_texts",
        asset_key="cleaned_texts",
        passed=totals.empty_texts == 0,
        severity=AssetCheckSeverity.ERROR,
        metadata={"empty_texts": totals.empty_texts},
    )
    yield AssetCheckResult(
        check_name="unique_row_ids",
        asset_key="cleaned_texts",
        passed=totals.duplicate_row_ids == 0,
        metadata={"duplicate_row_ids": totals.duplicate_row_ids},
    )


def build_ingest_assets(
    partitions: DailyPartitionsDefinition,
) -> list[AssetSpec | AssetsDefinition]:
    """esk_logs, raw_logs and cleaned_texts (+ rejected_texts), over the given daily partitions."""
    # The table other systems write: Dagster's external asset, where the lineage starts. Its
    # observations record each day's row count and `DayPrint`.
    esk_logs = AssetSpec(
        ESK_LOGS,
        description="The contact centre's request log table in ClickHouse (or the embedded "
        "engine), written by other systems. Observed per day by new_log_days_sensor and by every "
        "raw_logs run: dagster/row_count is the day's row count at that moment, day_print its "
        "row count and a hash of its rows' content.",
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
        # A range run cleans one day at a time: each day's raw rows are read when it starts.
        ins={"raw_logs": AssetIn(metadata={READ_ON_ACCESS: True})},
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
