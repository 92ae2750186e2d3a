"""Second opinions: a correction of a confident model waits for another reviewer, doubted
decisions go back once, and what reaches the verified labels meanwhile."""

from __future__ import annotations

from esk_pipeline.pipeline.review import ReviewDataset, ReviewPriority, ReviewReason, ReviewStatus
from esk_pipeline_tests.pipeline_tests.review_tests.support import StoreFactory, label


def test_a_correction_of_a_confident_model_waits_for_a_second_reviewer(
    store: StoreFactory,
) -> None:
    ds = store(second_opinion_confidence=0.7)
    ds.add_items([label("sure", confidence=0.9), label("unsure", confidence=0.4)])
    for item in ds.get_next(2, "alice"):
        ds.submit_review(item.id, "payments", "alice")  # both contradict "housing"
    held = ds.get_item("sure")
    assert held.status is ReviewStatus.PENDING and held.waiting_for is ReviewReason.SECOND_OPINION
    assert (held.priority, held.required_reviews, held.reviews) == (ReviewPriority.CRITICAL, 2, 1)
    assert ds.get_item("unsure").status is ReviewStatus.CORRECTED  # an unsure model: no wait
    assert set(ds.verified_labels()["row_id"]) == {"unsure"}  # not training data yet
    assert ds.get_next(1, "alice") == []  # never the same reviewer twice
    [second] = ds.get_next(1, "bob")
    assert second.id == "sure"
    ds.submit_review("sure", "payments", "bob")
    decided = ds.verified_labels().set_index("row_id")
    assert decided.loc["sure", "label_origin"] == "human_verified"
    assert (decided.loc["sure", "domain"], decided.loc["sure", "votes"]) == ("payments", 2)


def test_a_disagreeing_second_opinion_is_adjudicated_and_marked_so(make: StoreFactory) -> None:
    ds = make(second_opinion_confidence=0.0)
    ds.add_items([label("a", confidence=0.9)])
    ds.get_next(1, "alice")
    ds.submit_review("a", "payments", "alice")
    ds.get_next(1, "bob")
    ds.submit_review("a", "housing", "bob")
    assert ds.get_item("a").needs_adjudication
    ds.get_next(1, "carol")
    ds.submit_review("a", "housing", "carol")
    decided = ds.verified_labels().set_index("row_id")
    assert (decided.loc["a", "domain"], decided.loc["a", "label_origin"]) == (
        "housing",
        "adjudicated",
    )


def test_an_approval_needs_no_second_opinion_and_undo_restores_one_review(
    make: StoreFactory,
) -> None:
    ds = make(second_opinion_confidence=0.0)
    ds.add_items([label("a"), label("b")])
    ds.get_next(2, "alice")
    ds.submit_review("a", None, "alice", approve=True)
    assert ds.get_item("a").status is ReviewStatus.APPROVED
    ds.submit_review("b", "payments", "alice")
    assert ds.get_item("b").required_reviews == 2
    ds.undo_last("alice")
    undone = ds.get_item("b")
    assert (undone.required_reviews, undone.reason, undone.waiting_for) == (
        1,
        ReviewReason.NEEDS_REVIEW,
        None,
    )


def test_a_doubted_decision_stands_and_waits_once_for_another_reviewer(
    store: StoreFactory,
) -> None:
    ds = store()
    ds.add_items([label("a"), label("b")])
    for item in ds.get_next(2, "alice"):
        ds.submit_review(item.id, "payments", "alice")
    assert ds.request_second_opinion(["a", "missing"], ReviewReason.POSSIBLE_LABEL_ERROR) == 1
    doubted = ds.get_item("a")
    assert doubted.status is ReviewStatus.PENDING and doubted.priority is ReviewPriority.CRITICAL
    assert doubted.waiting_for is ReviewReason.POSSIBLE_LABEL_ERROR
    # The decision stands meanwhile: still human training data, flagged as doubted.
    verified = ds.verified_labels().set_index("row_id")
    assert set(verified.index) == {"a", "b"}
    assert verified.loc["a", "doubt_pending"] and not verified.loc["b", "doubt_pending"]
    assert (verified.loc["a", "domain"], verified.loc["a", "review_status"]) == (
        "payments",
        "corrected",
    )
    assert not ds.integrity_problems()
    # Asking again on the next run changes nothing: one doubt per decision.
    assert ds.request_second_opinion(["a"], ReviewReason.POSSIBLE_LABEL_ERROR) == 0
    ds.get_next(1, "bob")
    ds.submit_review("a", "payments", "bob")  # the second reviewer confirms it
    settled = ds.get_item("a")
    assert (settled.status, settled.reviews) == (ReviewStatus.CORRECTED, 2)
    assert not ds.verified_labels().set_index("row_id").loc["a", "doubt_pending"]
    assert ds.request_second_opinion(["a"], ReviewReason.POSSIBLE_LABEL_ERROR) == 0


