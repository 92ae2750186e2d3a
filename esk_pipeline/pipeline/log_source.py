"""ESK logs in ClickHouse: the pipeline's source, on a server or on the embedded engine.

One class, one SQL dialect for both: with a server configured (CLICKHOUSE_URL or
CLICKHOUSE_HOST) it talks HTTP through clickhouse-connect; with neither it opens the embedded
engine (clickhouse-connect's `chdb` interface) on a folder under data/.

The embedded engine allows one process per database folder, and Dagster runs sensors, runs and
the API in different processes: `embedded_clickhouse` hosts it in a helper process that holds
the folder only while this process uses it (and gives its memory back when it ends).

Every value that comes from outside (a day, a table name) is bound as a query parameter.
"""

from __future__ import annotations

import datetime as dt
import json
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

    def ensure_table(self) -> None:
        """Create the logs table if it does not exist (a user's own table is left as it is)."""
        columns = ", ".join(f"`{name}` {ctype}" for name, ctype in LOG_COLUMNS.items())
        # DDL cannot bind identifiers; the name was checked against IDENTIFIER above.
        ddl = (
            f"CREATE TABLE IF NOT EXISTS `{self.table}` ({columns}) ENGINE = MergeTree "
            "PARTITION BY toYYYYMM(ts) ORDER BY (toDate(ts), ts)"
        )
        self._call("command", ddl)

    def drop_table(self) -> None:
        """Remove the logs table and its rows (used to re-seed sample data)."""
        self._call(
            "command", "DROP TABLE IF EXISTS {table:Identifier}", parameters={"table": self.table}
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

    def insert_logs(self, frame: pd.DataFrame) -> int:
        """Append rows; columns the table lacks are folded into its `metadata` JSON column."""
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
            rows["metadata"] = _merge_metadata(frame, extra)
        rows["ts"] = pd.to_datetime(rows["ts"], utc=True)
        for name in rows.columns:
            if name != "ts" and not table_columns[name].startswith("Nullable"):
                rows[name] = rows[name].fillna("").astype(str)
        self._call("insert_df", self.table, rows)
        return len(rows)

    def day_counts(self) -> dict[dt.date, int]:
        """Rows per (UTC) day: what the partition sensor watches."""
        if not self._table_exists():
            return {}
        frame = self._call(
            "query_df",
            "SELECT toDate(ts) AS day, count() AS rows FROM {table:Identifier} "
            "GROUP BY day ORDER BY day",
            parameters={"table": self.table},
        )
        return {
            pd.Timestamp(d).date(): int(n)
            for d, n in zip(frame["day"], frame["rows"], strict=False)
        }

    def read_day(self, day: dt.date) -> pd.DataFrame:
        """Every row logged on one UTC day, all columns, oldest first."""
        if not self._table_exists():
            raise LogSourceError(f"table {self.table!r} does not exist in {self.description}")
        frame = self._call(
            "query_df",
            "SELECT * FROM {table:Identifier} WHERE toDate(ts) = {day:Date} ORDER BY ts",
            parameters={"table": self.table, "day": day},
        )
        if "ts" in frame.columns:
            frame["ts"] = pd.to_datetime(frame["ts"]).dt.tz_localize("UTC")
        return frame

    def ping(self) -> bool:
        """True when ClickHouse answers a trivial query."""
        try:
            return self._call("command", "SELECT 1") == 1
        except LogSourceError:
            return False

    def _table_exists(self) -> bool:
        return bool(
            self._call(
                "command", "EXISTS TABLE {table:Identifier}", parameters={"table": self.table}
            )
        )


def _merge_metadata(frame: pd.DataFrame, extra: list[str]) -> pd.Series:
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


def _safe(exc: BaseException, config: ClickHouseConfig) -> str:
    """The error's message with any configured secret blanked out."""
    message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    for secret in (config.password, config.url):
        if secret is not None and secret.get_secret_value():
            message = message.replace(secret.get_secret_value(), "**********")
    return message[:500]
