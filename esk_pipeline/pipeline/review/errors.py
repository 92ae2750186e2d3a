__all__ = [
    "AlreadyReviewedError",
    "InvalidReviewError",
    "NotLeasedError",
    "QueueFullError",
    "ReviewError",
    "UndoError",
    "UnknownDomainError",
    "UnknownItemError",
]
"""Why a review operation was refused: one exception per reason, all under `ReviewError`.

The API maps each to an HTTP status (`esk_pipeline/api/errors.py`); the messages are written
for the person at the review page.
"""


class ReviewError(Exception):
    """A review operation that was refused; the message says why, for a person."""


class UnknownItemError(ReviewError):
    """No item with that id is in the store."""


class UnknownDomainError(ReviewError):
    """The submitted domain is not in the taxonomy."""


class NotLeasedError(ReviewError):
    """The reviewer does not hold the item's lease (never had it, or someone else has it now),
    or the item is already decided."""


class AlreadyReviewedError(ReviewError):
    """The reviewer already submitted a different decision for this item (undo it first)."""


class QueueFullError(ReviewError):
    """`add_items(..., raise_when_full=True)` would exceed `max_queue_size`."""


class InvalidReviewError(ReviewError):
    """A malformed request: empty reviewer id, approving an item that has no prediction, ..."""


class UndoError(ReviewError):
    """Nothing to undo, or the item has moved on (someone else reviewed or leased it since)."""
