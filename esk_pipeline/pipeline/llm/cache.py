"""A persistent on-disk cache of LLM answers, so a re-run costs no requests for what it has seen.

SQLite in WAL mode: one table ``(key TEXT PRIMARY KEY, value TEXT, created_at REAL, lasting
INTEGER, read_at REAL)``. WAL lets readers in other threads or processes work while one writer
commits, and ``busy_timeout`` makes writers from several processes wait for each other instead
of failing.
Each `put`/`put_many` is one transaction, so a crash loses at most the batch being written.

`close()` closes the connection; a later call opens it again, so whoever owns a cache can
release the file after each run and still reuse the object.

Entries older than the TTL count as misses; `prune()` deletes them. An entry put with
``lasting=True`` never expires: for values whose owner checks their validity itself (the
labeler's per-text outcomes), where age says nothing. Its reads are recorded in ``read_at`` (at
most once a day per entry, so a lookup-heavy run does not turn every read into a write), and
`prune()` deletes it once neither written nor read for `unread_days`: one made under an old
prompt, model or taxonomy is asked for by no key again. A file written before these columns
existed gets them on open (its plain entries expire as before).

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
_LASTING_COLUMN = "lasting INTEGER NOT NULL DEFAULT 0"  # 1: no TTL, pruned once unread
_READ_AT_COLUMN = "read_at REAL"  # a lasting entry's last recorded read (None: never read)
_DAY_SECONDS = 86400.0
_READ_MARK_INTERVAL = _DAY_SECONDS  # a lasting entry's read is recorded at most this often


class ResponseCache:
    """Key -> JSON text store with a TTL (lasting entries have none); safe to share between
    threads and processes."""

    def __init__(
        self,
        path: Path | str = DEFAULT_CACHE_DIR / CACHE_FILE_NAME,
        *,
        ttl_hours: float = 24.0,
        unread_days: float = 90.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """Open (creating if needed) the cache file; ``ttl_hours=math.inf`` keeps entries forever.

        `unread_days`: `prune` deletes a lasting entry neither written nor read for this long.
        `clock` gives the current time in seconds (tests inject one to age entries).
        """
        self.path = Path(path)
        self.ttl_seconds = ttl_hours * 3600
        self.unread_seconds = unread_days * _DAY_SECONDS
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
        # In one write transaction, so two processes opening an old file add the columns once.
        with _transaction(conn):
            conn.execute(
                "CREATE TABLE IF NOT EXISTS responses (key TEXT PRIMARY KEY, value TEXT NOT NULL,"
                f" created_at REAL NOT NULL, {_LASTING_COLUMN}, {_READ_AT_COLUMN}) WITHOUT ROWID"
            )
            columns = {row[1] for row in conn.execute("PRAGMA table_info(responses)")}
            for name, definition in (("lasting", _LASTING_COLUMN), ("read_at", _READ_AT_COLUMN)):
                if name not in columns:
                    conn.execute(f"ALTER TABLE responses ADD COLUMN {definition}")
        return conn

    def _connection(self) -> sqlite3.Connection:
        """The open connection, reopened after `close` (call it holding the lock)."""
        if self._conn is None:
            self._conn = self._connect()
        return self._conn

    def get(self, key: str) -> str | None:
        """The value stored under `key`, or None when absent or expired."""
        return self.get_many([key]).get(key)

    def get_many(self, keys: list[str]) -> dict[str, str]:
        """The unexpired (or lasting) values for those of `keys` that are stored, in chunked
        ``IN`` queries; the read of a lasting one is recorded when the last is a day old."""
        found: dict[str, str] = {}
        now = self._clock()
        oldest = now - self.ttl_seconds
        unrecorded = now - _READ_MARK_INTERVAL
        to_mark: list[str] = []
        unique = sorted(set(keys))  # sorted: neighbouring keys share B-tree pages
        with self._lock:
            conn = self._connection()
            for start in range(0, len(unique), LOOKUP_CHUNK):
                chunk = unique[start : start + LOOKUP_CHUNK]
                placeholders = ",".join("?" * len(chunk))
                rows = conn.execute(
                    "SELECT key, value, lasting AND (read_at IS NULL OR read_at < ?)"
                    f" FROM responses WHERE key IN ({placeholders})"
                    " AND (created_at >= ? OR lasting)",
                    [unrecorded, *chunk, oldest],
                )
                for key, value, mark in rows:
                    found[key] = value
                    if mark:
                        to_mark.append(key)
            if to_mark:  # only then a write: most lookups of a run find their reads recorded
                with _transaction(conn):
                    for start in range(0, len(to_mark), LOOKUP_CHUNK):
                        chunk = to_mark[start : start + LOOKUP_CHUNK]
                        conn.execute(
                            "UPDATE responses SET read_at = ?"
                            f" WHERE key IN ({','.join('?' * len(chunk))})",
                            [now, *chunk],
                        )
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
        """Delete expired plain entries, and lasting ones neither written nor read for
        `unread_days`; returns how many were deleted."""
        now = self._clock()
        unread_since = now - self.unread_seconds
        with self._lock, _transaction(self._connection()) as conn:
            cursor = conn.execute(
                "DELETE FROM responses WHERE CASE WHEN lasting"
                " THEN created_at < ? AND (read_at IS NULL OR read_at < ?)"
                " ELSE created_at < ? END",
                (unread_since, unread_since, now - self.ttl_seconds),
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
