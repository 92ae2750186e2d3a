"""Metrics: kappas and per-reviewer agreement, model quality and throughput, on examples
computed by hand; the kappa functions against scikit-learn and statsmodels."""

from __future__ import annotations

import random

import numpy as np
import pytest
from statsmodels.stats.inter_rater import fleiss_kappa as statsmodels_fleiss_kappa

from esk_pipeline.pipeline.review._metrics import cohen_kappa, fleiss_kappa
from esk_pipeline_tests.pipeline_tests.review_tests.support import FakeClock, StoreFactory, label


def test_kappa_and_per_reviewer_agreement_on_a_hand_computed_example(
    make: StoreFactory, clock: FakeClock
) -> None:
    """Two reviewers, six items, all predicted "housing" (h); p = "payments".

    item:   1  2  3  4  5  6
    alice:  h  h  h  h  p  h      alice: h=5, p=1
    bob:    h  h  h  p  p  p      bob:   h=3, p=3
    Observed agreement p_o = 4/6 (items 1, 2, 3, 5).
    Cohen:  p_e = (5*3 + 1*3) / 36 = 1/2  ->  kappa = (2/3 - 1/2) / (1 - 1/2) = 1/3.
    Fleiss: pooled p_h = 8/12, p_p = 4/12 -> P_e = 4/9 + 1/9 = 5/9; every item's P_i is 1
            (agree) or 0 (disagree), so P-bar = 4/6 -> kappa = (2/3 - 5/9) / (4/9) = 1/4.
    Agreement with the model: alice 5/6, bob 3/6.
    Seconds: both lease all six at once; alice submits every 10 s (10..60, median 35),
    bob every 5 s (5..30, median 17.5).
    """
    ds = make(reviews_per_item=2)
    ids = [f"i{n}" for n in range(1, 7)]
    ds.add_items([label(i, domain="housing") for i in ids])
    votes = {"alice": "hhhhph", "bob": "hhhppp"}
    for reviewer, step in (("alice", 10), ("bob", 5)):
        assert [i.id for i in ds.get_next(6, reviewer)] == ids
        for item_id, vote in zip(ids, votes[reviewer], strict=True):
            clock.advance(step)
            ds.submit_review(item_id, {"h": "housing", "p": "payments"}[vote], reviewer)
    report = ds.agreement()
    assert report.items_with_overlap == 6
    assert report.observed_agreement == pytest.approx(4 / 6)
    assert report.fleiss_kappa == pytest.approx(1 / 4)
    assert report.mean_cohen_kappa == pytest.approx(1 / 3)
    [pair] = report.pairs
    assert (pair.reviewer_a, pair.reviewer_b, pair.items) == ("alice", "bob", 6)
    assert pair.cohen_kappa == pytest.approx(1 / 3)
    assert report.needs_adjudication == 2  # items 4 and 6
    alice, bob = report.reviewers
    assert alice.agreement_with_model == pytest.approx(5 / 6)
    assert bob.agreement_with_model == pytest.approx(3 / 6)
    assert (alice.median_seconds, bob.median_seconds) == (35.0, 17.5)
    # Agreed items 1, 2, 3, 5 are decided; each reviewer matches all four decisions.
    assert alice.agreement_with_majority == bob.agreement_with_majority == 1.0
    # carol adjudicates item 4 as payments: alice now matches 4 of 5 decisions, bob 5 of 5.
    assert [i.id for i in ds.get_next(1, "carol")] == ["i4"]
    ds.submit_review("i4", "payments", "carol")
    after = {r.reviewer_id: r for r in ds.agreement().reviewers}
    assert after["alice"].agreement_with_majority == pytest.approx(4 / 5)
    assert after["bob"].agreement_with_majority == 1.0


