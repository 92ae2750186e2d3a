"""Typed request and response bodies of the REST API (what /docs and /openapi.json show).

The library's own pydantic models (ReviewItem, QueueStats, ETLStats, ...) are reused as they are
where they already are the right answer; the models here are the API's own envelopes.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, Field

from esk_pipeline.pipeline.etl import ETLStats
from esk_pipeline.pipeline.labeler import ClassificationResult
from esk_pipeline.pipeline.versions import DatasetVersion

# A classify request may carry at most this many texts; bigger jobs belong to the Dagster graph.
MAX_CLASSIFY_BATCH = 100
MAX_TEXT_CHARS = 10_000
DOMAIN_ID_PATTERN = r"^[a-z0-9_]+$"
ExportFormat = Literal["jsonl", "csv", "parquet"]


class FieldIssue(BaseModel):
    """One invalid part of a request."""

    location: str = Field(description="where in the request, e.g. 'body.domain' or 'query.count'")
    message: str


class ErrorOut(BaseModel):
    """Every error the API returns: a short code, a sentence for a person, and field issues."""

    error: str = Field(description="short machine-readable code, e.g. 'not_leased'")
    detail: str = Field(description="what went wrong and what to do about it")
    fields: list[FieldIssue] | None = None


class HealthOut(BaseModel):
    status: Literal["ok"] = "ok"


class ReadinessCheck(BaseModel):
    ok: bool
    detail: str


class ReadinessOut(BaseModel):
    ready: bool
    checks: dict[str, ReadinessCheck] = Field(
        description="review_store, taxonomy and clickhouse, each with its own verdict"
    )


class WhoAmIOut(BaseModel):
    reviewer_id: str


class DomainOut(BaseModel):
    id: str
    name: str
    description: str


class TaxonomyOut(BaseModel):
    fingerprint: str
    domains: list[DomainOut]


class SubmitIn(BaseModel):
    """The reviewer's decision: the domain they chose (the model's guess when approving)."""

    domain: str = Field(min_length=1, max_length=100, pattern=DOMAIN_ID_PATTERN)


class UndoIn(BaseModel):
    """Which decision or skip to undo: the `decision_id` of its submit or skip answer."""

    decision_id: int = Field(ge=1)


class IngestOut(BaseModel):
    """What happened to an uploaded file: the ETL's accounting and the rows stored."""

    file_name: str = Field(description="the sanitised name, also the rows' `source` label")
    sha256: str = Field(description="the uploaded bytes' SHA-256: the same bytes are ingested once")
    ingested_at: dt.datetime = Field(description="when these bytes were first ingested")
    etl: ETLStats
    rows_inserted: int = Field(
        description="the file's cleaned rows, now in the table once: an insert that repeats "
        "one already made (a retry, or the same bytes sent to another server at the same "
        "time) is dropped by ClickHouse's deduplication token, so it adds no second copy"
    )
    rows_without_ts: int = Field(description="rows with no timestamp, stored with the upload time")
    table: str


class DayIngestIn(BaseModel):
    day: dt.date


class DayRunOut(BaseModel):
    """A Dagster run ingesting and labelling one day (raw_logs -> cleaned_texts -> labels)."""

    day: dt.date
    table: str
    rows: int
    run_id: str
    job: str
    status: str


class RunStatusOut(BaseModel):
    run_id: str
    status: str


class ClassifyIn(BaseModel):
    text: str = Field(min_length=1, max_length=MAX_TEXT_CHARS)


class ClassifyBatchIn(BaseModel):
    texts: list[Annotated[str, Field(min_length=1, max_length=MAX_TEXT_CHARS)]] = Field(
        min_length=1, max_length=MAX_CLASSIFY_BATCH
    )


class ClassifyBatchOut(BaseModel):
    results: list[ClassificationResult]


class TagIn(BaseModel):
    tag: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.\-]+$")


class VerifyOut(BaseModel):
    version: str
    ok: bool
    problems: list[str]


class StorageStatsOut(BaseModel):
    """`DataStorage.get_stats()` as the API shows it: without the server's storage folder."""

    total_versions: int
    by_status: dict[str, int] = Field(description="versions by status")
    archived_versions: int
    total_size_mb: float = Field(description="bytes on disk (shared files once, archives), in MB")
    logical_size_mb: float = Field(description="the versions' own sizes added up, in MB")
    current: str | None = Field(description="the version checked out as current")
    latest: str | None = Field(description="the highest version number")
    tags: dict[str, str] = Field(description="tag -> version")


class VersionOut(DatasetVersion):
    """A dataset version as the API shows it: without the server's file-system path."""

    path: Path | None = Field(default=None, exclude=True)
