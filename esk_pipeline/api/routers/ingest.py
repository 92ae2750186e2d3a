"""Ingestion: an uploaded file, or a day already in ClickHouse, through the ETL.

An upload is cleaned by the ETL (in a worker process with CPU-time and memory limits, see
`pipeline.etl.worker`) and its cleaned rows are appended to the `esk_logs` table of the
configured ClickHouse (embedded by default); the response is the ETL's accounting. The upload's
size is enforced while the body is read (`limits.RequestLimitsMiddleware`), its name is reduced to a
safe label (used for the extension check and the rows' `source`, never as a path), and its
content is checked twice: the extension allow-list here and the ETL's own format sniffing.

Ingest is idempotent. The upload's SHA-256 is computed as it is read; bytes that were ingested
before are answered with the first ingest's answer (header `Idempotent-Replayed: true`) and
nothing is inserted. A client may also send an `Idempotency-Key`: the same key with the same
bytes replays, with other bytes it is refused (422). Uploads of the same bytes or key run one
after another in this process; across processes, the rows' insert carries the digest as its
deduplication token, so ClickHouse itself drops a second copy (`LogSource.insert_parquet`).
The server never holds the cleaned rows: the worker writes them to a file and the embedded
engine's helper (or, with a server, this process batch by batch) reads them from there.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import hashlib
import re
import tempfile
import unicodedata
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Header, HTTPException, Request, Response, UploadFile
from starlette.concurrency import run_in_threadpool

from esk_pipeline.api.auth import MaintainerId
from esk_pipeline.api.deps import ServicesDep
from esk_pipeline.api.errors import error_responses
from esk_pipeline.api.limits import MULTIPART_OVERHEAD_BYTES, BodyLimit
from esk_pipeline.api.schemas import DayIngestIn, DayRunOut, IngestOut, RunStatusOut
from esk_pipeline.assets.partitions import daily_partitions
from esk_pipeline.pipeline.etl import ETLStats
from esk_pipeline.pipeline.fsutil import scratch_prefix
from esk_pipeline.pipeline.log_source import IngestRecord, LogSource
from esk_pipeline.runner import run_status, submit_day_run
from esk_pipeline.runs import DAILY_JOB

router = APIRouter(prefix="/api/ingest", tags=["ingest"], responses=error_responses())

UPLOAD_PATH = "/api/ingest/upload"
ALLOWED_EXTENSIONS = (".xlsx", ".csv", ".json", ".jsonl", ".parquet")
_READ_CHUNK = 1024 * 1024
_MAX_NAME_CHARS = 100
REPLAYED_HEADER = "Idempotent-Replayed"
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        pattern=r"^[\x21-\x7e]{1,255}$",
        description="Any unique string (1-255 printable ASCII characters, e.g. a UUID) naming "
        "this upload: sending it again with the same file replays the first answer, with "
        "another file is refused (422). Keys belong to their caller and are kept for good.",
    ),
]


def _too_large_detail(limit_bytes: int) -> str:
    return (
        f"the upload is larger than the limit of {limit_bytes // (1024 * 1024)} MB "
        "(APP_MAX_UPLOAD_MB); split the file or raise the limit"
    )


def upload_body_limit(max_file_bytes: int) -> BodyLimit:
    """The upload route's body limit: the file limit plus multipart framing, read only for a
    token that may upload."""
    return BodyLimit(
        max_file_bytes + MULTIPART_OVERHEAD_BYTES, _too_large_detail(max_file_bytes), "maintainer"
    )


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


async def _save_capped(upload: UploadFile, target: Path, limit_bytes: int) -> str:
    """The upload's bytes into `target` (413 as soon as they pass the limit); their SHA-256."""
    size = 0
    digest = hashlib.sha256()
    with target.open("wb") as out:
        while chunk := await upload.read(_READ_CHUNK):
            size += len(chunk)
            if size > limit_bytes:
                raise HTTPException(status_code=413, detail=_too_large_detail(limit_bytes))
            out.write(chunk)
            digest.update(chunk)
    return digest.hexdigest()


