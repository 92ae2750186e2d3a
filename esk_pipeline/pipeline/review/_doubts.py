"""Doubts: one more reviewer asked about a decision one reviewer made, once per decision.

The decision stands meanwhile: the item is open again, waiting for the re-check
(`waiting_for`, its `reason` for being queued unchanged), but keeps its decision fields and
`doubt`, and the verified labels keep it (as `doubt_pending`). The second vote settles it
(`_decisions`): agreement decides it with two votes, disagreement sends it to adjudication.
"""

from __future__ import annotations

from collections.abc import Iterable

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from esk_pipeline.pipeline.review._schema import (
    CLEARED_LEASE,
    DECIDED_STATUSES,
    ID_CHUNK,
    PRIORITY_RANK,
    item_table,
)
from esk_pipeline.pipeline.review.models import ReviewPriority, ReviewReason, ReviewStatus


def raise_doubt(conn: Connection, item_ids: Iterable[str], reason: ReviewReason) -> int:
    """Ask a second reviewer about the decisions among `item_ids` that one reviewer made and
    that were never doubted; returns how many."""
    items = item_table.c
    ids = list(dict.fromkeys(item_ids))
    raised = 0
    for start in range(0, len(ids), ID_CHUNK):
        chunk = ids[start : start + ID_CHUNK]
        raised += conn.execute(
            item_table.update()
            .where(
                items.id.in_(chunk),
                items.status.in_(DECIDED_STATUSES),
                items.reviews == 1,
                items.doubt.is_(None),
            )
            .values(
                status=sa.case(
                    (items.labeler_failed, ReviewStatus.FAILED.value),
                    else_=ReviewStatus.PENDING.value,
                ),
                required_reviews=2,
                waiting_for=reason.value,
                doubt=reason.value,
                priority=PRIORITY_RANK[ReviewPriority.CRITICAL],
                **CLEARED_LEASE,
            )
        ).rowcount
    return raised
