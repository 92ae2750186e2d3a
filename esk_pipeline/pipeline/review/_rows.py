"""Reading rows of the review store, shared by the queue's parts: items, votes, the cursor.

`to_item` is the one place a stored row becomes the public `ReviewItem` (an open item under a
valid lease shows as IN_REVIEW). Every function takes the caller's connection, so it runs
inside the caller's transaction.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection, RowMapping

from esk_pipeline.pipeline.review._schema import (
    DECIDE,
    ID_CHUNK,
    OPEN_STATUSES,
    RANK_PRIORITY,
    item_table,
    review_table,
)
from esk_pipeline.pipeline.review.errors import InvalidReviewError, UnknownItemError
from esk_pipeline.pipeline.review.models import ReviewItem, ReviewReason, ReviewStatus


def utcnow() -> datetime:
    return datetime.now(UTC)


def utc_midnight(now: datetime) -> datetime:
    """The start of `now`'s UTC day: "today" in the queue's counts."""
    return now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def to_item(row: RowMapping, now: datetime) -> ReviewItem:
    """The public view of a row: an open item under a valid lease shows as IN_REVIEW."""
    is_open = row["status"] in OPEN_STATUSES
    leased = is_open and row["lease_expires_at"] is not None and row["lease_expires_at"] > now
    # The stored value outlives its answer (so that an undo restores it): it holds only while
    # the item is open and not in adjudication.
    waiting = is_open and not row["needs_adjudication"] and row["waiting_for"] is not None
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
        priority=RANK_PRIORITY[row["priority"]],
        created_at=row["created_at"],
        label_source=row["label_source"],
        error=row["error"],
        reviews=row["reviews"],
        required_reviews=row["required_reviews"],
        needs_adjudication=row["needs_adjudication"],
        reason=ReviewReason(row["reason"]),
        waiting_for=ReviewReason(row["waiting_for"]) if waiting else None,
        lease_holder=row["lease_holder"] if leased else None,
        lease_expires_at=row["lease_expires_at"] if leased else None,
    )


def check_reviewer(reviewer_id: str) -> None:
    if not isinstance(reviewer_id, str) or not reviewer_id.strip() or len(reviewer_id) > 128:
        raise InvalidReviewError("reviewer_id must be a non-empty string of at most 128 chars")


def base_status(labeler_failed: bool) -> ReviewStatus:
    """An undecided item's stored status: FAILED for a labeler failure, else PENDING."""
    return ReviewStatus.FAILED if labeler_failed else ReviewStatus.PENDING


def fetch_by_ids(conn: Connection, ids: list[str]) -> dict[str, RowMapping]:
    found: dict[str, RowMapping] = {}
    for start in range(0, len(ids), ID_CHUNK):
        chunk = ids[start : start + ID_CHUNK]
        query = sa.select(item_table).where(item_table.c.id.in_(chunk))
        for row in conn.execute(query).mappings():
            found[row["id"]] = row
    return found


def fetch_item(conn: Connection, item_id: str, *, lock: bool = False) -> RowMapping:
    query = sa.select(item_table).where(item_table.c.id == item_id)
    row = conn.execute(query.with_for_update() if lock else query).mappings().first()
    if row is None:
        raise UnknownItemError(f"no review item {item_id!r}")
    return row


def lock_item(conn: Connection, item_id: str) -> RowMapping:
    """The item's row, locked for this transaction (FOR UPDATE; SQLite holds the write lock)."""
    return fetch_item(conn, item_id, lock=True)


def action_of(conn: Connection, item_id: str, reviewer_id: str) -> RowMapping | None:
    """The reviewer's decision or skip on the item, if any."""
    reviews = review_table.c
    query = sa.select(review_table).where(
        reviews.item_id == item_id, reviews.reviewer_id == reviewer_id
    )
    return conn.execute(query).mappings().first()


def votes_on(conn: Connection, item_id: str) -> list[str]:
    """The domains decided for the item, oldest first (skips are not votes)."""
    reviews = review_table.c
    return list(
        conn.execute(
            sa.select(reviews.domain)
            .where(reviews.item_id == item_id, reviews.action == DECIDE)
            .order_by(reviews.seq)
        ).scalars()
    )


def majority(votes: list[str]) -> str | None:
    """The domain with a strict majority of the votes, or None (a tie or a split)."""
    if not votes:
        return None
    domain, n = Counter(votes).most_common(1)[0]
    return domain if 2 * n > len(votes) else None


def last_seq(conn: Connection) -> int:
    """The newest decision's sequence number, 0 when there is none."""
    reviews = review_table.c
    return conn.execute(
        sa.select(sa.func.coalesce(sa.func.max(reviews.seq), 0)).where(reviews.action == DECIDE)
    ).scalar_one()


def seconds_since(started: datetime | None, now: datetime) -> float | None:
    return None if started is None else max(0.0, (now - started).total_seconds())