@router.post(
    "/upload",
    response_model=IngestOut,
    summary="Upload a log file (XLSX, CSV, JSON, JSONL, Parquet): ETL, then into ClickHouse",
    description="The file is read in a worker process with CPU-time and memory limits "
    "(APP_UPLOAD_CPU_SECONDS, APP_UPLOAD_MEMORY_MB): a file that needs more is refused with "
    "413, and the work stops when the client disconnects. The same bytes are ingested once: "
    "uploading them again (or retrying with the same `Idempotency-Key`) inserts nothing and "
    "answers with the first ingest's answer and the header `Idempotent-Replayed: true`.",
    responses=error_responses(413, 415, 422, 503),
)
async def upload(
    request: Request,
    response: Response,
    file: UploadFile,
    reviewer_id: MaintainerId,
    services: ServicesDep,
    idempotency_key: IdempotencyKey = None,
) -> IngestOut:
    name = sanitize_file_name(file.filename)
    if not name.endswith(ALLOWED_EXTENSIONS):
        raise HTTPException(
            status_code=415,
            detail=f"unsupported file type {name!r}: upload one of {', '.join(ALLOWED_EXTENSIONS)}",
        )
    source = services.log_source()
    key = idempotency_key or ""
    locks = services.ingest_locks
    with tempfile.TemporaryDirectory(prefix=scratch_prefix("upload")) as folder:
        path = Path(folder) / "upload"  # never the client's name
        sha256 = await _save_capped(file, path, services.max_upload_bytes)
        async with (
            locks.hold(f"key:{reviewer_id}:{key}") if key else contextlib.nullcontext(),
            locks.hold(f"sha256:{sha256}"),
        ):
            first = await run_in_threadpool(_first_ingest, source, sha256, reviewer_id, key)
            if first is not None:
                response.headers[REPLAYED_HEADER] = "true"
                return IngestOut.model_validate_json(first.answer)
            rows_file = Path(folder) / "rows.parquet"
            stats = await services.etl_workers.load(
                path, name, services.etl_config(), rows_file, cancelled=request.is_disconnected
            )
            return await run_in_threadpool(
                _store,
                source,
                IngestRecord(sha256, reviewer_id, key, "", _now()),
                name,
                stats,
                rows_file,
            )


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _first_ingest(source: LogSource, sha256: str, caller: str, key: str) -> IngestRecord | None:
    """The earlier ingest this upload repeats (422 if its key named other bytes), or None."""
    if key:
        earlier = source.find_ingest(caller=caller, idempotency_key=key)
        if earlier is not None and earlier.sha256 != sha256:
            raise HTTPException(
                status_code=422,
                detail=f"Idempotency-Key {key!r} was used for a different file "
                f"(sha256 {earlier.sha256[:12]}..., this one is {sha256[:12]}...): "
                "send a new key with a new file",
            )
        if earlier is not None:
            return earlier
    earlier = source.find_ingest(sha256=sha256)
    if earlier is not None and key:
        # The key now names these bytes too, so reusing it for other bytes is refused.
        source.record_ingest(IngestRecord(sha256, caller, key, earlier.answer, earlier.ingested_at))
    return earlier


def _store(
    source: LogSource, record: IngestRecord, name: str, stats: ETLStats, rows_file: Path
) -> IngestOut:
    written = source.insert_parquet(
        rows_file, missing_ts=record.ingested_at, dedup_token=record.sha256
    )
    answer = IngestOut(
        file_name=name,
        sha256=record.sha256,
        ingested_at=record.ingested_at,
        etl=stats,
        rows_inserted=written.rows,
        rows_without_ts=written.rows_without_ts,
        table=source.table,
    )
    source.record_ingest(dataclasses.replace(record, answer=answer.model_dump_json()))
    return answer


@router.post(
    "/clickhouse-day",
    response_model=DayRunOut,
    status_code=202,
    summary="Ingest and label one day of ClickHouse logs: starts a Dagster run for that partition",
    description="The run is queued on the Dagster instance and launched by its daemon, like a "
    "sensor's run. While a run for the day is queued or running (whoever started it), asking "
    "again starts nothing and answers 202 with that run's id and status. A day outside the "
    "daily partitions (before APP_PARTITIONS_START_DATE, or after today) is answered 404.",
    responses=error_responses(404, 503),
)
def ingest_day(body: DayIngestIn, reviewer_id: MaintainerId, services: ServicesDep) -> DayRunOut:
    day = body.day.isoformat()
    start = services.settings.app.partitions_start_date
    if not daily_partitions(start).has_partition_key(day):
        raise HTTPException(
            status_code=404,
            detail=f"{day} is no daily partition: the days run from APP_PARTITIONS_START_DATE "
            f"({start}) through today (UTC)",
        )
    source = services.log_source()
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
