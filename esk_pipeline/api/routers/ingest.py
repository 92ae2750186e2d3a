"""Ingestion: an uploaded file, or a day already in ClickHouse, through the ETL.

An upload is cleaned by the ETL (in a worker process with CPU-time and memory limits, see
`pipeline.etl.worker`) and its cleaned rows are appended to the `esk_logs` table of the
configured ClickHouse (embedded by default); the response is the ETL's accounting. The upload's
size is enforced while the body is read (`limits.RequestLimitsMiddleware`), its name is reduced to a
safe label (used for the extension check and the rows' `source`, never as a path), and its
content is checked twice: the extension allow-list here and the ETL's own format sniffing.
"""

from __future__ import annotations

import re
import tempfile
import unicodedata
from pathlib import Path

import pandas as pd
from fastapi import APIRouter, HTTPException, Request, UploadFile
from starlette.concurrency import run_in_threadpool

from esk_pipeline.api.auth import MaintainerId
from esk_pipeline.api.deps import Services, ServicesDep
from esk_pipeline.api.errors import error_responses
from esk_pipeline.api.limits import MULTIPART_OVERHEAD_BYTES, BodyLimit
from esk_pipeline.api.schemas import DayIngestIn, DayRunOut, IngestOut, RunStatusOut
from esk_pipeline.pipeline.etl import ETLResult
from esk_pipeline.pipeline.fsutil import scratch_prefix
from esk_pipeline.runner import run_status, submit_day_run
from esk_pipeline.runs import DAILY_JOB

router = APIRouter(prefix="/api/ingest", tags=["ingest"], responses=error_responses())

UPLOAD_PATH = "/api/ingest/upload"
ALLOWED_EXTENSIONS = (".xlsx", ".csv", ".json", ".jsonl", ".parquet")
_READ_CHUNK = 1024 * 1024
_MAX_NAME_CHARS = 100


def _too_large_detail(limit_bytes: int) -> str:
    return (
        f"the upload is larger than the limit of {limit_bytes // (1024 * 1024)} MB "
        "(APP_MAX_UPLOAD_MB); split the file or raise the limit"
    )


def upload_body_limit(max_file_bytes: int) -> BodyLimit:
    """The upload route's body limit: the file limit plus multipart framing."""
    return BodyLimit(max_file_bytes + MULTIPART_OVERHEAD_BYTES, _too_large_detail(max_file_bytes))


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


async def _save_capped(upload: UploadFile, target: Path, limit_bytes: int) -> None:
    """The upload's bytes into `target`, refusing (413) as soon as they pass the limit."""
    size = 0
    with target.open("wb") as out:
        while chunk := await upload.read(_READ_CHUNK):
            size += len(chunk)
            if size > limit_bytes:
                raise HTTPException(status_code=413, detail=_too_large_detail(limit_bytes))
            out.write(chunk)


@router.post(
    "/upload",
    response_model=IngestOut,
    summary="Upload a log file (XLSX, CSV, JSON, JSONL, Parquet): ETL, then into ClickHouse",
    description="The file is read in a worker process with CPU-time and memory limits "
    "(APP_UPLOAD_CPU_SECONDS, APP_UPLOAD_MEMORY_MB): a file that needs more is refused with "
    "413, and the work stops when the client disconnects.",
    responses=error_responses(413, 415, 503),
)
async def upload(
    request: Request, file: UploadFile, reviewer_id: MaintainerId, services: ServicesDep
) -> IngestOut:
    name = sanitize_file_name(file.filename)
    if not name.endswith(ALLOWED_EXTENSIONS):
        raise HTTPException(
            status_code=415,
            detail=f"unsupported file type {name!r}: upload one of {', '.join(ALLOWED_EXTENSIONS)}",
        )
    with tempfile.TemporaryDirectory(prefix=scratch_prefix("upload")) as folder:
        path = Path(folder) / "upload"  # never the client's name
        await _save_capped(file, path, services.max_upload_bytes)
        result = await services.etl_workers.load(
            path, name, services.etl_config(), cancelled=request.is_disconnected
        )
    return await run_in_threadpool(_store, services, name, result)


def _store(services: Services, name: str, result: ETLResult) -> IngestOut:
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
    description="The run is queued on the Dagster instance and launched by its daemon, like a "
    "sensor's run. While a run for the day is queued or running (whoever started it), asking "
    "again starts nothing and answers 202 with that run's id and status.",
    responses=error_responses(404, 503),
)
def ingest_day(body: DayIngestIn, reviewer_id: MaintainerId, services: ServicesDep) -> DayRunOut:
    source = services.log_source()
    day = body.day.isoformat()
    rows = source.day_counts().get(body.day)
    if not rows:
        raise HTTPException(status_code=404, detail=f"no rows for {day} in table {source.table!r}")
    run_id, status = submit_day_run(day, requested_by=f"api:{reviewer_id}")
    return DayRunOut(
        day=body.day, table=source.table, rows=rows, run_id=run_id, job=DAILY_JOB, status=status
    )


@router.get(
    "/runs/{run_id}",
    response_model=RunStatusOut,
    summary="The status of a run this API started (also in the Dagster UI)",
    responses=error_responses(404),
)
def run_state(run_id: str, reviewer_id: MaintainerId) -> RunStatusOut:
    status = run_status(run_id)
    if status is None:
        raise HTTPException(status_code=404, detail=f"no run {run_id!r}")
    return RunStatusOut(run_id=run_id, status=status)
