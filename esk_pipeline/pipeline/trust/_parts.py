"""Applying an assessment's measures to every text, one part at a time, reusing unchanged parts.

The trusted labels are stored as parts (`pipeline.parts`): one per labels day, plus one
(`DECISIONS_PART`) for decisions on texts no day holds. A day's part holds the texts whose label
that day gives (`labels.first_label_per_text`: the first day that labelled a text holds it, so a
new day repeating old texts leaves their parts as they are), resolved with the decisions on its
own texts and the identity keys every decision settles, with `p_correct` and the verdict.

A part is made (resolved) from its inputs, each kept as a digest in its record so the lineage
can say which one changed: `day` (that day's labels), `decisions` (the decisions and doubts on
its texts), `settled` (the settled identity keys among its texts) and `rules` (the calibration,
the audit share and `RESOLUTION_VERSION`); `taken` names its day's texts another day holds.
While those inputs are unchanged, the stored frame is kept as it is and what changed since is an
overlay applied when the part is read (`parts.patch`): the rows another day took from it since
(an earlier day written again with more texts, or a later day that labelled a text this day
could not; every row's label and verdict depend on that row alone), and the queued texts the
rule below moves. So a new day resolves that day only and rewrites no old part; an old part is
known by small summaries kept beside its frame (its row hashes and verdicts, its queued texts,
its identity key hashes, its day's row hashes).

One rule crosses parts: one text per identity key stays queued, the first seen
(`verdict.settle_queue`). Each part is first settled on its own; then the queued texts of all
parts (identity key, time, sureness, row id: Arrow columns) pick one text per key, and a part
whose queued texts change gets them in its overlay; a new day's near duplicates of texts
already queued wait for them, so no old part changes for them. Identity keys meet as 64-bit
hashes.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa

from esk_pipeline.pipeline.label_contract import (
    TRUSTED_LABEL_ROW,
    LabelOrigin,
    LabelTier,
    Verdict,
    VerdictReason,
    validate_frame,
    with_optional_columns,
)
from esk_pipeline.pipeline.labels import resolve_labels, settled_keys, strongest_per_row, tier_of
from esk_pipeline.pipeline.parts import PartRecord, PartStore, derived, digest
from esk_pipeline.pipeline.parts import row_hashes as hashes
from esk_pipeline.pipeline.trust._days import DAY_SUMMARY, DayIndex, held_elsewhere
from esk_pipeline.pipeline.trust.calibration import Calibration
from esk_pipeline.pipeline.trust.verdict import (
    first_seen,
    queue_order,
    row_verdicts,
    settle_queue,
)

# Raise when a rule that shapes a part changes: every stored part is then made again.
RESOLUTION_VERSION = "5"
DECISIONS_PART = "decisions"
_KEPT = ["row_id", "identity_key", "verdict", "verdict_reason", "p_correct", "confidence"]
_QUEUED = (VerdictReason.NEEDS_REVIEW.value, VerdictReason.SAME_TEXT_QUEUED.value)
_NONE = np.zeros(0, dtype=np.uint64)
# What is kept beside a stored part (made from its `_KEPT` columns).
_ROWS, _QUEUE, _KEYS = "trust-rows", "trust-queued", "trust-keys"
_KINDS = (_ROWS, _QUEUE, _KEYS, DAY_SUMMARY)
# A text without a time is seen last (`verdict.QUEUE_ORDER`).
_NO_TIME = np.iinfo(np.int64).max


@dataclass
class _Part:
    """One part during the run: its stored frame (`source`), the rows of it other days took
    (`dropped`, sorted row hashes), its queued texts (`key`: identity key hash, `ts`: when
    seen, `p`: sureness, `row_id`, `row`: its hash, `excluded`: same_text_queued in the stored
    frame) and its texts by (verdict, reason), both without the dropped rows."""

    source: str
    inputs: dict[str, str]
    dropped: np.ndarray
    queued: pa.Table
    counts: dict[tuple[str, str], int]


def _summaries(kept: pd.DataFrame, day: DayIndex | None) -> dict[str, pd.DataFrame]:
    """What is kept beside a stored part, from its `_KEPT` columns and `ts` where it has one
    (and its day's index)."""
    rows = kept[kept["verdict_reason"].isin(_QUEUED)]
    sureness = pd.to_numeric(rows["p_correct"], errors="coerce").fillna(
        pd.to_numeric(rows["confidence"], errors="coerce")
    )
    made = {
        _ROWS: pd.DataFrame(
            {
                "row": hashes(kept["row_id"]),
                "verdict": kept["verdict"].astype(str).to_numpy(),
                "verdict_reason": kept["verdict_reason"].astype(str).to_numpy(),
            }
        ),
        _QUEUE: pd.DataFrame(
            {
                "key": hashes(rows["identity_key"].fillna("")),
                "ts": first_seen(rows).array,
                "p": sureness.fillna(0.0).to_numpy(),
                "row_id": rows["row_id"].astype(str).to_numpy(),
                "row": hashes(rows["row_id"]),
                "excluded": (
                    rows["verdict_reason"] == VerdictReason.SAME_TEXT_QUEUED.value
                ).to_numpy(),
            }
        ),
        _KEYS: pd.DataFrame({"key": np.unique(hashes(kept["identity_key"].dropna()))}),
    }
    if day is not None:
        made[DAY_SUMMARY] = day.summary()
    return made


@dataclass(frozen=True)
class _Maker:
    """What every part is made with, and where parts are stored."""

    calibration: Calibration
    settled: Mapping[str, tuple]
    audit_share: float
    doubted: set[str]
    store: PartStore
    previous: Mapping[str, PartRecord]
    settled_hashes: np.ndarray  # of the settled keys, in their order

    def part(
        self,
        name: str,
        origin: Mapping[str, str],
        resolve: Callable[[], pd.DataFrame],
        *,
        day: DayIndex | None = None,
        taken: np.ndarray = _NONE,
        own: int = 0,
    ) -> _Part:
        """The part stored last time, less the rows other days took from it since (`taken`:
        the row id hashes of its day's texts another day holds; `own`: how many it holds), if
        its `origin` inputs (all but the settled keys) and its settled keys are unchanged and
        it lacks none of its texts; else the part made now (`resolve` gives its resolved
        labels; settled within itself). Every row's label and verdict depend on that row alone
        (the queue rule is settled again over all parts), so dropping rows needs no resolving."""
        taken_digest = digest(np.sort(taken).tobytes()) if len(taken) else ""
        last = self.previous.get(name)
        unchanged = last is not None and all(last.inputs.get(k) == v for k, v in origin.items())
        if unchanged and self.store.has(last.address):
            # Named again, with what is kept beside it: see `FolderPartStore.touch`.
            for kept in (last.address, *(f"{last.address}.{k}" for k in _KINDS)):
                self.store.touch(kept)
            keys = self._kept(last.address, _KEYS, day)["key"].to_numpy(dtype=np.uint64)
            if self._settled_digest(keys) == last.inputs.get("settled"):
                rows = self._kept(last.address, _ROWS, day)
                stored = rows["row"].to_numpy(dtype=np.uint64)
                live = ~np.isin(stored, taken)
                if int(live.sum()) == own:
                    inputs = {**last.inputs, "taken": taken_digest}
                    queued = self._kept(last.address, _QUEUE, day)
                    # Only rows the stored frame holds: a part made without them drops nothing.
                    return _part(last.address, inputs, stored[~live], queued, rows[live])
        resolved = _with_trust_columns(resolve(), self.calibration)
        frame = settle_queue(
            row_verdicts(
                resolved, self.calibration, audit_share=self.audit_share, doubted=self.doubted
            )
        )
        validate_frame(frame, TRUSTED_LABEL_ROW, f"trusted_labels part {name}")
        keys = np.unique(hashes(frame["identity_key"].dropna()))
        inputs = {**origin, "taken": taken_digest, "settled": self._settled_digest(keys)}
        address = _address(inputs, frame)
        # Stored before (a run long ago, with the same inputs): touched, or written again.
        if not self.store.touch(address):
            self.store.write(address, frame)
        kept = _summaries(frame[[*_KEPT, "ts"] if "ts" in frame else _KEPT], day)
        for kind, summary in kept.items():
            if not self.store.touch(f"{address}.{kind}"):
                self.store.write(f"{address}.{kind}", summary)
        return _part(address, inputs, _NONE, kept[_QUEUE], kept[_ROWS])

    def _kept(self, address: str, kind: str, day: DayIndex | None) -> pd.DataFrame:
        """A summary kept beside the stored part (made from it if it is not there)."""
        return derived(self.store, address, kind, lambda: _summaries(self.store.read(address), day))

    def _settled_digest(self, keys: np.ndarray) -> str:
        """A digest of the settled identity keys (and what they settle) among a part's key
        hashes."""
        if not self.settled or not len(keys):
            return digest("")
        among = np.isin(self.settled_hashes, keys)
        touched = sorted(k for k, hit in zip(self.settled, among, strict=True) if hit)
        return digest("\n".join(f"{k}\t{self.settled[k]}" for k in touched))


def _part(
    source: str,
    inputs: dict[str, str],
    dropped: np.ndarray,
    queued: pd.DataFrame,
    rows: pd.DataFrame,
) -> _Part:
    """A `_Part` from its stored frame's summaries, its dropped rows left out."""
    queued = queued[~np.isin(queued["row"].to_numpy(dtype=np.uint64), dropped)]
    # Held until every part is known, so every queued text of the history is held at once:
    # Arrow columns of fixed width (and one string buffer), not Python objects.
    ts = queued["ts"]  # UTC times as `_summaries` keeps them (`pd.to_datetime` would loop)
    if not isinstance(ts.dtype, pd.DatetimeTZDtype):
        ts = pd.to_datetime(ts, utc=True)
    table = pa.table(
        {
            "key": queued["key"].to_numpy(dtype=np.uint64),
            "ts": np.where(ts.isna(), _NO_TIME, ts.to_numpy("datetime64[ns]").view(np.int64)),
            "p": queued["p"].to_numpy(dtype=np.float64),
            "row_id": pa.array(queued["row_id"].astype(str), type=pa.string()),
            "row": queued["row"].to_numpy(dtype=np.uint64),
            "excluded": queued["excluded"].to_numpy(dtype=bool),
        }
    )
    pairs = rows.groupby(["verdict", "verdict_reason"]).size()
    counts = {(str(v), str(r)): int(n) for (v, r), n in pairs.items()}
    return _Part(source, inputs, np.unique(dropped), table, counts)


def apply_trust(
    days: Mapping[str, pd.DataFrame],
    index: Mapping[str, DayIndex],
    decisions: pd.DataFrame,
    calibration: Calibration,
    *,
    audit_share: float,
    doubted: Collection[str],
    store: PartStore,
    previous: Mapping[str, PartRecord],
) -> tuple[dict[str, PartRecord], dict[str, dict[str, int]]]:
    """Every part, made or reused (see the module docstring), stored in `store`: their
    records by part name, and the texts by verdict and reason over all of them.

    `days` are read only for the parts made again; `previous` are the parts stored last time.
    `decisions` carry their `p_correct`."""
    settled = settled_keys(strongest_per_row(decisions)[0]) if len(decisions) else {}
    settled_hashes = hashes(pd.Series(list(settled), dtype=object))
    maker = _Maker(calibration, settled, audit_share, set(doubted), store, previous, settled_hashes)
    rules = digest(RESOLUTION_VERSION, calibration.model_dump_json(), repr(audit_share))
    decided = hashes(decisions["row_id"])
    elsewhere = held_elsewhere(index)
    parts: dict[str, _Part] = {}
    empty = pd.DataFrame()  # an empty day keeps its columns for a result without rows
    for key in sorted(days, reverse=True):
        day = index[key]
        if not len(day.rows):
            empty = days[key]
            continue
        own = ~elsewhere[key]
        mine = decisions[np.isin(decided, day.rows[own])]
        origin = {
            "rules": rules,
            "day": day.fingerprint,
            "decisions": _decisions_digest(mine, maker.doubted),
        }

        def resolve(key=key, own=own, mine=mine) -> pd.DataFrame:
            model = days[key][own].reset_index(drop=True)
            model["p_correct"] = calibration.p_correct(tier_of(model), model["confidence"])
            return resolve_labels(model, mine, settled)

        taken = np.unique(day.rows[~own])
        parts[key] = maker.part(key, origin, resolve, day=day, taken=taken, own=int(own.sum()))
    in_days = np.zeros(len(decided), dtype=bool)
    for day in index.values():  # a day at a time: no array of every row
        in_days |= np.isin(decided, day.rows)
    rest = decisions[~in_days]
    if len(rest) or not parts:
        origin = {"rules": rules, "decisions": _decisions_digest(rest, maker.doubted)}
        parts[DECISIONS_PART] = maker.part(
            DECISIONS_PART, origin, lambda: resolve_labels(empty, rest)
        )
    return _settle_across(parts, store)


def _settle_across(
    parts: dict[str, _Part], store: PartStore
) -> tuple[dict[str, PartRecord], dict[str, dict[str, int]]]:
    """One queued text per identity key over all parts; a part whose queued texts change, or
    that lost rows to other days, gets an overlay saying so. Returns the records and the
    verdict counts."""
    names = list(parts)
    owner = np.repeat(
        np.arange(len(names), dtype=np.int32), [part.queued.num_rows for part in parts.values()]
    )
    chunks = [c for part in parts.values() for c in part.queued["row_id"].chunks]
    order, lost = queue_order(
        _column(parts, "key"),
        _column(parts, "ts"),
        _column(parts, "p"),
        pa.chunked_array(chunks, type=pa.string()),
    )
    excluded = _column(parts, "excluded")[order]
    # In that order, as the overlay names them.
    moves = np.flatnonzero(lost != excluded)
    at = order[moves]
    rows, who, lost = _column(parts, "row")[at], owner[at], lost[moves]
    changes = {
        names[i]: pd.DataFrame({"row": rows[who == i], "lost": lost[who == i]})
        for i in np.unique(who)
    }
    none = pd.DataFrame({"row": _NONE, "lost": np.zeros(0, dtype=bool)})
    records: dict[str, PartRecord] = {}
    counts: dict[str, dict[str, int]] = {}
    needs = (Verdict.QUEUED.value, VerdictReason.NEEDS_REVIEW.value)
    same = (Verdict.EXCLUDED.value, VerdictReason.SAME_TEXT_QUEUED.value)
    for name, part in parts.items():
        tally = dict(part.counts)
        changed = changes.get(name, none)
        moved = int(changed["lost"].sum())
        back = len(changed) - moved
        tally[needs] = tally.get(needs, 0) - moved + back
        tally[same] = tally.get(same, 0) + moved - back
        records[name] = PartRecord(part.source, part.inputs, _overlay(store, part, changed))
        _add_counts(counts, tally)
    return records, counts


def _column(parts: Mapping[str, _Part], name: str) -> np.ndarray:
    """One column of every part's queued texts, in part order."""
    columns = [part.queued[name].to_numpy() for part in parts.values()]
    return np.concatenate(columns) if columns else np.zeros(0)


def _overlay(store: PartStore, part: _Part, changed: pd.DataFrame) -> str:
    """The address of the overlay (`parts.patch`) that drops the part's dropped rows and moves
    its `changed` queued texts (stored when new); "" when there is nothing to change."""
    if not len(part.dropped) and not len(changed):
        return ""
    lost = changed["lost"].to_numpy(dtype=bool)
    overlay = pd.DataFrame(
        {
            "row": np.concatenate([part.dropped, changed["row"].to_numpy(dtype=np.uint64)]),
            "drop": np.r_[np.ones(len(part.dropped), bool), np.zeros(len(changed), bool)],
            "verdict": [None] * len(part.dropped)
            + np.where(lost, Verdict.EXCLUDED.value, Verdict.QUEUED.value).tolist(),
            "verdict_reason": [None] * len(part.dropped)
            + np.where(
                lost, VerdictReason.SAME_TEXT_QUEUED.value, VerdictReason.NEEDS_REVIEW.value
            ).tolist(),
        }
    )
    address = digest(
        part.source,
        overlay["row"].to_numpy().tobytes(),
        "\n".join(map(str, overlay["verdict_reason"].tolist())),
    )
    if store.has(address):
        store.touch(address)  # an unchanged overlay is not uploaded again to object storage
    else:
        store.write(address, overlay)
    return address


def _add_counts(counts: dict[str, dict[str, int]], tally: Mapping[tuple[str, str], int]) -> None:
    for (verdict, reason), n in tally.items():
        if n:
            by_reason = counts.setdefault(verdict, {})
            by_reason[reason] = by_reason.get(reason, 0) + n


def _address(inputs: Mapping[str, str], frame: pd.DataFrame) -> str:
    """A part's file name: its inputs and which of its texts the cross-part rule excluded."""
    out = frame.loc[frame["verdict_reason"] == VerdictReason.SAME_TEXT_QUEUED.value, "row_id"]
    named = [f"{name}={value}" for name, value in sorted(inputs.items())]
    return digest(*named, "\n".join(sorted(out)))


def _decisions_digest(decisions: pd.DataFrame, doubted: set[str]) -> str:
    """A digest of a part's decisions and which are doubted, whatever order (and index) the
    store listed them in: it lists by review time, so a second opinion on an old decision
    moves it, and with it every later one."""
    mine = sorted(doubted & set(decisions["row_id"]))
    in_order = decisions.sort_values("row_id", kind="stable").reset_index(drop=True)
    table = in_order.to_json(orient="split", date_format="iso", default_handler=str)
    return digest(table, "\n".join(mine))


def _with_trust_columns(labels: pd.DataFrame, calibration: Calibration) -> pd.DataFrame:
    """Propagated labels' `p_correct`, each row's `tier`, and the contract's optional columns."""
    propagated = labels["label_origin"] == LabelOrigin.PROPAGATED.value
    # Propagated labels are a tier of their own: the audit measures how often a decision on one
    # text is right for its near duplicates. Their "confidence" is 1: all or nothing.
    labels.loc[propagated, "p_correct"] = calibration.p_correct(
        pd.Series(LabelTier.PROPAGATED.value, index=labels.index[propagated]),
        pd.Series(1.0, index=labels.index[propagated]),
    )
    return with_optional_columns(labels.assign(tier=tier_of(labels)), TRUSTED_LABEL_ROW)
