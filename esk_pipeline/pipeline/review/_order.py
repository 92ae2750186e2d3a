"""The order in which untrusted texts are worth a reviewer's decision: what a decision settles.

A decision is worth what it makes trusted, not only how unsure the model was. The priority of
a candidate (one text per identity key) multiplies

- how many texts it stands for: its identity group, which the decision propagates to, and its
  neighbourhood among the other candidates (the summed cosine similarity of its nearest
  neighbours on character n-grams): a decision at a cluster's centre teaches the local model
  about every text around it, an outlier's teaches it about one;
- what the decision can change: the model's uncertainty (1 - p_correct), plus a bump for
  labels just short of the precision target, where one more training example near them
  lifts a whole neighbourhood over the tier's threshold. A label no audit has measured yet
  (no `p_correct`) counts as even odds: the model's own confidence is no evidence (on fresh
  logs labels it is 80-99% sure of can be right two times in three, so ranking by it would
  spend the first decisions on "cheap, near the threshold" labels that are neither), and
  until the audit speaks the order ranks by what a decision stands for;
- the rarity of its domain (rare domains are where a dataset is short and a model weakest);

divided by the decisions it is expected to cost: a correction of the model waits for a second
reviewer (until the reviewer is proven reliable), so a text the model is likely wrong about
costs about two decisions, one it is likely right about one;

and a batch stays diverse: picking greedily, each pick discounts the candidates like it,
so one cluster does not take every hand-out in a row.

Neighbourhoods and picks compare candidates pairwise, so only the `_MAX_SCORED` best by the
cheap factors get them, and their neighbourhoods are among each other: a queue is worked from
its head, and between two plans reviewers reach far fewer items than that. The rest keep the
order of the cheap factors below them. Pure function of the candidate frame.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.sparse import csr_matrix
from sklearn.feature_extraction.text import TfidfVectorizer

from esk_pipeline.pipeline.progress import SILENT, ProgressReporter
from esk_pipeline.pipeline.text import model_form

# The p_correct of a label no audit has measured: even odds, whatever the model claims.
_UNMEASURED = 0.5
# Neighbours summed into a candidate's density.
_NEIGHBOURS = 10
# How far below the precision target a label still counts as "near the threshold".
_NEAR_TARGET_WIDTH = 0.15
# Picks that discount their look-alikes; candidates past them keep their own priority order.
_DIVERSE_PICKS = 600
_ROWS_PER_BLOCK = 512
_MAX_SCORED = 5_000


def review_priority(
    candidates: pd.DataFrame,
    *,
    precision_target: float,
    group_sizes: pd.Series | None = None,
    domain_counts: pd.Series | None = None,
    progress: ProgressReporter = SILENT,
) -> np.ndarray:
    """A priority per candidate row (higher first), in the row order of `candidates`.

    `candidates`: one row per text to review, with `text`, `domain`, `status` and
    `p_correct` (NaN where no audit has measured the label's tier: even odds).
    `group_sizes`: texts each candidate's decision propagates to (itself included), aligned
    with `candidates`; `domain_counts`: labels per domain over all texts. `progress` gets
    two phases: "ranking" (neighbourhoods, by candidate) and "picking" (the diverse picks).
    """
    if candidates.empty:
        return np.zeros(0)
    priority = base_priority(
        candidates,
        precision_target=precision_target,
        group_sizes=group_sizes,
        domain_counts=domain_counts,
    )
    # Neighbourhoods cost a similarity per pair: only the best candidates by the cheap
    # factors get them; the rest rank as if they had no neighbours, so below all of those.
    scored = np.sort(np.argsort(-priority, kind="stable")[:_MAX_SCORED])
    progress.phase("ranking", len(scored), "candidates")
    vectors = _vectors(candidates["text"].iloc[scored])
    priority[scored] *= 1.0 + _density(vectors, progress)
    priority[scored] = _diversify(priority[scored], vectors, progress)
    return priority


def base_priority(
    candidates: pd.DataFrame,
    *,
    precision_target: float,
    group_sizes: pd.Series | None = None,
    domain_counts: pd.Series | None = None,
) -> np.ndarray:
    """The cheap factors of `review_priority` (everything but neighbourhoods and diversity):
    no text needed. `review_priority` scores the `_MAX_SCORED` best by these, in row order on
    ties, and keeps these for the rest."""
    p = pd.to_numeric(candidates["p_correct"], errors="coerce").fillna(_UNMEASURED)
    p = p.where(candidates["status"].fillna("labeled") == "labeled", 0.0).clip(0, 1).to_numpy()
    uncertainty = 1.0 - p
    below = np.clip(precision_target - p, 0.0, None)
    near_target = np.where(p < precision_target, np.exp(-((below / _NEAR_TARGET_WIDTH) ** 2)), 0)
    sizes = (
        np.ones(len(candidates))
        if group_sizes is None
        else group_sizes.to_numpy(dtype=float).clip(1)
    )
    return (
        (1.0 + np.log(sizes))
        * (uncertainty + near_target)
        * _rarity(candidates["domain"], domain_counts)
        / (1.0 + uncertainty)
    )


def _vectors(texts: pd.Series) -> csr_matrix:
    """Unit-length character n-gram vectors of the texts (cosine = dot product)."""
    forms = [model_form(str(t)) for t in texts.fillna("")]
    vectorizer = TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 4), sublinear_tf=True)
    try:
        return vectorizer.fit_transform(forms).tocsr()
    except ValueError:  # no text has an n-gram: no neighbourhoods either
        return csr_matrix((len(forms), 1))


def _density(vectors: csr_matrix, progress: ProgressReporter) -> np.ndarray:
    """The summed similarity of each row's nearest other rows."""
    n = vectors.shape[0]
    k = min(_NEIGHBOURS, n - 1)
    if k <= 0:
        return np.zeros(n)
    out = np.empty(n)
    for start in range(0, n, _ROWS_PER_BLOCK):
        block = (vectors[start : start + _ROWS_PER_BLOCK] @ vectors.T).toarray()
        rows = np.arange(block.shape[0])
        block[rows, rows + start] = 0.0  # not its own neighbour
        out[start : start + len(rows)] = np.partition(block, -k, axis=1)[:, -k:].sum(axis=1)
        progress.advance(len(rows))
    return out


def _rarity(domains: pd.Series, counts: pd.Series | None) -> np.ndarray:
    if counts is None or counts.empty:
        return np.ones(len(domains))
    share = domains.map(counts).fillna(counts.min()).to_numpy(dtype=float).clip(1)
    return np.clip(np.sqrt(float(counts.median()) / share), 0.5, 3.0)


def _diversify(priority: np.ndarray, vectors: csr_matrix, progress: ProgressReporter) -> np.ndarray:
    """Greedy picks, each candidate's priority discounted by (1 - s)², s its similarity to the
    most similar pick so far; the picks' priorities are rewritten so that sorting reproduces
    the pick order, above everything not picked."""
    out = priority.astype(float).copy()
    picks = min(_DIVERSE_PICKS, len(priority))
    if picks == 0:
        return out
    progress.phase("picking", picks, "picks")
    ceiling = float(priority.max())
    columns = vectors.tocsc()
    closest = np.zeros(len(priority))
    taken = np.zeros(len(priority), dtype=bool)
    for rank in range(picks):
        remaining = np.where(taken, -np.inf, priority * (1.0 - closest) ** 2)
        best = int(np.argmax(remaining))
        taken[best] = True
        out[best] = ceiling + (picks - rank)
        # Only the columns of the pick's n-grams: far cheaper than a product with every row.
        pick = vectors[best]
        similarity = columns[:, pick.indices] @ pick.data
        closest = np.maximum(closest, np.clip(similarity, 0.0, 1.0))
        progress.advance()
    return out
