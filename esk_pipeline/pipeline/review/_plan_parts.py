"""The review plan's pass over the labels' parts: small summaries, a bounded running selection.

Planning needs, over every label, only counts (texts per identity key that a decision can
settle together, labels per domain) and,
per queued text, a few light fields (row id, key hash, domain, confidence, p_correct, status).
Each part yields them as summaries (`part_summaries`), kept beside the part where the parts can
keep them (`FrameParts.derived`), so a part that did not change is not read again. What the plan
reads of a part (`plan_summary`: its key table, the rows `parse_batch` refuses, its queued
texts) is kept beside the part as it reads (its frame and its overlay): a part unchanged since
the last plan is neither patched nor counted again, only these are read.

Of the queued texts, only those that can reach the review store are kept (`Selection`): every
text the store already holds, the best `_order._MAX_SCORED` candidates by the cheap factors
(the ones `review_priority` scores further: their order depends on each other's texts), the
`new_items` most urgent other candidates by `queue_batch`'s order on the cheap factors (a
scored candidate only gains, so no other can overtake them), and the `new_items` first audit
texts by row id (an audit text's place falls with its row id). Their text and model fields are
read at the end, from the parts that hold them (`heavy_columns`). With no bound, every queued
text is kept.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from esk_pipeline.pipeline.labels import long_enough
from esk_pipeline.pipeline.parts import derived
from esk_pipeline.pipeline.review import _order
from esk_pipeline.pipeline.review.models import ReviewReason
from esk_pipeline.pipeline.trust.verdict import AUDIT_REASONS, in_review_queue

# What the summaries are made from.
SUMMARY_COLUMNS = [
    "row_id",
    "identity_key",
    "text",
    "domain",
    "confidence",
    "p_correct",
    "status",
    "verdict",
    "verdict_reason",
]
# What the store and the plan's output read of a kept row, besides its light fields.
HEAVY_COLUMNS = ["text", "top_candidates", "label_source", "error", "identity_key"]
_NONE = np.zeros(0, dtype=np.uint64)
ROWS = "review-rows"
# Raise when what `plan_summary` keeps of a part changes: summaries kept before are then made
# again (they are named by the part's content, which does not change with this code).
PLAN_SUMMARY_VERSION = 1
KEYS, REFUSED, QUEUED = (
    f"review-{kind}-{PLAN_SUMMARY_VERSION}" for kind in ("keys", "refused", "queued")
)
AUDIT, NEEDS_REVIEW = ReviewReason.AUDIT.value, ReviewReason.NEEDS_REVIEW.value


def part_summaries(part: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """`review-rows`: the light fields of every row of a part (identity key as a hash), with
    whether `queue_batch` would rank it a labeler failure and whether `parse_batch` would
    refuse it: a row per row, so it follows the part's overlay (`FrameParts.derived`)."""
    status = part["status"].astype("string").str.strip()
    domain = part["domain"].astype("string").str.strip()
    text = part["text"].astype("string").str.strip()
    rows = pd.DataFrame(
        {
            "row_id": part["row_id"].astype(str).to_numpy(),
            "key": key_hashes(part["identity_key"]),
            "settled_together": long_enough(part["identity_key"].astype(object)).to_numpy(),
            "domain": part["domain"].to_numpy(),
            "confidence": part["confidence"].to_numpy(),
            "p_correct": part["p_correct"].to_numpy(),
            "status": part["status"].to_numpy(),
            "verdict": part["verdict"].to_numpy(),
            "verdict_reason": part["verdict_reason"].to_numpy(),
            "failed": (status.eq("failed") | domain.isna() | domain.eq(""))
            .fillna(False)
            .to_numpy(dtype=bool),
            "refused": (text.isna() | text.eq("") | status.eq("deferred"))
            .fillna(False)
            .to_numpy(dtype=bool),
        }
    )
    return {ROWS: rows}


def summary(parts: Mapping[str, pd.DataFrame], name: str) -> pd.DataFrame:
    """A part's `review-rows` (`part_summaries`): kept beside the part where the parts can
    do that."""
    derived = getattr(parts, "derived", None)
    if derived is not None:
        return derived(name, ROWS, SUMMARY_COLUMNS, part_summaries, per_row=True)
    part = parts[name]
    return part_summaries(part[[c for c in SUMMARY_COLUMNS if c in part.columns]])[ROWS]


