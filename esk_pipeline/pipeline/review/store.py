"""Human in the loop: the review queue, its leases, overlapping reviews and quality metrics.

Labels the machine is unsure of (or failed on) become `ReviewItem`s; reviewers lease them
with `get_next`, decide with `submit_review`, and the decisions flow back out as verified
labels (`verified_labels()`, `export_reviewed()`).

Everything lives in one transactional database through SQLAlchemy Core: a SQLite file in WAL
mode under `data_dir` by default, or any SQLAlchemy URL (PostgreSQL for a team). Each
mutation is one transaction, so a process killed at any point leaves a consistent store:
a review row and its item's status change commit together or not at all.

Concurrency: a claim selects the next ids and updates them (re-checking availability) in one
transaction; on SQLite every write transaction starts with `BEGIN IMMEDIATE` (writers
serialise, readers don't block), on PostgreSQL the SELECT uses `FOR UPDATE SKIP LOCKED`, so
concurrent claimers take disjoint rows without waiting. An item leased to one reviewer is
handed to no one else until the lease expires; expiry needs no write: an expired lease
simply stops counting.

Statuses: PENDING, FAILED (the labeler failed: label from scratch) and SKIPPED (skipped by
someone; never handed back to the reviewers who skipped it) are the open, queued states;
IN_REVIEW is an open item under a valid lease; APPROVED and CORRECTED are decided.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import statistics
import threading
import uuid
from collections import Counter, defaultdict, deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal, cast, get_args

import pandas as pd
import sqlalchemy as sa
from pydantic import BaseModel, Field, SecretStr
from sqlalchemy.engine import Connection, Engine, RowMapping

from esk_pipeline.pipeline.ids import row_id
from esk_pipeline.pipeline.labels import LabelOrigin
from esk_pipeline.pipeline.taxonomy import Taxonomy
from esk_pipeline.settings import get_settings

ExportFormat = Literal["jsonl", "csv", "parquet"]
Clock = Callable[[], datetime]

VERIFIED_LABEL_COLUMNS = [
    "row_id",
    "text",
    "domain",
    "predicted_domain",
    "confidence",
    "reviewer_id",
    "reviewed_at",
    "review_status",
    "label_source",
    "label_origin",
    "votes",
    "review_reason",
    "predicted_source",
]
VOTE_COLUMNS = ["item_id", "reviewer_id", "domain"]


class ReviewStatus(StrEnum):
    PENDING = "pending"
    IN_REVIEW = "in_review"
    APPROVED = "approved"
    CORRECTED = "corrected"
    SKIPPED = "skipped"
    FAILED = "failed"


class ReviewReason(StrEnum):
    """Why an item is in the queue."""

    NEEDS_REVIEW = "needs_review"  # no trusted label yet (low calibrated precision, or failed)
    AUDIT = "audit"  # drawn uniformly at random: measures the labels nobody else checks
    POSSIBLE_LABEL_ERROR = "possible_label_error"  # confident learning doubts the decision
    SECOND_OPINION = "second_opinion"  # the decision contradicted a confident model


class ReviewPriority(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"


class ReviewError(Exception):
    """A review operation that was refused; the message says why, for a person."""


class UnknownItemError(ReviewError):
    """No item with that id is in the store."""


class UnknownDomainError(ReviewError):
    """The submitted domain is not in the taxonomy."""


class NotLeasedError(ReviewError):
    """The reviewer does not hold the item's lease (never had it, or someone else has it now),
    or the item is already decided."""


class AlreadyReviewedError(ReviewError):
    """The reviewer already submitted a different decision for this item (undo it first)."""


class QueueFullError(ReviewError):
    """`add_items(..., raise_when_full=True)` would exceed `max_queue_size`."""


class InvalidReviewError(ReviewError):
    """A malformed request: empty reviewer id, approving an item that has no prediction, ..."""


class UndoError(ReviewError):
    """Nothing to undo, or the item has moved on (someone else reviewed or leased it since)."""


class ReviewDatasetConfig(BaseModel):
    data_dir: Path = Field(default_factory=lambda: get_settings().app.data_dir)
    max_queue_size: int = Field(default_factory=lambda: get_settings().review.max_queue_size)
    # None: SQLite file `review.sqlite3` under data_dir (WAL). Any SQLAlchemy URL otherwise.
    database_url: SecretStr | None = Field(
        default_factory=lambda: get_settings().review.database_url
    )
    lease_seconds: int = Field(default_factory=lambda: get_settings().review.lease_seconds, gt=0)
    reviews_per_item: int = Field(
        default_factory=lambda: get_settings().review.reviews_per_item, ge=1
    )
    # A single decision against a model at least this confident waits for a second reviewer
    # before it counts (0: every correction of the model; None: never).
    second_opinion_confidence: float | None = Field(
        default_factory=lambda: get_settings().review.second_opinion_confidence, ge=0, le=1
    )


class ReviewItem(BaseModel):
    """One text in the queue, with the model's guess and (once decided) the human decision."""

    id: str
    text: str
    predicted_domain: str | None
    confidence: float
    top_candidates: list[list[Any]] = Field(default_factory=list)
    corrected_domain: str | None = None  # the human decision once decided
    reviewer_id: str | None = None  # who closed it
    review_timestamp: datetime | None = None
    status: ReviewStatus = ReviewStatus.PENDING
    priority: ReviewPriority = ReviewPriority.MEDIUM
    created_at: datetime | None = None
    label_source: str | None = None
    error: str | None = None  # the labeler's error when it failed
    reviews: int = 0  # decisions recorded so far
    required_reviews: int = 1
    needs_adjudication: bool = False  # overlapping reviewers disagreed; next review decides
    reason: ReviewReason = ReviewReason.NEEDS_REVIEW
    lease_holder: str | None = None
    lease_expires_at: datetime | None = None


class AddReport(BaseModel):
    """What `add_items` did with each input row; nothing is dropped without a count and reason."""

    received: int = 0
    added: int = 0
    refreshed: int = 0  # still-open items whose model fields were updated
    unchanged: int = 0  # already queued with the same model fields, or repeated in the batch
    kept_decided: int = 0  # already reviewed: the human decision was kept
    withdrawn: int = 0  # untouched open items no longer in need of review (`withdraw_others`)
    rejected_queue_full: int = 0
    invalid: int = 0  # no text, or a row the labeler deferred
    queue_size: int = 0  # open items after the call
    max_queue_size: int = 0
    messages: list[str] = Field(default_factory=list)


class QueueStats(BaseModel):
    by_status: dict[str, int]
    by_priority: dict[str, int]  # open items only: what is waiting
    queue_length: int  # open items, leased or not
    available: int  # open and not under a valid lease
    needs_adjudication: int
    done_today: int  # decisions (review rows) since UTC midnight
    done_today_by_reviewer: dict[str, int]
    reviewer_id: str | None = None
    reviewer_done_today: int | None = None
    available_for_reviewer: int | None = None  # what get_next could still hand this reviewer
    max_queue_size: int
    last_review_seq: int


class PairAgreement(BaseModel):
    reviewer_a: str
    reviewer_b: str
    items: int
    observed_agreement: float
    cohen_kappa: float | None  # None when chance agreement is 1 (kappa undefined)


class ReviewerAgreement(BaseModel):
    reviewer_id: str
    reviews: int
    agreement_with_majority: float | None  # vs the final decision, on decided overlap items
    agreement_with_model: float | None  # share of decisions equal to the model's prediction
    median_seconds: float | None


class AgreementReport(BaseModel):
    items_with_overlap: int  # items with >= 2 decisions
    observed_agreement: float | None  # share of those where every reviewer agreed
    fleiss_kappa: float | None
    mean_cohen_kappa: float | None  # mean over reviewer pairs with a defined kappa
    pairs: list[PairAgreement]
    reviewers: list[ReviewerAgreement]
    needs_adjudication: int


