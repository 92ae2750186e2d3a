"""What people should review next, in the order that helps the dataset most.

The queue holds exactly the texts that wait for a decision (`verdict.in_review_queue`: the
verdict "queued", and the audit texts trusted meanwhile), in two streams:

- texts without a trusted label (and labeler failures), one per identity key, ordered by
  what a decision on it settles (`_order.review_priority`: the texts it stands for, the
  model's uncertainty, closeness to the precision target, domain rarity, diversity within a
  batch);
- the audit: texts the trust assessment drew uniformly at random (verdict reasons "audit"
  and "audit_accepted"),
  interleaved so that about `audit_review_share` of hand-outs are audit items while any wait.
  Their decisions calibrate every tier and estimate each version's accuracy.

How much of the reviewers' time the audit gets (`audit_hand_out_share`) follows what the
calibration still needs. Before the audit has decided anything it gets every hand-out: no label
has a measured `p_correct` yet, so the order could rank the rest only by what a decision
stands for (the model's own confidence is no evidence: on fresh logs labels it is 80-99% sure
of can be right two times in three), and nothing is accepted until the audit can tell which
labels are right, while each audit decision both measures the model and trains it on a uniform
sample. Then the audit gets `prioritised` of the hand-outs (by default all of them: until a tier
accepts, no other decision is multiplied by accepted labels) for about as many audit items as
it still needs to decide what is accepted (`Calibration.audit_still_needed`), then the audit's own
share of the logs, so it keeps measuring each version as a uniform sample of the reviews while
the rest go where a decision settles more. The plan holds both parts, so a long stretch of
reviews between two plans does not spend itself on an audit that has already done its job.
Only the audit calibrates: decisions on texts chosen for their uncertainty are not a random
sample and never stand in for it.

The labels may come as parts (`pipeline.parts.FrameParts`, a part per labels day): the plan
reads small summaries of each part (kept beside it: a part that did not change is neither read
nor summarised again), counts what it needs over all labels (texts per identity key, labels
per domain), and keeps only the queued texts that can reach the review store, whose text it
reads at the end (`_plan_parts`). So its memory is about the queue's size, not the history's."""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from esk_pipeline.pipeline.progress import SILENT, ProgressReporter
from esk_pipeline.pipeline.review._order import review_priority
from esk_pipeline.pipeline.review._plan_parts import (
    HEAVY_COLUMNS,
    KEYS,
    QUEUED,
    REFUSED,
    Counts,
    Selection,
    heavy_columns,
    plan_summary,
)
from esk_pipeline.pipeline.review.models import ReviewReason
from esk_pipeline.pipeline.trust.calibration import Calibration

__all__ = ["AuditShare", "ReviewPlan", "audit_hand_out_share", "plan_review"]


@dataclass(frozen=True)
class AuditShare:
    """The audit's share of hand-outs: `first` for its first `items` items (None: all of
    them), then `then`."""

    first: float
    items: int | None
    then: float


def audit_hand_out_share(
    calibration: Calibration, *, prioritised: float, settled: float
) -> AuditShare:
    """Every hand-out while nothing is audited yet; then `prioritised` for as many audit
    items as the calibration still needs (`Calibration.audit_still_needed`), then the
    smaller of the two."""
    if not calibration.audited:
        return AuditShare(first=1.0, items=None, then=1.0)
    return AuditShare(
        first=prioritised, items=calibration.audit_still_needed(), then=min(prioritised, settled)
    )


@dataclass(frozen=True)
class ReviewPlan:
    """The planned rows that can reach the review store (every planned row without a bound),
    with `review_reason` and `review_gain`; how many rows were planned in all, by reason; and
    how many new rows were left out as beyond the store's room (`plan_review`)."""

    rows: pd.DataFrame
    planned: int
    by_reason: dict[str, int]

    @property
    def left_out(self) -> int:
        return self.planned - len(self.rows)


