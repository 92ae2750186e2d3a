"""Reviewer reliability (one-coin Dawid-Skene) from overlapping decisions."""

import numpy as np
import pandas as pd

from esk_pipeline.pipeline.trust.reviewers import estimate_reliability

DOMAINS = [f"d{i}" for i in range(10)]


def _votes(n_items: int, accuracy: dict[str, float], seed: int = 0) -> tuple[pd.DataFrame, dict]:
    rng = np.random.default_rng(seed)
    truth = {f"i{n}": DOMAINS[rng.integers(len(DOMAINS))] for n in range(n_items)}
    rows = []
    for item, right in truth.items():
        for reviewer, a in accuracy.items():
            wrong = [d for d in DOMAINS if d != right]
            rows.append((item, reviewer, right if rng.random() < a else wrong[rng.integers(9)]))
    return pd.DataFrame(rows, columns=["item_id", "reviewer_id", "domain"]), truth


def test_an_unreliable_reviewer_is_found_and_outvoted() -> None:
    votes, truth = _votes(300, {"good1": 0.95, "good2": 0.95, "sloppy": 0.6})
    reliability, posterior = estimate_reliability(votes, len(DOMAINS))
    assert reliability.accuracy["sloppy"] < 0.7 < 0.9 < reliability.accuracy["good1"]
    assert reliability.overlap_items == 300
    best = posterior.loc[posterior.groupby("item_id")["posterior"].idxmax()]
    accuracy = np.mean(
        [truth[i] == d for i, d in zip(best["item_id"], best["domain"], strict=True)]
    )
    assert accuracy > 0.97


def test_agreement_with_the_model_raises_and_a_lone_correction_lowers_the_posterior() -> None:
    votes = pd.DataFrame(
        [("a", "r1", "d1"), ("b", "r1", "d2")], columns=["item_id", "reviewer_id", "domain"]
    )
    model = pd.DataFrame({"item_id": ["a", "b"], "domain": ["d1", "d1"], "accuracy": [0.9, 0.9]})
    _, posterior = estimate_reliability(votes, len(DOMAINS), model_votes=model)
    p = posterior.set_index(["item_id", "domain"])["posterior"]
    assert p[("a", "d1")] > 0.99
    assert p[("b", "d2")] < p[("a", "d1")]
    # A model no better than chance says nothing either way.
    weak = model.assign(accuracy=0.0)
    _, alone = estimate_reliability(votes, len(DOMAINS), model_votes=weak)
    q = alone.set_index(["item_id", "domain"])["posterior"]
    assert q[("b", "d2")] > 0.8