class DomainQuality(BaseModel):
    domain: str
    predicted: int  # decided items the model put here
    actual: int  # decided items reviewers put here
    correct: int
    precision: float | None  # model accuracy on items it predicted as this domain
    recall: float | None  # share of this domain's items the model got right


class ReviewerThroughput(BaseModel):
    reviewer_id: str
    decisions: int
    first_at: datetime | None
    last_at: datetime | None
    decisions_per_hour: float | None  # per hour of lease time spent on decided items
    decisions_per_day: float | None  # per UTC day with any activity
    done_today: int


class QualityReport(BaseModel):
    decided: int
    approved: int
    corrected: int
    correction_share: float | None
    model_accuracy: float | None  # approved / decided, over items the model labelled
    labeler_failures_decided: int
    by_domain: list[DomainQuality]
    confusion: dict[str, dict[str, int]]  # predicted -> human -> count; "__failed__" = no label
    throughput: list[ReviewerThroughput]


# -- storage ------------------------------------------------------------------------------

_OPEN_STATUSES = (ReviewStatus.PENDING.value, ReviewStatus.FAILED.value, ReviewStatus.SKIPPED.value)
_DECIDED_STATUSES = (ReviewStatus.APPROVED.value, ReviewStatus.CORRECTED.value)
_PRIORITY_RANK = {p: rank for rank, p in enumerate(ReviewPriority)}  # LOW=0 .. CRITICAL=3
_RANK_PRIORITY = {rank: p for p, rank in _PRIORITY_RANK.items()}
_DECIDE, _SKIP = "decide", "skip"
FAILED_PREDICTION = "__failed__"  # confusion-matrix row for items the labeler failed on
_READ_ONLY = "esk_review_read_only"
_ID_CHUNK = 500  # ids per IN (...) list: well under every driver's parameter limit
_MIN_PAIR_ITEMS = 2  # shared items a reviewer pair needs before its kappa is reported


class _UTCDateTime(sa.TypeDecorator[datetime]):
    """Stores naive UTC (portable across SQLite and PostgreSQL), returns aware UTC."""

    impl = sa.DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is not None:
            value = value.astimezone(UTC)
        return value.replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


_metadata = sa.MetaData()
# Literal SQL, not a bound IN list: a query can use a partial index only when its WHERE
# repeats the index's condition verbatim.
_IS_OPEN_SQL = sa.text(f"status IN ({', '.join(repr(s) for s in _OPEN_STATUSES)})")

_items = sa.Table(
    "review_items",
    _metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("predicted_domain", sa.String(128)),
    sa.Column("confidence", sa.Float, nullable=False),
    sa.Column("top_candidates", sa.Text, nullable=False),  # JSON [[domain, score], ...]
    sa.Column("label_source", sa.String(256)),
    sa.Column("error", sa.Text),
    sa.Column("labeler_failed", sa.Boolean, nullable=False),
    # Open items hold PENDING/FAILED/SKIPPED; a valid lease makes them IN_REVIEW on read.
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("priority", sa.Integer, nullable=False),  # _PRIORITY_RANK, so it sorts
    sa.Column("needs_adjudication", sa.Boolean, nullable=False),
    sa.Column("reason", sa.String(32), nullable=False, server_default=ReviewReason.NEEDS_REVIEW),
    # Expected gain of reviewing it (higher first within a priority), set by whoever queues it.
    sa.Column("gain", sa.Float, nullable=False, server_default="0"),
    sa.Column("required_reviews", sa.Integer, nullable=False),
    sa.Column("reviews", sa.Integer, nullable=False),
    sa.Column("corrected_domain", sa.String(128)),
    sa.Column("reviewer_id", sa.String(128)),
    sa.Column("review_timestamp", _UTCDateTime()),
    sa.Column("created_at", _UTCDateTime(), nullable=False),
    sa.Column("lease_holder", sa.String(128)),
    sa.Column("lease_token", sa.String(32)),
    sa.Column("lease_started_at", _UTCDateTime()),
    sa.Column("lease_expires_at", _UTCDateTime()),
    # Open items in claim order: get_next walks this partial index and stops at LIMIT, however
    # many items are open or decided. (No index on status alone: SQLite would prefer it and
    # sort every open item instead.)
    sa.Index(
        "ix_review_items_open_queue",
        sa.desc("priority"),
        sa.desc("gain"),
        "created_at",
        "id",
        sqlite_where=_IS_OPEN_SQL,
        postgresql_where=_IS_OPEN_SQL,
    ),
    sa.Index("ix_review_items_lease", "lease_holder"),
    sa.Index("ix_review_items_token", "lease_token"),
)

# One row per reviewer action on an item: a decision (domain set) or a skip (domain NULL).
# `seq` only grows (AUTOINCREMENT on SQLite), so it is a cursor for "new reviews since".
_reviews = sa.Table(
    "reviews",
    _metadata,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("item_id", sa.String(64), sa.ForeignKey("review_items.id"), nullable=False),
    sa.Column("reviewer_id", sa.String(128), nullable=False),
    sa.Column("action", sa.String(8), nullable=False),
    sa.Column("domain", sa.String(128)),
    sa.Column("decided_at", _UTCDateTime(), nullable=False),
    sa.Column("seconds_spent", sa.Float),
    sa.UniqueConstraint("item_id", "reviewer_id", name="uq_reviews_item_reviewer"),
    sa.Index("ix_reviews_reviewer", "reviewer_id", "seq"),
    sa.Index("ix_reviews_decided_at", "decided_at"),
    sqlite_autoincrement=True,
)

_QUEUE_ORDER = (_items.c.priority.desc(), _items.c.gain.desc(), _items.c.created_at, _items.c.id)
# Columns added after the first release: created on open in stores that predate them.
_ADDED_COLUMNS = {
    "reason": f"VARCHAR(32) NOT NULL DEFAULT '{ReviewReason.NEEDS_REVIEW}'",
    "gain": "FLOAT NOT NULL DEFAULT 0",
}
_CLEARED_LEASE = {
    "lease_holder": None,
    "lease_token": None,
    "lease_started_at": None,
    "lease_expires_at": None,
}


def _make_engine(config: ReviewDatasetConfig) -> Engine:
    if config.database_url is None:
        path = Path(config.data_dir) / "review.sqlite3"
        path.parent.mkdir(parents=True, exist_ok=True)
        url = sa.URL.create("sqlite+pysqlite", database=str(path))
    else:
        url = sa.make_url(config.database_url.get_secret_value())
    if url.get_backend_name() != "sqlite":
        return sa.create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=40)
    if url.database in (None, "", ":memory:"):
        raise InvalidReviewError("the review store needs a SQLite file, not an in-memory database")
    engine = sa.create_engine(url, pool_size=10, max_overflow=40, pool_timeout=120)
    sa.event.listen(engine, "connect", _sqlite_on_connect)
    sa.event.listen(engine, "begin", _sqlite_on_begin)
    return engine


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    """WAL (readers never block the writer), a generous busy wait, enforced foreign keys.

    The driver's own BEGIN handling is turned off so `_sqlite_on_begin` decides how to begin.
    synchronous=NORMAL in WAL keeps every commit across a process kill (not a power cut).
    """
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    for pragma in (
        "PRAGMA busy_timeout=60000",
        "PRAGMA journal_mode=WAL",
        "PRAGMA synchronous=NORMAL",
        "PRAGMA foreign_keys=ON",
    ):
        cursor.execute(pragma)
    cursor.close()


def _sqlite_on_begin(conn: Connection) -> None:
    """Write transactions take the write lock up front (BEGIN IMMEDIATE): no lock upgrade
    deadlocks between concurrent claimers, and a claim's SELECT sees what its UPDATE changes."""
    read_only = conn.get_execution_options().get(_READ_ONLY, False)
    conn.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")