def _contradicted_doubt(make: StoreFactory) -> ReviewDataset:
    """Alice decides "a" as payments, the decision is doubted, and Bob answers housing."""
    ds = make()
    ds.add_items([label("a")])
    ds.get_next(1, "alice")
    ds.submit_review("a", "payments", "alice")
    ds.request_second_opinion(["a"], ReviewReason.POSSIBLE_LABEL_ERROR)
    ds.get_next(1, "bob")
    ds.submit_review("a", "housing", "bob")
    return ds


def test_a_contradicted_doubt_goes_to_adjudication_and_leaves_the_verified_labels(
    make: StoreFactory,
) -> None:
    ds = _contradicted_doubt(make)
    item = ds.get_item("a")
    assert item.needs_adjudication and item.corrected_domain is None
    assert ds.verified_labels().empty
    assert not ds.integrity_problems()


def test_undoing_the_answer_to_a_doubt_puts_the_doubted_decision_back(make: StoreFactory) -> None:
    ds = _contradicted_doubt(make)
    ds.undo_last("bob")
    verified = ds.verified_labels().set_index("row_id")
    assert (verified.loc["a", "domain"], verified.loc["a", "reviewer_id"]) == ("payments", "alice")
    assert verified.loc["a", "doubt_pending"]
    assert ds.get_item("a").priority is ReviewPriority.CRITICAL
    assert not ds.integrity_problems()


def test_a_rebuild_keeps_the_reason_and_priority_of_items_waiting_on_people(
    make: StoreFactory,
) -> None:
    ds = make(second_opinion_confidence=0.7)
    ds.add_items([label("sure", confidence=0.9), label("doubted")])
    for item in ds.get_next(2, "alice"):
        ds.submit_review(item.id, "payments", "alice")
    ds.request_second_opinion(["doubted"], ReviewReason.POSSIBLE_LABEL_ERROR)
    before = {i: ds.get_item(i) for i in ("sure", "doubted")}
    for _ in range(3):  # the graph re-plans the queue as an audit and a fresh label
        ds.add_items(
            [
                label("sure", confidence=0.8, review_reason="audit"),
                label("doubted", review_reason="audit"),
            ],
            withdraw_others=True,
        )
    for item_id, item in before.items():
        now = ds.get_item(item_id)
        assert (now.reason, now.waiting_for, now.priority) == (
            item.reason,
            item.waiting_for,
            item.priority,
        )


def _overlap(ds, rid: str, first: tuple[str, str], second: tuple[str, str]) -> None:
    """Item `rid` (a sure model says "housing", so a correction always waits): `first` =
    (reviewer, domain) decides it, then `second` gives the second opinion."""
    ds.add_items([label(rid, confidence=0.995)])
    for reviewer, domain in (first, second):
        [item] = ds.get_next(1, reviewer)
        assert item.id == rid
        ds.submit_review(rid, domain, reviewer)


def test_a_reviewer_proven_reliable_corrects_alone_but_not_a_sure_model(
    make: StoreFactory,
) -> None:
    ds = make(second_opinion_confidence=0.0, reliable_reviewer_agreement=0.9)
    # Alice's 30 corrections were each confirmed by a second reviewer: 30 of 30.
    for i in range(30):
        _overlap(ds, f"o{i}", ("alice", "payments"), (f"second-{i}", "payments"))
    ds.add_items([label("plain", confidence=0.8), label("sure", confidence=0.995)])
    for item in ds.get_next(2, "alice"):
        ds.submit_review(item.id, "payments", "alice")
    assert ds.get_item("plain").status is ReviewStatus.CORRECTED  # counts alone
    assert ds.get_item("sure").waiting_for is ReviewReason.SECOND_OPINION  # the model was sure
    # Carol is unproven: her correction still waits.
    ds.add_items([label("by-carol", confidence=0.8)])
    ds.get_next(2, "carol")
    ds.submit_review("by-carol", "payments", "carol")
    assert ds.get_item("by-carol").waiting_for is ReviewReason.SECOND_OPINION


