"""The trust policy: which labels a dataset may use, and which go to the `unverified` split.

One label per `row_id` comes from `labels.strongest_per_row` (within a part: every row id is
in one part); here a row is rejected when it has no usable label, and trusted when its trust
verdict says so (`verdict`, from `trust.verdict`). Rows that come without a verdict get one
from the same rule, with machine labels accepted where their `p_correct` reaches
`precision_target`. A synthetic sample is trusted exactly when its source is. Untrusted rows
are never in train or eval.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel

from esk_pipeline.pipeline.ids import row_ids
from esk_pipeline.pipeline.label_contract import LabelOrigin, Verdict, VerdictReason
from esk_pipeline.pipeline.labels import is_human, strongest_per_row
from esk_pipeline.pipeline.splits._files import by_row_id
from esk_pipeline.pipeline.trust.verdict import assign_verdicts


def prepare(
    items: Iterable[Mapping[str, Any]] | pd.DataFrame, precision_target: float
) -> tuple[pd.DataFrame, int, int, dict[str, int]]:
    """(frame, input items, superseded labels, rejected by reason): `normalise`, one label per
    row_id (`labels.strongest_per_row`), `reject_unlabelled`, sorted by row_id, with
    `_human_origin` (a human label) and `_human` (one that may go to eval: a doubted decision
    waits for its second opinion)."""
    frame = normalise(items, precision_target)
    input_items = len(frame)
    superseded = 0
    if not frame["row_id"].is_unique:  # parts of trusted labels are one row per row_id already
        frame, superseded = strongest_per_row(frame)
    frame, rejected = reject_unlabelled(frame)
    frame = by_row_id(frame)
    frame["_human_origin"] = is_human(frame["label_origin"])
    frame["_human"] = frame["_human_origin"] & (
        frame["verdict_reason"] != VerdictReason.DOUBTED_HUMAN.value
    )
    return frame, input_items, superseded, rejected


def trusted(frame: pd.DataFrame, trusted_sources: set[str]) -> pd.Series:
    """`trusted` by the verdict; a synthetic sample is trusted when its source is (one of
    `trusted_sources`: the row ids of trusted real records)."""
    by_verdict = frame["verdict"] == Verdict.TRUSTED.value
    synthetic = frame["is_synthetic"]
    return by_verdict.where(~synthetic, frame["source_row_id"].isin(trusted_sources))


def not_trusted_counts(unverified: pd.DataFrame) -> dict[str, int]:
    """Unverified records by reason, zero counts left out."""
    real = unverified[~unverified["is_synthetic"]]
    counts = {str(k): int(v) for k, v in real["verdict_reason"].value_counts().items()}
    if unverified["is_synthetic"].any():
        counts["synthetic_of_untrusted_source"] = int(unverified["is_synthetic"].sum())
    return {k: v for k, v in counts.items() if v}


def normalise(
    items: Iterable[Mapping[str, Any]] | pd.DataFrame, precision_target: float
) -> pd.DataFrame:
    """The input as a frame with every column the writer uses, with defaults filled in."""
    if isinstance(items, pd.DataFrame):
        frame = items.copy()
    else:
        rows = [i.model_dump() if isinstance(i, BaseModel) else dict(i) for i in items]
        frame = pd.DataFrame(rows)
    if "text" not in frame:
        frame["text"] = pd.Series(dtype=object)
    frame = frame.reset_index(drop=True)
    frame["text"] = frame["text"].astype(object).where(frame["text"].notna(), "")
    defaults: dict[str, Any] = {
        "domain": None,
        "label_source": "local",
        "confidence": None,
        "p_correct": None,
        "label_origin": None,
        "verdict": None,
        "verdict_reason": None,
        "review_reason": None,
        "is_synthetic": False,
        "source_row_id": None,
        "user_id": None,
        "status": "labeled",
        "reviewed_at": None,
    }
    for column, default in defaults.items():
        if column not in frame:
            frame[column] = default
    if "row_id" not in frame:
        frame["row_id"] = None
    missing_id = frame["row_id"].isna()
    if missing_id.any():
        frame.loc[missing_id, "row_id"] = row_ids(frame.loc[missing_id, "text"])
    frame["row_id"] = frame["row_id"].astype(str)
    frame["is_synthetic"] = frame["is_synthetic"].astype("boolean").fillna(False).astype(bool)
    frame["status"] = frame["status"].fillna("labeled")
    frame["label_source"] = frame["label_source"].where(frame["label_source"].notna(), "local")
    frame["confidence"] = pd.to_numeric(frame["confidence"], errors="coerce")
    frame["p_correct"] = pd.to_numeric(frame["p_correct"], errors="coerce")
    unnamed = frame["label_origin"].isna()
    frame.loc[unnamed, "label_origin"] = np.where(
        frame.loc[unnamed, "is_synthetic"],
        LabelOrigin.SYNTHETIC.value,
        LabelOrigin.LOCAL_MODEL.value,
    )
    undecided = frame["verdict"].isna() & ~frame["is_synthetic"]
    if undecided.any():
        judged = assign_verdicts(
            frame[undecided], None, audit_share=0.0, precision_target=precision_target
        )
        frame.loc[undecided, ["verdict", "verdict_reason"]] = judged[
            ["verdict", "verdict_reason"]
        ].to_numpy()
    frame["reviewed_at"] = pd.to_datetime(frame["reviewed_at"], utc=True, errors="coerce")
    for column in ("domain", "source_row_id", "user_id"):
        frame[column] = frame[column].astype(object).where(frame[column].notna(), None)
    return frame


def reject_unlabelled(frame: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, int]]:
    """Drop failed/deferred items and items without a domain (after resolution), counting why."""
    bad_status = frame["status"] != "labeled"
    no_domain = ~bad_status & frame["domain"].isna()
    rejected = {
        f"status:{k}": int(v) for k, v in frame.loc[bad_status, "status"].value_counts().items()
    }
    if no_domain.any():
        rejected["no_domain"] = int(no_domain.sum())
    return frame[~bad_status & ~no_domain].reset_index(drop=True), rejected