class _FifoLock:
    """A lock handed to waiters in arrival order; `threading.Lock` lets late arrivals barge
    ahead, which under 50 contending threads leaves a few waiting for a second or more."""

    def __init__(self) -> None:
        self._mutex = threading.Lock()
        self._waiters: deque[threading.Lock] = deque()
        self._held = False

    def __enter__(self) -> _FifoLock:
        with self._mutex:
            if not self._held:
                self._held = True
                return self
            ticket = threading.Lock()
            ticket.acquire()
            self._waiters.append(ticket)
        ticket.acquire()  # released by the holder before us: the lock passes straight to us
        return self

    def __exit__(self, *exc: object) -> None:
        with self._mutex:
            if self._waiters:
                self._waiters.popleft().release()
            else:
                self._held = False


@dataclass(frozen=True)
class _Incoming:
    """One input row, normalised to the item table's model fields."""

    id: str
    text: str
    predicted_domain: str | None
    confidence: float
    top_candidates: str  # JSON
    label_source: str | None
    error: str | None
    labeler_failed: bool
    reason: str
    gain: float

    def model_fields(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "predicted_domain": self.predicted_domain,
            "confidence": self.confidence,
            "top_candidates": self.top_candidates,
            "label_source": self.label_source,
            "error": self.error,
            "labeler_failed": self.labeler_failed,
            "reason": self.reason,
            "gain": self.gain,
        }


