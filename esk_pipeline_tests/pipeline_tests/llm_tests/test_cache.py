"""ResponseCache: persistence, TTL, batched lookups, concurrent writers."""

from __future__ import annotations

import multiprocessing
import sqlite3
import threading

import pytest

from esk_pipeline.pipeline.llm import ResponseCache
from esk_pipeline.pipeline.llm.cache import LOOKUP_CHUNK


def test_put_get_and_miss(tmp_path):
    with ResponseCache(tmp_path / "c.sqlite") as cache:
        cache.put("a", '{"x": 1}')
        assert cache.get("a") == '{"x": 1}'
        assert cache.get("b") is None


def test_put_replaces(tmp_path):
    with ResponseCache(tmp_path / "c.sqlite") as cache:
        cache.put("a", "1")
        cache.put("a", "2")
        assert cache.get("a") == "2"
        assert len(cache) == 1


def test_get_many_spans_several_chunks(tmp_path):
    count = LOOKUP_CHUNK * 2 + 17
    with ResponseCache(tmp_path / "c.sqlite") as cache:
        cache.put_many((f"k{i}", f"v{i}") for i in range(count))
        wanted = [f"k{i}" for i in range(0, count, 2)] + ["missing", "k0"]

        found = cache.get_many(wanted)

    assert found == {f"k{i}": f"v{i}" for i in range(0, count, 2)}


def test_entries_persist_across_reopen(tmp_path):
    path = tmp_path / "c.sqlite"
    with ResponseCache(path) as cache:
        cache.put_many([("a", "1"), ("b", "2")])
    with ResponseCache(path) as reopened:
        assert reopened.get_many(["a", "b"]) == {"a": "1", "b": "2"}


class _Clock:
    """Seconds that move only when the test says so."""

    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def test_expired_entries_are_misses_and_can_be_pruned(tmp_path):
    clock = _Clock()
    with ResponseCache(tmp_path / "c.sqlite", ttl_hours=1, clock=clock) as cache:
        cache.put("old", "1")
        clock.now += 1800
        cache.put("fresh", "2")
        assert cache.get_many(["old", "fresh"]) == {"old": "1", "fresh": "2"}
        clock.now += 1800 + 1  # "old" is now older than the TTL, "fresh" is not
        assert cache.get("old") is None
        assert cache.get_many(["old", "fresh"]) == {"fresh": "2"}
        assert cache.prune() == 1
        assert len(cache) == 1
        clock.now += 3600
        assert cache.get("fresh") is None
        assert cache.prune() == 1
        assert len(cache) == 0


def test_an_entry_lives_exactly_its_ttl(tmp_path):
    clock = _Clock()
    with ResponseCache(tmp_path / "c.sqlite", ttl_hours=2, clock=clock) as cache:
        cache.put("k", "v")
        clock.now += 2 * 3600
        assert cache.get("k") == "v"
        clock.now += 0.001
        assert cache.get("k") is None


def test_a_lasting_entry_outlives_the_ttl_and_prune(tmp_path):
    clock = _Clock()
    with ResponseCache(tmp_path / "c.sqlite", ttl_hours=1, clock=clock) as cache:
        cache.put("answer", "1", lasting=True)
        cache.put_many([("prompt", "2")])
        clock.now += 10 * 3600
        assert cache.get_many(["answer", "prompt"]) == {"answer": "1"}
        assert cache.prune() == 1
        assert cache.get("answer") == "1"
        cache.put("answer", "3")  # replaced without `lasting`: it expires again
        clock.now += 3601
        assert cache.get("answer") is None


def _older_file(path, columns: str, rows: str):
    """A cache file as an earlier release wrote it: the table with `columns`, holding `rows`."""
    old = sqlite3.connect(path)
    old.execute(
        "CREATE TABLE responses (key TEXT PRIMARY KEY, value TEXT NOT NULL, created_at REAL"
        f" NOT NULL{columns}) WITHOUT ROWID"
    )
    old.execute(f"INSERT INTO responses VALUES {rows}")
    old.commit()
    old.close()
    return path


def test_a_file_from_before_lasting_entries_gets_the_column(tmp_path):
    path = _older_file(tmp_path / "c.sqlite", "", "('k', 'v', 0)")
    clock = _Clock()
    with ResponseCache(path, ttl_hours=1, clock=clock) as cache:
        assert cache.get("k") is None  # an old entry expires as before
        cache.put("kept", "v", lasting=True)
        clock.now += 7200
        assert cache.prune() == 1
        assert cache.get("kept") == "v"


_DAY = 86400


