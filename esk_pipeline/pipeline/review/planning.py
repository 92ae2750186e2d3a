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
has a measured `p_correct` yet, so the order's uncertainty and near-threshold factors would
read the model's own confidence, which on fresh logs runs far above its accuracy (labels the
model is 80-90% sure of can be right two times in three); the "cheap, settling" picks would
be neither, while each audit decision both measures the model and trains it. Then the audit
gets most hand-outs for about as many audit items as it still
needs to decide what is accepted (`Calibration.audit_still_needed`), then the audit's own
share of the logs, so it keeps measuring each version as a uniform sample of the reviews while
the rest go where a decision settles more. The plan holds both parts, so a long stretch of
reviews between two plans does not spend itself on an audit that has already done its job.
Only the audit calibrates: decisions on texts chosen for their uncertainty are not a random
sample and never stand in for it.

The labels may come as parts (`pipeline.parts.FrameParts`, a part per labels day): the plan
reads one part at a time, keeps only the queued rows, and counts what it needs over all
labels (texts per identity key, labels per domain) as it goes."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from esk_pipeline.pipeline.progress import SILENT, ProgressReporter
from esk_pipeline.pipeline.review._order import review_priority
from esk_pipeline.pipeline.review.models import ReviewReason
from esk_pipeline.pipeline.trust.calibration import Calibration
from esk_pipeline.pipeline.trust.verdict import AUDIT_REASONS, in_review_queue

__all__ = ["AuditShare", "audit_hand_out_share", "plan_review"]


@dataclass(frozen=True)
class AuditShare:
    """The audit's share of hand-outs: `first` for its first `items` items (None: all of
    them), then `then`."""

    first: float
    items: int | None
    then: float

    def for_item(self, j: int) -> float:
        return self.first if self.items is None or j < self.items else self.then


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


# What planning and the review store read of a queued row.
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
    "verdict",
    "verdict_reason",
]


def plan_review(
    labels: pd.DataFrame | Mapping[str, pd.DataFrame],
    *,
    precision_target: float,
    audit_review_share: float | AuditShare,
    progress: ProgressReporter = SILENT,
) -> pd.DataFrame:
    """The label rows that wait for a decision (`in_review_queue`), with `review_reason` and
    `review_gain` (higher first); the audit gets `audit_review_share` of the hand-outs (one
    share, or one per stretch of the audit); `progress` as in `review_priority`. `labels`: one
    frame, or its parts (read one at a time)."""
    parts = {"": labels} if isinstance(labels, pd.DataFrame) else labels
    queued_parts, keys, domain_counts = [], [], pd.Series(dtype="int64")
    for name in parts:
        part = _columns(parts, name, ["identity_key", "domain", "verdict", "verdict_reason"])
        keys.append(_key_hashes(part["identity_key"]))
        domain_counts = domain_counts.add(part["domain"].value_counts(), fill_value=0)
        if in_review_queue(part).any():
            part = _columns(parts, name, PLAN_COLUMNS)
            part = part[in_review_queue(part)]
            queued_parts.append(
                part.drop(columns="verdict").assign(key_hash=_key_hashes(part["identity_key"]))
            )
        del part
    queued = pd.concat(queued_parts, ignore_index=True) if queued_parts else _no_rows()
    in_audit = queued["verdict_reason"].isin(AUDIT_REASONS)
    candidates = queued[~in_audit]
    key_hashes, key_counts = np.unique(np.concatenate(keys or [_NONE]), return_counts=True)
    wanted = candidates["key_hash"].to_numpy(dtype=np.uint64)
    found = np.searchsorted(key_hashes, wanted).clip(max(len(key_hashes) - 1, 0))
    sizes = np.where((len(key_hashes) > 0) & (key_hashes[found] == wanted), key_counts[found], 1)
    gain = review_priority(
        candidates,
        precision_target=precision_target,
        group_sizes=pd.Series(sizes, index=candidates.index),
        domain_counts=domain_counts.astype("int64").sort_values(ascending=False, kind="stable"),
        progress=progress,
    )
    candidates = candidates.assign(review_reason=ReviewReason.NEEDS_REVIEW.value, review_gain=gain)
    audit = queued[in_audit].sort_values("row_id", kind="stable")
    audit = audit.assign(
        review_reason=ReviewReason.AUDIT.value,
        review_gain=_interleave(
            candidates["review_gain"].to_numpy(), len(audit), audit_review_share
        ),
    )
    return pd.concat([candidates, audit], ignore_index=True).drop(columns="key_hash")


_NONE = np.zeros(0, dtype=np.uint64)


def _columns(parts: Mapping[str, pd.DataFrame], name: str, columns: list[str]) -> pd.DataFrame:
    """Some columns of one part: only those are read where the parts can do that."""
    read = getattr(parts, "columns", None)
    if read is not None:
        return read(name, columns)
    part = parts[name]
    return part[[c for c in columns if c in part.columns]]


def _key_hashes(keys: pd.Series) -> np.ndarray:
    """Identity keys as 64-bit hashes: counted over every label without holding the strings."""
    return pd.util.hash_pandas_object(keys.fillna(""), index=False).to_numpy(dtype=np.uint64)


def _no_rows() -> pd.DataFrame:
    frame = pd.DataFrame({c: pd.Series(dtype=object) for c in PLAN_COLUMNS})
    return frame.drop(columns="verdict").assign(key_hash=pd.Series(dtype=np.uint64))


def _interleave(gains: np.ndarray, n_audit: int, share: float | AuditShare) -> np.ndarray:
    """Gains that put audit item j right after the k_j-th other item, k_j the sum of
    (1 - s_i) / s_i over the audit items i <= j (s_i the share at item i)."""
    if n_audit == 0:
        return np.zeros(0)
    shares = share if isinstance(share, AuditShare) else AuditShare(share, None, share)
    ordered = np.sort(gains)[::-1]
    if shares.first <= 0 or not len(ordered):
        return np.full(n_audit, (ordered[-1] if len(ordered) else 0.0) - 1.0)
    out = np.empty(n_audit)
    position = 0.0
    for j in range(n_audit):
        s = shares.for_item(j)
        position += (1 - s) / s if s > 0 else np.inf
        k = round(position) if np.isfinite(position) else len(ordered)
        if k <= 0:
            out[j] = ordered[0] + 1.0
        elif k >= len(ordered):
            out[j] = ordered[-1] - 1.0 - j * 1e-6
        else:
            out[j] = (ordered[k - 1] + ordered[k]) / 2
    return out