class ReviewDataset:
    """The review queue over a SQL store (SQLite WAL by default; PostgreSQL by URL).

    Thread-safe: one instance may be shared by the API's worker threads; several processes may
    open the same store. `clock` returns the current UTC time (injectable for lease tests).
    """

    def __init__(
        self,
        config: ReviewDatasetConfig | None = None,
        taxonomy: Taxonomy | None = None,
        *,
        clock: Clock | None = None,
    ) -> None:
        self.config = config or ReviewDatasetConfig()
        self.taxonomy = taxonomy or Taxonomy.load(get_settings().app.taxonomy_path)
        self._clock = clock or _utcnow
        self._engine = _make_engine(self.config)
        self._read_engine = self._engine.execution_options(**{_READ_ONLY: True})
        # SQLite's busy handler polls with growing sleeps, so 50 threads contending for the
        # write lock starve each other (seconds of tail latency); queueing them on a lock
        # first leaves the busy handler to arbitrate only between processes.
        self._writer_lock: AbstractContextManager[Any] = (
            _FifoLock() if self._engine.dialect.name == "sqlite" else nullcontext()
        )
        with self._engine.begin() as conn:  # BEGIN IMMEDIATE on SQLite: one creator at a time
            _metadata.create_all(conn)
            _add_missing_columns(conn)

    def close(self) -> None:
        """Release the database connections."""
        self._engine.dispose()

    def __enter__(self) -> ReviewDataset:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- queue ---------------------------------------------------------------------------

    def add_items(
        self,
        items: Iterable[Mapping[str, Any] | BaseModel] | pd.DataFrame,
        *,
        raise_when_full: bool = False,
        withdraw_others: bool = False,
    ) -> AddReport:
        """Queue label rows / ClassificationResult-like records, keyed on the row id.

        Accepted keys: `row_id` or `id` (else `ids.row_id(text)`), `text`, `domain` or
        `predicted_domain`, `confidence`, `top_candidates` (list or JSON string), `status`
        ("failed" = labeler failure, "deferred" = not labelled yet: ignored), `error`,
        `label_source`, `review_reason` (a `ReviewReason`), `review_gain` (higher is reviewed
        first). Re-adding refreshes the model fields of still-open items and never touches a
        decided one. With `withdraw_others`, open items nobody has touched (no decision, skip
        or valid lease) that are not in this batch leave the queue: the batch is the whole
        set of texts that need people now. New items beyond `max_queue_size` (counting open
        items) are not added; the most urgent go in first and the report says how many were left out
        (or `QueueFullError` with `raise_when_full`). One transaction for the whole batch.
        """
        records = items.to_dict("records") if isinstance(items, pd.DataFrame) else items
        report = AddReport(max_queue_size=self.config.max_queue_size)
        batch: dict[str, _Incoming] = {}
        invalid_reasons: Counter[str] = Counter()
        for record in records:
            report.received += 1
            incoming = _normalise(record)
            if isinstance(incoming, str):
                invalid_reasons[incoming] += 1
            else:
                batch[incoming.id] = incoming  # a later row for the same id wins
        report.invalid = sum(invalid_reasons.values())
        report.unchanged = report.received - report.invalid - len(batch)
        for reason, n in sorted(invalid_reasons.items()):
            report.messages.append(f"{n} row(s) not queued: {reason}")

        now = self._clock()
        with self._write() as conn:
            existing = _fetch_by_ids(conn, list(batch))
            new: list[_Incoming] = []
            refreshes: list[dict[str, Any]] = []
            for incoming in batch.values():
                row = existing.get(incoming.id)
                if row is None:
                    new.append(incoming)
                elif row["status"] in _DECIDED_STATUSES:
                    report.kept_decided += 1
                elif all(row[k] == v for k, v in incoming.model_fields().items()):
                    report.unchanged += 1
                else:
                    refreshes.append(self._refresh_values(row, incoming))
            if refreshes:
                conn.execute(
                    _items.update().where(_items.c.id == sa.bindparam("item_id")), refreshes
                )
            report.refreshed = len(refreshes)
            if withdraw_others:
                report.withdrawn = _withdraw_untouched(conn, set(batch), now)

            open_count = conn.execute(
                sa.select(sa.func.count()).where(_items.c.status.in_(_OPEN_STATUSES))
            ).scalar_one()
            capacity = max(0, self.config.max_queue_size - open_count)
            new.sort(key=lambda i: (-_PRIORITY_RANK[self._priority_for(i)], -i.gain, i.id))
            accepted, rejected = new[:capacity], new[capacity:]
            if rejected:
                message = (
                    f"review queue is full: {len(rejected)} of {len(new)} new item(s) were not "
                    f"added (max_queue_size={self.config.max_queue_size}, {open_count} item(s) "
                    "already waiting); the most urgent were kept. Review the queue or raise "
                    "REVIEW_MAX_QUEUE_SIZE, then add them again."
                )
                if raise_when_full:
                    raise QueueFullError(message)
                report.messages.append(message)
            if accepted:
                conn.execute(_items.insert(), [self._new_row(i, now) for i in accepted])
            report.added = len(accepted)
            report.rejected_queue_full = len(rejected)
            report.queue_size = open_count + len(accepted)
        return report

    def get_next(self, count: int = 1, reviewer_id: str = "anonymous") -> list[ReviewItem]:
        """Lease up to `count` items to the reviewer, highest priority first, then oldest.

        The reviewer's own still-valid leases come back first (renewed), so calling again is
        idempotent; the rest are claimed atomically. Items this reviewer already decided or
        skipped are never handed to them again.
        """
        _check_reviewer(reviewer_id)
        if count < 1:
            raise InvalidReviewError(f"count must be at least 1, got {count}")
        now = self._clock()
        expires = now + timedelta(seconds=self.config.lease_seconds)
        with self._write() as conn:
            own_ids = list(
                conn.execute(
                    sa.select(_items.c.id)
                    .where(
                        _items.c.lease_holder == reviewer_id,
                        _items.c.lease_expires_at > now,
                        _items.c.status.in_(_OPEN_STATUSES),
                    )
                    .order_by(*_QUEUE_ORDER)
                    .limit(count)
                ).scalars()
            )
            if own_ids:
                conn.execute(
                    _items.update().where(_items.c.id.in_(own_ids)).values(lease_expires_at=expires)
                )
            token = uuid.uuid4().hex
            if len(own_ids) < count:
                # Two statements, not UPDATE ... IN (SELECT ... LIMIT): PostgreSQL may re-run
                # such a subquery per row, and with SKIP LOCKED each run skips the rows just
                # updated, claiming far more than asked. The ids selected here stay locked
                # (FOR UPDATE on PostgreSQL; the write lock on SQLite) until commit.
                available = self._available_to(reviewer_id, now)
                claim_ids = list(
                    conn.execute(
                        sa.select(_items.c.id)
                        .where(available)
                        .order_by(*_QUEUE_ORDER)
                        .limit(count - len(own_ids))
                        .with_for_update(skip_locked=True)
                    ).scalars()
                )
                if claim_ids:
                    conn.execute(
                        _items.update()
                        .where(_items.c.id.in_(claim_ids), available)
                        .values(
                            lease_holder=reviewer_id,
                            lease_token=token,
                            lease_started_at=now,
                            lease_expires_at=expires,
                        )
                    )
            rows = conn.execute(
                sa.select(_items)
                .where(sa.or_(_items.c.id.in_(own_ids), _items.c.lease_token == token))
                .order_by(*_QUEUE_ORDER)
            ).mappings()
            return [_to_item(row, now) for row in rows]

    def submit_review(
        self,
        item_id: str,
        corrected_domain: str | None,
        reviewer_id: str,
        *,
        approve: bool | None = None,
    ) -> ReviewItem:
        """Record the reviewer's decision: `corrected_domain` is the domain they chose.

        `approve=True` with `corrected_domain=None` accepts the prediction; `approve=False`
        asserts the prediction is wrong (the domain must then differ from it). Equal to the
        prediction -> APPROVED, different -> CORRECTED; with `reviews_per_item > 1` the item
        stays open until enough reviewers agree by strict majority, and a disagreement sends
        it to adjudication (CRITICAL, `needs_adjudication`), decided by the next review.
        Resubmitting the same decision returns the item unchanged (no double count).
        A late submit after the lease expired is accepted while nobody else has claimed it.
        Raises UnknownItemError, UnknownDomainError, NotLeasedError, AlreadyReviewedError,
        InvalidReviewError.
        """
        _check_reviewer(reviewer_id)
        now = self._clock()
        with self._write() as conn:
            row = _lock_item(conn, item_id)
            domain = self._resolve_domain(row, corrected_domain, approve)
            previous = _action_of(conn, item_id, reviewer_id)
            if previous is not None:
                if previous["action"] == _DECIDE and previous["domain"] == domain:
                    return _to_item(row, now)
                done = "skipped" if previous["action"] == _SKIP else f"chose {previous['domain']!r}"
                raise AlreadyReviewedError(
                    f"reviewer {reviewer_id!r} already {done} for item {item_id!r}; "
                    "undo that first to decide differently"
                )
            _require_lease(row, reviewer_id)
            conn.execute(
                _reviews.insert().values(
                    item_id=item_id,
                    reviewer_id=reviewer_id,
                    action=_DECIDE,
                    domain=domain,
                    decided_at=now,
                    seconds_spent=_seconds_since(row["lease_started_at"], now),
                )
            )
            votes = _votes(conn, item_id)
            values = self._state_after_vote(row, votes, domain, reviewer_id, now)
            conn.execute(_items.update().where(_items.c.id == item_id).values(**values))
            return _to_item(_fetch_item(conn, item_id), now)

    def skip(self, item_id: str, reviewer_id: str) -> ReviewItem:
        """Give the item back for others: it is never handed to this reviewer again.

        The item's status becomes SKIPPED (a labeler failure stays FAILED); skipping twice is
        a no-op.
        """
        _check_reviewer(reviewer_id)
        now = self._clock()
        with self._write() as conn:
            row = _lock_item(conn, item_id)
            previous = _action_of(conn, item_id, reviewer_id)
            if previous is not None:
                if previous["action"] == _SKIP:
                    return _to_item(row, now)
                raise AlreadyReviewedError(
                    f"reviewer {reviewer_id!r} already decided item {item_id!r}; nothing to skip"
                )
            _require_lease(row, reviewer_id)
            conn.execute(
                _reviews.insert().values(
                    item_id=item_id,
                    reviewer_id=reviewer_id,
                    action=_SKIP,
                    decided_at=now,
                    seconds_spent=_seconds_since(row["lease_started_at"], now),
                )
            )
            status = ReviewStatus.FAILED if row["labeler_failed"] else ReviewStatus.SKIPPED
            conn.execute(
                _items.update()
                .where(_items.c.id == item_id)
                .values(status=status.value, **_CLEARED_LEASE)
            )
            return _to_item(_fetch_item(conn, item_id), now)

    def release(self, item_id: str, reviewer_id: str) -> ReviewItem:
        """Give back a lease without deciding; the item returns to the queue for anyone."""
        _check_reviewer(reviewer_id)
        now = self._clock()
        with self._write() as conn:
            row = _lock_item(conn, item_id)
            _require_lease(row, reviewer_id)
            conn.execute(_items.update().where(_items.c.id == item_id).values(**_CLEARED_LEASE))
            return _to_item(_fetch_item(conn, item_id), now)

    def undo_last(self, reviewer_id: str) -> ReviewItem:
        """Revert the reviewer's most recent decision or skip and lease the item to them again.

        Refused (UndoError) when there is nothing to undo or the item has moved on: another
        reviewer has reviewed or skipped it since, or holds a lease on it.
        """
        _check_reviewer(reviewer_id)
        now = self._clock()
        with self._write() as conn:
            last = (
                conn.execute(
                    sa.select(_reviews)
                    .where(_reviews.c.reviewer_id == reviewer_id)
                    .order_by(_reviews.c.seq.desc())
                    .limit(1)
                )
                .mappings()
                .first()
            )
            if last is None:
                raise UndoError(f"reviewer {reviewer_id!r} has nothing to undo")
            item_id = last["item_id"]
            row = _lock_item(conn, item_id)
            later = conn.execute(
                sa.select(sa.func.count()).where(
                    _reviews.c.item_id == item_id, _reviews.c.seq > last["seq"]
                )
            ).scalar_one()
            leased_to_other = (
                row["lease_holder"] not in (None, reviewer_id)
                and row["lease_expires_at"] is not None
                and row["lease_expires_at"] > now
            )
            if later or leased_to_other:
                raise UndoError(
                    f"cannot undo the last action on item {item_id!r}: another reviewer has "
                    "worked on it since"
                )
            conn.execute(_reviews.delete().where(_reviews.c.seq == last["seq"]))
            votes = _votes(conn, item_id)
            skipped = conn.execute(
                sa.select(sa.func.count()).where(
                    _reviews.c.item_id == item_id, _reviews.c.action == _SKIP
                )
            ).scalar_one()
            required = row["required_reviews"] if votes else self.config.reviews_per_item
            reason = row["reason"]
            if not votes and reason == ReviewReason.SECOND_OPINION:
                reason = ReviewReason.NEEDS_REVIEW.value
            adjudicate = len(votes) >= required and _majority(votes) is None
            if row["labeler_failed"]:
                status = ReviewStatus.FAILED
            else:
                status = ReviewStatus.SKIPPED if skipped else ReviewStatus.PENDING
            conn.execute(
                _items.update()
                .where(_items.c.id == item_id)
                .values(
                    status=status.value,
                    reviews=len(votes),
                    required_reviews=required,
                    reason=reason,
                    needs_adjudication=adjudicate,
                    priority=_PRIORITY_RANK[
                        ReviewPriority.CRITICAL
                        if adjudicate
                        else self._priority_for({**row, "reason": reason})
                    ],
                    corrected_domain=None,
                    reviewer_id=None,
                    review_timestamp=None,
                    lease_holder=reviewer_id,
                    lease_token=uuid.uuid4().hex,
                    lease_started_at=now,
                    lease_expires_at=now + timedelta(seconds=self.config.lease_seconds),
                )
            )
            return _to_item(_fetch_item(conn, item_id), now)

    def get_item(self, item_id: str) -> ReviewItem:
        """One item by id (UnknownItemError when absent)."""
        with self._read_engine.begin() as conn:
            return _to_item(_fetch_item(conn, item_id), self._clock())

    # -- numbers -------------------------------------------------------------------------

    def stats(self, reviewer_id: str | None = None) -> QueueStats:
        """Counts by status and priority, queue length, decisions today (per reviewer)."""
        now = self._clock()
        midnight = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        leased = sa.and_(
            _items.c.lease_expires_at.is_not(None), _items.c.lease_expires_at > now
        ).label("leased")
        with self._read_engine.begin() as conn:
            groups = conn.execute(
                sa.select(
                    _items.c.status,
                    _items.c.priority,
                    _items.c.needs_adjudication,
                    leased,
                    sa.func.count().label("n"),
                ).group_by(_items.c.status, _items.c.priority, _items.c.needs_adjudication, leased)
            ).all()
            done_today = dict(
                conn.execute(
                    sa.select(_reviews.c.reviewer_id, sa.func.count())
                    .where(_reviews.c.action == _DECIDE, _reviews.c.decided_at >= midnight)
                    .group_by(_reviews.c.reviewer_id)
                ).all()
            )
            available_for = (
                None
                if reviewer_id is None
                else conn.execute(
                    sa.select(sa.func.count()).where(self._available_to(reviewer_id, now))
                ).scalar_one()
            )
            last_seq = _last_seq(conn)
        by_status = dict.fromkeys((s.value for s in ReviewStatus), 0)
        by_priority = dict.fromkeys((p.value for p in ReviewPriority), 0)
        queue_length = available = adjudication = 0
        for status, priority, needs_adjudication, is_leased, n in groups:
            is_open = status in _OPEN_STATUSES
            shown = ReviewStatus.IN_REVIEW.value if is_open and is_leased else status
            by_status[shown] += n
            if is_open:
                queue_length += n
                available += 0 if is_leased else n
                adjudication += n if needs_adjudication else 0
                by_priority[_RANK_PRIORITY[priority].value] += n
        return QueueStats(
            by_status=by_status,
            by_priority=by_priority,
            queue_length=queue_length,
            available=available,
            needs_adjudication=adjudication,
            done_today=sum(done_today.values()),
            done_today_by_reviewer=done_today,
            reviewer_id=reviewer_id,
            reviewer_done_today=None if reviewer_id is None else done_today.get(reviewer_id, 0),
            available_for_reviewer=available_for,
            max_queue_size=self.config.max_queue_size,
            last_review_seq=last_seq,
        )

    def agreement(self) -> AgreementReport:
        """Inter-reviewer agreement over items with >= 2 decisions.

        Fleiss' kappa (generalised to a varying number of reviewers per item) over all overlap
        items; Cohen's kappa per reviewer pair sharing >= 2 items, and their mean. Per reviewer:
        agreement with the item's final (majority or adjudicated) decision, agreement with the
        model's prediction, and the median seconds from lease to decision.
        """
        decisions = self._decisions_frame()
        by_item: dict[str, dict[str, str]] = defaultdict(dict)
        for item_id, reviewer, domain in decisions[["item_id", "reviewer_id", "domain"]].itertuples(
            index=False
        ):
            by_item[item_id][reviewer] = domain
        overlap = {item: votes for item, votes in by_item.items() if len(votes) >= 2}
        unanimous = sum(len(set(votes.values())) == 1 for votes in overlap.values())

        pairs: list[PairAgreement] = []
        reviewers = sorted(decisions["reviewer_id"].unique())
        for a, b in itertools.combinations(reviewers, 2):
            shared = [(v[a], v[b]) for v in overlap.values() if a in v and b in v]
            if len(shared) >= _MIN_PAIR_ITEMS:
                observed, kappa = _cohen_kappa(shared)
                pairs.append(
                    PairAgreement(
                        reviewer_a=a,
                        reviewer_b=b,
                        items=len(shared),
                        observed_agreement=observed,
                        cohen_kappa=kappa,
                    )
                )
        kappas = [p.cohen_kappa for p in pairs if p.cohen_kappa is not None]

        per_reviewer: list[ReviewerAgreement] = []
        for reviewer, group in decisions.groupby("reviewer_id", sort=True):
            on_overlap = group[group["item_id"].isin(overlap) & group["final_domain"].notna()]
            with_model = group[group["predicted_domain"].notna()]
            seconds = group["seconds_spent"].dropna()
            per_reviewer.append(
                ReviewerAgreement(
                    reviewer_id=str(reviewer),
                    reviews=len(group),
                    agreement_with_majority=_share(
                        on_overlap["domain"] == on_overlap["final_domain"]
                    ),
                    agreement_with_model=_share(
                        with_model["domain"] == with_model["predicted_domain"]
                    ),
                    median_seconds=float(seconds.median()) if len(seconds) else None,
                )
            )
        with self._read_engine.begin() as conn:
            adjudication = conn.execute(
                sa.select(sa.func.count()).where(
                    _items.c.needs_adjudication, _items.c.status.in_(_OPEN_STATUSES)
                )
            ).scalar_one()
        return AgreementReport(
            items_with_overlap=len(overlap),
            observed_agreement=unanimous / len(overlap) if overlap else None,
            fleiss_kappa=_fleiss_kappa([list(v.values()) for v in overlap.values()]),
            mean_cohen_kappa=statistics.fmean(kappas) if kappas else None,
            pairs=pairs,
            reviewers=per_reviewer,
            needs_adjudication=adjudication,
        )

    def quality_metrics(self) -> QualityReport:
        """Model accuracy against reviewers, confusion matrix, corrections, throughput.

        Accuracy and the per-domain figures count decided items the model labelled; items the
        labeler failed on appear only in the confusion matrix (row "__failed__") and in
        `labeler_failures_decided`. Throughput: decisions per hour of lease time spent, per
        UTC day with activity, and today.
        """
        now = self._clock()
        with self._read_engine.begin() as conn:
            decided = conn.execute(
                sa.select(
                    _items.c.predicted_domain, _items.c.corrected_domain, _items.c.status
                ).where(_items.c.status.in_(_DECIDED_STATUSES))
            ).all()
        labelled = [(p, h) for p, h, _ in decided if p is not None]
        approved = sum(s == ReviewStatus.APPROVED.value for _, _, s in decided)
        corrected = len(decided) - approved
        confusion: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        for predicted, human, _ in decided:
            confusion[predicted or FAILED_PREDICTION][human] += 1
        by_domain = []
        for domain in sorted({d for pair in labelled for d in pair}):
            predicted_n = sum(p == domain for p, _ in labelled)
            actual_n = sum(h == domain for _, h in labelled)
            correct = sum(p == h == domain for p, h in labelled)
            by_domain.append(
                DomainQuality(
                    domain=domain,
                    predicted=predicted_n,
                    actual=actual_n,
                    correct=correct,
                    precision=correct / predicted_n if predicted_n else None,
                    recall=correct / actual_n if actual_n else None,
                )
            )
        return QualityReport(
            decided=len(decided),
            approved=approved,
            corrected=corrected,
            correction_share=corrected / len(decided) if decided else None,
            model_accuracy=(sum(p == h for p, h in labelled) / len(labelled) if labelled else None),
            labeler_failures_decided=len(decided) - len(labelled),
            by_domain=by_domain,
            confusion={p: dict(h) for p, h in sorted(confusion.items())},
            throughput=_throughput(self._decisions_frame(), now),
        )

    def last_review_seq(self) -> int:
        """The newest decision's sequence number (0 when none): a sensor's cursor."""
        with self._read_engine.begin() as conn:
            return _last_seq(conn)

    def reviews_since(self, cursor: int | datetime) -> int:
        """How many decisions are newer than a `last_review_seq()` value or a UTC time."""
        newer = (
            _reviews.c.decided_at > cursor
            if isinstance(cursor, datetime)
            else _reviews.c.seq > cursor
        )
        with self._read_engine.begin() as conn:
            return conn.execute(
                sa.select(sa.func.count()).where(_reviews.c.action == _DECIDE, newer)
            ).scalar_one()

    def integrity_problems(self) -> list[str]:
        """Invariant checks (and SQLite's integrity_check): empty when the store is sound."""
        problems: list[str] = []
        decisions = (
            sa.select(_reviews.c.item_id, sa.func.count().label("n"))
            .where(_reviews.c.action == _DECIDE)
            .group_by(_reviews.c.item_id)
            .subquery()
        )
        n_decisions = sa.func.coalesce(decisions.c.n, 0)
        checks = {
            "decided item without its decision fields": sa.and_(
                _items.c.status.in_(_DECIDED_STATUSES),
                sa.or_(
                    _items.c.corrected_domain.is_(None),
                    _items.c.reviewer_id.is_(None),
                    _items.c.review_timestamp.is_(None),
                    _items.c.lease_holder.is_not(None),
                ),
            ),
            "open item carrying a decision": sa.and_(
                _items.c.status.in_(_OPEN_STATUSES), _items.c.corrected_domain.is_not(None)
            ),
            "unknown status": _items.c.status.not_in(_OPEN_STATUSES + _DECIDED_STATUSES),
            "review count differs from its review rows": _items.c.reviews != n_decisions,
            "decided item without any review row": sa.and_(
                _items.c.status.in_(_DECIDED_STATUSES), n_decisions == 0
            ),
        }
        with self._read_engine.begin() as conn:
            if self._engine.dialect.name == "sqlite":
                result = conn.exec_driver_sql("PRAGMA integrity_check").scalar_one()
                if result != "ok":
                    problems.append(f"sqlite integrity_check: {result}")
            for problem, condition in checks.items():
                bad = conn.execute(
                    sa.select(_items.c.id)
                    .select_from(_items.outerjoin(decisions, decisions.c.item_id == _items.c.id))
                    .where(condition)
                    .limit(5)
                ).scalars()
                problems.extend(f"{problem}: {item_id}" for item_id in bad)
            orphans = conn.execute(
                sa.select(sa.func.count())
                .select_from(_reviews)
                .where(~sa.exists().where(_items.c.id == _reviews.c.item_id))
            ).scalar_one()
            if orphans:
                problems.append(f"{orphans} review row(s) without their item")
        return problems

    # -- output --------------------------------------------------------------------------

    def verified_labels(self) -> pd.DataFrame:
        """Approved + corrected items in the verified-label-row shape (VERIFIED_LABEL_COLUMNS).

        `label_origin` is "adjudicated" where the item's reviewers disagreed, else
        "human_verified"; `votes` counts its decisions; `predicted_source` is the model tier
        whose label (`predicted_domain`, `confidence`) the reviewers saw.
        """
        votes = (
            sa.select(
                _reviews.c.item_id,
                sa.func.count().label("votes"),
                sa.func.count(sa.distinct(_reviews.c.domain)).label("domains"),
            )
            .where(_reviews.c.action == _DECIDE)
            .group_by(_reviews.c.item_id)
            .subquery()
        )
        with self._read_engine.begin() as conn:
            rows = conn.execute(
                sa.select(
                    _items.c.id.label("row_id"),
                    _items.c.text,
                    _items.c.corrected_domain.label("domain"),
                    _items.c.predicted_domain,
                    _items.c.confidence,
                    _items.c.reviewer_id,
                    _items.c.review_timestamp.label("reviewed_at"),
                    _items.c.status.label("review_status"),
                    votes.c.votes,
                    votes.c.domains,
                    _items.c.reason.label("review_reason"),
                    _items.c.label_source.label("predicted_source"),
                )
                .join(votes, votes.c.item_id == _items.c.id)
                .where(_items.c.status.in_(_DECIDED_STATUSES))
                .order_by(_items.c.review_timestamp, _items.c.id)
            ).all()
        columns = [*VERIFIED_LABEL_COLUMNS[:8], "votes", "domains", "review_reason"]
        frame = pd.DataFrame(rows, columns=[*columns, "predicted_source"])
        frame["confidence"] = frame["confidence"].astype(float)
        frame["reviewed_at"] = pd.to_datetime(frame["reviewed_at"], utc=True)
        frame["label_source"] = "reviewer:" + frame["reviewer_id"].astype(str)
        frame["label_origin"] = [
            (LabelOrigin.ADJUDICATED if n > 1 else LabelOrigin.HUMAN_VERIFIED).value
            for n in frame["domains"]
        ]
        frame["votes"] = frame["votes"].astype(int)
        return frame[VERIFIED_LABEL_COLUMNS]

    def decision_votes(self) -> pd.DataFrame:
        """Every decision (not skips) on every item: VOTE_COLUMNS, oldest first. Open items'
        votes are included: a reviewer's reliability shows in them too."""
        with self._read_engine.begin() as conn:
            rows = conn.execute(
                sa.select(_reviews.c.item_id, _reviews.c.reviewer_id, _reviews.c.domain)
                .where(_reviews.c.action == _DECIDE)
                .order_by(_reviews.c.seq)
            ).all()
        return pd.DataFrame(rows, columns=VOTE_COLUMNS)

    def request_second_opinion(self, item_ids: Iterable[str], reason: ReviewReason) -> int:
        """Reopen decided items that only one reviewer decided, for another reviewer.

        The item leaves the verified labels until the next decision: with two votes that
        agree it is decided again, with two that differ it goes to adjudication. Items with
        two or more decisions already are settled and left alone. Returns how many reopened.
        """
        ids = list(dict.fromkeys(item_ids))
        reopened = 0
        with self._write() as conn:
            for start in range(0, len(ids), _ID_CHUNK):
                chunk = ids[start : start + _ID_CHUNK]
                reopened += conn.execute(
                    _items.update()
                    .where(
                        _items.c.id.in_(chunk),
                        _items.c.status.in_(_DECIDED_STATUSES),
                        _items.c.reviews == 1,
                    )
                    .values(
                        status=sa.case(
                            (_items.c.labeler_failed, ReviewStatus.FAILED.value),
                            else_=ReviewStatus.PENDING.value,
                        ),
                        required_reviews=2,
                        reason=reason.value,
                        priority=_PRIORITY_RANK[ReviewPriority.CRITICAL],
                        corrected_domain=None,
                        reviewer_id=None,
                        review_timestamp=None,
                        **_CLEARED_LEASE,
                    )
                ).rowcount
        return reopened

    def export_reviewed(
        self, path: str | Path | None = None, fmt: ExportFormat | None = None
    ) -> Path:
        """Write `verified_labels()` to a file and return its path.

        Default: `data_dir/reviewed/reviewed.<fmt>`; `fmt` defaults to the path's suffix, else
        jsonl. Written to a temporary file and renamed, so readers never see half a file.
        """
        formats = get_args(ExportFormat)
        if fmt is None:
            suffix = Path(path).suffix.lstrip(".").lower() if path is not None else ""
            fmt = cast(ExportFormat, suffix) if suffix in formats else "jsonl"
        if fmt not in formats:
            raise InvalidReviewError(f"unknown export format {fmt!r}; use jsonl, csv or parquet")
        target = (
            Path(path)
            if path is not None
            else (Path(self.config.data_dir) / "reviewed" / f"reviewed.{fmt}")
        )
        target.parent.mkdir(parents=True, exist_ok=True)
        frame = self.verified_labels()
        partial = target.with_name(f".{target.name}.{uuid.uuid4().hex}.partial")
        try:
            if fmt == "parquet":
                frame.to_parquet(partial, index=False)
            elif fmt == "csv":
                frame.to_csv(partial, index=False)
            else:
                frame.to_json(
                    partial, orient="records", lines=True, force_ascii=False, date_format="iso"
                )
            os.replace(partial, target)
        finally:
            partial.unlink(missing_ok=True)
        return target

    # -- private -------------------------------------------------------------------------

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        """One write transaction (BEGIN IMMEDIATE on SQLite), committed on success."""
        with self._writer_lock, self._engine.begin() as conn:
            yield conn

    def _priority_for(self, item: _Incoming | Mapping[str, Any]) -> ReviewPriority:
        """A decision that waits on another (a second opinion, a doubted label) -> CRITICAL;
        a labeler failure -> HIGH; the rest MEDIUM, ordered among themselves by gain."""
        failed = item.labeler_failed if isinstance(item, _Incoming) else item["labeler_failed"]
        reason = item.reason if isinstance(item, _Incoming) else item["reason"]
        if reason in (ReviewReason.SECOND_OPINION, ReviewReason.POSSIBLE_LABEL_ERROR):
            return ReviewPriority.CRITICAL
        return ReviewPriority.HIGH if failed else ReviewPriority.MEDIUM

    def _new_row(self, incoming: _Incoming, now: datetime) -> dict[str, Any]:
        return {
            "id": incoming.id,
            **incoming.model_fields(),
            "status": _base_status(incoming.labeler_failed).value,
            "priority": _PRIORITY_RANK[self._priority_for(incoming)],
            "needs_adjudication": False,
            "required_reviews": self.config.reviews_per_item,
            "reviews": 0,
            "created_at": now,
            **_CLEARED_LEASE,
        }

    def _refresh_values(self, row: RowMapping, incoming: _Incoming) -> dict[str, Any]:
        """New model fields for a still-open item; adjudication and skips are kept."""
        if row["needs_adjudication"]:
            priority = ReviewPriority.CRITICAL
        else:
            priority = self._priority_for(incoming)
        if incoming.labeler_failed:
            status = ReviewStatus.FAILED.value
        elif row["status"] == ReviewStatus.SKIPPED.value:
            status = row["status"]
        else:
            status = ReviewStatus.PENDING.value
        return {
            "item_id": incoming.id,
            **incoming.model_fields(),
            "status": status,
            "priority": _PRIORITY_RANK[priority],
        }

    def _resolve_domain(
        self, row: RowMapping, corrected_domain: str | None, approve: bool | None
    ) -> str:
        predicted = row["predicted_domain"]
        if corrected_domain is None:
            if not approve:
                raise InvalidReviewError("choose a domain (or approve the model's prediction)")
            if predicted is None:
                raise InvalidReviewError(
                    f"item {row['id']!r} has no prediction to approve (the labeler failed on "
                    "it); choose a domain"
                )
            corrected_domain = predicted
        if corrected_domain not in self.taxonomy:
            raise UnknownDomainError(
                f"unknown domain {corrected_domain!r}; choose one of: "
                + ", ".join(self.taxonomy.ids)
            )
        if approve is True and corrected_domain != predicted:
            raise InvalidReviewError(
                f"approve=True but {corrected_domain!r} differs from the prediction {predicted!r}"
            )
        if approve is False and corrected_domain == predicted:
            raise InvalidReviewError(
                f"approve=False but {corrected_domain!r} is the model's own prediction"
            )
        return corrected_domain

    def _state_after_vote(
        self,
        row: RowMapping,
        votes: list[str],
        domain: str,
        reviewer_id: str,
        now: datetime,
    ) -> dict[str, Any]:
        """The item's columns once `votes` (including the new `domain`) are recorded."""
        values: dict[str, Any] = {"reviews": len(votes), **_CLEARED_LEASE}
        if row["needs_adjudication"]:
            final: str | None = domain  # the adjudicating review decides
        elif len(votes) < row["required_reviews"]:
            return values  # still open, waiting for more independent reviews
        elif self._wants_second_opinion(row, votes):
            return {
                **values,
                "required_reviews": len(votes) + 1,
                "reason": ReviewReason.SECOND_OPINION.value,
                "priority": _PRIORITY_RANK[ReviewPriority.CRITICAL],
            }
        else:
            final = _majority(votes)
        if final is None:
            return {
                **values,
                "status": _base_status(row["labeler_failed"]).value,
                "needs_adjudication": True,
                "priority": _PRIORITY_RANK[ReviewPriority.CRITICAL],
            }
        status = (
            ReviewStatus.APPROVED if final == row["predicted_domain"] else ReviewStatus.CORRECTED
        )
        return {
            **values,
            "status": status.value,
            "corrected_domain": final,
            "reviewer_id": reviewer_id,
            "review_timestamp": now,
            "needs_adjudication": False,
        }

    def _wants_second_opinion(self, row: RowMapping, votes: list[str]) -> bool:
        """One decision so far, against a model at least `second_opinion_confidence` sure."""
        threshold = self.config.second_opinion_confidence
        return (
            threshold is not None
            and len(votes) == 1
            and row["predicted_domain"] is not None
            and votes[0] != row["predicted_domain"]
            and row["confidence"] >= threshold
        )

    def _available_to(self, reviewer_id: str, now: datetime) -> sa.ColumnElement[bool]:
        """Open, not under a valid lease, and never decided or skipped by this reviewer."""
        return sa.and_(
            _IS_OPEN_SQL,
            sa.or_(_items.c.lease_expires_at.is_(None), _items.c.lease_expires_at <= now),
            ~sa.exists().where(
                _reviews.c.item_id == _items.c.id, _reviews.c.reviewer_id == reviewer_id
            ),
        )

    def _decisions_frame(self) -> pd.DataFrame:
        """Every decision row joined with its item's prediction and final decision."""
        with self._read_engine.begin() as conn:
            rows = conn.execute(
                sa.select(
                    _reviews.c.item_id,
                    _reviews.c.reviewer_id,
                    _reviews.c.domain,
                    _reviews.c.decided_at,
                    _reviews.c.seconds_spent,
                    _items.c.predicted_domain,
                    _items.c.corrected_domain.label("final_domain"),
                )
                .join(_items, _items.c.id == _reviews.c.item_id)
                .where(_reviews.c.action == _DECIDE)
                .order_by(_reviews.c.seq)
            ).all()
        columns = [
            "item_id",
            "reviewer_id",
            "domain",
            "decided_at",
            "seconds_spent",
            "predicted_domain",
            "final_domain",
        ]
        frame = pd.DataFrame(rows, columns=columns)
        frame["seconds_spent"] = frame["seconds_spent"].astype(float)
        return frame


