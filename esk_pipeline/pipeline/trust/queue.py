"""What people should review next, in the order that helps the dataset most.

The queue holds exactly the texts whose trust verdict is "queued" (`trust.verdict`), in two
streams:

- texts without a trusted label (and labeler failures), ordered by expected gain: how
  unsure the label is (1 - p_correct, or 1 - confidence before any calibration), how rare its
  domain is (rare domains are where a dataset is short and a model weakest), and how many
  texts one decision settles (every text with the same identity key, which the decision
  propagates to; the verdict queues one text per key). A light diversity rule lowers the gain
  of texts whose
  (label, runner-up) confusion pair is already represented higher up, so one batch does not
  spend itself on a single confusion;
- the audit: texts drawn uniformly at random (`audit.audit_mask`), interleaved so that about
  `audit_review_share` of hand-outs are audit items while any wait. Their decisions calibrate
  every tier and estimate each version's accuracy.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from esk_pipeline.pipeline.label_contract import LabelStatus, Verdict, VerdictReason
from esk_pipeline.pipeline.review import ReviewReason

_DIVERSITY_DECAY = 0.85


def plan_review(labels: pd.DataFrame, *, audit_review_share: float) -> pd.DataFrame:
    """The queued label rows (`verdict` "queued"), with `review_reason` and `review_gain`
    (higher first)."""
    queued = labels[labels["verdict"] == Verdict.QUEUED.value]
    in_audit = queued["verdict_reason"] == VerdictReason.AUDIT.value
    candidates = queued[~in_audit]
    candidates = candidates.assign(
        review_reason=ReviewReason.NEEDS_REVIEW.value,
        review_gain=_expected_gain(candidates, labels),
    )
    candidates = candidates.sort_values(["review_gain", "row_id"], ascending=[False, True])
    candidates = candidates.assign(review_gain=_diversify(candidates))
    audit = queued[in_audit].sort_values("row_id", kind="stable")
    audit = audit.assign(
        review_reason=ReviewReason.AUDIT.value,
        review_gain=_interleave(
            candidates["review_gain"].to_numpy(), len(audit), audit_review_share
        ),
    )
    return pd.concat([candidates, audit], ignore_index=True)


def _expected_gain(candidates: pd.DataFrame, labels: pd.DataFrame) -> np.ndarray:
    if candidates.empty:
        return np.zeros(0)
    p = pd.to_numeric(candidates["p_correct"], errors="coerce")
    p = p.fillna(pd.to_numeric(candidates["confidence"], errors="coerce")).fillna(0.0)
    p = p.where(candidates["status"] == LabelStatus.LABELED.value, 0.0)
    uncertainty = (1.0 - p.clip(0, 1)).to_numpy()
    counts = labels["domain"].value_counts()
    share = candidates["domain"].map(counts).fillna(counts.min() if len(counts) else 1)
    rarity = np.clip(np.sqrt(float(counts.median() if len(counts) else 1) / share), 0.5, 3.0)
    group_size = candidates["identity_key"].map(labels["identity_key"].value_counts()).fillna(1)
    settles = 1.0 + np.log(group_size.to_numpy(dtype=float))
    return uncertainty * rarity.to_numpy(dtype=float) * settles


def _diversify(candidates: pd.DataFrame) -> np.ndarray:
    """Decay each gain by how many higher-gain texts share its (label, runner-up) pair."""
    gain = candidates["review_gain"].to_numpy(dtype=float).copy()
    pairs = [
        (domain, _runner_up(top))
        for domain, top in zip(
            candidates["domain"],
            candidates.get("top_candidates", [None] * len(candidates)),
            strict=True,
        )
    ]
    seen: dict[tuple, int] = {}
    for i, pair in enumerate(pairs):
        gain[i] *= _DIVERSITY_DECAY ** seen.get(pair, 0)
        seen[pair] = seen.get(pair, 0) + 1
    return gain


def _runner_up(top: object) -> str | None:
    """The second candidate's domain from `top_candidates` (a list or its JSON string)."""
    if isinstance(top, str):
        try:
            top = json.loads(top)
        except json.JSONDecodeError:
            return None
    try:
        return str(top[1][0]) if top is not None and len(top) > 1 else None  # type: ignore[arg-type,index]
    except (TypeError, IndexError, KeyError):
        return None


def _interleave(gains: np.ndarray, n_audit: int, share: float) -> np.ndarray:
    """Gains that put audit item j right after the ((j + 1) * k)-th other item, k = (1-s)/s."""
    if n_audit == 0:
        return np.zeros(0)
    ordered = np.sort(gains)[::-1]
    if share <= 0 or not len(ordered):
        return np.full(n_audit, (ordered[-1] if len(ordered) else 0.0) - 1.0)
    step = max((1 - share) / share, 0.0)
    out = np.empty(n_audit)
    for j in range(n_audit):
        k = round((j + 1) * step)
        if k <= 0:
            out[j] = ordered[0] + 1.0
        elif k >= len(ordered):
            out[j] = ordered[-1] - 1.0 - j * 1e-6
        else:
            out[j] = (ordered[k - 1] + ordered[k]) / 2
    return out
