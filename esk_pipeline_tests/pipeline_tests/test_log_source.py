import datetime as dt
import json
import subprocess
import sys
import textwrap

import pandas as pd
import pytest

from esk_pipeline.pipeline import log_source
from esk_pipeline.pipeline.log_source import LogSource, LogSourceError
from esk_pipeline.settings import ClickHouseSettings


@pytest.fixture
def source(tmp_path):
    return LogSource(ClickHouseSettings(embedded_path=tmp_path / "ch"))


def _logs(day: str, n: int, **extra) -> pd.DataFrame:
    ts = pd.date_range(f"{day} 08:00", periods=n, freq="min", tz="UTC")
    return pd.DataFrame(
        {"ts": ts, "text": [f"текст {day} {i}" for i in range(n)], "user_id": "u1", **extra}
    )


def test_round_trip_by_day_on_embedded_engine(source):
    source.insert_logs(pd.concat([_logs("2026-11-01", 3), _logs("2026-11-02", 2)]))
    assert source.day_counts() == {dt.date(2026, 11, 1): 3, dt.date(2026, 11, 2): 2}
    day = source.read_day(dt.date(2026, 11, 2))
    assert day["text"].tolist() == ["текст 2026-11-02 0", "текст 2026-11-02 1"]
    assert str(day["ts"].dt.tz) == "UTC"
    assert source.read_day(dt.date(2026, 11, 3)).empty


def test_a_day_is_read_in_bounded_hour_windows_holding_every_row_once(source, monkeypatch):
    logs = _logs("2026-11-01", 300)  # 08:00 to 12:59, a row a minute: 60 rows an hour
    source.insert_logs(pd.concat([logs, _logs("2026-11-02", 5)]))
    monkeypatch.setattr(log_source, "READ_BATCH_ROWS", 130)
    reads = []
    call = source._call
    monkeypatch.setattr(
        source, "_call", lambda method, *a, **k: reads.append(method) or call(method, *a, **k)
    )
    day = source.read_day(dt.date(2026, 11, 1))
    assert day["text"].tolist() == logs["text"].tolist()
    assert day["ts"].tolist() == logs["ts"].tolist()
    assert reads.count("query_df") == 3  # 08-09, 10-11, 12


def test_hour_windows_stay_under_the_bound_unless_one_hour_is_over_it():
    per_hour = [(0, 50), (1, 30), (2, 30), (5, 200), (6, 10), (7, 90)]
    # Hours without rows go to the window before them: the windows cover the whole day.
    assert log_source.hour_windows(per_hour, 100) == [(0, 1), (2, 4), (5, 5), (6, 23)]
    assert log_source.hour_windows([(9, 5)], 100) == [(0, 23)]
    assert log_source.hour_windows([], 100) == [(0, 23)]


def test_rows_logged_while_a_day_is_read_in_an_hour_that_had_none_are_not_lost(source, monkeypatch):
    """The rows per hour are counted first; an hour empty then is still read."""
    logs = _logs("2026-11-01", 300)  # 08:00 to 12:59
    source.insert_logs(logs)
    monkeypatch.setattr(log_source, "READ_BATCH_ROWS", 130)
    late = pd.DataFrame(
        {
            "ts": pd.to_datetime(["2026-11-01 03:00", "2026-11-01 20:00"], utc=True),
            "text": ["ночью", "вечером"],
            "user_id": "u2",
        }
    )
    call = source._call

    def counted_then_logged(method, *args, **kwargs):
        answer = call(method, *args, **kwargs)
        if method == "query_rows" and "toHour" in args[0]:
            source.insert_logs(late)
        return answer

    monkeypatch.setattr(source, "_call", counted_then_logged)
    day = source.read_day(dt.date(2026, 11, 1))
    assert sorted(day["text"]) == sorted([*logs["text"], "ночью", "вечером"])


def test_day_boundary_is_utc(source):
    # 23:30 in Moscow on the 2nd is 20:30 UTC on the 2nd; 00:30 Moscow on the 3rd is the 2nd UTC.
    ts = pd.to_datetime(["2026-11-02 23:30", "2026-11-03 00:30"]).tz_localize("Europe/Moscow")
    source.insert_logs(pd.DataFrame({"ts": ts, "text": ["a b c", "d e f"], "user_id": "u"}))
    assert source.day_counts() == {dt.date(2026, 11, 2): 2}


def test_extra_columns_are_kept_as_metadata(source):
    source.insert_logs(_logs("2026-11-01", 1, channel="web", operator="Иванова", priority=2))
    row = source.read_day(dt.date(2026, 11, 1)).iloc[0]
    assert row["channel"] == "web"
    assert json.loads(row["metadata"]) == {"operator": "Иванова", "priority": 2}


