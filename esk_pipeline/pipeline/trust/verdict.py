"""The trust verdict: the one rule that says, for every labelled text, whether a dataset may use
its label now, whether it waits for a person, or neither.

Every row gets exactly one `Verdict` with its `VerdictReason` (`label_contract`), in this
order of precedence:

1. the labeler failed -> queued (`labeler_failed`); deferred -> excluded (`deferred`); no
   domain -> excluded (`no_domain`);
2. a human decision -> trusted (`human`); one that confident learning doubts and a second
   reviewer has not answered yet -> trusted for train only (`doubted_human`), with its
   `p_correct` lowered to at most `DOUBTED_P_CORRECT`;
3. a machine or propagated label in the uniform audit: reviewed whatever the label's
   confidence, since its outcome is what calibrates every tier. Until then it is trusted
   (`audit_accepted`) where its tier's thresholds accept it, like any other label of the tier
   (the thresholds come from the audit's decided items, so admitting the undecided ones
   biases nothing), and queued (`audit`) otherwise; the queue plans from both;
4. a machine or propagated label its tier's audited thresholds accept -> trusted (`accepted`);
5. anything else -> queued (`needs_review`), one text per identity key, the first seen (by
   `ts`): the others with the same key are excluded (`same_text_queued`) until that decision
   propagates to them, so a near duplicate a later day brings waits for the text already in
   the queue instead of taking its place.

The review queue plans from `in_review_queue` (every queued text and the accepted audit texts)
and the dataset writer admits `verdict == trusted`; neither decides anything itself.
"""

from __future__ import annotations

from collections.abc import Collection

import numpy as np
import pandas as pd
import pyarrow as pa

from esk_pipeline.pipeline.label_contract import (
    HUMAN_ORIGINS,
    LabelOrigin,
    LabelStatus,
    Verdict,
    VerdictReason,
)
from esk_pipeline.pipeline.labels import tier_of
from esk_pipeline.pipeline.text import identity_key_series
from esk_pipeline.pipeline.trust._audit import audit_mask
from esk_pipeline.pipeline.trust.calibration import Calibration

__all__ = [
    "AUDIT_REASONS",
    "DOUBTED_P_CORRECT",
    "QUEUE_ORDER",
    "assign_verdicts",
    "first_seen",
    "in_review_queue",
    "queue_order",
    "row_verdicts",
    "settle_queue",
]

# A doubted decision is as likely wrong as right until a second reviewer answers.
DOUBTED_P_CORRECT = 0.5
# Which of the queued texts sharing an identity key stays queued: the first in this order.
QUEUE_ORDER = ["key", "ts", "p", "row_id"]
# The review reason (`review.ReviewReason.AUDIT`) of a decision on an audit text.
_AUDITED = "audit"


def assign_verdicts(
    labels: pd.DataFrame,
    calibration: Calibration | None,
    *,
    audit_share: float,
    doubted: Collection[str] = (),
    precision_target: float | None = None,
) -> pd.DataFrame:
    """`labels` (resolved, one row per text) with `verdict`, `verdict_reason` and `trusted`.

    Without a `calibration`, a machine label is accepted when its `p_correct` (estimated by
    the caller) reaches `precision_target`, and never without one. `doubted` are the row ids
    of human decisions waiting for a second opinion; their `p_correct` is capped at
    `DOUBTED_P_CORRECT`.
    """
    return settle_queue(
        row_verdicts(
            labels,
            calibration,
            audit_share=audit_share,
            doubted=doubted,
            precision_target=precision_target,
        )
    )


def row_verdicts(
    labels: pd.DataFrame,
    calibration: Calibration | None,
    *,
    audit_share: float,
    doubted: Collection[str] = (),
    precision_target: float | None = None,
) -> pd.DataFrame:
    """Rules 1-5 row by row (`assign_verdicts`), before one text per identity key is kept
    queued: each row's verdict depends on that row alone, so labels can go through in batches
    (a day at a time), each settled on its own (`settle_queue`), and the queued rows of all
    of them meet in `queue_order`."""
    frame = labels.reset_index(drop=True)
    n = len(frame)
    status = frame["status"].to_numpy(dtype=object)
    origin = frame["label_origin"]
    has_domain = frame["domain"].notna().to_numpy()
    labelled = (status == LabelStatus.LABELED) & has_domain
    human = origin.isin([o.value for o in HUMAN_ORIGINS]).to_numpy() & labelled
    doubt = human & frame["row_id"].isin(set(doubted)).to_numpy()
    machine = labelled & ~human & (origin != LabelOrigin.SYNTHETIC).to_numpy()
    sample = audit_mask(frame["row_id"], audit_share)
    in_audit = machine & sample
    accepted = np.zeros(n, dtype=bool)
    candidates = machine
    if calibration is not None and candidates.any():
        rows = frame[candidates]
        confidence = rows["confidence"].where(
            rows["label_origin"] != LabelOrigin.PROPAGATED.value, 1.0
        )
        accepted[candidates] = calibration.accepted(tier_of(rows), confidence, rows["domain"])
    elif precision_target is not None:
        p = pd.to_numeric(frame["p_correct"], errors="coerce").to_numpy(dtype=float)
        accepted = candidates & (p >= precision_target)

    verdict = np.full(n, Verdict.QUEUED.value, dtype=object)
    reason = np.full(n, VerdictReason.NEEDS_REVIEW.value, dtype=object)
    rules = [
        (status == LabelStatus.FAILED, Verdict.QUEUED, VerdictReason.LABELER_FAILED),
        (status == LabelStatus.DEFERRED, Verdict.EXCLUDED, VerdictReason.DEFERRED),
        ((status == LabelStatus.LABELED) & ~has_domain, Verdict.EXCLUDED, VerdictReason.NO_DOMAIN),
        (human & ~doubt, Verdict.TRUSTED, VerdictReason.HUMAN),
        (doubt, Verdict.TRUSTED, VerdictReason.DOUBTED_HUMAN),
        (in_audit & accepted, Verdict.TRUSTED, VerdictReason.AUDIT_ACCEPTED),
        (in_audit, Verdict.QUEUED, VerdictReason.AUDIT),
        (accepted, Verdict.TRUSTED, VerdictReason.ACCEPTED),
    ]
    for mask, value, why in reversed(rules):  # the first matching rule wins
        verdict[mask] = value.value
        reason[mask] = why.value
    frame = frame.assign(verdict=verdict, verdict_reason=reason)
    if "review_reason" in frame and (human & sample).any():
        # A decision on an audit text is audited (the splits' eval draws only these): a review
        # store from before `waiting_for` lost "audit" where a correction waited for a second
        # opinion or a decision was doubted.
        frame["review_reason"] = frame["review_reason"].where(~(human & sample), _AUDITED)
    if doubt.any():
        p = pd.to_numeric(frame["p_correct"], errors="coerce")
        frame["p_correct"] = p.where(~doubt, p.clip(upper=DOUBTED_P_CORRECT))
    return frame


