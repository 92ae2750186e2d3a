"""The review queue over HTTP: lease, decide, skip, release, undo, numbers and export.

The reviewer is always the token's owner. Handlers are plain `def`: the store is synchronous
(SQL transactions), so FastAPI runs them in its thread pool and the event loop stays free.

Audit items go out blind: the audit measures how often the model is right, and a reviewer who
sees the model's guess tends to agree with it, which would inflate that very measure. So no
item queued for the audit (reason `audit`, which no decision changes) carries the guess, its
confidence or its candidates when handed to a reviewer: not to the first, not to the second
opinion on a correction, not to an adjudicator, not after an undo. The store still knows them
and judges the decision against them. And no open item carries a doubted decision standing on
it: its re-check is a second opinion, not a vote on the first (on an audit item an approval
would also be the guess).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Path, Query
from fastapi.responses import FileResponse

from esk_pipeline.api.auth import ReviewerId
from esk_pipeline.api.deps import ReviewDep, ServicesDep, TaxonomyDep
from esk_pipeline.api.downloads import file_download_responses, temporary_file_response
from esk_pipeline.api.errors import error_responses
from esk_pipeline.api.schemas import (
    DomainOut,
    ExportFormat,
    SubmitIn,
    TaxonomyOut,
    UndoIn,
    WhoAmIOut,
)
from esk_pipeline.pipeline.fsutil import scratch_prefix
from esk_pipeline.pipeline.review import (
    AgreementReport,
    QualityReport,
    QueueStats,
    ReviewItem,
    ReviewReason,
    ReviewStatus,
)

router = APIRouter(prefix="/api", tags=["review"], responses=error_responses())

MAX_LEASE_BATCH = 50
_DECIDED = (ReviewStatus.APPROVED, ReviewStatus.CORRECTED)
ItemId = Annotated[str, Path(min_length=1, max_length=128, description="the review item's id")]
EXPORT_MEDIA_TYPES: dict[str, str] = {
    "jsonl": "application/x-ndjson",
    "csv": "text/csv; charset=utf-8",
    "parquet": "application/vnd.apache.parquet",
}


def as_seen_by_reviewer(item: ReviewItem) -> ReviewItem:
    """The item as a reviewer may see it: while it is open, without a doubted decision standing
    on it (the re-check is a second opinion, not a vote on the first), and an audit item
    without the model's guess."""
    hidden = {}
    if item.status not in _DECIDED:
        hidden |= {"corrected_domain": None, "reviewer_id": None, "review_timestamp": None}
    if item.reason == ReviewReason.AUDIT:
        hidden |= {"predicted_domain": None, "confidence": 0.0, "top_candidates": []}
    return item.model_copy(update=hidden) if hidden else item


@router.get("/me", response_model=WhoAmIOut, summary="Who the token belongs to")
def whoami(reviewer_id: ReviewerId) -> WhoAmIOut:
    return WhoAmIOut(reviewer_id=reviewer_id)


@router.get("/taxonomy", response_model=TaxonomyOut, summary="The domains a reviewer can choose")
def taxonomy(reviewer_id: ReviewerId, taxonomy: TaxonomyDep) -> TaxonomyOut:
    return TaxonomyOut(
        fingerprint=taxonomy.fingerprint,
        domains=[
            DomainOut(id=d.id, name=d.name, description=d.description) for d in taxonomy.domains
        ],
    )


@router.get(
    "/review/next",
    response_model=list[ReviewItem],
    summary="Lease the next items to the calling reviewer (their current leases come first)",
    description="Audit items (reason `audit`) come blind: `predicted_domain` null, `confidence` "
    "0 and no `top_candidates`, so the model's guess cannot anchor the reviewer. `reason` is "
    "why an item was queued; `waiting_for` what a decision on it waits for (a second opinion, "
    "the re-check of a doubted decision, which is sent without that decision).",
)
def next_items(
    reviewer_id: ReviewerId,
    review: ReviewDep,
    count: Annotated[int, Query(ge=1, le=MAX_LEASE_BATCH)] = 1,
) -> list[ReviewItem]:
    return [
        as_seen_by_reviewer(item) for item in review.get_next(count=count, reviewer_id=reviewer_id)
    ]


