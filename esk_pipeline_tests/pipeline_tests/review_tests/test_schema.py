"""The store on disk: a process killed mid-way leaves it consistent, older stores are
upgraded on open, and the invariant checks catch a broken row."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
from pathlib import Path

import sqlalchemy as sa

from esk_pipeline.pipeline.review import (
    ReviewDataset,
    ReviewDatasetConfig,
    ReviewPriority,
    ReviewReason,
    ReviewStatus,
    _schema,
)
from esk_pipeline_tests.pipeline_tests.review_tests.support import (
    TAXONOMY,
    StoreFactory,
    label,
    review_config,
)

_WORKER = """
import sys
from pathlib import Path
from esk_pipeline.pipeline.review import ReviewDataset, ReviewDatasetConfig
from esk_pipeline.pipeline.taxonomy import Taxonomy, Domain
tax = Taxonomy(domains=[Domain(id="housing", name="h"), Domain(id="payments", name="p")])
ds = ReviewDataset(ReviewDatasetConfig(data_dir=Path(sys.argv[1]), reviews_per_item=2), tax)
n = 0
while True:
    ds.add_items([{"row_id": f"k{n}-{i}", "text": f"t {n} {i}", "domain": "housing",
                   "confidence": 0.3} for i in range(10)])
    for reviewer in ("r1", "r2"):
        batch = ds.get_next(5, reviewer)
        for item in batch[:-1]:
            ds.submit_review(item.id, "payments" if n % 3 else "housing", reviewer)
        if batch:
            ds.skip(batch[-1].id, reviewer)
        if n % 4 == 0:
            ds.undo_last(reviewer)
    n += 1
    print(n, flush=True)
"""


def test_killed_mid_way_leaves_a_consistent_store(tmp_path: Path) -> None:
    worker = subprocess.Popen(
        [sys.executable, "-c", _WORKER, str(tmp_path)], stdout=subprocess.PIPE, text=True
    )
    assert worker.stdout is not None
    for line in worker.stdout:
        if int(line) >= 25:
            break
    worker.send_signal(signal.SIGKILL)
    worker.wait(timeout=30)
    assert worker.returncode == -signal.SIGKILL
    ds = ReviewDataset(ReviewDatasetConfig(data_dir=tmp_path, reviews_per_item=2), TAXONOMY)
    try:
        assert ds.integrity_problems() == []
        stats = ds.stats()
        decided = stats.by_status["approved"] + stats.by_status["corrected"]
        assert decided > 0 and stats.queue_length > 0
        assert sum(stats.by_status.values()) == decided + stats.queue_length
        assert len(ds.verified_labels()) == decided
        with ds._engine.connect() as conn:  # every decided item has its two votes stored
            short = conn.exec_driver_sql(
                "SELECT COUNT(*) FROM review_items i WHERE i.status IN ('approved','corrected')"
                " AND (SELECT COUNT(*) FROM reviews r WHERE r.item_id = i.id"
                " AND r.action = 'decide') < 2"
            ).scalar_one()
        assert short == 0
        ds.get_next(1, "after-crash")  # the store still takes writes
    finally:
        ds.close()


def test_a_store_from_before_the_trust_columns_is_upgraded_on_open(tmp_path: Path) -> None:
    path = tmp_path / "review.sqlite3"
    engine = sa.create_engine(f"sqlite:///{path}")
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE review_items (id VARCHAR(64) PRIMARY KEY)"))
    engine.dispose()
    ds = ReviewDataset(review_config(tmp_path, None), TAXONOMY)
    with ds._engine.begin() as conn:
        columns = {c["name"] for c in sa.inspect(conn).get_columns("review_items")}
    ds.close()
    assert {"reason", "gain", "doubt", "waiting_for"} <= columns


def test_a_store_that_overwrote_reasons_is_upgraded_on_open_and_keeps_working(
    store: StoreFactory,
) -> None:
    """Stores from before `waiting_for` wrote what a decision waits for over `reason`."""
    ds = store(second_opinion_confidence=0.7)
    ds.add_items([label("sure", confidence=0.9), label("drawn", review_reason="audit")])
    ds.get_next(2, "alice")
    ds.submit_review("sure", "payments", "alice")  # against a sure model: it waits
    ds.release("drawn", "alice")
    with ds._engine.begin() as conn:
        conn.exec_driver_sql("UPDATE review_items SET reason = waiting_for WHERE id = 'sure'")
        conn.exec_driver_sql("ALTER TABLE review_items DROP COLUMN waiting_for")
    ds.close()
    ds = store(second_opinion_confidence=0.7)
    held = ds.get_item("sure")
    assert (held.reason, held.waiting_for, held.priority) == (
        ReviewReason.NEEDS_REVIEW,
        ReviewReason.SECOND_OPINION,
        ReviewPriority.CRITICAL,
    )
    drawn = ds.get_item("drawn")
    assert (drawn.reason, drawn.waiting_for) == (ReviewReason.AUDIT, None)
    assert [item.id for item in ds.get_next(2, "bob")] == ["sure", "drawn"]
    decided = ds.submit_review("sure", "payments", "bob")
    assert (decided.status, decided.reviews, decided.waiting_for) == (
        ReviewStatus.CORRECTED,
        2,
        None,
    )
    assert ds.integrity_problems() == []


def test_integrity_checks_name_the_rows_that_break_an_invariant(make: StoreFactory) -> None:
    ds = make()
    ds.add_items([label("fine"), label("forged"), label("odd")])
    ds.get_next(1, "alice")
    ds.submit_review("fine", "housing", "alice")
    assert ds.integrity_problems() == []
    with ds._engine.begin() as conn:  # decided without a review row; a status nobody writes
        conn.exec_driver_sql("UPDATE review_items SET status = 'approved' WHERE id = 'forged'")
        conn.exec_driver_sql("UPDATE review_items SET status = 'lost' WHERE id = 'odd'")
    problems = ds.integrity_problems()
    assert "decided item without its decision fields: forged" in problems
    assert "decided item without any review row: forged" in problems
    assert "unknown status: odd" in problems
    assert not any("fine" in problem for problem in problems)


def test_two_openers_of_an_older_store_upgrade_it_one_after_the_other(
    store: StoreFactory,
) -> None:
    """Processes (API workers, runs) that open an older store at once: each upgrade sees what
    the one before committed, so the later one neither adds a column twice nor fails."""
    ds = store()
    ds.add_items([label("a")])
    with ds._engine.begin() as conn:
        conn.exec_driver_sql("ALTER TABLE review_items DROP COLUMN waiting_for")
    opened: list[object] = []

    def open_store() -> None:
        try:
            opened.append(store())
        except Exception as error:  # the assertion below names it
            opened.append(error)

    with ds._engine.connect() as conn:
        upgrade = conn.begin()
        _schema.create_or_upgrade(conn)  # the first opener, half way: added, not committed
        other = threading.Thread(target=open_store)
        other.start()
        other.join(timeout=1.5)  # the second opener waits for the first
        upgrade.commit()
    other.join(timeout=60)
    [second] = opened
    assert isinstance(second, ReviewDataset), second
    assert second.get_item("a").waiting_for is None