# -- helpers --------------------------------------------------------------------------------


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _to_item(row: RowMapping, now: datetime) -> ReviewItem:
    """The public view of a row: an open item under a valid lease shows as IN_REVIEW."""
    leased = (
        row["status"] in _OPEN_STATUSES
        and row["lease_expires_at"] is not None
        and row["lease_expires_at"] > now
    )
    return ReviewItem(
        id=row["id"],
        text=row["text"],
        predicted_domain=row["predicted_domain"],
        confidence=row["confidence"],
        top_candidates=json.loads(row["top_candidates"]),
        corrected_domain=row["corrected_domain"],
        reviewer_id=row["reviewer_id"],
        review_timestamp=row["review_timestamp"],
        status=ReviewStatus.IN_REVIEW if leased else ReviewStatus(row["status"]),
        priority=_RANK_PRIORITY[row["priority"]],
        created_at=row["created_at"],
        label_source=row["label_source"],
        error=row["error"],
        reviews=row["reviews"],
        required_reviews=row["required_reviews"],
        needs_adjudication=row["needs_adjudication"],
        reason=ReviewReason(row["reason"]),
        lease_holder=row["lease_holder"] if leased else None,
        lease_expires_at=row["lease_expires_at"] if leased else None,
    )


def _check_reviewer(reviewer_id: str) -> None:
    if not isinstance(reviewer_id, str) or not reviewer_id.strip() or len(reviewer_id) > 128:
        raise InvalidReviewError("reviewer_id must be a non-empty string of at most 128 chars")


