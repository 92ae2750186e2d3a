"""What the queue holds now and how much was done: counts for the review page and sensors.

`queue_stats` counts items by status (an open item under a valid lease counts as IN_REVIEW)
and by priority, and decisions since UTC midnight; `reviews_since` counts decisions newer
than a cursor (`rows.last_seq`) or a time, which is how a sensor notices new reviews.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from esk_pipeline.pipeline.review._leases import available_to
from esk_pipeline.pipeline.review._rows import last_seq, utc_midnight
from esk_pipeline.pipeline.review._schema import (
    DECIDE,
    OPEN_STATUSES,
    RANK_PRIORITY,
    item_table,
    review_table,
)
from esk_pipeline.pipeline.review.models import QueueStats, ReviewPriority, ReviewStatus


def queue_stats(
    conn: Connection, now: datetime, max_queue_size: int, reviewer_id: str | None = None
) -> QueueStats:
    """Counts by status and priority, queue length, decisions today (per reviewer)."""
    items, reviews = item_table.c, review_table.c
    leased = sa.and_(items.lease_expires_at.is_not(None), items.lease_expires_at > now).label(
        "leased"
    )
    groups = conn.execute(
        sa.select(
            items.status, items.priority, items.needs_adjudication, leased, sa.func.count()
        ).group_by(items.status, items.priority, items.needs_adjudication, leased)
    ).all()
    done_today = dict(
        conn.execute(
            sa.select(reviews.reviewer_id, sa.func.count())
            .where(reviews.action == DECIDE, reviews.decided_at >= utc_midnight(now))
            .group_by(reviews.reviewer_id)
        ).all()
    )
    available_for = (
        None
        if reviewer_id is None
        else conn.execute(
            sa.select(sa.func.count()).where(available_to(reviewer_id, now))
        ).scalar_one()
    )
    by_status = dict.fromkeys((s.value for s in ReviewStatus), 0)
    by_priority = dict.fromkeys((p.value for p in ReviewPriority), 0)
    queue_length = available = adjudication = 0
    for status, priority, needs_adjudication, is_leased, n in groups:
        is_open = status in OPEN_STATUSES
        shown = ReviewStatus.IN_REVIEW.value if is_open and is_leased else status
        by_status[shown] += n
        if is_open:
            queue_length += n
            available += 0 if is_leased else n
            adjudication += n if needs_adjudication else 0
            by_priority[RANK_PRIORITY[priority].value] += n
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
        max_queue_size=max_queue_size,
        last_review_seq=last_seq(conn),
    )


def reviews_since(conn: Connection, cursor: int | datetime) -> int:
    """How many decisions are newer than a `last_seq` value or a UTC time."""
    reviews = review_table.c
    newer = reviews.decided_at > cursor if isinstance(cursor, datetime) else reviews.seq > cursor
    return conn.execute(
        sa.select(sa.func.count()).where(reviews.action == DECIDE, newer)
    ).scalar_one()
