"""ESK logs in ClickHouse: the pipeline's source, on a server or on the embedded engine.

One class, one SQL dialect for both: with a server configured (CLICKHOUSE_URL or
CLICKHOUSE_HOST) it talks HTTP through clickhouse-connect; with neither it opens the embedded
engine (clickhouse-connect's `chdb` interface) on a folder under data/.

The embedded engine allows one process per database folder, and Dagster runs sensors, runs and
the API in different processes: `embedded_clickhouse` hosts it in a helper process that holds
the folder only while this process uses it (and gives its memory back when it ends).

Every value that comes from outside (a day, a table name) is bound as a query parameter.

Uploaded files are ingested once: `insert_parquet` writes a file's rows under a deduplication
token (ClickHouse drops a block whose token it has already seen, atomically, even from another
process), and the ingest ledger (`<table>_ingests`) records each file's SHA-256 digest,
idempotency key and answer, so the same bytes are recognised and answered as the first time.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import clickhouse_connect
import pandas as pd
from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import ClickHouseError

from esk_pipeline.pipeline.connections import IDENTIFIER, ClickHouseConfig
from esk_pipeline.pipeline.embedded_clickhouse import (
    EmbeddedEngine,
    EmbeddedEngineError,
    EmbeddedQueryError,
)
from esk_pipeline.pipeline.log_insert import ParquetInsert, insert_parquet_batches, merge_metadata

__all__ = [
    "DEDUP_WINDOW_BLOCKS",
    "LOG_COLUMNS",
    "READ_BATCH_ROWS",
    "DayPrint",
    "IngestRecord",
    "LogSource",
    "LogSourceError",
    "hour_windows",
]

# The columns this project's own table has; a user's table may have more, and they are kept.
LOG_COLUMNS: dict[str, str] = {
    "ts": "DateTime64(3, 'UTC')",
    "text": "String",
    "user_id": "Nullable(String)",
    "channel": "LowCardinality(String)",
    "region": "LowCardinality(String)",
    "session_id": "String",
    "source": "LowCardinality(String)",
    "metadata": "String",
}

# How many of the latest inserted blocks the table remembers to drop a repeated one: a repeated
# upload is normally caught by the ledger first; this catches concurrent and half-done ones.
DEDUP_WINDOW_BLOCKS = 10_000
_DEDUP_WINDOW_SETTING = re.compile(r"\bnon_replicated_deduplication_window = (\d+)")
# Rows per read when a day is read: bounds the memory of the answer (and the embedded helper).
READ_BATCH_ROWS = 200_000
# The Date type's range (every day `toDate` gives): the bounds when none are given.
_FIRST, _LAST = dt.date(1970, 1, 1), dt.date(2149, 6, 6)


@dataclass(frozen=True)
class IngestRecord:
    """One ingest of an uploaded file, as the ledger keeps it."""

    sha256: str
    caller: str
    idempotency_key: str  # "" when the client sent none
    answer: str  # the JSON answer the first ingest of these bytes gave
    ingested_at: dt.datetime


@dataclass(frozen=True)
class DayPrint:
    """One day of logs in short: its row count and an order-independent hash of every row's
    columns (the 64-bit sum of the rows' hashes: a repeated row counts twice). A text fixed or
    rows swapped for as many others change it; the same rows give the same print."""

    rows: int
    content: str

    def __str__(self) -> str:
        return f"{self.rows}:{self.content}"


class LogSourceError(RuntimeError):
    """ClickHouse could not be reached or used; the message says which and why, without secrets."""


class LogSource:
    """Read and write the `esk_logs` table of the configured ClickHouse."""

    def __init__(self, config: ClickHouseConfig, *, lock_timeout_seconds: float = 300) -> None:
        if not IDENTIFIER.fullmatch(config.table):
            raise LogSourceError(f"CLICKHOUSE_TABLE {config.table!r} is not a plain table name")
        self.config = config
        self.table = config.table
        self._lock_timeout = lock_timeout_seconds

    @property
    def description(self) -> str:
        """Where the logs live, safe to show (no password)."""
        s = self.config
        if s.is_embedded:
            return f"embedded ClickHouse at {s.embedded_path}"
        if s.url is not None:
            return "ClickHouse server from CLICKHOUSE_URL"
        return f"ClickHouse server {s.host}:{s.port}/{s.database}"

    def _call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        """One client call: in the embedded engine's helper process, or over HTTP to a server."""
        if self.config.is_embedded:
            engine = EmbeddedEngine.for_path(self.config.embedded_path)
            try:
                return engine.call(method, *args, lock_timeout=self._lock_timeout, **kwargs)
            except EmbeddedQueryError as exc:
                raise LogSourceError(f"{self.description}: {exc}") from exc
            except EmbeddedEngineError as exc:
                raise LogSourceError(str(exc)) from exc
        client = self._connect()
        try:
            if method == "query_rows":
                return client.query(*args, **kwargs).result_rows
            if method == "insert_df":
                return client.insert_df(*args, **kwargs).written_rows
            if method == "insert_parquet":
                return insert_parquet_batches(client, *args, **kwargs)
            return getattr(client, method)(*args, **kwargs)
        except ClickHouseError as exc:
            raise LogSourceError(f"{self.description}: {_safe(exc, self.config)}") from exc
        finally:
            client.close()

    def _connect(self) -> Client:
        s = self.config
        try:
            if s.url is not None:
                return clickhouse_connect.get_client(dsn=s.url.get_secret_value())
            return clickhouse_connect.get_client(
                host=s.host,
                port=s.port,
                username=s.user,
                password=s.password.get_secret_value() if s.password else "",
                database=s.database,
                secure=s.secure,
            )
        except Exception as exc:  # the driver raises several types; the message is what matters
            raise LogSourceError(f"cannot connect to {self.description}: {_safe(exc, s)}") from exc

    @property
    def ledger_table(self) -> str:
        """The table recording each uploaded file's ingest, beside the logs table."""
        return f"{self.table}_ingests"

    def ensure_table(self) -> None:
        """Create the logs table and the ingest ledger if missing. An existing table keeps its
        columns; a plain MergeTree one that remembers no inserted blocks (made before uploads
        were deduplicated, or by someone else) is set to remember them, since ClickHouse
        ignores a retried insert's deduplication token otherwise."""
        columns = ", ".join(f"`{name}` {ctype}" for name, ctype in LOG_COLUMNS.items())
        # DDL cannot bind identifiers; the name was checked against IDENTIFIER above.
        self._call(
            "command",
            f"CREATE TABLE IF NOT EXISTS `{self.table}` ({columns}) ENGINE = MergeTree "
            "PARTITION BY toYYYYMM(ts) ORDER BY (toDate(ts), ts) "
            f"SETTINGS non_replicated_deduplication_window = {DEDUP_WINDOW_BLOCKS}",
        )
        if self._forgets_inserted_blocks():
            self._call(
                "command",
                f"ALTER TABLE `{self.table}` MODIFY SETTING "
                f"non_replicated_deduplication_window = {DEDUP_WINDOW_BLOCKS}",
            )
        self._call(
            "command",
            f"CREATE TABLE IF NOT EXISTS `{self.ledger_table}` (sha256 String, caller String, "
            "idempotency_key String, answer String, ingested_at DateTime64(3, 'UTC')) "
            "ENGINE = MergeTree ORDER BY (sha256, ingested_at)",
        )

    def _forgets_inserted_blocks(self) -> bool:
        """Whether the logs table is a non-replicated MergeTree without a deduplication window
        (replicated tables keep one by default; other engines have none to set)."""
        rows = self._call(
            "query_rows",
            "SELECT engine, engine_full FROM system.tables "
            "WHERE database = currentDatabase() AND name = {table:String}",
            parameters={"table": self.table},
        )
        if not rows:
            return False
        engine, engine_full = rows[0]
        window = _DEDUP_WINDOW_SETTING.search(engine_full)
        plain_merge_tree = engine.endswith("MergeTree") and not engine.startswith("Replicated")
        return plain_merge_tree and (window is None or int(window.group(1)) == 0)

    def drop_table(self) -> None:
        """Remove the logs table, its rows and its ingest ledger (used to re-seed sample data)."""
        for table in (self.table, self.ledger_table):
            self._call(
                "command", "DROP TABLE IF EXISTS {table:Identifier}", parameters={"table": table}
            )

    def columns(self) -> dict[str, str]:
        """The table's columns and their ClickHouse types."""
        rows = self._call(
            "query_rows",
            "SELECT name, type FROM system.columns "
            "WHERE database = currentDatabase() AND table = {table:String} ORDER BY position",
            parameters={"table": self.table},
        )
        return dict(rows)

    def insert_logs(self, frame: pd.DataFrame, *, dedup_token: str | None = None) -> int:
        """Append rows; columns the table lacks are folded into its `metadata` JSON column.
        With `dedup_token`, an insert that repeats one already made under that token (a retry)
        adds nothing."""
        if frame.empty:
            return 0
        self.ensure_table()
        table_columns = self.columns()
        missing = {"ts", "text"} - set(frame.columns)
        if missing:
            raise LogSourceError(f"rows to insert lack column(s): {', '.join(sorted(missing))}")
        rows = frame[[c for c in frame.columns if c in table_columns]].copy()
        extra = [c for c in frame.columns if c not in table_columns]
        if extra and "metadata" in table_columns:
            rows["metadata"] = merge_metadata(frame, extra)
        rows["ts"] = pd.to_datetime(rows["ts"], utc=True)
        for name in rows.columns:
            if name != "ts" and not table_columns[name].startswith("Nullable"):
                rows[name] = rows[name].fillna("").astype(str)
        # Without a token, a plain append: a token of its own, so that identical rows of an
        # earlier insert do not make the table drop these.
        token = {"insert_deduplication_token": dedup_token or uuid.uuid4().hex}
        self._call("insert_df", self.table, rows, settings=token)
        return len(rows)

    def insert_parquet(
        self, path: Path, *, missing_ts: dt.datetime, dedup_token: str
    ) -> ParquetInsert:
        """Insert the rows of a Parquet file (the ETL's cleaned rows) once per `dedup_token`.

        Reads and writes `INSERT_BATCH_ROWS` at a time, in the embedded engine's helper process
        when the engine is embedded (so this process never holds the rows). Rows without `ts`
        get `missing_ts`. Batch i goes in under the token `<dedup_token>-<i>`: ClickHouse drops
        a batch it has seen under its token, so inserting the same file again (a retry after a
        timeout or a crash half-way, or a concurrent upload of the same bytes) adds nothing.
        """
        self.ensure_table()
        return self._call(
            "insert_parquet",
            self.table,
            self.columns(),
            str(path),
            missing_ts=missing_ts,
            dedup_token=dedup_token,
        )

    def find_ingest(
        self, *, sha256: str | None = None, caller: str = "", idempotency_key: str = ""
    ) -> IngestRecord | None:
        """The first ingest of these bytes (`sha256`), or of this caller's idempotency key."""
        if not self._table_exists(self.ledger_table):
            return None
        if sha256 is not None:
            where, parameters = "sha256 = {sha256:String}", {"sha256": sha256}
        else:
            where = "caller = {caller:String} AND idempotency_key = {key:String}"
            parameters = {"caller": caller, "key": idempotency_key}
        rows = self._call(
            "query_rows",
            "SELECT sha256, caller, idempotency_key, answer, ingested_at "
            f"FROM {{ledger:Identifier}} WHERE {where} ORDER BY ingested_at LIMIT 1",
            parameters={"ledger": self.ledger_table, **parameters},
        )
        return IngestRecord(*rows[0]) if rows else None

    def record_ingest(self, record: IngestRecord) -> None:
        """Add an ingest to the ledger (the first record of a digest or key is the one used)."""
        self.ensure_table()
        frame = pd.DataFrame([record.__dict__])
        frame["ingested_at"] = pd.to_datetime(frame["ingested_at"], utc=True)
        self._call("insert_df", self.ledger_table, frame)

    def day_counts(self) -> dict[dt.date, int]:
        """Rows per (UTC) day."""
        return dict(self._per_day("count()"))

    def day_prints(
        self, first: dt.date | None = None, last: dt.date | None = None
    ) -> dict[dt.date, DayPrint]:
        """Each (UTC) day's `DayPrint` (of the days from `first` to `last`, default all), in one
        aggregate query. `tuple(*)`: every column, a user's extra ones too, and a NULL hashes as
        a value (`cityHash64(*)` would be NULL, and the row left out of the sum)."""
        per_day = self._per_day("count(), sum(cityHash64(tuple(*)))", first, last)
        return {day: DayPrint(rows, f"{content:016x}") for day, rows, content in per_day}

    def _per_day(
        self, aggregates: str, first: dt.date | None = None, last: dt.date | None = None
    ) -> list[tuple]:
        """(day, *aggregates) of each day with rows; `aggregates` is constant SQL of this module."""
        if not self._table_exists():
            return []
        rows = self._call(
            "query_rows",
            f"SELECT toDate(ts) AS day, {aggregates} FROM {{table:Identifier}} "
            "WHERE day BETWEEN {first:Date} AND {last:Date} GROUP BY day ORDER BY day",
            parameters={"table": self.table, "first": first or _FIRST, "last": last or _LAST},
        )
        return [(pd.Timestamp(day).date(), *values) for day, *values in rows]

    def read_day(self, day: dt.date) -> pd.DataFrame:
        """Every row logged on one UTC day, all columns, oldest first.

        Read in windows of whole hours of at most `READ_BATCH_ROWS` rows (an hour with more is
        one window), so neither ClickHouse's answer nor the embedded helper ever holds more
        than a window; hours make a total order without a unique column to page by. The
        windows cover the whole day, so a row logged after the hours were counted is read."""
        if not self._table_exists():
            raise LogSourceError(f"table {self.table!r} does not exist in {self.description}")
        per_hour = self._call(
            "query_rows",
            "SELECT toHour(ts) AS hour, count() FROM {table:Identifier} "
            "WHERE toDate(ts) = {day:Date} GROUP BY hour ORDER BY hour",
            parameters={"table": self.table, "day": day},
        )
        frames = [
            self._call(
                "query_df",
                "SELECT * FROM {table:Identifier} WHERE toDate(ts) = {day:Date} "
                "AND toHour(ts) BETWEEN {first:UInt8} AND {last:UInt8} ORDER BY ts",
                parameters={"table": self.table, "day": day, "first": first, "last": last},
            )
            for first, last in hour_windows(per_hour, READ_BATCH_ROWS)
        ]
        frame = frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)
        del frames
        if "ts" in frame.columns:
            frame["ts"] = pd.to_datetime(frame["ts"]).dt.tz_localize("UTC")
        return frame

    def ping(self) -> bool:
        """True when ClickHouse answers a trivial query."""
        try:
            return self._call("command", "SELECT 1") == 1
        except LogSourceError:
            return False

    def _table_exists(self, table: str | None = None) -> bool:
        return bool(
            self._call(
                "command",
                "EXISTS TABLE {table:Identifier}",
                parameters={"table": table or self.table},
            )
        )


def hour_windows(per_hour: list[tuple[int, int]], max_rows: int) -> list[tuple[int, int]]:
    """Consecutive (first, last) hour ranges covering hours 0 to 23, of at most `max_rows`
    rows each by the (hour, rows) pairs in hour order; an hour with more than `max_rows` rows
    starts a window of its own. An hour without rows belongs to the window before it (the
    first window starts at 0), so rows logged since the count are read too."""
    starts: list[int] = []
    rows = 0
    for hour, count in per_hour:
        if starts and rows + count <= max_rows:
            rows += count
        else:
            starts.append(hour)
            rows = count
    starts[:1] = [0]
    return list(zip(starts, [s - 1 for s in starts[1:]] + [23], strict=True))


def _safe(exc: BaseException, config: ClickHouseConfig) -> str:
    """The error's message with any configured secret blanked out."""
    message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    for secret in (config.password, config.url):
        if secret is not None and secret.get_secret_value():
            message = message.replace(secret.get_secret_value(), "**********")
    return message[:500]