def _base_status(labeler_failed: bool) -> ReviewStatus:
    return ReviewStatus.FAILED if labeler_failed else ReviewStatus.PENDING


def _text_or_none(value: Any) -> str | None:
    """A stripped string, or None for None/NaN/empty (pandas hands NaN for missing values)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    text = str(value).strip()
    return text or None


def _candidates_json(value: Any) -> str:
    """[[domain, score], ...] as JSON, from a list, tuples, numpy arrays or a JSON string."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            return "[]"
    if hasattr(value, "tolist"):
        value = value.tolist()
    if not isinstance(value, Sequence) or isinstance(value, str):
        return "[]"
    candidates = []
    for entry in value:
        entry = entry.tolist() if hasattr(entry, "tolist") else entry
        if isinstance(entry, Sequence) and not isinstance(entry, str) and len(entry) >= 2:
            try:
                candidates.append([str(entry[0]), float(entry[1])])
            except (TypeError, ValueError):
                continue
    return json.dumps(candidates, ensure_ascii=False)


def _normalise(record: Mapping[str, Any] | BaseModel) -> _Incoming | str:
    """An input row as `_Incoming`, or the reason it cannot be queued."""
    data = record.model_dump() if isinstance(record, BaseModel) else dict(record)
    text = _text_or_none(data.get("text"))
    if text is None:
        return "no text"
    status = _text_or_none(data.get("status"))
    if status == "deferred":
        return "deferred by the labeler (not labelled yet)"
    predicted = next(
        (
            value
            for key in ("predicted_domain", "domain", "domain_id")
            if (value := _text_or_none(data.get(key))) is not None
        ),
        None,
    )
    failed = status == "failed" or predicted is None
    try:
        confidence = float(data.get("confidence") or 0.0)
    except (TypeError, ValueError):
        confidence = 0.0
    confidence = 0.0 if math.isnan(confidence) else min(1.0, max(0.0, confidence))
    reason = _text_or_none(data.get("review_reason")) or ReviewReason.NEEDS_REVIEW.value
    if reason not in set(ReviewReason):
        return f"unknown review reason {reason!r}"
    try:
        gain = float(data.get("review_gain") or 0.0)
    except (TypeError, ValueError):
        gain = 0.0
    return _Incoming(
        id=_text_or_none(data.get("row_id")) or _text_or_none(data.get("id")) or row_id(text),
        text=text,
        predicted_domain=None if failed else predicted,
        confidence=confidence,
        top_candidates=_candidates_json(data.get("top_candidates")),
        label_source=_text_or_none(data.get("label_source")),
        error=_text_or_none(data.get("error")),
        labeler_failed=failed,
        reason=reason,
        gain=0.0 if math.isnan(gain) else gain,
    )