def settle_queue(frame: pd.DataFrame) -> pd.DataFrame:
    """`row_verdicts`' output with one text per identity key left queued as `needs_review`
    (within this frame: across batches, `queue_order`), and the `trusted` flag."""
    frame = _one_queued_per_text(frame)
    return frame.assign(trusted=(frame["verdict"] == Verdict.TRUSTED.value).to_numpy())


def in_review_queue(labels: pd.DataFrame) -> pd.Series:
    """Texts that wait for a review decision: the queued ones and the undecided audit."""
    return (labels["verdict"] == Verdict.QUEUED.value) | (
        labels["verdict_reason"] == VerdictReason.AUDIT_ACCEPTED.value
    )


AUDIT_REASONS = (VerdictReason.AUDIT.value, VerdictReason.AUDIT_ACCEPTED.value)


def first_seen(frame: pd.DataFrame) -> pd.Series:
    """Each text's `ts` as a UTC time (missing where the rows carry none)."""
    if "ts" not in frame:
        return pd.Series(pd.NaT, index=frame.index, dtype="datetime64[ns, UTC]")
    return pd.to_datetime(frame["ts"], utc=True, errors="coerce")


def _one_queued_per_text(frame: pd.DataFrame) -> pd.DataFrame:
    """Among texts queued as `needs_review` that share an identity key, keep the first seen
    (earliest `ts`, a text without one last; then the least sure, then the smallest row id)
    queued and exclude the rest: one decision settles them all."""
    queued = (frame["verdict_reason"] == VerdictReason.NEEDS_REVIEW.value).to_numpy()
    if not queued.any():
        return frame
    keys = (
        frame["identity_key"]
        if "identity_key" in frame
        else identity_key_series(frame["text"].fillna(""))
    )
    sureness = pd.to_numeric(frame["p_correct"], errors="coerce").fillna(
        pd.to_numeric(frame["confidence"], errors="coerce")
    )
    order = pd.DataFrame(
        {"key": keys, "ts": first_seen(frame), "p": sureness.fillna(0.0), "row_id": frame["row_id"]}
    )[queued].sort_values(QUEUE_ORDER, kind="stable")
    others = order.index[order["key"].duplicated()]
    frame = frame.copy()
    frame.loc[others, "verdict"] = Verdict.EXCLUDED.value
    frame.loc[others, "verdict_reason"] = VerdictReason.SAME_TEXT_QUEUED.value
    return frame


def queue_order(
    key: np.ndarray, ts: np.ndarray, sureness: np.ndarray, row_ids: pa.ChunkedArray
) -> tuple[np.ndarray, np.ndarray]:
    """The order of queued texts by `QUEUE_ORDER` as pandas' stable sort gives it (`ts` as
    int64 nanoseconds, a missing time as the largest), and whether each, in that order, comes
    after another of its key. Sorted by number; row ids are compared only within runs that
    tie on key, time and sureness, so over a whole history no array of row ids is made."""
    order = np.lexsort((sureness, ts, key))
    ordered = key[order]
    del key  # each column goes once its ordered copy is compared
    lost = np.zeros(len(order), dtype=bool)
    lost[1:] = ordered[1:] == ordered[:-1]
    ordered = ts[order]
    del ts
    tie = lost[1:] & (ordered[1:] == ordered[:-1])
    ordered = sureness[order]
    del sureness
    tie &= ordered[1:] == ordered[:-1]
    del ordered
    tied = np.flatnonzero(np.r_[tie, False] | np.r_[False, tie])
    if len(tied):
        run = np.cumsum(~np.r_[False, tie][tied])
        ids = np.asarray(row_ids.take(order[tied]).to_pylist(), dtype=str)
        order[tied] = order[tied][np.lexsort((ids, run))]
    return order, lost