def plan_review(
    labels: pd.DataFrame | Mapping[str, pd.DataFrame],
    *,
    precision_target: float,
    audit_review_share: float | AuditShare,
    progress: ProgressReporter = SILENT,
    held: Collection[str] = (),
    new_items: int | None = None,
) -> ReviewPlan:
    """The label rows that wait for a decision (`in_review_queue`), with `review_reason` and
    `review_gain` (higher first); the audit gets `audit_review_share` of the hand-outs (one
    share, or one per stretch of the audit); `progress` as in `review_priority`. `labels`: one
    frame, or its parts (read one at a time, through summaries kept beside them).

    With `new_items` (the store's `max_queue_size`), the plan keeps only the rows that can
    reach the store: those in `held` (row ids the store holds) and the `new_items` most urgent
    others by `ReviewDataset.add_items`' order; the gains of the rows kept are those of the
    whole plan, and the rest are counted in `ReviewPlan.left_out`."""
    parts = {"": labels} if isinstance(labels, pd.DataFrame) else labels
    held = set(held)

    def key_tables() -> Iterator[pd.DataFrame]:
        for name in parts:
            # Rows `parse_batch` refuses are never cut: they take no room in the store.
            held.update(plan_summary(parts, name, REFUSED)["row_id"])
            yield plan_summary(parts, name, KEYS)

    counts = Counts.of(key_tables())
    selection = Selection(counts, precision_target, held, new_items)
    for name in parts:
        selection.add(name, plan_summary(parts, name, QUEUED))
    audit, places = selection.audit_places()
    kept = pd.concat([selection.candidates, audit.assign(in_audit=True)], ignore_index=True)
    kept = heavy_columns(parts, kept) if len(kept) else _no_rows()
    in_audit = kept["in_audit"].eq(True).to_numpy()  # the merge keeps the order
    candidates = kept[~in_audit].sort_values("seq", kind="stable").reset_index(drop=True)
    final = review_priority(
        candidates,
        precision_target=precision_target,
        group_sizes=pd.Series(
            counts.group_sizes(candidates["key"].to_numpy(dtype=np.uint64)),
            index=candidates.index,
        ),
        domain_counts=counts.domains,
        progress=progress,
    )
    gains = np.concatenate(selection.gains) if selection.gains else np.zeros(0)
    gains[candidates["seq"].to_numpy(dtype=np.int64)] = final
    candidates = candidates.assign(review_reason=ReviewReason.NEEDS_REVIEW.value, review_gain=final)
    audit = kept[in_audit].reset_index(drop=True)
    audit = audit.assign(
        review_reason=ReviewReason.AUDIT.value,
        review_gain=_interleave(
            gains, selection.by_reason.get(ReviewReason.AUDIT.value, 0), audit_review_share
        )[places],
    )
    rows = pd.concat([candidates, audit], ignore_index=True)[PLAN_COLUMNS]
    by_reason = {reason: n for reason, n in selection.by_reason.items() if n}
    return ReviewPlan(rows, selection.planned, by_reason)


# The plan's columns: what the review store and the asset's output read of a planned row.
PLAN_COLUMNS = [
    "row_id",
    "text",
    "domain",
    "confidence",
    "p_correct",
    "status",
    "top_candidates",
    "label_source",
    "error",
    "identity_key",
    "verdict_reason",
    "review_reason",
    "review_gain",
]


def _no_rows() -> pd.DataFrame:
    light = {c: pd.Series(dtype=object) for c in ["row_id", *HEAVY_COLUMNS, "domain", "status"]}
    return pd.DataFrame(
        {
            **light,
            "confidence": pd.Series(dtype=float),
            "p_correct": pd.Series(dtype=float),
            "verdict_reason": pd.Series(dtype=object),
            "key": pd.Series(dtype=np.uint64),
            "seq": pd.Series(dtype=np.int64),
            "in_audit": pd.Series(dtype=bool),
        }
    )


def _interleave(gains: np.ndarray, n_audit: int, share: float | AuditShare) -> np.ndarray:
    """Gains that put audit item j right after the k_j-th other item, k_j the sum of
    (1 - s_i) / s_i over the audit items i <= j (s_i the share at item i)."""
    if n_audit == 0:
        return np.zeros(0)
    shares = share if isinstance(share, AuditShare) else AuditShare(share, None, share)
    ordered = np.sort(gains)[::-1]
    if shares.first <= 0 or not len(ordered):
        return np.full(n_audit, (ordered[-1] if len(ordered) else 0.0) - 1.0)
    j = np.arange(n_audit)
    share_of = (
        np.full(n_audit, shares.first)
        if shares.items is None
        else np.where(j < shares.items, shares.first, shares.then)
    )
    with np.errstate(divide="ignore"):
        step = np.where(share_of > 0, (1 - share_of) / share_of, np.inf)
    position = np.cumsum(step)  # added in order, as a running sum would
    k = np.where(np.isfinite(position), np.rint(position), len(ordered))
    k = k.clip(0, len(ordered)).astype(np.int64)
    inner = (k > 0) & (k < len(ordered))
    out = np.where(k <= 0, ordered[0] + 1.0, ordered[-1] - 1.0 - j * 1e-6)
    out[inner] = (ordered[k[inner] - 1] + ordered[k[inner]]) / 2
    return out