def plan_summary(parts: Mapping[str, pd.DataFrame], name: str, kind: str) -> pd.DataFrame:
    """What the plan reads of a part: its `key_table` (`KEYS`), the row ids `parse_batch`
    refuses (`REFUSED`) or its `queued` texts (`QUEUED`), all made from its `review-rows`
    together; kept beside the part as it reads (frame and overlay) where the parts can."""

    def make() -> dict[str, pd.DataFrame]:
        rows = summary(parts, name)
        refused = rows.loc[rows["refused"].to_numpy(dtype=bool), ["row_id"]]
        return {KEYS: key_table(rows), REFUSED: refused, QUEUED: queued(rows)}

    records = getattr(parts, "records", None)
    store = getattr(parts, "store", None)
    if records is None or store is None:
        return make()[kind]
    return derived(store, records[name].content, kind, make)


def key_table(rows: pd.DataFrame) -> pd.DataFrame:
    """Labels per (identity key hash, domain) of a part's `review-rows` (`n`), and how many of
    them a decision on their key settles together (`together`: none for a key too short to
    propagate, `labels.long_enough`; summaries kept before that column count them all)."""
    together = rows.get("settled_together", True)
    counts = rows.assign(together=together).groupby(["key", "domain"], dropna=False, sort=False)
    return counts.agg(n=("key", "size"), together=("together", "sum")).reset_index()


def queued(rows: pd.DataFrame) -> pd.DataFrame:
    """A part's queued texts (`in_review_queue`) of its `review-rows`, with `audit`."""
    waiting = rows[in_review_queue(rows)]
    return waiting.assign(audit=waiting["verdict_reason"].isin(AUDIT_REASONS).to_numpy())


def key_hashes(keys: pd.Series) -> np.ndarray:
    """Identity keys as 64-bit hashes: counted over every label without holding the strings."""
    return pd.util.hash_pandas_object(keys.fillna(""), index=False).to_numpy(dtype=np.uint64)


@dataclass
class Counts:
    """Texts a decision on an identity key settles together, per key hash (sorted unique
    hashes, counts: 0 for a key too short to propagate) and labels per domain."""

    keys: np.ndarray
    texts: np.ndarray
    domains: pd.Series

    @classmethod
    def of(cls, tables: Iterable[pd.DataFrame]) -> Counts:
        """From each part's `key_table`, one part at a time."""
        keys, texts, domains = [], [], pd.Series(dtype="int64")
        for table in tables:
            keys.append(table["key"].to_numpy(dtype=np.uint64))
            texts.append(table["together"].to_numpy(dtype=np.int64))
            by_domain = table.groupby("domain", sort=False)["n"].sum()
            domains = domains.add(by_domain, fill_value=0)
        if not keys:
            return cls(_NONE, np.zeros(0, dtype=np.int64), domains)
        unique, where = np.unique(np.concatenate(keys), return_inverse=True)
        counts = np.bincount(where, weights=np.concatenate(texts)).astype(np.int64)
        domains = domains.astype("int64").sort_values(ascending=False, kind="stable")
        return cls(unique, counts, domains)

    def group_sizes(self, keys: np.ndarray) -> np.ndarray:
        if not len(self.keys):
            return np.ones(len(keys), dtype=np.int64)
        found = np.searchsorted(self.keys, keys).clip(0, len(self.keys) - 1)
        return np.where(self.keys[found] == keys, self.texts[found], 1).clip(1)


