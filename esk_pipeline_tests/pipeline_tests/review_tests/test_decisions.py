"""Decisions: idempotent submits, the approve flag, refusals, skips, undo, and overlapping
reviews decided by strict majority or adjudication."""

from __future__ import annotations

import pytest

from esk_pipeline.pipeline.review import (
    AlreadyReviewedError,
    InvalidReviewError,
    NotLeasedError,
    ReviewPriority,
    ReviewStatus,
    UndoError,
    UnknownDomainError,
    UnknownItemError,
)
from esk_pipeline_tests.pipeline_tests.review_tests.support import StoreFactory, label


def test_submit_is_idempotent_and_refuses_a_changed_mind(store: StoreFactory) -> None:
    ds = store()
    ds.add_items([label("a", domain="housing")])
    ds.get_next(1, "alice")
    first = ds.submit_review("a", "payments", "alice")
    assert (first.status, first.corrected_domain, first.reviews) == (
        ReviewStatus.CORRECTED,
        "payments",
        1,
    )
    again = ds.submit_review("a", "payments", "alice")
    assert again == first
    assert ds.reviews_since(0) == 1 and ds.stats().done_today == 1
    with pytest.raises(AlreadyReviewedError, match="undo that first"):
        ds.submit_review("a", "housing", "alice")


def test_approve_flag(make: StoreFactory) -> None:
    ds = make()
    ds.add_items([label("a", domain="housing"), label("f", domain=None, status="failed")])
    ds.get_next(2, "alice")
    with pytest.raises(InvalidReviewError, match="no prediction to approve"):
        ds.submit_review("f", None, "alice", approve=True)
    with pytest.raises(InvalidReviewError, match="model's own prediction"):
        ds.submit_review("a", "housing", "alice", approve=False)
    assert ds.submit_review("a", None, "alice", approve=True).status is ReviewStatus.APPROVED
    assert ds.submit_review("f", "other", "alice").status is ReviewStatus.CORRECTED


def test_refusals(store: StoreFactory) -> None:
    ds = store()
    ds.add_items([label("a"), label("b")])
    with pytest.raises(NotLeasedError, match="get it with get_next"):
        ds.submit_review("a", "housing", "alice")
    ds.get_next(1, "bob")
    with pytest.raises(NotLeasedError, match="another reviewer holds it"):
        ds.submit_review("a", "housing", "alice")
    with pytest.raises(UnknownDomainError, match="unknown domain 'heating'"):
        ds.submit_review("a", "heating", "bob")
    with pytest.raises(UnknownItemError, match="no review item 'zzz'"):
        ds.submit_review("zzz", "housing", "bob")
    with pytest.raises(InvalidReviewError):
        ds.get_next(1, " ")
    ds.submit_review("a", "housing", "bob")
    ds.get_next(1, "alice")
    with pytest.raises(NotLeasedError, match="already decided"):
        ds.submit_review("a", "payments", "alice")
    assert ds.get_item("a").reviews == 1  # no refused submission left a trace


def test_skip_goes_back_to_the_queue_for_others_only(store: StoreFactory) -> None:
    ds = store()
    ds.add_items([label("a", confidence=0.1), label("b", confidence=0.9)])
    ds.get_next(1, "alice")
    skipped = ds.skip("a", "alice")
    assert skipped.status is ReviewStatus.SKIPPED and skipped.lease_holder is None
    assert ds.skip("a", "alice") == skipped  # idempotent
    assert [i.id for i in ds.get_next(5, "alice")] == ["b"]
    assert [i.id for i in ds.get_next(5, "bob")] == ["a"]
    assert ds.submit_review("a", "housing", "bob").status is ReviewStatus.APPROVED
    assert ds.reviews_since(0) == 1  # a skip is not a decision


def test_undo_last(store: StoreFactory) -> None:
    ds = store()
    ds.add_items([label("a", domain="housing"), label("b", domain="housing")])
    with pytest.raises(UndoError, match="nothing to undo"):
        ds.undo_last("alice")
    ds.get_next(2, "alice")
    ds.submit_review("a", "payments", "alice")
    ds.skip("b", "alice")
    undone_skip = ds.undo_last("alice")
    assert (undone_skip.id, undone_skip.status) == ("b", ReviewStatus.IN_REVIEW)
    undone = ds.undo_last("alice")
    assert (undone.id, undone.status, undone.lease_holder) == ("a", ReviewStatus.IN_REVIEW, "alice")
    assert (undone.corrected_domain, undone.reviews) == (None, 0)
    assert ds.stats().done_today == 0 and ds.integrity_problems() == []
    assert ds.submit_review("a", "housing", "alice").status is ReviewStatus.APPROVED
    assert ds.get_item("a").reviews == 1 and ds.integrity_problems() == []


