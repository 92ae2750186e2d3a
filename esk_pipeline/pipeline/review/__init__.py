"""Human in the loop: what to review next, the review queue, its leases, overlapping reviews
and quality metrics.

Public: `planning.plan_review` decides which texts people should see and in what order;
`ReviewDataset` (`store`) is the queue itself; `models` holds the config, statuses, `ReviewItem`
and every report type; `errors` the refusals. The store's private parts, each over its open
connection:
- `_schema`: the two tables, upgrades of older stores, invariant checks; `_engine`: connections;
- `_rows`: reading rows shared by the parts; `_intake`: `add_items` (refresh, withdraw, limit);
- `_leases`: `get_next` claims; `_decisions`: submit, skip, undo, second opinions;
- `_doubts`: one more reviewer asked about a decision confident learning doubts;
- `_queue_stats`: counts and the review cursor; `_metrics`: agreement (kappas), model quality;
- `_export`: verified labels, votes and the export file;
- `_order`: the value of one decision, behind `plan_review`.
"""

from esk_pipeline.pipeline.review.errors import (
    AlreadyReviewedError,
    InvalidReviewError,
    NotLeasedError,
    QueueFullError,
    ReviewError,
    UndoError,
    UnknownDomainError,
    UnknownItemError,
)
from esk_pipeline.pipeline.review.models import (
    FAILED_PREDICTION,
    VERIFIED_LABEL_COLUMNS,
    VOTE_COLUMNS,
    AddReport,
    AgreementReport,
    Clock,
    DomainQuality,
    ExportFormat,
    PairAgreement,
    QualityReport,
    QueueStats,
    ReviewDatasetConfig,
    ReviewerAgreement,
    ReviewerThroughput,
    ReviewItem,
    ReviewPriority,
    ReviewReason,
    ReviewStatus,
)
from esk_pipeline.pipeline.review.store import ReviewDataset

__all__ = [
    "FAILED_PREDICTION",
    "VERIFIED_LABEL_COLUMNS",
    "VOTE_COLUMNS",
    "AddReport",
    "AgreementReport",
    "AlreadyReviewedError",
    "Clock",
    "DomainQuality",
    "ExportFormat",
    "InvalidReviewError",
    "NotLeasedError",
    "PairAgreement",
    "QualityReport",
    "QueueFullError",
    "QueueStats",
    "ReviewDataset",
    "ReviewDatasetConfig",
    "ReviewError",
    "ReviewItem",
    "ReviewPriority",
    "ReviewReason",
    "ReviewStatus",
    "ReviewerAgreement",
    "ReviewerThroughput",
    "UndoError",
    "UnknownDomainError",
    "UnknownItemError",
]
