"""A real uvicorn server: an upload's worker dies with its client, and SIGTERM does not wait.

The upload is a file that takes several seconds of CPU to read (tens of thousands of
columns, allowed here), so a worker that outlived its client or a shutdown that waited for it
would show. Workers are found as the children of the server's forkserver process.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from esk_pipeline_tests.api_tests.conftest import TAXONOMY_PATH

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]
TOKEN = "maintainer-token-0123456789"


def _children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def _workers(server_pid: int) -> list[int]:
    """The ETL workers: children of the server's children (its forkserver)."""
    return [w for child in _children(server_pid) for w in _children(child)]


def _wait_for(condition, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


@pytest.fixture
def server(tmp_path) -> Iterator[tuple[subprocess.Popen, int]]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {
        **os.environ,
        "APP_DATA_DIR": str(tmp_path),
        "APP_TAXONOMY_PATH": str(TAXONOMY_PATH),
        "APP_API_TOKENS": json.dumps({"ops": {"token": TOKEN, "role": "maintainer"}}),
        "CLICKHOUSE_EMBEDDED_PATH": str(tmp_path / "clickhouse"),
        "ETL_MAX_COLUMNS": "200000",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "esk_pipeline.api:app", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )

    def answers() -> bool:
        try:
            return httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200
        except httpx.HTTPError:
            return False

    assert _wait_for(answers, 60), "the server did not start"
    yield process, port
    if process.poll() is None:
        process.kill()
        process.wait()


def _start_upload(port: int) -> socket.socket:
    """Send a slow-to-read upload over a raw socket and return it without reading the answer."""
    columns = 150_000
    body_file = ("text" + ";a" * (columns - 1) + "\nпривет мир" + ";x" * (columns - 1)).encode()
    boundary = "b0undary"
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="slow.csv"\r\n'
            "Content-Type: text/csv\r\n\r\n"
        ).encode()
        + body_file
        + f"\r\n--{boundary}--\r\n".encode()
    )
    head = (
        f"POST /api/ingest/upload HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {TOKEN}\r\n"
        f"Content-Type: multipart/form-data; boundary={boundary}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    connection = socket.create_connection(("127.0.0.1", port))
    connection.sendall(head + body)
    return connection


def test_a_client_that_disconnects_takes_its_upload_worker_with_it(server):
    process, port = server
    connection = _start_upload(port)
    assert _wait_for(lambda: _workers(process.pid), 30), "no worker started"
    worker = _workers(process.pid)[0]
    connection.close()
    assert _wait_for(lambda: not Path(f"/proc/{worker}").exists(), 5), (
        "the worker outlived its client"
    )
    assert httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200


def test_sigterm_during_an_upload_shuts_down_at_once(server):
    process, port = server
    connection = _start_upload(port)
    assert _wait_for(lambda: _workers(process.pid), 30), "no worker started"
    worker = _workers(process.pid)[0]
    started = time.monotonic()
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=30)
    assert time.monotonic() - started < 5, "shutdown waited for the upload"
    assert _wait_for(lambda: not Path(f"/proc/{worker}").exists(), 5)
    connection.close()
