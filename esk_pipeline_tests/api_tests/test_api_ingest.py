"""Uploads through the ETL into the embedded ClickHouse, size and content checks, day ingest."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest
from dagster import DagsterInstance
from fastapi.testclient import TestClient
from pydantic import SecretStr

from esk_pipeline.api import create_app
from esk_pipeline.api.routers.ingest import sanitize_file_name
from esk_pipeline.pipeline.log_source import LogSource
from esk_pipeline.runner import ensure_dagster_home
from esk_pipeline.settings import ApiToken, Settings
from esk_pipeline_tests.api_tests.conftest import auth, make_settings

CSV = (
    "text;ts;user_id;channel\n"
    "Не пришла квитанция за октябрь;2026-03-02 10:00:00;u1;chat\n"
    "Автобус 42 не ходит по расписанию;2026-03-02 11:30:00;u2;phone\n"
    "Автобус 42 не ходит по расписанию;2026-03-02 11:31:00;u3;phone\n"
    "ок;2026-03-02 12:00:00;u4;chat\n"
    "Как передать показания счётчика;;u5;chat\n"
)


def _upload(client, name: str, data: bytes, reviewer: str = "alice"):
    return _upload_as(client, auth(reviewer), name, data)


def _upload_as(client, headers: dict[str, str], name: str, data: bytes):
    return client.post(
        "/api/ingest/upload", files={"file": (name, data, "text/csv")}, headers=headers
    )


def test_upload_runs_the_etl_and_lands_in_clickhouse(settings, client):
    response = _upload(client, "logs.csv", CSV.encode("cp1251"))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["file_name"] == "logs.csv"
    assert body["etl"]["rows_in"] == 5
    assert body["etl"]["rows_out"] == 3
    assert body["etl"]["rejected_by_reason"] == {"too_short": 1, "duplicate": 1}
    assert body["rows_inserted"] == 3
    assert body["rows_without_ts"] == 1
    assert body["table"] == "esk_logs"

    source = LogSource(settings.clickhouse)
    day = source.read_day(dt.date(2026, 3, 2))
    assert sorted(day["text"]) == [
        "Автобус 42 не ходит по расписанию",
        "Не пришла квитанция за октябрь",
    ]
    assert set(day["source"]) == {"logs.csv"}
    assert json.loads(day.loc[day["user_id"] == "u1", "metadata"].iat[0]) == {"channel": "chat"}
    assert sum(source.day_counts().values()) == 3  # the undated row got the upload time


def test_the_same_bytes_uploaded_again_insert_nothing_and_get_the_first_answer(settings, client):
    source = LogSource(settings.clickhouse)
    first = _upload(client, "logs.csv", CSV.encode())
    assert first.status_code == 200, first.text
    assert "Idempotent-Replayed" not in first.headers
    counts = source.day_counts()
    assert sum(counts.values()) == 3
    # A retry after a timeout, under another name, by another maintainer: the same bytes.
    again = _upload(client, "retry.csv", CSV.encode(), reviewer="carol")
    assert again.status_code == 200
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    assert first.json()["sha256"] == hashlib.sha256(CSV.encode()).hexdigest()
    assert source.day_counts() == counts
    # One byte more is another file: its rows go in (the overlap is the ETL's to settle).
    other = _upload(client, "logs.csv", CSV.encode() + b"\n")
    assert "Idempotent-Replayed" not in other.headers
    assert sum(source.day_counts().values()) == 6


def test_an_idempotency_key_replays_its_upload_and_refuses_other_bytes(settings, client):
    source = LogSource(settings.clickhouse)
    key = {"Idempotency-Key": "2b9c1e4e-upload-1"}
    first = _upload_as(client, {**auth("alice"), **key}, "logs.csv", CSV.encode())
    assert first.status_code == 200
    replay = _upload_as(client, {**auth("alice"), **key}, "logs.csv", CSV.encode())
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert replay.json() == first.json()
    other_file = CSV.replace("октябрь", "ноябрь").encode()
    refused = _upload_as(client, {**auth("alice"), **key}, "logs.csv", other_file)
    assert refused.status_code == 422
    assert (
        "Idempotency-Key '2b9c1e4e-upload-1' was used for a different file"
        in (refused.json()["detail"])
    )
    assert sum(source.day_counts().values()) == 3
    # Keys are the caller's own: carol's key of the same name is another key.
    carol = _upload_as(client, {**auth("carol"), **key}, "logs.csv", other_file)
    assert carol.status_code == 200 and "Idempotent-Replayed" not in carol.headers
    # A key first sent with bytes already ingested now names those bytes.
    late_key = {**auth("alice"), "Idempotency-Key": "late-key"}
    assert _upload_as(client, late_key, "logs.csv", other_file).headers["Idempotent-Replayed"]
    assert _upload_as(client, late_key, "logs.csv", CSV.encode()).status_code == 422
    bad_key = _upload_as(client, {**auth("alice"), "Idempotency-Key": "a b"}, "x.csv", CSV.encode())
    assert bad_key.status_code == 422 and bad_key.json()["error"] == "invalid_request"


def test_file_names_never_become_paths(settings, client):
    data = CSV.encode()
    response = _upload(client, "../../etc/passwd/..\\evil name.csv", data)
    assert response.status_code == 200
    assert response.json()["file_name"] == "evil_name.csv"
    assert not (settings.app.data_dir / "evil_name.csv").exists()


@pytest.mark.parametrize(
    ("raw", "safe"),
    [
        ("Логи за март.xlsx", "Логи_за_март.xlsx"),
        ("/abs/path/data.JSONL", "data.jsonl"),
        ("..", "upload"),
        ("", "upload"),
        (".hidden.csv", "hidden.csv"),
        ("a\x00b\n.csv", "a_b.csv"),
    ],
)
def test_sanitize_file_name(raw, safe):
    assert sanitize_file_name(raw) == safe


def test_an_unlisted_extension_is_415(client):
    response = _upload(client, "payload.exe", b"MZ\x90\x00")
    assert response.status_code == 415
    assert ".xlsx" in response.json()["detail"]


def test_content_the_etl_cannot_read_is_422(client):
    response = _upload(client, "logs.csv", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1 legacy xls")
    assert response.status_code == 422
    assert response.json()["error"] == "unreadable_input"
    assert ".xls" in response.json()["detail"]


def test_a_parquet_upload_works(client):
    frame = pd.DataFrame({"message": ["Нет горячей воды третий день"], "user": ["u9"]})
    buffer = io.BytesIO()
    frame.to_parquet(buffer)
    response = _upload(client, "batch.parquet", buffer.getvalue())
    assert response.status_code == 200, response.text
    assert response.json()["etl"]["format"] == "parquet"
    assert response.json()["rows_inserted"] == 1


def test_oversized_uploads_are_413_declared_or_streamed(project_env):
    settings = make_settings(project_env / "small", max_upload_mb=1)
    big = b"text\n" + b"x" * (2 * 1024 * 1024)
    with TestClient(create_app(settings)) as client:
        declared = _upload(client, "big.csv", big)
        assert declared.status_code == 413
        assert "1 MB" in declared.json()["detail"]

        def chunks():  # no Content-Length: the limit must bite while reading
            yield b'--b\r\nContent-Disposition: form-data; name="file"; filename="a.csv"\r\n\r\n'
            for _ in range(40):
                yield b"y" * 65536
            yield b"\r\n--b--\r\n"

        streamed = client.post(
            "/api/ingest/upload",
            content=chunks(),
            headers={**auth("alice"), "Content-Type": "multipart/form-data; boundary=b"},
        )
        assert streamed.status_code == 413
        assert streamed.json()["error"] == "content_too_large"
        assert not list((project_env / "small").glob("clickhouse*"))


def _day_app_settings() -> Settings:
    # The queued run reads the process settings (env), so the app uses the same ones here.
    settings = Settings.load()
    settings.app.api_tokens = {
        "bob": ApiToken(token=SecretStr("bob-token-0123456789abcdef"), role="maintainer")
    }
    settings.app.partitions_start_date = DAY_PARTITIONS_START
    return settings


DAY_HEADERS = {"Authorization": "Bearer bob-token-0123456789abcdef"}
DAY_PARTITIONS_START = "2026-03-01"  # the CSV's logs are from 2026-03-02


def test_ingesting_a_day_queues_the_daily_job_on_the_dagster_instance(project_env):
    with TestClient(create_app(_day_app_settings())) as client:
        assert _upload_as(client, DAY_HEADERS, "logs.csv", CSV.encode()).status_code == 200
        response = client.post(
            "/api/ingest/clickhouse-day", json={"day": "2026-03-02"}, headers=DAY_HEADERS
        )
        assert response.status_code == 202, response.text
        body = response.json()
        assert (body["day"], body["rows"], body["job"]) == ("2026-03-02", 2, "daily_labels_job")
        assert body["status"] == "QUEUED"  # the daemon launches it, as it does sensor runs
        status = client.get(f"/api/ingest/runs/{body['run_id']}", headers=DAY_HEADERS)
        assert status.json() == {"run_id": body["run_id"], "status": "QUEUED"}

        with DagsterInstance.get() as instance:
            run = instance.get_run_by_id(body["run_id"])
            assert run.job_name == "daily_labels_job"
            assert run.tags["dagster/partition"] == "2026-03-02"
            assert run.tags["esk/requested_by"] == "api:bob"
            assert run.remote_job_origin.location_name == "esk_pipeline"

            again = client.post(
                "/api/ingest/clickhouse-day", json={"day": "2026-03-02"}, headers=DAY_HEADERS
            )
            assert (again.json()["run_id"], again.json()["status"]) == (run.run_id, "QUEUED")
            instance.report_run_canceled(run)  # finished: the day is free for a new run
            after = client.post(
                "/api/ingest/clickhouse-day", json={"day": "2026-03-02"}, headers=DAY_HEADERS
            )
            assert after.json()["run_id"] != run.run_id
            assert len(instance.get_runs()) == 2

        missing = client.post(
            "/api/ingest/clickhouse-day", json={"day": "2026-03-05"}, headers=DAY_HEADERS
        )
        assert missing.status_code == 404
        assert "2026-03-05" in missing.json()["detail"]
        unknown = client.get("/api/ingest/runs/not-a-run", headers=DAY_HEADERS)
        assert unknown.status_code == 404


def test_a_day_outside_the_daily_partitions_is_refused_not_queued(project_env):
    # Its run could only fail in the daemon (no such partition): say so, queue nothing.
    settings = _day_app_settings()
    settings.app.partitions_start_date = "2026-03-03"
    with TestClient(create_app(settings)) as client:
        assert _upload_as(client, DAY_HEADERS, "logs.csv", CSV.encode()).status_code == 200
        response = client.post(
            "/api/ingest/clickhouse-day", json={"day": "2026-03-02"}, headers=DAY_HEADERS
        )
        assert response.status_code == 404, response.text
        detail = response.json()["detail"]
        assert "2026-03-02" in detail and "APP_PARTITIONS_START_DATE" in detail
        ensure_dagster_home(Path.cwd())
        with DagsterInstance.get() as instance:
            assert instance.get_runs() == []


@pytest.mark.slow
def test_two_api_processes_asking_for_one_day_get_one_run(project_env, monkeypatch):
    monkeypatch.setenv("APP_PARTITIONS_START_DATE", DAY_PARTITIONS_START)
    ensure_dagster_home(Path.cwd())
    with DagsterInstance.get() as instance:  # an existing instance, as in a deployment
        assert instance.get_runs() == []
    LogSource(Settings.load().clickhouse).insert_logs(
        pd.DataFrame({"ts": [pd.Timestamp("2026-03-02 10:00", tz="UTC")], "text": ["квитанция"]})
    )
    api_process = textwrap.dedent(
        """
        import sys
        from fastapi.testclient import TestClient
        from pydantic import SecretStr
        from esk_pipeline.api import create_app
        from esk_pipeline.settings import ApiToken, Settings

        settings = Settings.load()
        settings.app.api_tokens = {
            "bob": ApiToken(token=SecretStr("bob-token-0123456789abcdef"), role="maintainer")
        }
        with TestClient(create_app(settings)) as client:
            import esk_pipeline.definitions  # loaded before the race, not during it
            print("ready", flush=True)
            sys.stdin.readline()
            response = client.post(
                "/api/ingest/clickhouse-day",
                json={"day": "2026-03-02"},
                headers={"Authorization": "Bearer bob-token-0123456789abcdef"},
            )
            print(response.status_code, response.json()["run_id"], flush=True)
        """
    )
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", api_process],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    for process in processes:
        assert process.stdout.readline().strip() == "ready", process.stderr.read()
    for process in processes:
        process.stdin.write("go\n")
        process.stdin.flush()
    answers = [p.communicate(timeout=120)[0].split() for p in processes]
    assert [p.returncode for p in processes] == [0, 0]
    assert [status for status, _ in answers] == ["202", "202"]
    assert answers[0][1] == answers[1][1]
    with DagsterInstance.get() as instance:
        assert [run.run_id for run in instance.get_runs()] == [answers[0][1]]


def test_uploads_need_a_token(client):
    response = client.post("/api/ingest/upload", files={"file": ("a.csv", CSV.encode())})
    assert response.status_code == 401


def test_an_upload_over_the_cpu_limit_is_answered_413_and_the_server_stays_usable(project_env):
    settings = make_settings(project_env / "limited", upload_cpu_seconds=1)
    settings.etl.max_columns = 50_000
    wide = ("text" + ";a" * 39_999 + "\nпривет мир" + ";x" * 39_999).encode()
    with TestClient(create_app(settings)) as client:
        response = _upload_as(client, auth("carol"), "wide.csv", wide)
        assert response.status_code == 413, response.text
        assert response.json()["error"] == "content_too_large"
        assert "more than 1 s of CPU time" in response.json()["detail"]
        assert _upload_as(client, auth("carol"), "logs.csv", CSV.encode()).status_code == 200
