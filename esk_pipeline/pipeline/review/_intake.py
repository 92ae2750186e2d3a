"""Putting label rows into the queue: normalising them, refreshing, withdrawing, the size limit.

`parse_batch` turns input rows (dicts, pydantic models, DataFrame records) into `Incoming`
items keyed on the row id, counting the rows it cannot queue and why. `queue_batch` writes
them in the caller's transaction: new items are inserted (most urgent first, up to
`max_queue_size` open items), still-open items get the new model fields, decided ones are
never touched. `priority_for` is the one rule for an item's priority. A frame far larger than
the queue (every queued text of a long history) is first cut by `beyond_capacity` to the rows
that could enter at all, in one vectorised pass, so queueing costs the queue's size.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from pydantic import BaseModel
from sqlalchemy.engine import Connection, RowMapping

from esk_pipeline.pipeline.ids import row_id
from esk_pipeline.pipeline.progress import SILENT, ProgressReporter
from esk_pipeline.pipeline.review._rows import base_status, fetch_by_ids
from esk_pipeline.pipeline.review._schema import (
    CLEARED_LEASE,
    DECIDED_STATUSES,
    ID_CHUNK,
    IS_OPEN_SQL,
    OPEN_STATUSES,
    PRIORITY_RANK,
    item_table,
    review_table,
)
from esk_pipeline.pipeline.review.errors import QueueFullError
from esk_pipeline.pipeline.review.models import (
    AddReport,
    ReviewDatasetConfig,
    ReviewPriority,
    ReviewReason,
    ReviewStatus,
)

_PROGRESS_STEP = 10_000  # rows read between two progress reports


@dataclass(frozen=True)
class Incoming:
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


def priority_for(labeler_failed: bool, reason: str) -> ReviewPriority:
    """A decision that waits on another (`reason` a second opinion, a doubted label: what the
    item waits for, else why it was queued) -> CRITICAL; a labeler failure -> HIGH; the rest
    MEDIUM, ordered among themselves by gain."""
    if reason in (ReviewReason.SECOND_OPINION, ReviewReason.POSSIBLE_LABEL_ERROR):
        return ReviewPriority.CRITICAL
    return ReviewPriority.HIGH if labeler_failed else ReviewPriority.MEDIUM


def parse_batch(
    records: Iterable[Mapping[str, Any] | BaseModel],
    max_queue_size: int,
    progress: ProgressReporter = SILENT,
) -> tuple[dict[str, Incoming], AddReport]:
    """The queueable rows by id (a later row for the same id wins) and a report so far;
    `progress` advances by the rows read."""
    report = AddReport(max_queue_size=max_queue_size)
    batch: dict[str, Incoming] = {}
    invalid_reasons: Counter[str] = Counter()
    for record in records:
        report.received += 1
        if report.received % _PROGRESS_STEP == 0:
            progress.advance(_PROGRESS_STEP)
        incoming = _normalise(record)
        if isinstance(incoming, str):
            invalid_reasons[incoming] += 1
        else:
            batch[incoming.id] = incoming
    progress.advance(report.received % _PROGRESS_STEP)
    report.invalid = sum(invalid_reasons.values())
    report.unchanged = report.received - report.invalid - len(batch)
    for reason, n in sorted(invalid_reasons.items()):
        report.messages.append(f"{n} row(s) not queued: {reason}")
    return batch, report


def beyond_capacity(
    conn: Connection, frame: pd.DataFrame, max_queue_size: int
) -> tuple[pd.DataFrame, int]:
    """`frame` without the new rows (no item yet) that rank below the `max_queue_size` most
    urgent new rows by `queue_batch`'s order: those could not enter whatever the queue holds.
    Returns the rest and how many were left out. Rows `parse_batch` would refuse stay, and
    take no new row's place."""
    if len(frame) <= max_queue_size or "row_id" not in frame or "text" not in frame:
        return frame, 0
    ids = frame["row_id"].astype("string").str.strip()
    present = item_ids(conn)
    text = frame["text"].astype("string").str.strip()
    status = _stripped(frame, "status")
    # Missing or empty like `_text_or_none`: the default reason.
    reason = _stripped(frame, "review_reason").replace("", pd.NA)
    reason = reason.fillna(ReviewReason.NEEDS_REVIEW.value)
    refused = (
        ids.isna().to_numpy(dtype=bool)
        | text.fillna("").eq("").to_numpy(dtype=bool)
        | status.eq("deferred").fillna(False).to_numpy(dtype=bool)
        | ~reason.isin([r.value for r in ReviewReason]).to_numpy(dtype=bool)
    )
    new = ~ids.isin(present).fillna(False).to_numpy(dtype=bool) & ~refused
    if new.sum() <= max_queue_size:
        return frame, 0
    predicted = np.zeros(len(frame), dtype=bool)
    for column in ("predicted_domain", "domain", "domain_id"):
        value = _stripped(frame, column)
        predicted |= (value.notna() & value.ne("")).fillna(False).to_numpy(dtype=bool)
    failed = status.eq("failed").fillna(False).to_numpy(dtype=bool) | ~predicted
    waiting = reason.isin(
        [ReviewReason.SECOND_OPINION.value, ReviewReason.POSSIBLE_LABEL_ERROR.value]
    )
    rank = np.where(
        waiting.to_numpy(dtype=bool),
        PRIORITY_RANK[ReviewPriority.CRITICAL],
        np.where(failed, PRIORITY_RANK[ReviewPriority.HIGH], PRIORITY_RANK[ReviewPriority.MEDIUM]),
    )
    gain = np.zeros(len(frame))
    if "review_gain" in frame:
        gain = pd.to_numeric(frame["review_gain"], errors="coerce").fillna(0.0).to_numpy()
    order = pd.DataFrame(
        {
            "rank": -rank,
            "gain": -gain,
            "id": ids.to_numpy(),
        },
        index=frame.index,
    )[new].sort_values(["rank", "gain", "id"], kind="stable")
    left_out = order.index[max_queue_size:]
    return frame.drop(index=left_out), len(left_out)


