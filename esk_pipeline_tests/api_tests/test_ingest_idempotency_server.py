"""Real uvicorn servers on one embedded ClickHouse: concurrent uploads of the same bytes.

Two server processes share one data folder (as two workers of one deployment would), and
eight clients upload one file at the same moment, four to each. Within a process the uploads
of one digest run one after another and all but the first are replays; across processes both
may ingest, and the insert's deduplication token makes ClickHouse keep one copy of the rows.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from esk_pipeline.pipeline.log_source import LogSource
from esk_pipeline.settings import ClickHouseSettings
from esk_pipeline_tests.api_tests.conftest import TAXONOMY_PATH

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]
TOKEN = "maintainer-token-0123456789"
ROWS = 3000


def _start_server(data_dir) -> tuple[subprocess.Popen, int]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {
        **os.environ,
        "APP_DATA_DIR": str(data_dir),
        "APP_TAXONOMY_PATH": str(TAXONOMY_PATH),
        "APP_API_TOKENS": json.dumps({"ops": {"token": TOKEN, "role": "maintainer"}}),
        "CLICKHOUSE_EMBEDDED_PATH": str(data_dir / "clickhouse"),
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "esk_pipeline.api:app", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return process, port


def _wait_until_up(port: int) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise AssertionError(f"the server on port {port} did not start")


def test_concurrent_uploads_of_one_file_to_two_servers_store_its_rows_once(tmp_path):
    servers = [_start_server(tmp_path), _start_server(tmp_path)]
    try:
        for _, port in servers:
            _wait_until_up(port)
        data = "text;ts;user_id\n" + "".join(
            f"Обращение {i}: не пришла квитанция за октябрь;2026-11-0{1 + i % 3} 10:00:00;u{i}\n"
            for i in range(ROWS)
        )

        def upload(port: int) -> httpx.Response:
            return httpx.post(
                f"http://127.0.0.1:{port}/api/ingest/upload",
                files={"file": ("logs.csv", data.encode())},
                headers={"Authorization": f"Bearer {TOKEN}"},
                timeout=120,
            )

        ports = [port for _, port in servers] * 4
        with ThreadPoolExecutor(len(ports)) as pool:
            answers = list(pool.map(upload, ports))
    finally:
        for process, _ in servers:
            process.terminate()
        for process, _ in servers:
            process.wait(timeout=30)

    assert [a.status_code for a in answers] == [200] * len(ports), [a.text for a in answers]
    assert {a.json()["rows_inserted"] for a in answers} == {ROWS}
    fresh = [a for a in answers if "Idempotent-Replayed" not in a.headers]
    assert 1 <= len(fresh) <= len(servers)  # at most one first ingest per process
    first_ingests = {a.json()["ingested_at"] for a in fresh}
    assert {a.json()["ingested_at"] for a in answers} == first_ingests  # replays answer those
    source = LogSource(ClickHouseSettings(embedded_path=tmp_path / "clickhouse"))
    assert source.day_counts() == {dt.date(2026, 11, d): ROWS // 3 for d in (1, 2, 3)}