def test_hostile_values_are_bound_not_pasted(source):
    hostile = "x'); DROP TABLE esk_logs; --"
    source.insert_logs(_logs("2026-11-01", 1, region=hostile))
    assert source.read_day(dt.date(2026, 11, 1))["region"].tolist() == [hostile]
    assert source.day_counts() == {dt.date(2026, 11, 1): 1}


@pytest.mark.parametrize("table", ["logs; DROP", "esk_logs\n"])
def test_table_name_must_be_an_identifier(tmp_path, table):
    # The settings refuse these too; LogSource checks again for settings built unvalidated.
    settings = ClickHouseSettings.model_construct(embedded_path=tmp_path, table=table)
    with pytest.raises(LogSourceError, match="not a plain table name"):
        LogSource(settings)


def test_missing_table_reads_as_no_days_and_a_clear_error(source):
    assert source.day_counts() == {}
    with pytest.raises(LogSourceError, match="does not exist"):
        source.read_day(dt.date(2026, 11, 1))


def test_server_errors_never_show_the_password(tmp_path):
    settings = ClickHouseSettings(host="127.0.0.1", port=1, password="hunter2-secret")
    source = LogSource(settings)
    with pytest.raises(LogSourceError) as caught:
        source.day_counts()
    assert "hunter2-secret" not in str(caught.value)
    assert not source.ping()


def test_several_processes_share_one_embedded_folder(tmp_path):
    """The embedded engine allows one process per folder; the lock makes that invisible."""
    folder = tmp_path / "ch"
    LogSource(ClickHouseSettings(embedded_path=folder)).ensure_table()
    worker = textwrap.dedent(
        f"""
        import sys, pandas as pd
        from esk_pipeline.pipeline.log_source import LogSource
        from esk_pipeline.settings import ClickHouseSettings
        source = LogSource(ClickHouseSettings(embedded_path={str(folder)!r}))
        n = int(sys.argv[1])
        for i in range(5):
            ts = pd.Timestamp("2026-11-0" + str(n), tz="UTC") + pd.Timedelta(minutes=i)
            source.insert_logs(pd.DataFrame({{"ts": [ts], "text": ["t%d" % i], "user_id": "u"}}))
            source.day_counts()
        """
    )
    workers = [
        subprocess.Popen([sys.executable, "-c", worker, str(n)], stderr=subprocess.PIPE)
        for n in (1, 2, 3)
    ]
    errors = [w.communicate(timeout=240)[1].decode() for w in workers]
    assert [w.returncode for w in workers] == [0, 0, 0], errors
    counts = LogSource(ClickHouseSettings(embedded_path=folder)).day_counts()
    assert counts == {dt.date(2026, 11, n): 5 for n in (1, 2, 3)}


