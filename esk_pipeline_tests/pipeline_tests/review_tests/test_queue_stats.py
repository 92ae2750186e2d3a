"""Queue stats: counts by status and priority, decisions today, and the review cursor."""

from __future__ import annotations

from datetime import timedelta

from esk_pipeline_tests.pipeline_tests.review_tests.support import (
    T0,
    FakeClock,
    StoreFactory,
    label,
)


def test_stats_and_review_cursor(make: StoreFactory, clock: FakeClock) -> None:
    ds = make()
    ds.add_items([label(f"i{n}") for n in range(4)])
    ds.get_next(2, "alice")
    ds.submit_review("i0", "housing", "alice")
    cursor = ds.last_review_seq()
    clock.advance(24 * 3600)  # next day
    ds.submit_review("i1", "payments", "alice")
    stats = ds.stats("alice")
    assert stats.by_status == {
        "pending": 2,
        "in_review": 0,
        "approved": 1,
        "corrected": 1,
        "skipped": 0,
        "failed": 0,
    }
    assert (stats.queue_length, stats.available, stats.available_for_reviewer) == (2, 2, 2)
    assert (stats.done_today, stats.reviewer_done_today) == (1, 1)
    assert ds.reviews_since(cursor) == 1 and ds.reviews_since(T0 + timedelta(hours=1)) == 1
    assert stats.last_review_seq > cursor
