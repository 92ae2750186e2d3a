"""Connections to the review store: SQLite in WAL mode by default, any SQLAlchemy URL otherwise.

Each mutation is one transaction, so a process killed at any point leaves a consistent store.
On SQLite every write transaction starts with `BEGIN IMMEDIATE` (writers serialise, readers
don't block); reads go through an engine marked `READ_ONLY`, which begins with a plain BEGIN.
Within one process, writers queue on a `FifoLock` before they reach SQLite's busy handler.
"""

from __future__ import annotations

import threading
from collections import deque
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from esk_pipeline.pipeline.review.errors import InvalidReviewError
from esk_pipeline.pipeline.review.models import ReviewDatasetConfig

READ_ONLY = "esk_review_read_only"  # execution option: this connection only reads
SQLITE_FILE_NAME = "review.sqlite3"


def make_engine(config: ReviewDatasetConfig) -> Engine:
    """The engine for `config.database_url`, or for `review.sqlite3` under `data_dir`."""
    if config.database_url is None:
        path = Path(config.data_dir) / SQLITE_FILE_NAME
        path.parent.mkdir(parents=True, exist_ok=True)
        url = sa.URL.create("sqlite+pysqlite", database=str(path))
    else:
        url = sa.make_url(config.database_url.get_secret_value())
    if url.get_backend_name() != "sqlite":
        return sa.create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=40)
    if url.database in (None, "", ":memory:"):
        raise InvalidReviewError("the review store needs a SQLite file, not an in-memory database")
    engine = sa.create_engine(url, pool_size=10, max_overflow=40, pool_timeout=120)
    sa.event.listen(engine, "connect", _sqlite_on_connect)
    sa.event.listen(engine, "begin", _sqlite_on_begin)
    return engine


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    """WAL (readers never block the writer), a generous busy wait, enforced foreign keys.

    The driver's own BEGIN handling is turned off so `_sqlite_on_begin` decides how to begin.
    synchronous=NORMAL in WAL keeps every commit across a process kill (not a power cut).
    """
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    for pragma in (
        "PRAGMA busy_timeout=60000",
        "PRAGMA journal_mode=WAL",
        "PRAGMA synchronous=NORMAL",
        "PRAGMA foreign_keys=ON",
    ):
        cursor.execute(pragma)
    cursor.close()


def _sqlite_on_begin(conn: Connection) -> None:
    """Write transactions take the write lock up front (BEGIN IMMEDIATE): no lock upgrade
    deadlocks between concurrent claimers, and a claim's SELECT sees what its UPDATE changes."""
    read_only = conn.get_execution_options().get(READ_ONLY, False)
    conn.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")


class FifoLock:
    """A lock handed to waiters in arrival order; `threading.Lock` lets late arrivals barge
    ahead, which under 50 contending threads leaves a few waiting for a second or more."""

    def __init__(self) -> None:
        self._mutex = threading.Lock()
        self._waiters: deque[threading.Lock] = deque()
        self._held = False

    def __enter__(self) -> FifoLock:
        with self._mutex:
            if not self._held:
                self._held = True
                return self
            ticket = threading.Lock()
            ticket.acquire()
            self._waiters.append(ticket)
        ticket.acquire()  # released by the holder before us: the lock passes straight to us
        return self

    def __exit__(self, *exc: object) -> None:
        with self._mutex:
            if self._waiters:
                self._waiters.popleft().release()
            else:
                self._held = False