def test_memory_stays_flat_over_300_embedded_queries(tmp_path):
    """Each open/close of chdb keeps ~1 MB for good; the helper process keeps it out of ours."""
    script = textwrap.dedent(
        f"""
        import pandas as pd
        from esk_pipeline.pipeline.log_source import LogSource
        from esk_pipeline.settings import ClickHouseSettings

        def rss_mb():
            for line in open("/proc/self/status"):
                if line.startswith("VmRSS"):
                    return int(line.split()[1]) / 1024

        source = LogSource(ClickHouseSettings(embedded_path={str(tmp_path / "ch")!r}))
        ts = pd.date_range("2026-11-01", periods=500, freq="37min", tz="UTC")
        source.insert_logs(pd.DataFrame({{"ts": ts, "text": "t", "user_id": "u"}}))
        for _ in range(5):
            source.day_counts()
        before = rss_mb()
        for _ in range(300):
            counts = source.day_counts()
        assert sum(counts.values()) == 500, counts
        print(rss_mb() - before)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=240
    )
    assert done.returncode == 0, done.stderr
    assert float(done.stdout.strip().splitlines()[-1]) < 40


def _rows_file(folder, frame: pd.DataFrame, name: str = "rows.parquet"):
    path = folder / name
    frame.to_parquet(path, index=False)
    return path


def test_a_parquet_file_goes_in_once_per_token_and_undated_rows_get_the_given_time(
    source, tmp_path
):
    logs = _logs("2026-11-01", 3)
    logs.loc[2, "ts"] = pd.NaT
    path = _rows_file(tmp_path, logs.assign(row_id=["a", "b", "c"]))  # row_id: not a table column
    upload_time = dt.datetime(2026, 11, 5, 12, tzinfo=dt.UTC)
    first = source.insert_parquet(path, missing_ts=upload_time, dedup_token="digest-1")
    again = source.insert_parquet(path, missing_ts=upload_time, dedup_token="digest-1")
    assert (first.rows, first.rows_without_ts) == (3, 1)
    assert again.rows == 3  # what the file holds; ClickHouse dropped the repeated blocks
    assert source.day_counts() == {dt.date(2026, 11, 1): 2, dt.date(2026, 11, 5): 1}
    source.insert_parquet(path, missing_ts=upload_time, dedup_token="digest-2")
    assert source.day_counts() == {dt.date(2026, 11, 1): 4, dt.date(2026, 11, 5): 2}


def test_a_retry_after_a_half_done_insert_adds_only_the_missing_batches(source, tmp_path):
    from esk_pipeline.pipeline.log_insert import INSERT_BATCH_ROWS

    logs = _logs("2026-11-01", INSERT_BATCH_ROWS + 500)
    half = _rows_file(tmp_path, logs.iloc[:INSERT_BATCH_ROWS], "half.parquet")
    whole = _rows_file(tmp_path, logs, "whole.parquet")
    upload_time = dt.datetime(2026, 11, 5, tzinfo=dt.UTC)
    source.insert_parquet(half, missing_ts=upload_time, dedup_token="d")  # batch 0 went in
    source.insert_parquet(whole, missing_ts=upload_time, dedup_token="d")  # the retry
    assert sum(source.day_counts().values()) == len(logs)


def test_a_table_made_without_a_deduplication_window_gets_one(source, tmp_path):
    # The table as an older version (or another system) made it: no window, so ClickHouse
    # would ignore the token and a retried upload would go in twice.
    source._call(
        "command",
        "CREATE TABLE esk_logs (ts DateTime64(3, 'UTC'), text String, user_id Nullable(String), "
        "channel LowCardinality(String), region LowCardinality(String), session_id String, "
        "source LowCardinality(String), metadata String) ENGINE = MergeTree ORDER BY ts",
    )
    path = _rows_file(tmp_path, _logs("2026-11-01", 3))
    upload_time = dt.datetime(2026, 11, 5, tzinfo=dt.UTC)
    source.insert_parquet(path, missing_ts=upload_time, dedup_token="digest-1")
    source.insert_parquet(path, missing_ts=upload_time, dedup_token="digest-1")
    assert source.day_counts() == {dt.date(2026, 11, 1): 3}


def test_plain_inserts_append_even_identical_rows(source):
    source.insert_logs(_logs("2026-11-01", 2))
    source.insert_logs(_logs("2026-11-01", 2))
    assert source.day_counts() == {dt.date(2026, 11, 1): 4}


def test_the_ingest_ledger_finds_the_first_ingest_by_digest_or_by_key(source):
    from esk_pipeline.pipeline.log_source import IngestRecord

    assert source.find_ingest(sha256="s1") is None
    at = dt.datetime(2026, 11, 5, 12, tzinfo=dt.UTC)
    source.record_ingest(IngestRecord("s1", "alice", "k1", '{"n": 1}', at))
    source.record_ingest(IngestRecord("s1", "bob", "", '{"n": 2}', at + dt.timedelta(seconds=1)))
    assert source.find_ingest(sha256="s1").answer == '{"n": 1}'
    assert source.find_ingest(caller="alice", idempotency_key="k1").sha256 == "s1"
    assert source.find_ingest(caller="bob", idempotency_key="k1") is None
    source.drop_table()
    assert source.find_ingest(sha256="s1") is None


def test_a_day_print_changes_with_any_change_of_content_and_only_then(source):
    source.insert_logs(
        pd.concat([_logs("2026-11-01", 3), _logs("2026-11-02", 2, user_id=[None, "u2"])])
    )
    first, second = dt.date(2026, 11, 1), dt.date(2026, 11, 2)
    before = source.day_prints()
    assert {day: p.rows for day, p in before.items()} == {first: 3, second: 2}
    assert source.day_prints() == before  # the same rows, the same print
    assert source.day_prints(second, second) == {second: before[second]}

    def command(sql: str, **parameters) -> None:
        source._call("command", sql, parameters=parameters, settings={"mutations_sync": 2})

    # A text fixed in place: the row count stays, the print does not.
    command(
        "ALTER TABLE esk_logs UPDATE text = {new:String} WHERE text = {old:String}",
        new="текст исправлен",
        old="текст 2026-11-01 1",
    )
    fixed = source.day_prints()
    assert fixed[first].rows == 3 and fixed[first] != before[first]
    assert fixed[second] == before[second]
    # A NULL is a value of its own (a NULL column does not drop the row from the hash).
    command("ALTER TABLE esk_logs UPDATE user_id = '' WHERE user_id IS NULL")
    assert source.day_prints()[second] != before[second]
    # Rows deleted and as many inserted, the same as before: the print comes back.
    command("DELETE FROM esk_logs WHERE toDate(ts) = {day:Date}", day=first)
    source.insert_logs(_logs("2026-11-01", 3))
    assert source.day_prints()[first] == before[first]