def test_quality_metrics_on_a_hand_built_example(make: StoreFactory, clock: FakeClock) -> None:
    """predicted -> human: i1 h->h, i2 h->p, i3 p->p | i4 p->p, i5 t->h, i6 failed->t.

    decided 6, approved 3 (i1, i3, i4), corrected 3 -> share 0.5; accuracy over the five the
    model labelled = 3/5. housing: predicted 2, actual 2 (i1, i5), correct 1; payments:
    predicted 2, actual 3, correct 2; transport: predicted 1, actual 0, correct 0.
    alice decides i1..i3 at +30, +60, +90 s of one lease: 180 s for 3 -> 60 per hour.
    """
    ds = make()
    predicted = {"i1": "housing", "i2": "housing", "i3": "payments", "i4": "payments"}
    predicted |= {"i5": "transport", "i6": None}
    human = {"i1": "housing", "i2": "payments", "i3": "payments", "i4": "payments"}
    human |= {"i5": "housing", "i6": "transport"}
    ds.add_items([label(i, domain=d, confidence=0.45) for i, d in predicted.items()])
    ds.get_next(3, "alice")  # i6 first (CRITICAL), then i1, i2
    ds.get_next(3, "bob")
    held = {"alice": ["i6", "i1", "i2"], "bob": ["i3", "i4", "i5"]}
    for reviewer, items in held.items():
        for item_id in items:
            clock.advance(30)
            ds.submit_review(item_id, human[item_id], reviewer)
    q = ds.quality_metrics()
    assert (q.decided, q.approved, q.corrected, q.labeler_failures_decided) == (6, 3, 3, 1)
    assert q.correction_share == 0.5 and q.model_accuracy == pytest.approx(3 / 5)
    by_domain = {d.domain: d for d in q.by_domain}
    assert (by_domain["housing"].precision, by_domain["housing"].recall) == (0.5, 0.5)
    assert by_domain["payments"].precision == 1.0
    assert by_domain["payments"].recall == pytest.approx(2 / 3)
    assert (by_domain["transport"].precision, by_domain["transport"].recall) == (0.0, None)
    assert q.confusion == {
        "__failed__": {"transport": 1},
        "housing": {"housing": 1, "payments": 1},
        "payments": {"payments": 2},
        "transport": {"housing": 1},
    }
    alice, bob = q.throughput
    assert (alice.reviewer_id, alice.decisions, alice.done_today) == ("alice", 3, 3)
    assert alice.decisions_per_hour == pytest.approx(60.0)  # 3 in 30+60+90 s
    # bob leased at T0 too and decided at +120, +150, +180 s: 450 s for 3 -> 24 per hour.
    assert bob.decisions_per_hour == pytest.approx(3 / (450 / 3600))
    assert alice.decisions_per_day == 3.0


# Fleiss (1971)'s example: 10 items, 14 raters each, 5 categories; kappa 0.210.
_FLEISS_1971 = [
    [0, 0, 0, 0, 14],
    [0, 2, 6, 4, 2],
    [0, 0, 3, 5, 6],
    [0, 3, 9, 2, 0],
    [2, 2, 8, 1, 1],
    [7, 7, 0, 0, 0],
    [3, 2, 6, 3, 0],
    [2, 5, 3, 2, 2],
    [6, 5, 2, 1, 0],
    [0, 2, 2, 3, 7],
]


def _random_table(seed: int, items: int, raters: int, categories: int) -> list[list[int]]:
    """Each item's ratings drawn around a favourite category, so agreement is above chance."""
    rng = random.Random(seed)
    table = []
    for _ in range(items):
        favourite = rng.randrange(categories)
        row = [0] * categories
        for _ in range(raters):
            row[favourite if rng.random() < 0.6 else rng.randrange(categories)] += 1
        table.append(row)
    return table


@pytest.mark.parametrize(
    "table",
    [
        _FLEISS_1971,
        [[2, 0], [0, 2], [1, 1], [2, 0], [1, 1]],  # two raters, two categories
        [[3, 0, 0], [0, 0, 3], [1, 1, 1], [0, 3, 0]],  # one item with no agreement at all
        [[1, 1], [1, 1], [1, 1]],  # every pair disagrees: below chance
        _random_table(1, items=40, raters=3, categories=4),
        _random_table(2, items=200, raters=5, categories=8),
        _random_table(3, items=25, raters=10, categories=2),
    ],
)
def test_fleiss_kappa_matches_statsmodels(table: list[list[int]]) -> None:
    ratings = [[f"c{j}" for j, n in enumerate(row) for _ in range(n)] for row in table]
    expected = statsmodels_fleiss_kappa(np.array(table), method="fleiss")
    assert fleiss_kappa(ratings) == pytest.approx(expected, abs=1e-12)


def test_fleiss_kappa_is_undefined_without_overlap_or_without_variety() -> None:
    assert fleiss_kappa([]) is None
    assert fleiss_kappa([["h"], ["p"]]) is None  # no item has two raters
    assert fleiss_kappa([["h", "h"], ["h", "h", "h"]]) is None  # chance agreement is 1


@pytest.mark.parametrize(
    ("pairs", "observed", "kappa"),
    [
        ([("h", "h"), ("h", "h"), ("h", "h")], 1.0, None),  # one label only: undefined
        ([("h", "p"), ("h", "p"), ("h", "p")], 0.0, 0.0),  # p_e = 0
        ([("h", "p"), ("p", "h")], 0.0, -1.0),  # p_e = 1/2: systematic disagreement
        ([("h", "h"), ("p", "p"), ("t", "t"), ("h", "p")], 0.75, 1 - 0.25 / (1 - 5 / 16)),
    ],
)
def test_cohen_kappa_on_small_cases(
    pairs: list[tuple[str, str]], observed: float, kappa: float | None
) -> None:
    got_observed, got_kappa = cohen_kappa(pairs)
    assert got_observed == observed
    assert got_kappa == (None if kappa is None else pytest.approx(kappa))
