"""What the first pass over the labels days learns of each day, and which day holds each text.

A day's index is its row ids' 64-bit hashes, which of its rows carry a label, its fingerprint
and the tiers that labelled it; it is kept beside the day's trusted-labels part (`DAY_SUMMARY`),
so a day that did not change is not read again to be indexed. A text seen on several days
belongs to one of them (`labels.first_label_per_text`): the first whose row carries a label,
else the first.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from esk_pipeline.pipeline.labels import tier_of, usable
from esk_pipeline.pipeline.parts import PartRecord, PartStore, digest
from esk_pipeline.pipeline.parts import row_hashes as hashes

DAY_SUMMARY = "trust-day"
_NONE = np.zeros(0, dtype=np.uint64)


@dataclass(frozen=True)
class DayIndex:
    """What the first pass learns of a labels day: its row ids' hashes, which of its rows
    carry a label (`labels.usable`), its fingerprint and the tiers that labelled it."""

    rows: np.ndarray
    fingerprint: str
    tiers: frozenset[str] = frozenset()
    labelled: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))

    def summary(self) -> pd.DataFrame:
        """The index as a frame kept beside the day's part (`known_day` reads it back): a row
        per text, then a row per tier."""
        tiers = pd.Series(sorted(self.tiers), dtype=object)
        return pd.DataFrame(
            {
                "row": np.concatenate([self.rows, np.zeros(len(tiers), dtype=np.uint64)]),
                "tier": pd.concat([pd.Series([None] * len(self.rows), dtype=object), tiers]).array,
                "labelled": np.r_[self.labelled, np.zeros(len(tiers), dtype=bool)],
            }
        )


def index_day(frame: pd.DataFrame, fingerprint: str | None) -> DayIndex:
    """A day's index; without a fingerprint (frames not read from files), its content's."""
    if fingerprint is None:
        fingerprint = digest(frame.to_json(orient="split", date_format="iso", default_handler=str))
    if not len(frame):
        return DayIndex(_NONE, fingerprint)
    return DayIndex(
        hashes(frame["row_id"]),
        fingerprint,
        frozenset(tier_of(frame).dropna()),
        usable(frame).to_numpy(dtype=bool),
    )


def known_day(
    store: PartStore, last: PartRecord | None, fingerprint: str | None
) -> DayIndex | None:
    """The index of a day kept beside its part last time, when the day is still the same."""
    if last is None or fingerprint is None or last.inputs.get("day") != fingerprint:
        return None
    if not store.has(f"{last.address}.{DAY_SUMMARY}"):
        return None
    kept = store.read(f"{last.address}.{DAY_SUMMARY}")
    if "labelled" not in kept:  # kept by an older version
        return None
    rows = kept[kept["tier"].isna()]
    return DayIndex(
        rows["row"].to_numpy(dtype=np.uint64),
        fingerprint,
        frozenset(kept["tier"].dropna()),
        rows["labelled"].to_numpy(dtype=bool),
    )


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