def _read_at(path, key):
    (read_at,) = (
        sqlite3.connect(path)
        .execute("SELECT read_at FROM responses WHERE key = ?", (key,))
        .fetchone()
    )
    return read_at


def test_a_lasting_entry_is_pruned_once_unread_for_unread_days(tmp_path):
    clock = _Clock()
    with ResponseCache(tmp_path / "c.sqlite", ttl_hours=1, unread_days=10, clock=clock) as cache:
        cache.put_many([("read", "1"), ("unread", "2")], lasting=True)
        clock.now += 6 * _DAY
        assert cache.get("read") == "1"
        clock.now += 6 * _DAY  # written 12 days ago; "read" was read 6 days ago
        assert cache.prune() == 1
        assert cache.get_many(["read", "unread"]) == {"read": "1"}
        clock.now += 10 * _DAY + 1  # the read above is now older than the window too
        assert cache.prune() == 1
        assert len(cache) == 0


def test_a_lasting_entry_written_within_the_window_survives_unread(tmp_path):
    clock = _Clock()
    with ResponseCache(tmp_path / "c.sqlite", ttl_hours=1, unread_days=10, clock=clock) as cache:
        cache.put("answer", "1", lasting=True)
        clock.now += 10 * _DAY
        assert cache.prune() == 0
        assert cache.get("answer") == "1"


def test_a_lasting_read_is_recorded_at_most_once_a_day(tmp_path):
    path = tmp_path / "c.sqlite"
    clock = _Clock()
    with ResponseCache(path, ttl_hours=1, clock=clock) as cache:
        cache.put("answer", "1", lasting=True)
        cache.put("prompt", "2")
        assert _read_at(path, "answer") is None
        clock.now += 60
        assert cache.get_many(["answer", "prompt"]) == {"answer": "1", "prompt": "2"}
        assert _read_at(path, "answer") == clock.now
        assert _read_at(path, "prompt") is None  # a plain entry's reads are not recorded
        first_read = clock.now
        clock.now += _DAY - 1
        assert cache.get("answer") == "1"
        assert _read_at(path, "answer") == first_read  # within the day: no write
        clock.now += 2
        assert cache.get("answer") == "1"
        assert _read_at(path, "answer") == clock.now


def test_a_file_from_before_read_times_gets_the_column(tmp_path):
    path = _older_file(
        tmp_path / "c.sqlite",
        ", lasting INTEGER NOT NULL DEFAULT 0",
        "('read', 'v', 0, 1), ('unread', 'w', 0, 1)",
    )
    clock = _Clock()
    clock.now = 20 * _DAY
    with ResponseCache(path, ttl_hours=1, unread_days=10, clock=clock) as cache:
        assert cache.get("read") == "v"
        assert cache.prune() == 1
        assert cache.get_many(["read", "unread"]) == {"read": "v"}


def test_file_uses_wal(tmp_path):
    path = tmp_path / "c.sqlite"
    with ResponseCache(path):
        (mode,) = sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()
    assert mode == "wal"


def test_failed_batch_is_rolled_back_whole(tmp_path):
    with ResponseCache(tmp_path / "c.sqlite") as cache:
        with pytest.raises(sqlite3.IntegrityError):
            cache.put_many([("a", "1"), ("b", None)])  # type: ignore[list-item]
        assert len(cache) == 0


def test_concurrent_threads_share_one_cache(tmp_path):
    with ResponseCache(tmp_path / "c.sqlite") as cache:

        def write(worker: int) -> None:
            for batch in range(5):
                cache.put_many((f"{worker}-{batch}-{i}", "v") for i in range(50))
                cache.get_many([f"{worker}-{batch}-{i}" for i in range(50)])

        threads = [threading.Thread(target=write, args=(n,)) for n in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(cache) == 4 * 5 * 50


def _write_from_process(path: str, worker: int) -> None:
    with ResponseCache(path) as cache:
        for batch in range(10):
            cache.put_many((f"{worker}-{batch}-{i}", "v") for i in range(100))


def test_concurrent_processes_share_one_file(tmp_path):
    path = str(tmp_path / "c.sqlite")
    context = multiprocessing.get_context("fork")
    workers = [context.Process(target=_write_from_process, args=(path, n)) for n in range(3)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)
    assert [worker.exitcode for worker in workers] == [0, 0, 0]
    with ResponseCache(path) as cache:
        assert len(cache) == 3 * 10 * 100


def test_close_releases_the_file_and_a_later_call_reopens_it(tmp_path):
    cache = ResponseCache(tmp_path / "c.sqlite")
    cache.put("a", "1")
    cache.close()
    cache.close()  # safe to repeat
    assert not cache.is_open

    assert cache.get("a") == "1"
    assert cache.is_open
    cache.close()
