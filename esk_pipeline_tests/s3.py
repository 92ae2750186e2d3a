"""moto's S3 server over real HTTP for tests, and a fresh bucket for each test.

`s3_server` is a module-scoped fixture (import it into a test module): moto's threaded server
on a free loopback port, yielding its endpoint URL; it skips when moto or s3fs is missing.
`fresh_bucket(endpoint, monkeypatch)` points AWS_* at the server (s3fs and child processes
read them) and returns `s3://<a new bucket>`.
"""

from __future__ import annotations

import uuid

import pytest


@pytest.fixture(scope="module")
def s3_server():
    """moto's S3 server on a free loopback port; yields its endpoint URL."""
    server_module = pytest.importorskip("moto.server", reason="moto is not installed (dev extra)")
    pytest.importorskip("s3fs", reason="s3fs is not installed (dev extra)")
    server = server_module.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


def fresh_bucket(endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    import s3fs

    for name, value in {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "test-key-id",
        "AWS_SECRET_ACCESS_KEY": "test-secret",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    s3fs.S3FileSystem.clear_instance_cache()  # instances are cached with the endpoint they saw
    bucket = f"esk-{uuid.uuid4().hex[:12]}"
    s3fs.S3FileSystem().mkdir(bucket)
    return f"s3://{bucket}"
