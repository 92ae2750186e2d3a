"""Reviewer reliability and the probability that a human label is right.

A one-coin Dawid–Skene model: reviewer r is right with probability a_r and, when wrong, picks
any other domain alike. Every item's votes (and, as one more voter, the model's prediction with
its calibrated accuracy) give a posterior over domains; EM alternates between those posteriors
and each reviewer's expected accuracy. A Beta prior keeps a reviewer with few overlaps near the
prior (`prior_accuracy`), so one disagreement does not brand anyone unreliable.

`p_correct` of a decided item is the posterior of the domain it was decided as.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from pydantic import BaseModel

from esk_pipeline.pipeline.review.models import VOTE_COLUMNS

__all__ = ["ReviewerReliability", "estimate_reliability"]

_MODEL = "\0model"  # the model as a voter: its accuracy is given, not estimated


class ReviewerReliability(BaseModel):
    accuracy: dict[str, float]  # reviewer -> estimated accuracy
    overlap_items: int  # items with two or more votes: the evidence


def estimate_reliability(
    votes: pd.DataFrame,
    n_domains: int,
    *,
    model_votes: pd.DataFrame | None = None,
    prior_accuracy: float = 0.9,
    prior_strength: float = 10.0,
    iterations: int = 20,
) -> tuple[ReviewerReliability, pd.DataFrame]:
    """Reviewer accuracies and per-item posteriors.

    `votes`: VOTE_COLUMNS, one row per decision. `model_votes`: item_id, domain, accuracy (the
    model's prediction for the item and how often such predictions are right), optional.
    Returns the reliability and a frame item_id, domain, posterior (one row per item and
    domain that got any vote).
    """
    reviewers = sorted(votes["reviewer_id"].unique())
    accuracy = dict.fromkeys(reviewers, prior_accuracy)
    overlap = int((votes.groupby("item_id").size() >= 2).sum()) if len(votes) else 0
    if votes.empty:
        empty = pd.DataFrame(columns=["item_id", "domain", "posterior"])
        return ReviewerReliability(accuracy={}, overlap_items=0), empty
    items = _voters_by_item(votes, model_votes)
    a0, b0 = prior_accuracy * prior_strength, (1 - prior_accuracy) * prior_strength
    posterior: dict[str, dict[str, float]] = {}
    for _ in range(iterations):
        posterior = {
            item: _posterior(voters, accuracy, n_domains) for item, voters in items.items()
        }
        hits = dict.fromkeys(reviewers, 0.0)
        counts = dict.fromkeys(reviewers, 0)
        for item, voters in items.items():
            for voter, domain, _ in voters:
                if voter in hits:
                    hits[voter] += posterior[item].get(domain, 0.0)
                    counts[voter] += 1
        updated = {r: (hits[r] + a0) / (counts[r] + a0 + b0) for r in reviewers}
        converged = all(abs(updated[r] - accuracy[r]) < 1e-6 for r in reviewers)
        accuracy = updated
        if converged:
            break
    posterior = {item: _posterior(voters, accuracy, n_domains) for item, voters in items.items()}
    rows = [(item, d, p) for item, dist in posterior.items() for d, p in dist.items()]
    frame = pd.DataFrame(rows, columns=["item_id", "domain", "posterior"])
    return ReviewerReliability(accuracy=accuracy, overlap_items=overlap), frame


def _voters_by_item(
    votes: pd.DataFrame, model_votes: pd.DataFrame | None
) -> dict[str, list[tuple[str, str, float | None]]]:
    """item -> [(voter, domain, fixed accuracy or None for a reviewer)]."""
    items: dict[str, list[tuple[str, str, float | None]]] = {}
    for item, reviewer, domain in votes[VOTE_COLUMNS].itertuples(index=False):
        items.setdefault(item, []).append((reviewer, domain, None))
    if model_votes is not None:
        for item, domain, accuracy in model_votes[["item_id", "domain", "accuracy"]].itertuples(
            index=False
        ):
            if item in items and not np.isnan(accuracy):
                items[item].append((_MODEL, domain, float(accuracy)))
    return items


def _posterior(
    voters: list[tuple[str, str, float | None]], accuracy: dict[str, float], n_domains: int
) -> dict[str, float]:
    """P(true domain = d | votes) for every voted domain d (unvoted ones share the rest)."""
    wrong_share = max(n_domains - 1, 1)
    chance = 1 / max(n_domains, 1)
    base = 0.0  # log-likelihood if every vote is wrong
    gains: dict[str, float] = {}
    for voter, domain, fixed in voters:
        # No voter is worse than chance: a weak model's vote says little, never the opposite.
        a = min(max(fixed if fixed is not None else accuracy[voter], chance), 1 - 1e-6)
        right, wrong = np.log(a), np.log((1 - a) / wrong_share)
        base += wrong
        gains[domain] = gains.get(domain, 0.0) + right - wrong
    top = max(gains.values())
    weights = {d: np.exp(g - top) for d, g in gains.items()}
    unvoted = max(n_domains - len(gains), 0) * np.exp(-top)
    total = sum(weights.values()) + unvoted
    return {d: float(w / total) for d, w in weights.items()}
