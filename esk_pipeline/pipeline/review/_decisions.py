"""Reviewer decisions and their reversal: submit, skip, undo, and doubts.

A decision is a `reviews` row plus the item's new state, committed together in the caller's
transaction. With `reviews_per_item > 1` an item stays open until enough reviewers agree by
strict majority; a disagreement sends it to adjudication (CRITICAL, `needs_adjudication`),
decided by the next review. A single correction of a model at least
`second_opinion_confidence` sure waits for a second reviewer before it counts, unless the
reviewer's earlier corrections, settled by others, prove them reliable and the model was not
`sure_model_confidence` sure: a reliable reviewer's correction then counts alone.

A doubted decision (`_doubts.raise_doubt`) stands until a second vote settles it: agreement
decides the item with two votes, disagreement sends it to adjudication.

No decision or undo changes the reason an item was queued for (`reason`: an audit item stays
one, and blind); a wait for one more reviewer is `waiting_for`.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from scipy.stats import beta
from sqlalchemy.engine import Connection, RowMapping

from esk_pipeline.pipeline.review._intake import priority_for
from esk_pipeline.pipeline.review._leases import held_by_other, require_lease
from esk_pipeline.pipeline.review._rows import (
    action_of,
    base_status,
    fetch_item,
    lock_item,
    majority,
    seconds_since,
    to_item,
    votes_on,
)
from esk_pipeline.pipeline.review._schema import (
    CLEARED_LEASE,
    DECIDE,
    DECIDED_STATUSES,
    PRIORITY_RANK,
    SKIP,
    item_table,
    review_table,
)
from esk_pipeline.pipeline.review.errors import (
    AlreadyReviewedError,
    InvalidReviewError,
    UndoError,
    UnknownDomainError,
)
from esk_pipeline.pipeline.review.models import (
    ReviewDatasetConfig,
    ReviewItem,
    ReviewPriority,
    ReviewReason,
    ReviewStatus,
)
from esk_pipeline.pipeline.taxonomy import Taxonomy

_CRITICAL = PRIORITY_RANK[ReviewPriority.CRITICAL]
_NO_DECISION = {"corrected_domain": None, "reviewer_id": None, "review_timestamp": None}
# The agreement a reviewer exceeds with this probability is their proven reliability.
_RELIABILITY_ASSURANCE = 0.75


def submit(
    conn: Connection,
    item_id: str,
    corrected_domain: str | None,
    reviewer_id: str,
    approve: bool | None,
    *,
    taxonomy: Taxonomy,
    config: ReviewDatasetConfig,
    now: datetime,
) -> ReviewItem:
    """Record a decision (see `ReviewDataset.submit_review`); the same one again is a no-op."""
    row = lock_item(conn, item_id)
    domain = _resolve_domain(row, corrected_domain, approve, taxonomy)
    previous = action_of(conn, item_id, reviewer_id)
    if previous is not None:
        if previous["action"] == DECIDE and previous["domain"] == domain:
            return _with_decision(conn, to_item(row, now), reviewer_id)
        done = "skipped" if previous["action"] == SKIP else f"chose {previous['domain']!r}"
        raise AlreadyReviewedError(
            f"reviewer {reviewer_id!r} already {done} for item {item_id!r}; "
            "undo that first to decide differently"
        )
    require_lease(row, reviewer_id)
    _insert_action(conn, row, reviewer_id, DECIDE, domain, now)
    votes = votes_on(conn, item_id)
    wait = _wants_second_opinion(row, votes, config) and not (
        row["confidence"] < config.sure_model_confidence
        and _is_reliable(conn, reviewer_id, config.reliable_reviewer_agreement)
    )
    values = _state_after_vote(row, votes, domain, reviewer_id, now, wait)
    conn.execute(item_table.update().where(item_table.c.id == item_id).values(**values))
    return _with_decision(conn, to_item(fetch_item(conn, item_id), now), reviewer_id)


def skip(conn: Connection, item_id: str, reviewer_id: str, now: datetime) -> ReviewItem:
    """Record a skip (see `ReviewDataset.skip`); skipping twice is a no-op."""
    row = lock_item(conn, item_id)
    previous = action_of(conn, item_id, reviewer_id)
    if previous is not None:
        if previous["action"] == SKIP:
            return _with_decision(conn, to_item(row, now), reviewer_id)
        raise AlreadyReviewedError(
            f"reviewer {reviewer_id!r} already decided item {item_id!r}; nothing to skip"
        )
    require_lease(row, reviewer_id)
    _insert_action(conn, row, reviewer_id, SKIP, None, now)
    status = ReviewStatus.FAILED if row["labeler_failed"] else ReviewStatus.SKIPPED
    conn.execute(
        item_table.update()
        .where(item_table.c.id == item_id)
        .values(status=status.value, **CLEARED_LEASE)
    )
    return _with_decision(conn, to_item(fetch_item(conn, item_id), now), reviewer_id)


def _with_decision(conn: Connection, item: ReviewItem, reviewer_id: str) -> ReviewItem:
    """`item` carrying the id of the reviewer's own decision or skip on it, which `undo` names."""
    own = action_of(conn, item.id, reviewer_id)
    return item.model_copy(update={"decision_id": own["seq"] if own is not None else None})