@router.post(
    "/review/items/{item_id}/submit",
    response_model=ReviewItem,
    summary="Decide an item: the chosen domain (equal to the model's guess approves it)",
    responses=error_responses(404, 409),
)
def submit(
    item_id: ItemId,
    body: SubmitIn,
    reviewer_id: ReviewerId,
    review: ReviewDep,
    services: ServicesDep,
) -> ReviewItem:
    before = review.get_item(item_id).status
    item = review.submit_review(
        item_id=item_id, corrected_domain=body.domain, reviewer_id=reviewer_id
    )
    # Counted once, when this call decided the item: not for a resubmit (unchanged) nor for
    # one vote of several (the item stays open until enough reviewers agree).
    if item.status in _DECIDED and before not in _DECIDED:
        services.metrics.review_decisions.labels(decision=item.status.value).inc()
    return as_seen_by_reviewer(item)


@router.post(
    "/review/items/{item_id}/skip",
    response_model=ReviewItem,
    summary="Skip an item: it goes back to the queue for others, never to this reviewer",
    responses=error_responses(404, 409),
)
def skip(
    item_id: ItemId, reviewer_id: ReviewerId, review: ReviewDep, services: ServicesDep
) -> ReviewItem:
    item = review.skip(item_id=item_id, reviewer_id=reviewer_id)
    services.metrics.review_decisions.labels(decision="skipped").inc()
    return as_seen_by_reviewer(item)


@router.post(
    "/review/items/{item_id}/release",
    response_model=ReviewItem,
    summary="Give a lease back undecided: the item returns to the queue for anyone",
    responses=error_responses(404, 409),
)
def release(
    item_id: ItemId, reviewer_id: ReviewerId, review: ReviewDep, services: ServicesDep
) -> ReviewItem:
    item = review.release(item_id=item_id, reviewer_id=reviewer_id)
    services.metrics.review_decisions.labels(decision="released").inc()
    return as_seen_by_reviewer(item)


@router.post(
    "/review/items/{item_id}/undo",
    response_model=ReviewItem,
    summary="Undo one of the caller's decisions or skips (named by its decision_id); the item "
    "is leased back to them. Repeating it changes nothing",
    responses=error_responses(404, 409),
)
def undo(
    item_id: ItemId,
    body: UndoIn,
    reviewer_id: ReviewerId,
    review: ReviewDep,
    services: ServicesDep,
) -> ReviewItem:
    item, undone = review.undo(item_id, body.decision_id, reviewer_id=reviewer_id)
    if undone:
        services.metrics.review_decisions.labels(decision="undone").inc()
    return as_seen_by_reviewer(item)


@router.get(
    "/review/stats",
    response_model=QueueStats,
    summary="Queue counts by status and priority, and what was done today (by the caller too)",
)
def stats(reviewer_id: ReviewerId, review: ReviewDep, services: ServicesDep) -> QueueStats:
    queue = review.stats(reviewer_id=reviewer_id)
    services.metrics.set_queue(queue.by_status)
    return queue


@router.get(
    "/review/agreement",
    response_model=AgreementReport,
    summary="Inter-reviewer agreement (Fleiss' and Cohen's kappa, per reviewer)",
)
def agreement(reviewer_id: ReviewerId, review: ReviewDep) -> AgreementReport:
    return review.agreement()


@router.get(
    "/review/quality",
    response_model=QualityReport,
    summary="Model accuracy against reviewers, confusion matrix, corrections, throughput",
)
def quality(reviewer_id: ReviewerId, review: ReviewDep) -> QualityReport:
    return review.quality_metrics()


@router.get(
    "/review/export",
    response_class=FileResponse,
    summary="Download the reviewed (approved + corrected) items",
    responses=file_download_responses("The verified labels as a file", EXPORT_MEDIA_TYPES.values()),
)
def export(
    reviewer_id: ReviewerId,
    review: ReviewDep,
    format: Annotated[ExportFormat, Query(description="file format")] = "jsonl",
) -> FileResponse:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return temporary_file_response(
        lambda folder: review.export_reviewed(folder / f"reviewed.{format}", fmt=format),
        prefix=scratch_prefix("review-export"),
        media_type=EXPORT_MEDIA_TYPES[format],
        filename=f"reviewed-{stamp}.{format}",
    )
