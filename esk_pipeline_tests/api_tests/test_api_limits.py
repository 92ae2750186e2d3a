"""Body limits on every route and the bearer-token precheck, decided before the body is read.

The requests are driven at the ASGI level, so the tests see how many body bytes the app pulled
before answering (FastAPI would otherwise read and parse a whole body before the token check).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable

from fastapi import FastAPI

from esk_pipeline.api import create_app
from esk_pipeline.api.limits import DEFAULT_MAX_BODY_BYTES
from esk_pipeline.api.routers.classify import batch_body_limit
from esk_pipeline.api.schemas import MAX_TEXT_CHARS
from esk_pipeline_tests.api_tests.conftest import TOKENS, auth, make_settings

MIB = 1024 * 1024
BEARER = (b"authorization", f"Bearer {TOKENS['alice']}".encode())


def _call(
    app: FastAPI,
    path: str,
    chunks: Iterable[bytes],
    headers: list[tuple[bytes, bytes]],
    *,
    root_path: str = "",
) -> tuple[int, bytes, int]:
    """POST `chunks` as a streamed body; (status, response body, body bytes the app read)."""
    pending = iter(chunks)
    read = 0
    status = 0
    body = b""

    async def receive() -> dict:
        nonlocal read
        chunk = next(pending, None)
        if chunk is None:
            return {"type": "http.request", "body": b"", "more_body": False}
        read += len(chunk)
        return {"type": "http.request", "body": chunk, "more_body": True}

    async def send(message: dict) -> None:
        nonlocal status, body
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body":
            body += message.get("body", b"")

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": root_path + path,
        "raw_path": (root_path + path).encode(),
        "root_path": root_path,
        "query_string": b"",
        "headers": headers,
        "server": ("testserver", 80),
        "client": ("127.0.0.1", 1),
    }
    asyncio.run(app(scope, receive, send))
    return status, body, read


def _json_chunks(total_mib: int) -> list[bytes]:
    return [b"[" + b" " * (MIB - 1)] + [b" " * MIB] * (total_mib - 1)


def test_a_big_json_body_is_413_without_reading_it_all(project_env):
    app = create_app(make_settings(project_env / "api"))
    json_type = (b"content-type", b"application/json")
    status, body, read = _call(app, "/api/versions/v1/tags", _json_chunks(32), [json_type, BEARER])
    assert status == 413
    assert b'"content_too_large"' in body and b"1 MB" in body
    assert read <= DEFAULT_MAX_BODY_BYTES + MIB  # at most one chunk past the limit
    # The classify batch's own limit (the biggest batch the schema allows) holds the same way.
    status, body, read = _call(app, "/api/classify/batch", _json_chunks(32), [json_type, BEARER])
    assert status == 413
    assert b"at most 100 texts" in body
    assert read <= batch_body_limit().max_bytes + MIB

    declared = [json_type, BEARER, (b"content-length", str(2 * MIB).encode())]
    status, _, read = _call(app, "/api/review/items/x/submit", _json_chunks(2), declared)
    assert (status, read) == (413, 0)


def test_an_unauthenticated_body_is_401_before_any_byte_is_read(project_env):
    app = create_app(make_settings(project_env / "api"))
    for headers in ([], [(b"authorization", b"Basic abc")], [(b"authorization", b"Bearer ")]):
        status, body, read = _call(
            app,
            "/api/classify/batch",
            _json_chunks(32),
            [(b"content-type", b"application/json"), *headers],
        )
        assert (status, read) == (401, 0)
        assert b'"unauthorized"' in body and b"bearer token" in body


def test_a_json_body_under_the_limit_still_works(client):
    texts = ["автобус 42 не ходит по расписанию"] * 100  # the biggest batch allowed
    response = client.post("/api/classify/batch", json={"texts": texts}, headers=auth("carol"))
    assert response.status_code == 200, response.text


def test_the_biggest_classify_batch_the_schema_allows_is_not_refused_for_its_size(client):
    # 100 texts of 10,000 Cyrillic characters, as Python's json (and requests) send them:
    # each character escaped to 6 bytes, 6 MB in all (UTF-8 would be 2 MB). The schema allows
    # it, so the body limit must too.
    texts = ["автобус " * 1250] * 100
    assert {len(text) for text in texts} == {MAX_TEXT_CHARS}
    body = json.dumps({"texts": texts})
    response = client.post(
        "/api/classify/batch",
        content=body,
        headers={**auth("carol"), "Content-Type": "application/json"},
    )
    assert response.status_code == 200, response.text[:300]
    assert len(response.json()["results"]) == 100


def test_the_upload_limit_holds_behind_a_root_path(project_env):
    app = create_app(make_settings(project_env / "api", max_upload_mb=1))
    head = b'--b\r\nContent-Disposition: form-data; name="file"; filename="a.csv"\r\n\r\n'
    chunks = [head, *[b"y" * 65536] * 320, b"\r\n--b--\r\n"]  # a 20 MiB file
    headers = [(b"content-type", b"multipart/form-data; boundary=b"), BEARER]
    for root_path in ("", "/esk"):
        status, body, read = _call(app, "/api/ingest/upload", chunks, headers, root_path=root_path)
        assert status == 413, root_path
        assert b"APP_MAX_UPLOAD_MB" in body  # the upload's own limit, not the 1 MB default
        assert read < 2 * MIB
    # The upload route has its own, bigger limit: 1.5 MiB is over the default but reaches the
    # route (which refuses the file type with 415, before any ETL or ClickHouse work).
    bigger = create_app(make_settings(project_env / "api", max_upload_mb=2))
    exe = head.replace(b"a.csv", b"a.exe")
    status, _, read = _call(
        bigger, "/api/ingest/upload", [exe, b"x" * (MIB + MIB // 2), chunks[-1]], headers
    )
    assert status == 415
    assert read > DEFAULT_MAX_BODY_BYTES


def test_an_upload_is_refused_before_its_body_unless_the_token_may_upload(project_env):
    # The upload route's limit is the upload limit (50 MB by default): a made-up token, or a
    # reviewer's (who may not upload), must not get that much read and spooled before the
    # route's role check refuses it.
    app = create_app(make_settings(project_env / "api", max_upload_mb=8))
    head = b'--b\r\nContent-Disposition: form-data; name="file"; filename="a.csv"\r\n\r\n'
    chunks = [head, *[b"y" * MIB] * 6, b"\r\n--b--\r\n"]
    multipart = (b"content-type", b"multipart/form-data; boundary=b")
    made_up = (b"authorization", b"Bearer not-a-token-anyone-was-given-123")
    status, body, read = _call(app, "/api/ingest/upload", chunks, [multipart, made_up])
    assert (status, read) == (401, 0)
    assert b"invalid bearer token" in body
    reviewer = (b"authorization", f"Bearer {TOKENS['bob']}".encode())
    status, body, read = _call(app, "/api/ingest/upload", chunks, [multipart, reviewer])
    assert (status, read) == (403, 0)
    assert b"maintainer" in body
    # A maintainer's upload is read (and refused by the route for its bytes, not its token).
    exe = head.replace(b"a.csv", b"a.exe")
    status, _, read = _call(app, "/api/ingest/upload", [exe, *chunks[1:]], [multipart, BEARER])
    assert status == 415
    assert read > DEFAULT_MAX_BODY_BYTES