def undo(
    conn: Connection,
    item_id: str,
    decision_id: int,
    reviewer_id: str,
    config: ReviewDatasetConfig,
    now: datetime,
) -> tuple[ReviewItem, bool]:
    """Revert the decision or skip `decision_id` (see `ReviewDataset.undo`). When it is no
    longer there (undone already: a retry or a second key press) nothing changes."""
    row = lock_item(conn, item_id)
    own = action_of(conn, item_id, reviewer_id)
    if own is None or own["seq"] != decision_id:
        return to_item(row, now), False
    return _revert(conn, row, own, reviewer_id, config, now), True


def undo_last(
    conn: Connection, reviewer_id: str, config: ReviewDatasetConfig, now: datetime
) -> ReviewItem:
    """Revert the reviewer's newest action and lease its item to them again (see
    `ReviewDataset.undo_last`)."""
    reviews = review_table.c
    last = (
        conn.execute(
            sa.select(review_table)
            .where(reviews.reviewer_id == reviewer_id)
            .order_by(reviews.seq.desc())
            .limit(1)
        )
        .mappings()
        .first()
    )
    if last is None:
        raise UndoError(f"reviewer {reviewer_id!r} has nothing to undo")
    return _revert(conn, lock_item(conn, last["item_id"]), last, reviewer_id, config, now)


def _revert(
    conn: Connection,
    row: RowMapping,
    action: RowMapping,
    reviewer_id: str,
    config: ReviewDatasetConfig,
    now: datetime,
) -> ReviewItem:
    """Delete the reviewer's `action` on the locked item `row` and lease the item back to them;
    UndoError when someone else has worked on the item since."""
    reviews = review_table.c
    item_id = action["item_id"]
    later = conn.execute(
        sa.select(sa.func.count()).where(reviews.item_id == item_id, reviews.seq > action["seq"])
    ).scalar_one()
    if later or held_by_other(row, reviewer_id, now):
        raise UndoError(
            f"cannot undo the last action on item {item_id!r}: another reviewer has "
            "worked on it since"
        )
    conn.execute(review_table.delete().where(reviews.seq == action["seq"]))
    votes = votes_on(conn, item_id)
    skipped = conn.execute(
        sa.select(sa.func.count()).where(reviews.item_id == item_id, reviews.action == SKIP)
    ).scalar_one()
    required = row["required_reviews"] if votes else config.reviews_per_item
    # The item keeps the reason it was queued for; what a remaining vote waits for stays.
    waiting_for = row["waiting_for"] if votes else None
    adjudicate = len(votes) >= required and majority(votes) is None
    if row["labeler_failed"]:
        status = ReviewStatus.FAILED
    else:
        status = ReviewStatus.SKIPPED if skipped else ReviewStatus.PENDING
    waiting_or_queued = waiting_for or row["reason"]
    priority = (
        _CRITICAL
        if adjudicate
        else PRIORITY_RANK[priority_for(row["labeler_failed"], waiting_or_queued)]
    )
    doubted = row["doubt"] is not None and len(votes) == 1
    conn.execute(
        item_table.update()
        .where(item_table.c.id == item_id)
        .values(
            status=status.value,
            reviews=len(votes),
            required_reviews=required,
            waiting_for=waiting_for,
            needs_adjudication=adjudicate,
            priority=priority,
            doubt=row["doubt"] if votes else None,
            # Undoing the answer to a doubt puts the doubted decision back in force.
            **(_standing_decision(conn, item_id) if doubted else _NO_DECISION),
            lease_holder=reviewer_id,
            lease_token=uuid.uuid4().hex,
            lease_started_at=now,
            lease_expires_at=now + timedelta(seconds=config.lease_seconds),
        )
    )
    return to_item(fetch_item(conn, item_id), now)