@dataclass
class Selection:
    """The running selection of queued texts over the parts (see the module docstring).
    `held`: row ids that are never cut (those the store holds, and rows `parse_batch` would
    refuse: neither counts against the store's room); `new_items` None keeps every text."""

    counts: Counts
    precision_target: float
    held: set[str]
    new_items: int | None
    candidates: pd.DataFrame = field(default_factory=pd.DataFrame)
    audit: pd.DataFrame = field(default_factory=pd.DataFrame)
    gains: list[np.ndarray] = field(default_factory=list)  # every candidate's cheap gain
    planned: int = 0
    by_reason: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # For each held row id: the other audit texts before it by row id (its place).
        self._held = np.sort(np.asarray(list(self.held), dtype=str))
        self._new_audit_before = np.zeros(len(self._held), dtype=np.int64)

    def add(self, name: str, queued: pd.DataFrame) -> None:
        """One part's `review-queued` summary."""
        queued = queued.assign(part=name, held=queued["row_id"].isin(self.held).to_numpy())
        self.planned += len(queued)
        in_audit = queued["audit"].to_numpy(dtype=bool)
        for reason, n in ((AUDIT, int(in_audit.sum())), (NEEDS_REVIEW, int((~in_audit).sum()))):
            self.by_reason[reason] = self.by_reason.get(reason, 0) + n
        candidates = queued[~in_audit]
        gain = _order.base_priority(
            candidates,
            precision_target=self.precision_target,
            group_sizes=pd.Series(
                self.counts.group_sizes(candidates["key"].to_numpy(dtype=np.uint64)),
                index=candidates.index,
            ),
            domain_counts=self.counts.domains,
        )
        seen = sum(len(g) for g in self.gains)
        self.gains.append(gain)
        candidates = candidates.assign(seq=np.arange(seen, seen + len(candidates)), gain=gain)
        self.candidates = self._bounded(pd.concat([self.candidates, candidates]))
        audit = queued[in_audit]
        new = np.sort(audit.loc[~audit["held"].to_numpy(dtype=bool), "row_id"].to_numpy(dtype=str))
        self._new_audit_before += np.searchsorted(new, self._held)
        pool = pd.concat([self.audit, audit])
        if self.new_items is not None:
            fresh = ~pool["held"].to_numpy(dtype=bool)
            first = np.argsort(pool["row_id"].to_numpy(dtype=str), kind="stable")
            keep = ~fresh
            keep[first[fresh[first]][: self.new_items]] = True
            pool = pool[keep]
        self.audit = pool

    def _bounded(self, pool: pd.DataFrame) -> pd.DataFrame:
        if self.new_items is None:
            return pool
        keep = pool["held"].to_numpy(dtype=bool).copy()
        best = np.lexsort((pool["seq"].to_numpy(), -pool["gain"].to_numpy()))
        keep[best[: _order._MAX_SCORED]] = True
        keep[_most_urgent(pool, self.new_items)] = True
        return pool[keep]

    def audit_places(self) -> tuple[pd.DataFrame, np.ndarray]:
        """The kept audit texts by row id, and each one's place among all audit texts by row
        id: every new audit text before a kept new one is kept; one that is held may come
        after new ones that were not."""
        if not len(self.audit):
            return self.audit, np.zeros(0, dtype=np.int64)
        audit = self.audit.sort_values("row_id", kind="stable")
        places = np.arange(len(audit))
        if self.new_items is not None:
            fresh = ~audit["held"].to_numpy(dtype=bool)
            kept_new_before = np.cumsum(fresh) - fresh
            ids = audit["row_id"].to_numpy(dtype=str)
            at = np.searchsorted(self._held, ids[~fresh])
            places[~fresh] += self._new_audit_before[at] - kept_new_before[~fresh]
        return audit, places


def _most_urgent(pool: pd.DataFrame, n: int) -> np.ndarray:
    """Positions of the `n` first new candidates in `queue_batch`'s order (priority rank,
    gain, row id) on the cheap gains. The row ids break ties only among the rows as urgent as
    the n-th by rank and gain (sorting strings is the slow part)."""
    new = np.flatnonzero(~pool["held"].to_numpy(dtype=bool))
    if not n or not len(new):
        return new[:0]
    rank = pool["failed"].to_numpy(dtype=bool)[new].astype(np.int8) * -1  # failed first
    gain = -pool["gain"].to_numpy(dtype=float)[new]
    by_number = np.lexsort((gain, rank))
    if len(by_number) > n:
        last = by_number[n - 1]
        within = (rank < rank[last]) | ((rank == rank[last]) & (gain <= gain[last]))
        by_number = np.flatnonzero(within)
    ids = pool["row_id"].to_numpy(dtype=str)[new][by_number]
    order = np.lexsort((ids, gain[by_number], rank[by_number]))
    return new[by_number[order][:n]]


def heavy_columns(parts: Mapping[str, pd.DataFrame], rows: pd.DataFrame) -> pd.DataFrame:
    """`rows` (with `row_id` and `part`) with their `HEAVY_COLUMNS`, read a part at a time,
    only those rows where the parts can read some rows only."""
    read = getattr(parts, "rows", None)
    fetched = []
    for name, wanted in rows.groupby("part", sort=False):
        ids = set(wanted["row_id"])
        if read is not None:
            part = read(name, ["row_id", *HEAVY_COLUMNS], ids)
        else:
            part = parts[name]
            part = part[["row_id", *[c for c in HEAVY_COLUMNS if c in part.columns]]]
        fetched.append(part[part["row_id"].isin(ids)])
        del part
    columns = pd.concat(fetched, ignore_index=True) if fetched else pd.DataFrame()
    columns = columns.reindex(columns=["row_id", *HEAVY_COLUMNS])
    columns["row_id"] = columns["row_id"].astype(str)
    return rows.merge(columns, on="row_id", how="left", validate="one_to_one")
