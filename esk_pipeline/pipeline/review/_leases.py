"""Leases: which reviewer may decide an item now, claimed without two reviewers sharing one.

A claim selects the next ids and updates them (re-checking availability) in one transaction;
on SQLite the write lock is held from BEGIN IMMEDIATE, on PostgreSQL the SELECT uses
`FOR UPDATE SKIP LOCKED`, so concurrent claimers take disjoint rows without waiting. An item
leased to one reviewer is handed to no one else until the lease expires; expiry needs no
write: an expired lease simply stops counting.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Connection, RowMapping

from esk_pipeline.pipeline.review._rows import fetch_item, lock_item, to_item
from esk_pipeline.pipeline.review._schema import (
    CLEARED_LEASE,
    DECIDED_STATUSES,
    IS_OPEN_SQL,
    OPEN_STATUSES,
    QUEUE_ORDER,
    item_table,
    review_table,
)
from esk_pipeline.pipeline.review.errors import NotLeasedError
from esk_pipeline.pipeline.review.models import ReviewItem


def claim(
    conn: Connection, reviewer_id: str, count: int, now: datetime, lease_seconds: int
) -> list[ReviewItem]:
    """The reviewer's own valid leases (renewed), oldest lease first, then newly claimed items
    in queue order, up to `count` (see `ReviewDataset.get_next`). Own leases lead even when
    higher-priority items arrived since: a page shows them in this order, so every lease it
    holds reaches the screen instead of being renewed unseen."""
    items = item_table.c
    expires = now + timedelta(seconds=lease_seconds)
    own_ids = list(
        conn.execute(
            sa.select(items.id)
            .where(
                items.lease_holder == reviewer_id,
                items.lease_expires_at > now,
                items.status.in_(OPEN_STATUSES),
            )
            .order_by(items.lease_started_at, *QUEUE_ORDER)
            .limit(count)
        ).scalars()
    )
    if own_ids:
        conn.execute(
            item_table.update().where(items.id.in_(own_ids)).values(lease_expires_at=expires)
        )
    token = uuid.uuid4().hex
    if len(own_ids) < count:
        # Two statements, not UPDATE ... IN (SELECT ... LIMIT): PostgreSQL may re-run such a
        # subquery per row, and with SKIP LOCKED each run skips the rows just updated,
        # claiming far more than asked. The ids selected here stay locked (FOR UPDATE on
        # PostgreSQL; the write lock on SQLite) until commit.
        available = available_to(reviewer_id, now)
        claim_ids = list(
            conn.execute(
                sa.select(items.id)
                .where(available)
                .order_by(*QUEUE_ORDER)
                .limit(count - len(own_ids))
                .with_for_update(skip_locked=True)
            ).scalars()
        )
        if claim_ids:
            conn.execute(
                item_table.update()
                .where(items.id.in_(claim_ids), available)
                .values(
                    lease_holder=reviewer_id,
                    lease_token=token,
                    lease_started_at=now,
                    lease_expires_at=expires,
                )
            )
    order = list(QUEUE_ORDER)
    if own_ids:
        ranks = {own_id: rank for rank, own_id in enumerate(own_ids)}
        order.insert(0, sa.case(ranks, value=items.id, else_=len(own_ids)))
    rows = conn.execute(
        sa.select(item_table)
        .where(sa.or_(items.id.in_(own_ids), items.lease_token == token))
        .order_by(*order)
    ).mappings()
    return [to_item(row, now) for row in rows]


def release(conn: Connection, item_id: str, reviewer_id: str, now: datetime) -> ReviewItem:
    """Give back the reviewer's lease; the item returns to the queue for anyone."""
    row = lock_item(conn, item_id)
    require_lease(row, reviewer_id)
    conn.execute(item_table.update().where(item_table.c.id == item_id).values(**CLEARED_LEASE))
    return to_item(fetch_item(conn, item_id), now)


def available_to(reviewer_id: str, now: datetime) -> sa.ColumnElement[bool]:
    """Open, not under a valid lease, and never decided or skipped by this reviewer."""
    items = item_table.c
    return sa.and_(
        IS_OPEN_SQL,
        sa.or_(items.lease_expires_at.is_(None), items.lease_expires_at <= now),
        ~sa.exists().where(
            review_table.c.item_id == items.id, review_table.c.reviewer_id == reviewer_id
        ),
    )


def held_by_other(row: RowMapping, reviewer_id: str, now: datetime) -> bool:
    """Someone other than `reviewer_id` holds a valid lease on the item."""
    return (
        row["lease_holder"] not in (None, reviewer_id)
        and row["lease_expires_at"] is not None
        and row["lease_expires_at"] > now
    )


def require_lease(row: RowMapping, reviewer_id: str) -> None:
    """The reviewer must be the item's lease holder. An expired lease still counts while
    nobody else has claimed the item: a claim always overwrites `lease_holder`."""
    if row["status"] in DECIDED_STATUSES:
        raise NotLeasedError(f"item {row['id']!r} is already decided ({row['status']})")
    if row["lease_holder"] != reviewer_id:
        raise NotLeasedError(
            f"item {row['id']!r} is not leased to reviewer {reviewer_id!r}"
            + (" (another reviewer holds it now)" if row["lease_holder"] else "")
            + "; get it with get_next first"
        )