def test_undo_refused_once_the_item_moved_on(make: StoreFactory) -> None:
    ds = make(reviews_per_item=2)
    ds.add_items([label("a")])
    ds.get_next(1, "alice")
    ds.submit_review("a", "housing", "alice")
    ds.get_next(1, "bob")
    with pytest.raises(UndoError, match="another reviewer"):
        ds.undo_last("alice")  # bob holds the lease
    ds.submit_review("a", "housing", "bob")
    with pytest.raises(UndoError, match="another reviewer"):
        ds.undo_last("alice")  # bob reviewed it after alice
    assert ds.get_item("a").status is ReviewStatus.APPROVED


def test_overlap_needs_independent_reviews_and_adjudicates_disagreement(
    store: StoreFactory,
) -> None:
    ds = store(reviews_per_item=2)
    ds.add_items([label("agree", confidence=0.45), label("split", confidence=0.45)])
    ds.get_next(2, "alice")
    ds.submit_review("agree", "housing", "alice")
    half = ds.submit_review("split", "housing", "alice")
    assert (half.status, half.reviews, half.corrected_domain) == (ReviewStatus.PENDING, 1, None)
    assert ds.get_next(2, "alice") == []  # never the same reviewer twice
    ds.get_next(2, "bob")
    assert ds.submit_review("agree", "housing", "bob").status is ReviewStatus.APPROVED
    split = ds.submit_review("split", "payments", "bob")
    assert split.status is ReviewStatus.PENDING and split.needs_adjudication
    assert split.priority is ReviewPriority.CRITICAL
    assert ds.get_next(1, "alice") == [] and ds.get_next(1, "bob") == []
    assert [i.id for i in ds.get_next(1, "carol")] == ["split"]
    decided = ds.submit_review("split", "transport", "carol")  # the adjudicator decides
    assert (decided.status, decided.corrected_domain, decided.reviewer_id, decided.reviews) == (
        ReviewStatus.CORRECTED,
        "transport",
        "carol",
        3,
    )
    assert ds.reviews_since(0) == 5 and ds.agreement().needs_adjudication == 0


def test_overlap_of_three_decides_by_strict_majority(make: StoreFactory) -> None:
    ds = make(reviews_per_item=3)
    ds.add_items([label("m", domain="housing"), label("s", domain="housing")])
    for reviewer, m_vote, s_vote in [
        ("r1", "payments", "housing"),
        ("r2", "payments", "payments"),
        ("r3", "housing", "transport"),
    ]:
        ds.get_next(2, reviewer)
        ds.submit_review("m", m_vote, reviewer)
        ds.submit_review("s", s_vote, reviewer)
    m, s = ds.get_item("m"), ds.get_item("s")
    assert (m.status, m.corrected_domain) == (ReviewStatus.CORRECTED, "payments")
    assert s.needs_adjudication and s.status is ReviewStatus.PENDING


def test_undo_names_its_decision_and_a_repeat_is_a_no_op(store: StoreFactory) -> None:
    ds = store()
    ds.add_items([label("a", domain="housing"), label("b", domain="housing")])
    ds.get_next(2, "alice")
    first = ds.submit_review("a", "payments", "alice")
    second = ds.skip("b", "alice")
    assert first.decision_id is not None and second.decision_id is not None
    assert ds.submit_review("a", "payments", "alice").decision_id == first.decision_id
    undone, did = ds.undo("a", first.decision_id, "alice")
    assert did and (undone.id, undone.status, undone.lease_holder) == (
        "a",
        ReviewStatus.IN_REVIEW,
        "alice",
    )
    for _ in range(3):  # a retried request or a second key press
        again, did = ds.undo("a", first.decision_id, "alice")
        assert not did and again.status is ReviewStatus.IN_REVIEW
    assert ds.get_item("b").status is ReviewStatus.SKIPPED  # the newer skip stands
    redecided = ds.submit_review("a", "housing", "alice")
    assert redecided.decision_id != first.decision_id
    stale, did = ds.undo("a", first.decision_id, "alice")  # names the old, undone decision
    assert not did and stale.status is ReviewStatus.APPROVED
    assert ds.integrity_problems() == []