def _add_missing_columns(conn: Connection) -> None:
    """Bring a store made by an earlier release up to the current item table."""
    present = {c["name"] for c in sa.inspect(conn).get_columns(_items.name)}
    for name, ddl in _ADDED_COLUMNS.items():
        if name not in present:
            conn.execute(sa.text(f"ALTER TABLE {_items.name} ADD COLUMN {name} {ddl}"))


def _withdraw_untouched(conn: Connection, keep: set[str], now: datetime) -> int:
    """Delete open items outside `keep` that no one has decided, skipped or leased."""
    touched = sa.exists().where(_reviews.c.item_id == _items.c.id)
    leased = sa.and_(_items.c.lease_expires_at.is_not(None), _items.c.lease_expires_at > now)
    candidates = conn.execute(
        sa.select(_items.c.id).where(_IS_OPEN_SQL, ~touched, ~leased)
    ).scalars()
    gone = [item_id for item_id in candidates if item_id not in keep]
    for start in range(0, len(gone), _ID_CHUNK):
        conn.execute(_items.delete().where(_items.c.id.in_(gone[start : start + _ID_CHUNK])))
    return len(gone)


def _fetch_by_ids(conn: Connection, ids: list[str]) -> dict[str, RowMapping]:
    found: dict[str, RowMapping] = {}
    for start in range(0, len(ids), _ID_CHUNK):
        chunk = ids[start : start + _ID_CHUNK]
        for row in conn.execute(sa.select(_items).where(_items.c.id.in_(chunk))).mappings():
            found[row["id"]] = row
    return found


