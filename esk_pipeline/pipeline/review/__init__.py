"""Human in the loop: the review queue, its leases, overlapping reviews and quality metrics.

`ReviewDataset` (store) is the entry point; its parts, each over the store's open connection:
- models: the config, statuses, `ReviewItem` and every report type; errors: refusals;
- schema: the two tables, upgrades of older stores, invariant checks; engine: connections;
- rows: reading rows shared by the parts; intake: `add_items` (refresh, withdraw, size limit);
- leases: `get_next` claims; decisions: submit, skip, undo, second opinions;
- queue_stats: counts and the review cursor; metrics: agreement (kappas), model quality;
- export: verified labels, votes and the export file.
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
