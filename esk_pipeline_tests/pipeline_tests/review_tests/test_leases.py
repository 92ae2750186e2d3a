"""Leases: queue order, exclusivity and expiry, renewal, late submits, release, and no item
handed to two reviewers across threads or processes."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from datetime import timedelta
from pathlib import Path

import pytest

from esk_pipeline.pipeline.review import NotLeasedError, ReviewStatus
from esk_pipeline_tests.pipeline_tests.review_tests.support import FakeClock, StoreFactory, label


def test_get_next_orders_by_priority_then_gain_then_age(
    make: StoreFactory, clock: FakeClock
) -> None:
    ds = make()
    ds.add_items([label("low-old", review_gain=0.1), label("mid-old", review_gain=0.5)])
    clock.advance(60)
    ds.add_items([label("high-new", review_gain=0.9), label("mid-new", review_gain=0.5)])
    ds.add_items([label("failed", domain=None, status="failed")])
    got = [i.id for i in ds.get_next(5, "alice")]
    assert got == ["failed", "high-new", "mid-old", "mid-new", "low-old"]


def test_leases_are_exclusive_and_expire(store: StoreFactory, clock: FakeClock) -> None:
    ds = store(lease_seconds=60)
    ds.add_items([label("a"), label("b")])
    alice = ds.get_next(1, "alice")
    bob = ds.get_next(2, "bob")
    assert [i.id for i in alice] == ["a"] and [i.id for i in bob] == ["b"]
    assert alice[0].status is ReviewStatus.IN_REVIEW and alice[0].lease_holder == "alice"
    assert ds.get_next(1, "carol") == []
    clock.advance(61)
    assert ds.get_item("a").status is ReviewStatus.PENDING
    assert {i.id for i in ds.get_next(5, "carol")} == {"a", "b"}
    with pytest.raises(NotLeasedError, match="another reviewer holds it"):
        ds.submit_review("a", "housing", "alice")


def test_get_next_again_returns_own_leases_first(store: StoreFactory, clock: FakeClock) -> None:
    ds = store(lease_seconds=60)
    ds.add_items([label(f"i{n}") for n in range(5)])
    first = ds.get_next(2, "alice")
    clock.advance(30)
    again = ds.get_next(2, "alice")
    assert [i.id for i in again] == [i.id for i in first]
    assert again[0].lease_expires_at == clock.now + timedelta(seconds=60)  # renewed
    more = ds.get_next(3, "alice")
    assert [i.id for i in more][:2] == [i.id for i in first] and len(more) == 3
    assert ds.stats().by_status["in_review"] == 3


def test_own_leases_come_first_even_after_higher_priority_items_arrive(
    store: StoreFactory, clock: FakeClock
) -> None:
    ds = store(lease_seconds=600)
    ds.add_items([label(f"old{n}", review_gain=0.1) for n in range(3)])
    held = [i.id for i in ds.get_next(3, "alice")]
    ds.submit_review(held[0], "housing", "alice")
    clock.advance(5)
    ds.add_items([label(f"urgent{n}", review_gain=0.9) for n in range(3)])
    again = [i.id for i in ds.get_next(3, "alice")]
    assert again == [*held[1:], "urgent0"]
    assert [i.id for i in ds.get_next(1, "alice")] == [held[1]]


def test_late_submit_is_accepted_while_nobody_else_claimed(
    make: StoreFactory, clock: FakeClock
) -> None:
    ds = make(lease_seconds=60)
    ds.add_items([label("a")])
    ds.get_next(1, "alice")
    clock.advance(600)
    assert ds.submit_review("a", "housing", "alice").status is ReviewStatus.APPROVED


def test_release_gives_the_item_to_anyone(store: StoreFactory) -> None:
    ds = store()
    ds.add_items([label("a")])
    ds.get_next(1, "alice")
    with pytest.raises(NotLeasedError):
        ds.release("a", "bob")
    assert ds.release("a", "alice").status is ReviewStatus.PENDING
    assert [i.id for i in ds.get_next(1, "alice")] == ["a"]  # even back to the same reviewer


def test_threads_never_share_an_item_nor_lose_a_submission(store: StoreFactory) -> None:
    ds = store()
    n_items, n_threads = 300, 50
    ds.add_items([label(f"i{n:03d}", confidence=(n % 10) / 10) for n in range(n_items)])
    handed: dict[str, list[str]] = {}
    submitted: dict[str, list[str]] = {}
    errors: list[BaseException] = []
    barrier = threading.Barrier(n_threads)

    def reviewer(name: str) -> None:
        got, done = handed.setdefault(name, []), submitted.setdefault(name, [])
        try:
            barrier.wait()
            while batch := ds.get_next(2, name):
                got.extend(i.id for i in batch)
                for item in batch:
                    result = ds.submit_review(item.id, "housing", name)
                    assert result.reviewer_id == name
                    done.append(result.id)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=reviewer, args=(f"r{n}",)) for n in range(n_threads)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    all_handed = [i for ids in handed.values() for i in ids]
    assert len(all_handed) == len(set(all_handed)) == n_items  # no item to two reviewers
    assert sorted(i for ids in submitted.values() for i in ids) == sorted(all_handed)
    stats = ds.stats()
    assert stats.by_status["approved"] == n_items and stats.queue_length == 0
    assert ds.last_review_seq() > 0 and ds.reviews_since(0) == n_items
    assert ds.integrity_problems() == []


_CLAIMER = """
import json, sys
from pathlib import Path
from esk_pipeline.pipeline.review import ReviewDataset, ReviewDatasetConfig
from esk_pipeline.pipeline.taxonomy import Taxonomy, Domain
tax = Taxonomy(domains=[Domain(id="housing", name="h"), Domain(id="payments", name="p")])
ds = ReviewDataset(ReviewDatasetConfig(data_dir=Path(sys.argv[1])), tax)
got = []
while batch := ds.get_next(3, sys.argv[2]):
    for item in batch:
        got.append(item.id)
        ds.submit_review(item.id, "housing", sys.argv[2])
print(json.dumps(got))
"""


def test_processes_never_share_an_item(make: StoreFactory, tmp_path: Path) -> None:
    ds = make()
    ds.add_items([label(f"p{n:03d}") for n in range(90)])
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _CLAIMER, str(tmp_path), f"proc{n}"],
            stdout=subprocess.PIPE,
            text=True,
        )
        for n in range(3)
    ]
    handed = [json.loads(p.communicate(timeout=120)[0]) for p in procs]
    flat = [i for ids in handed for i in ids]
    assert len(flat) == len(set(flat)) == 90
    assert ds.stats().by_status["approved"] == 90
