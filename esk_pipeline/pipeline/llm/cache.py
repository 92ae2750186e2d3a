"""A persistent on-disk cache of LLM answers, so a re-run costs no requests for what it has seen.

SQLite in WAL mode: one table ``(key TEXT PRIMARY KEY, value TEXT, created_at REAL, lasting
INTEGER)``. WAL lets readers in other threads or processes work while one writer commits, and
``busy_timeout`` makes writers from several processes wait for each other instead of failing.
Each `put`/`put_many` is one transaction, so a crash loses at most the batch being written.

`close()` closes the connection; a later call opens it again, so whoever owns a cache can
release the file after each run and still reuse the object.

Entries older than the TTL count as misses; `prune()` deletes them. An entry put with
``lasting=True`` never expires and `prune()` keeps it: for values whose owner checks their
validity itself (the labeler's per-text outcomes), where age says nothing. A file written before
`lasting` existed gets the column on open (its entries expire as before).

Lookups for many keys go through `get_many`, which asks in chunks of `LOOKUP_CHUNK` keys per
``IN (...)`` query rather than one query per key (see ``bench/bench_llm_cache.py``).
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["CACHE_FILE_NAME", "DEFAULT_CACHE_DIR", "LOOKUP_CHUNK", "ResponseCache"]

LOOKUP_CHUNK = 500  # below SQLite's default limit of 999 bound parameters in old builds
CACHE_FILE_NAME = "llm_cache.sqlite"
DEFAULT_CACHE_DIR = Path("data/cache")
_BUSY_TIMEOUT_SECONDS = 30.0
_PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=NORMAL",  # durable at checkpoints; a crash may lose the last commits
    "PRAGMA cache_size=-65536",  # 64 MB of pages: random sha256 keys touch pages everywhere
    "PRAGMA mmap_size=268435456",
)
_LASTING_COLUMN = "lasting INTEGER NOT NULL DEFAULT 0"  # 1: no TTL, `prune` keeps it


class ResponseCache:
    """Key -> JSON text store with a TTL (lasting entries have none); safe to share between
    threads and processes."""

    def __init__(
        self,
        path: Path | str = DEFAULT_CACHE_DIR / CACHE_FILE_NAME,
        *,
        ttl_hours: float = 24.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """Open (creating if needed) the cache file; ``ttl_hours=math.inf`` keeps entries forever.

        `clock` gives the current time in seconds (tests inject one to age entries).
        """
        self.path = Path(path)
        self.ttl_seconds = ttl_hours * 3600
        self._clock = clock
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # One connection shared under a lock: sqlite3 serialises a connection anyway, and the
        # lock keeps a transaction from interleaving with another thread's statements.
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = self._connect()

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(
            self.path,
            timeout=_BUSY_TIMEOUT_SECONDS,
            isolation_level=None,  # explicit transactions below
            check_same_thread=False,
        )
        for pragma in _PRAGMAS:
            conn.execute(pragma)
        # WITHOUT ROWID: the table is the key's B-tree, so a key is stored and searched once.
        # In one write transaction, so two processes opening an old file add the column once.
        with _transaction(conn):
            conn.execute(
                "CREATE TABLE IF NOT EXISTS responses (key TEXT PRIMARY KEY, value TEXT NOT NULL,"
                f" created_at REAL NOT NULL, {_LASTING_COLUMN}) WITHOUT ROWID"
            )
            columns = {row[1] for row in conn.execute("PRAGMA table_info(responses)")}
            if "lasting" not in columns:
                conn.execute(f"ALTER TABLE responses ADD COLUMN {_LASTING_COLUMN}")
        return conn

    def _connection(self) -> sqlite3.Connection:
        """The open connection, reopened after `close` (call it holding the lock)."""
        if self._conn is None:
            self._conn = self._connect()
        return self._conn

    def _oldest_valid(self) -> float:
        return self._clock() - self.ttl_seconds

    def get(self, key: str) -> str | None:
        """The value stored under `key`, or None when absent or expired."""
        return self.get_many([key]).get(key)

    def get_many(self, keys: list[str]) -> dict[str, str]:
        """The unexpired (or lasting) values for those of `keys` that are stored, in chunked
        ``IN`` queries."""
        found: dict[str, str] = {}
        oldest = self._oldest_valid()
        unique = sorted(set(keys))  # sorted: neighbouring keys share B-tree pages
        with self._lock:
            for start in range(0, len(unique), LOOKUP_CHUNK):
                chunk = unique[start : start + LOOKUP_CHUNK]
                placeholders = ",".join("?" * len(chunk))
                rows = self._connection().execute(
                    f"SELECT key, value FROM responses "
                    f"WHERE key IN ({placeholders}) AND (created_at >= ? OR lasting)",
                    [*chunk, oldest],
                )
                found.update(rows)
        return found

    def put(self, key: str, value: str, *, lasting: bool = False) -> None:
        """Store (or replace) one value; a `lasting` one never expires."""
        self.put_many([(key, value)], lasting=lasting)

    def put_many(self, items: Iterable[tuple[str, str]], *, lasting: bool = False) -> None:
        """Store (or replace) many values in one transaction; `lasting` ones never expire."""
        now = self._clock()
        rows = sorted((key, value, now, lasting) for key, value in items)
        if not rows:
            return
        with self._lock, _transaction(self._connection()) as conn:
            conn.executemany(
                "INSERT OR REPLACE INTO responses (key, value, created_at, lasting)"
                " VALUES (?, ?, ?, ?)",
                rows,
            )

    def prune(self) -> int:
        """Delete expired entries (never lasting ones); returns how many were deleted."""
        with self._lock, _transaction(self._connection()) as conn:
            cursor = conn.execute(
                "DELETE FROM responses WHERE created_at < ? AND NOT lasting",
                (self._oldest_valid(),),
            )
        return cursor.rowcount

    def __len__(self) -> int:
        """Number of stored entries, expired ones included."""
        with self._lock:
            (count,) = self._connection().execute("SELECT COUNT(*) FROM responses").fetchone()
        return int(count)

    @property
    def is_open(self) -> bool:
        """Whether the connection is open (it is reopened on the next use after `close`)."""
        return self._conn is not None

    def close(self) -> None:
        """Close the connection; safe to repeat."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def __enter__(self) -> ResponseCache:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


@contextmanager
def _transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """``BEGIN IMMEDIATE`` ... ``COMMIT`` (``ROLLBACK`` on error): the write lock is taken up
    front, so two processes never deadlock upgrading read locks to write locks."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