def item_ids(conn: Connection) -> set[str]:
    """The id of every item in the store."""
    return set(conn.execute(sa.select(item_table.c.id)).scalars())


def _stripped(frame: pd.DataFrame, column: str) -> pd.Series:
    if column not in frame:
        return pd.Series(pd.NA, index=frame.index, dtype="string")
    return frame[column].astype("string").str.strip()


def queue_batch(
    conn: Connection,
    batch: dict[str, Incoming],
    report: AddReport,
    config: ReviewDatasetConfig,
    now: datetime,
    *,
    raise_when_full: bool,
    withdraw_others: bool,
    left_out: int = 0,
) -> None:
    """Insert, refresh or keep each item of `batch`, filling in `report` (see `add_items`);
    `left_out`: new rows `beyond_capacity` already cut (counted as not added)."""
    existing = fetch_by_ids(conn, list(batch))
    new: list[Incoming] = []
    refreshes: list[dict[str, Any]] = []
    for incoming in batch.values():
        row = existing.get(incoming.id)
        if row is None:
            new.append(incoming)
        elif row["status"] in DECIDED_STATUSES:
            report.kept_decided += 1
        elif all(row[k] == v for k, v in incoming.model_fields().items()):
            report.unchanged += 1
        else:
            refreshes.append(_refresh_values(row, incoming))
    if refreshes:
        conn.execute(
            item_table.update().where(item_table.c.id == sa.bindparam("item_id")), refreshes
        )
    report.refreshed = len(refreshes)
    if withdraw_others:
        report.withdrawn = _withdraw_untouched(conn, set(batch), now)

    open_count = conn.execute(
        sa.select(sa.func.count()).where(item_table.c.status.in_(OPEN_STATUSES))
    ).scalar_one()
    capacity = max(0, config.max_queue_size - open_count)
    new.sort(
        key=lambda i: (-PRIORITY_RANK[priority_for(i.labeler_failed, i.reason)], -i.gain, i.id)
    )
    accepted, rejected = new[:capacity], new[capacity:]
    report.received += left_out
    if rejected or left_out:
        message = (
            f"review queue is full: {len(rejected) + left_out} of {len(new) + left_out} new "
            "item(s) were not "
            f"added (max_queue_size={config.max_queue_size}, {open_count} item(s) "
            "already waiting); the most urgent were kept. Review the queue or raise "
            "REVIEW_MAX_QUEUE_SIZE, then add them again."
        )
        if raise_when_full:
            raise QueueFullError(message)
        report.messages.append(message)
    if accepted:
        rows = [_new_row(i, config.reviews_per_item, now) for i in accepted]
        conn.execute(item_table.insert(), rows)
    report.added = len(accepted)
    report.rejected_queue_full = len(rejected) + left_out
    report.queue_size = open_count + len(accepted)


def _new_row(incoming: Incoming, reviews_per_item: int, now: datetime) -> dict[str, Any]:
    return {
        "id": incoming.id,
        **incoming.model_fields(),
        "status": base_status(incoming.labeler_failed).value,
        "priority": PRIORITY_RANK[priority_for(incoming.labeler_failed, incoming.reason)],
        "needs_adjudication": False,
        "required_reviews": reviews_per_item,
        "reviews": 0,
        "created_at": now,
        **CLEARED_LEASE,
    }


def _refresh_values(row: RowMapping, incoming: Incoming) -> dict[str, Any]:
    """New model fields for a still-open item. What people's work put there stays: an item
    someone decided (waiting for a second opinion, a doubt's re-check, an adjudication) keeps
    the reason it was queued for (reviewers of one item see it alike) and its priority, and
    skips stay skips."""
    worked_on = row["needs_adjudication"] or row["reviews"] > 0 or row["doubt"] is not None
    reason = row["reason"] if worked_on else incoming.reason
    if row["needs_adjudication"]:
        priority = ReviewPriority.CRITICAL
    else:
        priority = priority_for(incoming.labeler_failed, row["waiting_for"] or reason)
    if incoming.labeler_failed:
        status = ReviewStatus.FAILED.value
    elif row["status"] == ReviewStatus.SKIPPED.value:
        status = row["status"]
    else:
        status = ReviewStatus.PENDING.value
    return {
        "item_id": incoming.id,
        **incoming.model_fields(),
        "reason": reason,
        "status": status,
        "priority": PRIORITY_RANK[priority],
    }


def _withdraw_untouched(conn: Connection, keep: set[str], now: datetime) -> int:
    """Delete open items outside `keep` that no one has decided, skipped or leased."""
    items = item_table.c
    touched = sa.exists().where(review_table.c.item_id == items.id)
    leased = sa.and_(items.lease_expires_at.is_not(None), items.lease_expires_at > now)
    candidates = conn.execute(sa.select(items.id).where(IS_OPEN_SQL, ~touched, ~leased)).scalars()
    gone = [item_id for item_id in candidates if item_id not in keep]
    for start in range(0, len(gone), ID_CHUNK):
        conn.execute(item_table.delete().where(items.id.in_(gone[start : start + ID_CHUNK])))
    return len(gone)


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


def _normalise(record: Mapping[str, Any] | BaseModel) -> Incoming | str:
    """An input row as `Incoming`, or the reason it cannot be queued."""
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
    return Incoming(
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
