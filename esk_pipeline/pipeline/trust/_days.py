"""What the first pass over the labels days learns of each day, and which day holds each text.

A day's index is its row ids' 64-bit hashes, which of its rows carry a label, its fingerprint,
the tiers that labelled it, and the machine labels of its audit texts (`_audit`: the
calibration answers for the undecided ones, `open_audit_labels`); it is kept beside the
day's trusted-labels part (`DAY_SUMMARY`), so a day that did not change is not read again to
be indexed. A text seen on several days belongs to one of them
(`labels.first_label_per_text`): the first whose row carries a label, else the first.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from esk_pipeline.pipeline.labels import tier_of, usable
from esk_pipeline.pipeline.parts import PartRecord, PartStore, digest
from esk_pipeline.pipeline.parts import row_hashes as hashes
from esk_pipeline.pipeline.trust._audit import audit_mask

DAY_SUMMARY = "trust-day"
_NONE = np.zeros(0, dtype=np.uint64)
# An audit text's machine label: its row id's hash, tier, confidence, domain.
AUDIT_LABEL_COLUMNS = ["row", "tier", "confidence", "predicted"]


def _no_audit_labels() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "row": _NONE,
            "tier": pd.Series(dtype=object),
            "confidence": pd.Series(dtype=float),
            "predicted": pd.Series(dtype=object),
        }
    )


@dataclass(frozen=True)
class DayIndex:
    """What the first pass learns of a labels day: its row ids' hashes, which of its rows
    carry a label (`labels.usable`), its fingerprint, the tiers that labelled it, and the
    machine labels of its audit texts (AUDIT_LABEL_COLUMNS), of an audit of `audit_share`."""

    rows: np.ndarray
    fingerprint: str
    tiers: frozenset[str] = frozenset()
    labelled: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))
    audit_labels: pd.DataFrame = field(default_factory=_no_audit_labels)
    audit_share: float = 0.0

    def summary(self) -> pd.DataFrame:
        """The index as a frame kept beside the day's part (`known_day` reads it back): a row
        per text, a row per tier, then a row per audit label (its `confidence` set)."""
        tiers = pd.Series(sorted(self.tiers), dtype=object)
        audit = self.audit_labels
        n = len(self.rows)
        return pd.DataFrame(
            {
                "row": np.concatenate(
                    [self.rows, np.zeros(len(tiers), dtype=np.uint64), audit["row"]]
                ).astype(np.uint64),
                "tier": pd.concat(
                    [pd.Series([None] * n, dtype=object), tiers, audit["tier"].astype(object)]
                ).array,
                "labelled": np.r_[self.labelled, np.zeros(len(tiers) + len(audit), dtype=bool)],
                "confidence": np.r_[np.full(n + len(tiers), np.nan), audit["confidence"]],
                "predicted": pd.concat(
                    [pd.Series([None] * (n + len(tiers)), dtype=object), audit["predicted"]]
                ).array,
                "audit_share": self.audit_share,
            }
        )


def index_day(frame: pd.DataFrame, fingerprint: str | None, audit_share: float) -> DayIndex:
    """A day's index; without a fingerprint (frames not read from files), its content's."""
    if fingerprint is None:
        fingerprint = digest(frame.to_json(orient="split", date_format="iso", default_handler=str))
    if not len(frame):
        return DayIndex(_NONE, fingerprint, audit_share=audit_share)
    tiers = tier_of(frame)
    labelled = usable(frame).to_numpy(dtype=bool)
    machine = labelled & tiers.notna().to_numpy(dtype=bool)
    audit = frame[machine][audit_mask(frame.loc[machine, "row_id"], audit_share)]
    return DayIndex(
        hashes(frame["row_id"]),
        fingerprint,
        frozenset(tiers.dropna()),
        labelled,
        pd.DataFrame(
            {
                "row": hashes(audit["row_id"]),
                "tier": tiers[audit.index].to_numpy(dtype=object),
                "confidence": pd.to_numeric(audit["confidence"]).to_numpy(dtype=float),
                "predicted": audit["domain"].to_numpy(dtype=object),
            }
        ),
        audit_share,
    )


def known_day(
    store: PartStore, last: PartRecord | None, fingerprint: str | None, audit_share: float
) -> DayIndex | None:
    """The index of a day kept beside its part last time, when the day and the audit's share
    are still the same."""
    if last is None or fingerprint is None or last.inputs.get("day") != fingerprint:
        return None
    if not store.has(f"{last.address}.{DAY_SUMMARY}"):
        return None
    kept = store.read(f"{last.address}.{DAY_SUMMARY}")
    if "audit_share" not in kept:  # kept by an older version
        return None
    if len(kept) and kept["audit_share"].iloc[0] != audit_share:
        return None
    audit = kept["confidence"].notna()
    rows = kept[kept["tier"].isna() & ~audit]
    return DayIndex(
        rows["row"].to_numpy(dtype=np.uint64),
        fingerprint,
        frozenset(kept.loc[~audit, "tier"].dropna()),
        rows["labelled"].to_numpy(dtype=bool),
        kept.loc[audit, AUDIT_LABEL_COLUMNS].reset_index(drop=True),
        audit_share,
    )


def open_audit_labels(index: Mapping[str, DayIndex], decided: np.ndarray) -> pd.DataFrame:
    """The audit texts' machine labels whose text has no decision yet (row hashes
    `decided`), one per text (the first day's, in key order), as AUDIT_LABEL_COLUMNS."""
    frames = [index[k].audit_labels for k in sorted(index) if len(index[k].audit_labels)]
    if not frames:
        return _no_audit_labels()
    labels = pd.concat(frames, ignore_index=True).drop_duplicates("row")
    labels = labels[~np.isin(labels["row"].to_numpy(dtype=np.uint64), decided)]
    return labels.reset_index(drop=True)


def held_elsewhere(index: Mapping[str, DayIndex]) -> dict[str, np.ndarray]:
    """For each day, which of its rows another day holds: the first day (in key order) whose
    row carries a label, else the first day (`labels.first_label_per_text`). Only a row id
    seen more than once can be held elsewhere: one in-place sort of every row id hash finds
    those, and only their rows are sorted with their day (a pass over the other days for each
    day, or a sort of every row with its day, would hold several arrays the history's size)."""
    keys = sorted(index)
    every = np.concatenate([index[k].rows for k in keys]) if keys else _NONE
    every.sort()
    repeated = np.unique(every[1:][every[1:] == every[:-1]])
    del every
    seen = {k: np.flatnonzero(_among(index[k].rows, repeated)) for k in keys}
    rows = np.concatenate([index[k].rows[seen[k]] for k in keys]) if keys else _NONE
    labelled = (
        np.concatenate([index[k].labelled[seen[k]] for k in keys]) if keys else _NONE.astype(bool)
    )
    sizes = [len(seen[k]) for k in keys]
    day = np.repeat(np.arange(len(keys), dtype=np.int32), sizes)
    order = np.lexsort((day, ~labelled, rows))  # by hash, labelled first, then by day
    ordered = rows[order]
    starts = np.r_[True, ordered[1:] != ordered[:-1]] if len(rows) else np.zeros(0, bool)
    holder = day[order][starts][np.cumsum(starts) - 1]
    held = np.empty(len(rows), dtype=bool)
    held[order] = day[order] != holder
    bounds = np.cumsum([0, *sizes])
    result = {}
    for i, k in enumerate(keys):
        result[k] = np.zeros(len(index[k].rows), dtype=bool)
        result[k][seen[k]] = held[bounds[i] : bounds[i + 1]]
    return result


def _among(rows: np.ndarray, sorted_unique: np.ndarray) -> np.ndarray:
    """Which of `rows` are in `sorted_unique` (a binary search each: nothing the size of the
    second array is made, unlike `np.isin`)."""
    if not len(sorted_unique):
        return np.zeros(len(rows), dtype=bool)
    at = np.minimum(np.searchsorted(sorted_unique, rows), len(sorted_unique) - 1)
    return sorted_unique[at] == rows