def _fetch_item(conn: Connection, item_id: str, *, lock: bool = False) -> RowMapping:
    query = sa.select(_items).where(_items.c.id == item_id)
    row = conn.execute(query.with_for_update() if lock else query).mappings().first()
    if row is None:
        raise UnknownItemError(f"no review item {item_id!r}")
    return row


def _lock_item(conn: Connection, item_id: str) -> RowMapping:
    """The item's row, locked for this transaction (FOR UPDATE; SQLite holds the write lock)."""
    return _fetch_item(conn, item_id, lock=True)


def _action_of(conn: Connection, item_id: str, reviewer_id: str) -> RowMapping | None:
    return (
        conn.execute(
            sa.select(_reviews).where(
                _reviews.c.item_id == item_id, _reviews.c.reviewer_id == reviewer_id
            )
        )
        .mappings()
        .first()
    )


def _votes(conn: Connection, item_id: str) -> list[str]:
    return list(
        conn.execute(
            sa.select(_reviews.c.domain)
            .where(_reviews.c.item_id == item_id, _reviews.c.action == _DECIDE)
            .order_by(_reviews.c.seq)
        ).scalars()
    )


def _last_seq(conn: Connection) -> int:
    return conn.execute(
        sa.select(sa.func.coalesce(sa.func.max(_reviews.c.seq), 0)).where(
            _reviews.c.action == _DECIDE
        )
    ).scalar_one()


def _require_lease(row: RowMapping, reviewer_id: str) -> None:
    """The reviewer must be the item's lease holder. An expired lease still counts while
    nobody else has claimed the item: a claim always overwrites `lease_holder`."""
    if row["status"] in _DECIDED_STATUSES:
        raise NotLeasedError(f"item {row['id']!r} is already decided ({row['status']})")
    if row["lease_holder"] != reviewer_id:
        raise NotLeasedError(
            f"item {row['id']!r} is not leased to reviewer {reviewer_id!r}"
            + (" (another reviewer holds it now)" if row["lease_holder"] else "")
            + "; get it with get_next first"
        )


def _seconds_since(started: datetime | None, now: datetime) -> float | None:
    return None if started is None else max(0.0, (now - started).total_seconds())


def _majority(votes: list[str]) -> str | None:
    """The domain with a strict majority of the votes, or None (a tie or a split)."""
    if not votes:
        return None
    domain, n = Counter(votes).most_common(1)[0]
    return domain if 2 * n > len(votes) else None


def _share(matches: pd.Series) -> float | None:
    return float(matches.mean()) if len(matches) else None


def _cohen_kappa(pairs: list[tuple[str, str]]) -> tuple[float, float | None]:
    """(observed agreement, Cohen's kappa) for two raters' labels on the same items."""
    n = len(pairs)
    observed = sum(a == b for a, b in pairs) / n
    first, second = Counter(a for a, _ in pairs), Counter(b for _, b in pairs)
    expected = sum(first[c] * second[c] for c in first) / (n * n)
    return observed, None if expected >= 1 else (observed - expected) / (1 - expected)


def _fleiss_kappa(ratings: list[list[str]]) -> float | None:
    """Fleiss' kappa, with each item's agreement computed over its own number of raters."""
    items = [r for r in ratings if len(r) >= 2]
    if not items:
        return None
    totals: Counter[str] = Counter()
    agreement = 0.0
    for labels in items:
        counts = Counter(labels)
        totals.update(counts)
        n = len(labels)
        agreement += (sum(c * c for c in counts.values()) - n) / (n * (n - 1))
    observed = agreement / len(items)
    n_ratings = sum(totals.values())
    expected = sum((c / n_ratings) ** 2 for c in totals.values())
    return None if expected >= 1 else (observed - expected) / (1 - expected)


def _throughput(decisions: pd.DataFrame, now: datetime) -> list[ReviewerThroughput]:
    midnight = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    result = []
    for reviewer, group in decisions.groupby("reviewer_id", sort=True):
        times = [pd.Timestamp(t).to_pydatetime() for t in group["decided_at"]]
        seconds = group["seconds_spent"].dropna()
        working_hours = float(seconds.sum()) / 3600
        days = {t.date() for t in times}
        result.append(
            ReviewerThroughput(
                reviewer_id=str(reviewer),
                decisions=len(group),
                first_at=min(times),
                last_at=max(times),
                decisions_per_hour=len(seconds) / working_hours if working_hours > 0 else None,
                decisions_per_day=len(group) / len(days),
                done_today=sum(t >= midnight for t in times),
            )
        )
    return result
