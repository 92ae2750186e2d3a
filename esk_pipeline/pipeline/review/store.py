"""`ReviewDataset`: the human-in-the-loop review queue, one object over one SQL store.

Labels the machine is unsure of (or failed on) become `ReviewItem`s; reviewers lease them
with `get_next`, decide with `submit_review`, and the decisions flow back out as verified
labels (`verified_labels()`, `export_reviewed()`).

This class owns the connections and the transactions: each public method is one
transaction, and the work inside it is done by the package's modules (`intake`, `leases`,
`decisions`, `queue_stats`, `metrics`, `export`), which take the open connection. A SQLite
file in WAL mode under `data_dir` by default, or any SQLAlchemy URL (PostgreSQL for a team).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sized
from contextlib import AbstractContextManager, contextmanager, nullcontext
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd
from pydantic import BaseModel
from sqlalchemy.engine import Connection

from esk_pipeline.pipeline.progress import SILENT, ProgressReporter
from esk_pipeline.pipeline.review import (
    _decisions,
    _doubts,
    _export,
    _intake,
    _leases,
    _metrics,
    _queue_stats,
    _schema,
)
from esk_pipeline.pipeline.review._engine import READ_ONLY, FifoLock, make_engine
from esk_pipeline.pipeline.review._rows import check_reviewer, fetch_item, last_seq, to_item, utcnow
from esk_pipeline.pipeline.review.errors import InvalidReviewError
from esk_pipeline.pipeline.review.models import (
    AddReport,
    AgreementReport,
    Clock,
    ExportFormat,
    QualityReport,
    QueueStats,
    ReviewDatasetConfig,
    ReviewItem,
    ReviewReason,
)
from esk_pipeline.pipeline.taxonomy import DEFAULT_TAXONOMY_PATH, Taxonomy

__all__ = ["ReviewDataset"]


class ReviewDataset:
    """The review queue over a SQL store (SQLite WAL by default; PostgreSQL by URL).

    Thread-safe: one instance may be shared by the API's worker threads; several processes may
    open the same store. `clock` returns the current UTC time (injectable for lease tests).
    Without a `taxonomy`, the project's `data/taxonomy.yaml` (relative to the working folder).
    """

    def __init__(
        self,
        config: ReviewDatasetConfig | None = None,
        taxonomy: Taxonomy | None = None,
        *,
        clock: Clock | None = None,
    ) -> None:
        self.config = config or ReviewDatasetConfig()
        self.taxonomy = taxonomy or Taxonomy.load(DEFAULT_TAXONOMY_PATH)
        self._clock = clock or utcnow
        self._engine = make_engine(self.config)
        self._read_engine = self._engine.execution_options(**{READ_ONLY: True})
        # SQLite's busy handler polls with growing sleeps, so 50 threads contending for the
        # write lock starve each other (seconds of tail latency); queueing them on a lock
        # first leaves the busy handler to arbitrate only between processes.
        self._writer_lock: AbstractContextManager[Any] = (
            FifoLock() if self._engine.dialect.name == "sqlite" else nullcontext()
        )
        with self._engine.begin() as conn:  # BEGIN IMMEDIATE on SQLite: one creator at a time
            _schema.create_or_upgrade(conn)

    def close(self) -> None:
        """Release the database connections."""
        self._engine.dispose()

    def __enter__(self) -> ReviewDataset:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # The queue

    def add_items(
        self,
        items: Iterable[Mapping[str, Any] | BaseModel] | pd.DataFrame,
        *,
        raise_when_full: bool = False,
        withdraw_others: bool = False,
        left_out: int = 0,
        progress: ProgressReporter = SILENT,
    ) -> AddReport:
        """Queue label rows / ClassificationResult-like records, keyed on the row id.

        Accepted keys: `row_id` or `id` (else `ids.row_id(text)`), `text`, `domain` or
        `predicted_domain`, `confidence`, `top_candidates` (list or JSON string), `status` ("failed"
        = labeler failure, "deferred" = not labelled yet: ignored), `error`, `label_source`,
        `review_reason` (a `ReviewReason`: why it is queued, which a decision never changes; a
        re-plan does only until someone decides it), `review_gain` (higher is reviewed first).
        Re-adding refreshes the model fields of still-open items and never touches a decided one.
        With `withdraw_others`, open items nobody has touched (no decision, skip or valid lease)
        that are not in this batch leave the queue: the batch is the whole set of texts that need
        people now. New items beyond `max_queue_size` (counting open items) are not added; the most
        urgent go in first and the report says how many were left out (or `QueueFullError` with
        `raise_when_full`); a frame's new rows that could not enter are left out before any row is
        read one by one; `left_out`: new rows the caller already left out that way
        (`planning.plan_review`), counted with them. One transaction for the batch. `progress` gets
        a "queueing" phase counting the rows read.
        """
        now = self._clock()
        with self._write() as conn:
            if isinstance(items, pd.DataFrame):
                items, cut = _intake.beyond_capacity(conn, items, self.config.max_queue_size)
                left_out += cut
            if isinstance(items, Sized):
                progress.phase("queueing", len(items), "items")
            records = _frame_records(items) if isinstance(items, pd.DataFrame) else items
            batch, report = _intake.parse_batch(records, self.config.max_queue_size, progress)
            _intake.queue_batch(
                conn,
                batch,
                report,
                self.config,
                now,
                raise_when_full=raise_when_full,
                withdraw_others=withdraw_others,
                left_out=left_out,
            )
        return report

    def item_ids(self) -> set[str]:
        """The id of every item the store holds (open or decided)."""
        with self._read() as conn:
            return _intake.item_ids(conn)

    def get_next(self, count: int = 1, reviewer_id: str = "anonymous") -> list[ReviewItem]:
        """Lease up to `count` items to the reviewer, highest priority first, then oldest.

        The reviewer's own still-valid leases come back first (renewed), so calling again is
        idempotent; the rest are claimed atomically. Items this reviewer already decided or
        skipped are never handed to them again.
        """
        check_reviewer(reviewer_id)
        if count < 1:
            raise InvalidReviewError(f"count must be at least 1, got {count}")
        now = self._clock()
        with self._write() as conn:
            return _leases.claim(conn, reviewer_id, count, now, self.config.lease_seconds)

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
        check_reviewer(reviewer_id)
        now = self._clock()
        with self._write() as conn:
            return _decisions.submit(
                conn,
                item_id,
                corrected_domain,
                reviewer_id,
                approve,
                taxonomy=self.taxonomy,
                config=self.config,
                now=now,
            )

    def skip(self, item_id: str, reviewer_id: str) -> ReviewItem:
        """Give the item back for others: it is never handed to this reviewer again.

        The item's status becomes SKIPPED (a labeler failure stays FAILED); skipping twice is
        a no-op.
        """
        check_reviewer(reviewer_id)
        now = self._clock()
        with self._write() as conn:
            return _decisions.skip(conn, item_id, reviewer_id, now)

    def release(self, item_id: str, reviewer_id: str) -> ReviewItem:
        """Give back a lease without deciding; the item returns to the queue for anyone."""
        check_reviewer(reviewer_id)
        now = self._clock()
        with self._write() as conn:
            return _leases.release(conn, item_id, reviewer_id, now)

    def undo_last(self, reviewer_id: str) -> ReviewItem:
        """Revert the reviewer's most recent decision or skip and lease the item to them again.

        Refused (UndoError) when there is nothing to undo or the item has moved on: another
        reviewer has reviewed or skipped it since, or holds a lease on it.
        """
        check_reviewer(reviewer_id)
        now = self._clock()
        with self._write() as conn:
            return _decisions.undo_last(conn, reviewer_id, self.config, now)

    def undo(self, item_id: str, decision_id: int, reviewer_id: str) -> tuple[ReviewItem, bool]:
        """Revert the reviewer's decision or skip `decision_id` (the `decision_id` of the submit
        or skip answer) on `item_id` and lease the item to them again.

        Idempotent: when that decision is gone (undone already) nothing changes. Returns the
        item and whether this call undid it. UndoError as for `undo_last`.
        """
        check_reviewer(reviewer_id)
        now = self._clock()
        with self._write() as conn:
            return _decisions.undo(conn, item_id, decision_id, reviewer_id, self.config, now)

    def request_second_opinion(self, item_ids: Iterable[str], reason: ReviewReason) -> int:
        """Ask one more reviewer about decisions only one reviewer made, once per decision.

        The decision stands meanwhile: it stays in the verified labels, flagged `doubt_pending`, and
        the item waits in the queue (CRITICAL, `waiting_for` = `reason`; the reason it was queued
        for is kept) for a second reviewer. Two agreeing votes settle it; two that differ send it to
        adjudication. Decisions doubted before, and items with two or more decisions, are left
        alone, so asking again on every run changes nothing. Returns how many doubts were raised.
        """
        with self._write() as conn:
            return _doubts.raise_doubt(conn, item_ids, reason)

    def get_item(self, item_id: str) -> ReviewItem:
        """One item by id (UnknownItemError when absent)."""
        with self._read() as conn:
            return to_item(fetch_item(conn, item_id), self._clock())

    # Numbers

    def stats(self, reviewer_id: str | None = None) -> QueueStats:
        """Counts by status and priority, queue length, decisions today (per reviewer)."""
        now = self._clock()
        with self._read() as conn:
            return _queue_stats.queue_stats(conn, now, self.config.max_queue_size, reviewer_id)

    def agreement(self) -> AgreementReport:
        """Inter-reviewer agreement over items with >= 2 decisions.

        Fleiss' kappa (generalised to a varying number of reviewers per item) over all overlap
        items; Cohen's kappa per reviewer pair sharing >= 2 items, and their mean. Per reviewer:
        agreement with the item's final (majority or adjudicated) decision, agreement with the
        model's prediction, and the median seconds from lease to decision.
        """
        with self._read() as conn:
            return _metrics.agreement(conn)

    def quality_metrics(self) -> QualityReport:
        """Model accuracy against reviewers, confusion matrix, corrections, throughput.

        Accuracy and the per-domain figures count decided items the model labelled; items the
        labeler failed on appear only in the confusion matrix (row "__failed__") and in
        `labeler_failures_decided`. Throughput: decisions per hour of lease time spent, per
        UTC day with activity, and today.
        """
        now = self._clock()
        with self._read() as conn:
            return _metrics.quality(conn, now)

    def ping(self) -> None:
        """Read the newest decision's number: the database answers and holds the schema (a
        readiness probe's question, constant time whatever the store's size)."""
        with self._read() as conn:
            last_seq(conn)

    def last_review_seq(self) -> int:
        """The newest decision's sequence number (0 when none): a sensor's cursor."""
        with self._read() as conn:
            return last_seq(conn)

    def reviews_since(self, cursor: int | datetime) -> int:
        """How many decisions are newer than a `last_review_seq()` value or a UTC time."""
        with self._read() as conn:
            return _queue_stats.reviews_since(conn, cursor)

    def integrity_problems(self) -> list[str]:
        """Invariant checks (and SQLite's integrity_check): empty when the store is sound."""
        with self._read() as conn:
            return _schema.integrity_problems(conn)

    # Output

    def verified_labels(self) -> pd.DataFrame:
        """Approved + corrected items in the verified-label-row shape (VERIFIED_LABEL_COLUMNS).

        `label_origin` is "adjudicated" where the item's reviewers disagreed, else
        "human_verified"; `votes` counts its decisions; `predicted_source` is the model tier
        whose label (`predicted_domain`, `confidence`) the reviewers saw.
        """
        with self._read() as conn:
            return _export.verified_labels(conn)

    def decision_votes(self) -> pd.DataFrame:
        """Every decision (not skips) on every item: VOTE_COLUMNS, oldest first. Open items'
        votes are included: a reviewer's reliability shows in them too."""
        with self._read() as conn:
            return _export.decision_votes(conn)

    def export_reviewed(
        self, path: str | Path | None = None, fmt: ExportFormat | None = None
    ) -> Path:
        """Write `verified_labels()` to a file and return its path.

        Default: `data_dir/reviewed/reviewed.<fmt>`; `fmt` defaults to the path's suffix, else
        jsonl. Written to a temporary file and renamed, so readers never see half a file.
        """
        target, fmt = _export.export_target(path, fmt, self.config.data_dir)
        _export.write_export(self.verified_labels(), target, fmt)
        return target

    # Transactions

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        """One write transaction (BEGIN IMMEDIATE on SQLite), committed on success."""
        with self._writer_lock, self._engine.begin() as conn:
            yield conn

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        """One read transaction (plain BEGIN on SQLite: never waits for the write lock)."""
        with self._read_engine.begin() as conn:
            yield conn


def _frame_records(frame: pd.DataFrame, chunk_rows: int = 50_000) -> Iterator[dict[str, Any]]:
    """The frame's rows as dicts, a chunk at a time (never all rows as dicts at once)."""
    for start in range(0, len(frame), chunk_rows):
        yield from frame.iloc[start : start + chunk_rows].to_dict("records")
