"""Intake: one item per row id, refreshes that keep human decisions, input shapes, priorities,
the queue size limit and withdrawal of untouched items."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from pydantic import BaseModel

from esk_pipeline.pipeline.ids import row_id
from esk_pipeline.pipeline.review import (
    QueueFullError,
    ReviewDataset,
    ReviewPriority,
    ReviewStatus,
    UnknownItemError,
)
from esk_pipeline_tests.pipeline_tests.review_tests.support import (
    TAXONOMY,
    FakeClock,
    StoreFactory,
    label,
    review_config,
)


def test_same_row_id_makes_one_item_and_refreshes_model_fields(make: StoreFactory) -> None:
    ds = make()
    first = ds.add_items([label("a", confidence=0.4), label("a", confidence=0.4)])
    assert (first.added, first.unchanged) == (1, 1)
    again = ds.add_items([label("a", confidence=0.4)])
    assert (again.added, again.unchanged) == (0, 1)
    refreshed = ds.add_items([label("a", domain=None, confidence=0.1, status="failed")])
    assert refreshed.refreshed == 1
    item = ds.get_item("a")
    assert (item.predicted_domain, item.priority) == (None, ReviewPriority.HIGH)
    assert item.status is ReviewStatus.FAILED
    assert ds.stats().queue_length == 1


def test_re_adding_after_review_keeps_the_human_decision(make: StoreFactory) -> None:
    ds = make()
    ds.add_items([label("a", domain="housing")])
    ds.get_next(1, "alice")
    ds.submit_review("a", "payments", "alice")
    report = ds.add_items([label("a", domain="transport", confidence=0.9)])
    assert (report.kept_decided, report.added, report.refreshed) == (1, 0, 0)
    item = ds.get_item("a")
    assert item.status is ReviewStatus.CORRECTED
    assert (item.corrected_domain, item.predicted_domain) == ("payments", "housing")


def test_accepts_label_frames_and_models(make: StoreFactory) -> None:
    class Result(BaseModel):
        text: str
        domain: str | None
        confidence: float
        top_candidates: list[list[object]]
        status: str = "labeled"

    frame = pd.DataFrame(
        [
            label("f1", top_candidates='[["housing", 0.4], ["payments", 0.3]]', status="labeled"),
            label("f2", domain=None, confidence=float("nan"), status="failed", error="timeout"),
            label("f3", status="deferred"),
            {"row_id": "f4", "text": "  ", "domain": "housing", "confidence": 0.2},
        ]
    )
    ds = make()
    report = ds.add_items(frame)
    assert (report.received, report.added, report.invalid) == (4, 2, 2)
    assert any("deferred" in m for m in report.messages)
    ds.add_items([Result(text="без id", domain="transport", confidence=0.2, top_candidates=[])])
    by_model = ds.get_item(row_id("без id"))
    assert by_model.predicted_domain == "transport"
    failed = ds.get_item("f2")
    assert failed.status is ReviewStatus.FAILED
    assert (failed.predicted_domain, failed.error, failed.confidence) == (None, "timeout", 0.0)
    assert ds.get_item("f1").top_candidates == [["housing", 0.4], ["payments", 0.3]]


@pytest.mark.parametrize(
    ("row", "priority"),
    [
        (label("x", domain=None, status="failed"), ReviewPriority.HIGH),
        (label("x", confidence=0.1), ReviewPriority.MEDIUM),
        (label("x", confidence=0.9, review_reason="audit"), ReviewPriority.MEDIUM),
        (label("x", review_reason="possible_label_error"), ReviewPriority.CRITICAL),
        (label("x", review_reason="second_opinion"), ReviewPriority.CRITICAL),
    ],
)
def test_priority_from_reason_and_failure(
    make: StoreFactory, row: dict, priority: ReviewPriority
) -> None:
    ds = make()
    ds.add_items([row])
    assert ds.get_item("x").priority is priority


def test_max_queue_size_keeps_the_most_urgent_and_says_how_many_were_left(
    make: StoreFactory,
) -> None:
    ds = make(max_queue_size=3)
    ds.add_items([label("old", review_gain=0.5)])
    report = ds.add_items(
        [
            label("low", review_gain=0.1),
            label("high", review_gain=0.9),
            label("mid", review_gain=0.4),
            label("failed", domain=None, status="failed"),
        ]
    )
    assert (report.added, report.rejected_queue_full, report.queue_size) == (2, 2, 3)
    assert any("2 of 4 new item(s) were not added" in m for m in report.messages)
    assert "max_queue_size=3" in report.messages[-1]
    stats = ds.stats()
    assert stats.by_priority == {"low": 0, "medium": 2, "high": 1, "critical": 0}
    assert {i.id for i in ds.get_next(3, "alice")} == {"old", "high", "failed"}
    with pytest.raises(QueueFullError, match="queue is full"):
        ds.add_items([label("more")], raise_when_full=True)
    with pytest.raises(UnknownItemError):
        ds.get_item("more")


def test_withdraw_others_removes_only_untouched_items(make: StoreFactory) -> None:
    ds = make()
    gains = {"leased": 0.9, "skipped": 0.8, "decided": 0.7, "keep": 0.2, "gone": 0.1}
    ds.add_items([label(name, review_gain=gain) for name, gain in gains.items()])
    assert [i.id for i in ds.get_next(1, "alice")] == ["leased"]
    skipped, decided = ds.get_next(2, "bob")
    ds.skip(skipped.id, "bob")
    ds.submit_review(decided.id, "payments", "bob")
    report = ds.add_items([label("keep", review_gain=0.2)], withdraw_others=True)
    assert report.withdrawn == 1
    with pytest.raises(UnknownItemError):
        ds.get_item("gone")
    for name in ("keep", "leased", "skipped", "decided"):
        assert ds.get_item(name).id == name


def test_a_frame_larger_than_the_queue_queues_what_its_rows_one_by_one_would(
    tmp_path: Path, clock: FakeClock
) -> None:
    """A frame of far more new rows than the queue can hold is cut before its rows are read
    one by one: the same items enter, with the same report, as from the same rows as dicts;
    items already there (open, decided) are still refreshed, kept or withdrawn."""
    rows = [label(f"n{i:03}", review_gain=(i * 37 % 101) / 100) for i in range(120)]
    rows += [
        label("failed", domain=None, status="failed"),
        label("deferred", status="deferred"),
        label("blank", text="  "),
        label("tie-b", review_gain=0.5),
        label("tie-a", review_gain=0.5),
    ]
    stores = {}
    for kind in ("frame", "dicts"):
        config = review_config(tmp_path / kind, None, max_queue_size=10)
        ds = ReviewDataset(config, TAXONOMY, clock=clock)
        ds.add_items([label("open"), label("stale"), label("decided", review_gain=0.9)])
        assert [i.id for i in ds.get_next(1, "bob")] == ["decided"]
        ds.submit_review("decided", "payments", "bob")
        batch = [*rows, label("open", review_gain=0.01), label("decided", confidence=0.9)]
        report = ds.add_items(
            pd.DataFrame(batch) if kind == "frame" else batch, withdraw_others=True
        )
        items = ds.get_next(20, "alice")
        stores[kind] = (report.model_dump(), [(i.id, i.priority, i.reason) for i in items])
        ds.close()
    assert stores["frame"] == stores["dicts"]
    report, items = stores["frame"]
    assert (report["received"], report["invalid"], report["withdrawn"]) == (127, 2, 1)
    assert report["kept_decided"] == 1 and report["refreshed"] == 1
    assert report["added"] == 9 and report["rejected_queue_full"] == 123 - 9
    assert items[0][0] == "failed" and "open" in {i for i, _, _ in items}


class _Phases:
    """Records the phases a call reports."""

    def __init__(self) -> None:
        self.totals: dict[str, int] = {}

    def advance(self, count: int = 1) -> None:
        pass

    def phase(self, name: str, total: int, unit: str) -> None:
        self.totals[name] = total


@pytest.mark.parametrize("status", ["column missing", "missing in every row", "labeled"])
def test_new_rows_that_cannot_enter_are_cut_before_they_are_read(
    make: StoreFactory, status: str
) -> None:
    """Rows without a status (or with an unknown review reason, which `add_items` refuses)
    are cut like the others: only the rows that can enter are read one by one."""
    ds = make(max_queue_size=5)
    rows = [label(f"n{i:03}", review_gain=i / 100) for i in range(50)]
    rows.append(label("bad-reason", review_gain=9.0, review_reason="no such reason"))
    frame = pd.DataFrame(rows)
    if status == "missing in every row":
        frame["status"] = None
    elif status == "labeled":
        frame["status"] = "labeled"
    phases = _Phases()
    report = ds.add_items(frame, progress=phases)
    # The 5 new rows of highest gain, and the refused row (counted as invalid by its reason).
    assert phases.totals["queueing"] == 6
    assert report.added == 5 and report.invalid == 1
    assert report.rejected_queue_full == 45
    assert sorted(i.id for i in ds.get_next(10, "alice")) == [f"n{i:03}" for i in range(45, 50)]


def test_a_frame_without_review_gain_larger_than_the_queue_is_queued(make: StoreFactory) -> None:
    """Without a `review_gain` column every gain is 0: the order falls to the row ids."""
    ds = make(max_queue_size=3)
    frame = pd.DataFrame([label(f"n{i:02}", status="labeled") for i in range(20)])
    report = ds.add_items(frame)
    assert report.added == 3 and report.rejected_queue_full == 17
    assert sorted(i.id for i in ds.get_next(5, "alice")) == ["n00", "n01", "n02"]