def test_agreeing_second_opinions_do_not_prove_a_reviewers_corrections(
    make: StoreFactory,
) -> None:
    ds = make(second_opinion_confidence=0.0, reliable_reviewer_agreement=0.9)
    # Alice agreed with 30 corrections by others: that says nothing of her own corrections.
    for i in range(30):
        _overlap(ds, f"o{i}", (f"first-{i}", "payments"), ("alice", "payments"))
    ds.add_items([label("plain", confidence=0.8)])
    ds.get_next(1, "alice")
    ds.submit_review("plain", "payments", "alice")
    assert ds.get_item("plain").waiting_for is ReviewReason.SECOND_OPINION


def test_corrections_overruled_by_others_keep_a_reviewer_unproven(make: StoreFactory) -> None:
    ds = make(second_opinion_confidence=0.0, reliable_reviewer_agreement=0.9)
    # Every fourth of Alice's 40 corrections is overruled: the second reviewer keeps the
    # model's "housing" and Carol adjudicates so.
    for i in range(40):
        second = "housing" if i % 4 == 0 else "payments"
        _overlap(ds, f"o{i}", ("alice", "payments"), (f"second-{i}", second))
        if i % 4 == 0:
            ds.get_next(1, "carol")
            ds.submit_review(f"o{i}", "housing", "carol")
    ds.add_items([label("plain", confidence=0.8)])
    ds.get_next(1, "alice")
    ds.submit_review("plain", "payments", "alice")
    assert ds.get_item("plain").waiting_for is ReviewReason.SECOND_OPINION


def test_an_audit_item_stays_one_through_second_opinions_doubts_adjudication_and_undo(
    store: StoreFactory,
) -> None:
    """No decision changes why an item was queued: the reviewer page and the API keep an
    audit item blind only while it is one."""
    audit, waits = ReviewReason.AUDIT, ReviewReason.SECOND_OPINION
    ds = store(second_opinion_confidence=0.7)
    ds.add_items(
        [
            label("sure", confidence=0.9, review_reason="audit"),
            label("doubted", review_reason="audit"),
        ]
    )
    ds.get_next(2, "alice")
    first = ds.submit_review("sure", "payments", "alice")  # against a sure model: it waits
    ds.submit_review("doubted", "housing", "alice")
    ds.request_second_opinion(["doubted"], ReviewReason.POSSIBLE_LABEL_ERROR)
    held = ds.get_item("sure")
    assert (held.reason, held.waiting_for, held.priority) == (audit, waits, ReviewPriority.CRITICAL)
    doubted = ds.get_item("doubted")
    assert (doubted.reason, doubted.waiting_for) == (audit, ReviewReason.POSSIBLE_LABEL_ERROR)
    ds.get_next(2, "bob")
    ds.submit_review("doubted", "housing", "bob")  # confirms the doubted decision
    ds.submit_review("sure", "housing", "bob")  # disagrees with alice: adjudication
    assert (ds.get_item("doubted").reason, ds.get_item("doubted").waiting_for) == (audit, None)
    adjudicated = ds.get_item("sure")
    assert adjudicated.needs_adjudication
    assert (adjudicated.reason, adjudicated.waiting_for) == (audit, None)
    assert set(ds.verified_labels()["review_reason"]) == {"audit"}
    ds.undo_last("bob")  # the second opinion undone: it waits for one again
    again = ds.get_item("sure")
    assert (again.reason, again.waiting_for, again.priority) == (audit, waits, held.priority)
    ds.release("sure", "bob")
    undone, _ = ds.undo("sure", first.decision_id, "alice")  # its only vote undone
    assert (undone.reason, undone.waiting_for, undone.reviews) == (audit, None, 0)
    assert undone.priority is ReviewPriority.MEDIUM
    assert not ds.integrity_problems()