def _standing_decision(conn: Connection, item_id: str) -> dict[str, Any]:
    """The decision fields of the item's one remaining vote."""
    reviews = review_table.c
    vote = (
        conn.execute(
            sa.select(reviews.domain, reviews.reviewer_id, reviews.decided_at)
            .where(reviews.item_id == item_id, reviews.action == DECIDE)
            .order_by(reviews.seq)
            .limit(1)
        )
        .mappings()
        .one()
    )
    return {
        "corrected_domain": vote["domain"],
        "reviewer_id": vote["reviewer_id"],
        "review_timestamp": vote["decided_at"],
    }


def _insert_action(
    conn: Connection,
    row: RowMapping,
    reviewer_id: str,
    action: str,
    domain: str | None,
    now: datetime,
) -> None:
    conn.execute(
        review_table.insert().values(
            item_id=row["id"],
            reviewer_id=reviewer_id,
            action=action,
            domain=domain,
            decided_at=now,
            seconds_spent=seconds_since(row["lease_started_at"], now),
        )
    )


def _resolve_domain(
    row: RowMapping, corrected_domain: str | None, approve: bool | None, taxonomy: Taxonomy
) -> str:
    """The domain the reviewer chose, checked against the prediction and the taxonomy."""
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
    if corrected_domain not in taxonomy:
        raise UnknownDomainError(
            f"unknown domain {corrected_domain!r}; choose one of: " + ", ".join(taxonomy.ids)
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
    row: RowMapping,
    votes: list[str],
    domain: str,
    reviewer_id: str,
    now: datetime,
    wait_for_second_opinion: bool,
) -> dict[str, Any]:
    """The item's columns once `votes` (including the new `domain`) are recorded."""
    values: dict[str, Any] = {"reviews": len(votes), **CLEARED_LEASE}
    if row["needs_adjudication"]:
        final: str | None = domain  # the adjudicating review decides
    elif len(votes) < row["required_reviews"]:
        return values  # still open, waiting for more independent reviews
    elif wait_for_second_opinion:
        return {
            **values,
            "required_reviews": len(votes) + 1,
            "waiting_for": ReviewReason.SECOND_OPINION.value,
            "priority": _CRITICAL,
        }
    else:
        final = majority(votes)
    if final is None:
        return {
            **values,
            **_NO_DECISION,  # a doubted decision the second reviewer contradicted
            "status": base_status(row["labeler_failed"]).value,
            "needs_adjudication": True,
            "priority": _CRITICAL,
        }
    status = ReviewStatus.APPROVED if final == row["predicted_domain"] else ReviewStatus.CORRECTED
    return {
        **values,
        "status": status.value,
        "corrected_domain": final,
        "reviewer_id": reviewer_id,
        "review_timestamp": now,
        "needs_adjudication": False,
    }


def _wants_second_opinion(row: RowMapping, votes: list[str], config: ReviewDatasetConfig) -> bool:
    """One decision so far, against a model at least `second_opinion_confidence` sure."""
    threshold = config.second_opinion_confidence
    return (
        threshold is not None
        and not row["needs_adjudication"]
        and len(votes) == 1
        and row["predicted_domain"] is not None
        and votes[0] != row["predicted_domain"]
        and row["confidence"] >= threshold
    )


def _is_reliable(conn: Connection, reviewer_id: str, agreement: float | None) -> bool:
    """Whether the reviewer's own corrections (first votes against the model's label) that
    other reviewers settled were confirmed by the items' final labels at least `agreement`
    of the time (see the config). That is the event a lone correction stands for: agreement
    on every overlap would mix in their second opinions, which side with a usually-right
    model, and a reviewer wrong 5% of the time overall can be wrong on a fifth of their
    corrections where the model is mostly right."""
    if agreement is None:
        return False
    reviews, items = review_table.c, item_table.c
    earlier = review_table.alias("earlier")
    pairs = conn.execute(
        sa.select(reviews.domain, items.corrected_domain)
        .join(item_table, items.id == reviews.item_id)
        .where(
            reviews.reviewer_id == reviewer_id,
            reviews.action == DECIDE,
            reviews.domain != items.predicted_domain,
            items.reviews >= 2,
            items.status.in_(DECIDED_STATUSES),
            ~sa.exists().where(
                earlier.c.item_id == reviews.item_id,
                earlier.c.action == DECIDE,
                earlier.c.seq < reviews.seq,
            ),
        )
    ).all()
    agreed = sum(mine == final for mine, final in pairs)
    bound = beta.ppf(1 - _RELIABILITY_ASSURANCE, agreed + 1, len(pairs) - agreed + 1)
    return bool(bound >= agreement)
