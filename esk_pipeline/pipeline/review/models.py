"""The review queue's data shapes: its config, statuses, the item, and every report it returns.

Statuses: PENDING, FAILED (the labeler failed: label from scratch) and SKIPPED (skipped by
someone; never handed back to the reviewers who skipped it) are the open, queued states;
IN_REVIEW is an open item under a valid lease; APPROVED and CORRECTED are decided.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

from esk_pipeline.pipeline.options import ReviewOptions

__all__ = [
    "FAILED_PREDICTION",
    "VERIFIED_LABEL_COLUMNS",
    "VOTE_COLUMNS",
    "AddReport",
    "AgreementReport",
    "Clock",
    "DomainQuality",
    "ExportFormat",
    "PairAgreement",
    "QualityReport",
    "QueueStats",
    "ReviewDatasetConfig",
    "ReviewItem",
    "ReviewPriority",
    "ReviewReason",
    "ReviewStatus",
    "ReviewerAgreement",
    "ReviewerThroughput",
]

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
    "doubt_pending",
]
VOTE_COLUMNS = ["item_id", "reviewer_id", "domain"]
FAILED_PREDICTION = "__failed__"  # confusion-matrix row for items the labeler failed on


class ReviewStatus(StrEnum):
    PENDING = "pending"
    IN_REVIEW = "in_review"
    APPROVED = "approved"
    CORRECTED = "corrected"
    SKIPPED = "skipped"
    FAILED = "failed"


class ReviewReason(StrEnum):
    """Why an item is in the queue (`ReviewItem.reason`: the first two), or what a decision
    on it waits for (`ReviewItem.waiting_for`: the last two)."""

    NEEDS_REVIEW = "needs_review"  # no trusted label yet (low calibrated precision, or failed)
    AUDIT = "audit"  # drawn uniformly at random: measures the labels nobody else checks
    POSSIBLE_LABEL_ERROR = "possible_label_error"  # confident learning doubts the decision
    SECOND_OPINION = "second_opinion"  # the decision contradicted a confident model


class ReviewPriority(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"


class ReviewDatasetConfig(ReviewOptions):
    data_dir: Path = Path("data")


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
    reason: ReviewReason = ReviewReason.NEEDS_REVIEW  # why it was queued; no decision changes it
    # What the open item waits for after a decision: a second opinion, or the re-check of a
    # doubted decision (None otherwise, and in adjudication).
    waiting_for: ReviewReason | None = None
    lease_holder: str | None = None
    lease_expires_at: datetime | None = None
    # In answers to a submit or skip: the id of the caller's own decision or skip on this
    # item, which `undo` names (so a repeated undo is a no-op).
    decision_id: int | None = None


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
