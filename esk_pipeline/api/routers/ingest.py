"""Ingestion: an uploaded file, or a day already in ClickHouse, through the ETL.

An upload is cleaned by the ETL and its cleaned rows are appended to the `esk_logs` table of the
configured ClickHouse (embedded by default); the response is the ETL's accounting. The upload's
size is enforced while the body is read (`UploadSizeLimitMiddleware`), its name is reduced to a
safe label (used for the extension check and the rows' `source`, never as a path), and its
content is checked twice: the extension allow-list here and the ETL's own format sniffing.
"""

from __future__ import annotations

import re
import unicodedata
import uuid
from typing import BinaryIO

import pandas as pd
from fastapi import APIRouter, BackgroundTasks, HTTPException, UploadFile
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from esk_pipeline.api.auth import ReviewerId
from esk_pipeline.api.deps import MULTIPART_OVERHEAD_BYTES, Services, ServicesDep
from esk_pipeline.api.errors import error_body, error_code, error_responses
from esk_pipeline.api.schemas import DayIngestIn, DayRunOut, IngestOut, RunStatusOut
from esk_pipeline.runner import DAILY_JOB, run_day, run_status

router = APIRouter(prefix="/api/ingest", tags=["ingest"], responses=error_responses())

UPLOAD_PATH = "/api/ingest/upload"
ALLOWED_EXTENSIONS = (".xlsx", ".csv", ".json", ".jsonl", ".parquet")
_READ_CHUNK = 1024 * 1024
_MAX_NAME_CHARS = 100


def _too_large(limit_bytes: int) -> HTTPException:
    return HTTPException(
        status_code=413,
        detail=f"the upload is larger than the limit of {limit_bytes // (1024 * 1024)} MB "
        "(APP_MAX_UPLOAD_MB); split the file or raise the limit",
    )


class UploadSizeLimitMiddleware:
    """Refuses an upload body over the limit while it arrives, before it is buffered whole.

    A declared Content-Length over the limit is refused at once; otherwise the bytes are counted
    as they are received and the request fails with 413 as soon as the count passes the limit.
    """

    def __init__(self, app: ASGIApp, *, paths: frozenset[str], max_file_bytes: int) -> None:
        self.app = app
        self.paths = paths
        self.max_file_bytes = max_file_bytes
        self.max_body_bytes = max_file_bytes + MULTIPART_OVERHEAD_BYTES

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] not in self.paths:
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_body_bytes:
            error = _too_large(self.max_file_bytes)
            await JSONResponse(error_body(error_code(413), error.detail), 413)(scope, receive, send)
            return
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    # An HTTPException passes through FastAPI's body parsing as it is.
                    raise _too_large(self.max_file_bytes)
            return message

        await self.app(scope, counting_receive, send)


def sanitize_file_name(raw: str | None) -> str:
    """A safe label from a client's file name: last path part, word characters, short.

    The result is only ever a label (the extension check and the rows' `source`); it contains
    no path separators, no leading dots and no control characters.
    """
    base = re.split(r"[\\/]", unicodedata.normalize("NFKC", raw or ""))[-1]
    stem, dot, extension = base.rpartition(".")
    if not dot:
        stem, extension = base, ""
    stem = re.sub(r"[^\w\-]+", "_", stem).strip("_-")[:_MAX_NAME_CHARS] or "upload"
    extension = re.sub(r"[^A-Za-z0-9]+", "", extension)[:10].lower()
    return f"{stem}.{extension}" if extension else stem


def _read_capped(stream: BinaryIO, limit_bytes: int) -> bytes:
    """The file's bytes, refusing (413) as soon as they pass the limit."""
    chunks: list[bytes] = []
    size = 0
    while chunk := stream.read(_READ_CHUNK):
        size += len(chunk)
        if size > limit_bytes:
            raise _too_large(limit_bytes)
        chunks.append(chunk)
    return b"".join(chunks)


@router.post(
    "/upload",
    response_model=IngestOut,
    summary="Upload a log file (XLSX, CSV, JSON, JSONL, Parquet): ETL, then into ClickHouse",
    responses=error_responses(413, 415, 503),
)
def upload(file: UploadFile, reviewer_id: ReviewerId, services: ServicesDep) -> IngestOut:
    name = sanitize_file_name(file.filename)
    if not name.endswith(ALLOWED_EXTENSIONS):
        raise HTTPException(
            status_code=415,
            detail=f"unsupported file type {name!r}: upload one of {', '.join(ALLOWED_EXTENSIONS)}",
        )
    data = _read_capped(file.file, services.max_upload_bytes)
    result = services.etl().load_bytes(data, name)
    rows = result.cleaned.drop(columns=["row_id"])
    without_ts = int(rows["ts"].isna().sum())
    if without_ts:
        rows["ts"] = rows["ts"].fillna(pd.Timestamp.now(tz="UTC"))
    source = services.log_source()
    inserted = source.insert_logs(rows)
    return IngestOut(
        file_name=name,
        etl=result.stats,
        rows_inserted=inserted,
        rows_without_ts=without_ts,
        table=source.table,
    )


@router.post(
    "/clickhouse-day",
    response_model=DayRunOut,
    status_code=202,
    summary="Ingest and label one day of ClickHouse logs: starts a Dagster run for that partition",
    responses=error_responses(404, 503),
)
def ingest_day(
    body: DayIngestIn,
    reviewer_id: ReviewerId,
    services: ServicesDep,
    background: BackgroundTasks,
) -> DayRunOut:
    source = services.log_source()
    rows = source.day_counts().get(body.day)
    if not rows:
        raise HTTPException(
            status_code=404, detail=f"no rows for {body.day.isoformat()} in table {source.table!r}"
        )
    run_id = str(uuid.uuid4())
    services.pending_runs.add(run_id)
    background.add_task(_run_day, services, body.day.isoformat(), run_id, reviewer_id)
    return DayRunOut(
        day=body.day, table=source.table, rows=rows, run_id=run_id, job=DAILY_JOB, status="QUEUED"
    )


@router.get(
    "/runs/{run_id}",
    response_model=RunStatusOut,
    summary="The status of a run this API started (also in the Dagster UI)",
    responses=error_responses(404),
)
def run_state(run_id: str, reviewer_id: ReviewerId, services: ServicesDep) -> RunStatusOut:
    status = run_status(run_id)
    if status is None and run_id in services.pending_runs:
        status = "QUEUED"
    if status is None:
        raise HTTPException(status_code=404, detail=f"no run {run_id!r}")
    return RunStatusOut(run_id=run_id, status=status)


def _run_day(services: Services, day: str, run_id: str, requested_by: str) -> None:
    try:
        run_day(day, run_id=run_id, requested_by=f"api:{requested_by}")
    finally:
        services.pending_runs.discard(run_id)
