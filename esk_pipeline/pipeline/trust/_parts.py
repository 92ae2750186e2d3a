"""Applying an assessment's measures to every text, one part at a time, reusing unchanged parts.

The trusted labels are stored as parts (`pipeline.parts`): one per labels day, plus one
(`DECISIONS_PART`) for decisions on texts no day holds. A day's part holds the texts no later
day holds again (a later day's label is the current one), resolved with the decisions on its
own rows and the identity keys every decision settles, with `p_correct` and the verdict.

A part is a pure function of: that day's labels (their fingerprint), the row ids later days
take from it, the decisions and doubts on its rows, the settled identity keys among its texts,
the calibration, the audit share and `RESOLUTION_VERSION`. Those digests are the part's
inputs; a part whose inputs equal those of the part stored last time is taken as it is, and
one that only lost texts to a new day is the stored part less those rows (each row's label and
verdict depend on that row alone), so a new day resolves that day only.

One rule crosses parts: one text per identity key stays queued (`verdict.settle_queue`). Each
part is first settled on its own; then the queued texts of all parts (identity key, sureness,
row id: a small table) pick one text per key, and a part whose queued texts change is rewritten
from its stored frame, without resolving anything again. Identity keys meet as 64-bit hashes.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

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
from esk_pipeline.pipeline.parts import PartRecord, PartStore, digest
from esk_pipeline.pipeline.trust.calibration import Calibration
from esk_pipeline.pipeline.trust.verdict import row_verdicts, settle_queue

# Raise when a rule that shapes a part changes: every stored part is then made again.
RESOLUTION_VERSION = "1"
DECISIONS_PART = "decisions"
_KEPT = ["row_id", "identity_key", "verdict", "verdict_reason", "p_correct", "confidence"]
_QUEUED = (VerdictReason.NEEDS_REVIEW.value, VerdictReason.SAME_TEXT_QUEUED.value)
_NONE = np.zeros(0, dtype=np.uint64)


@dataclass(frozen=True)
class DayIndex:
    """What the first pass learns of a labels day: its row ids' hashes and its fingerprint."""

    rows: np.ndarray
    fingerprint: str


def index_day(frame: pd.DataFrame, fingerprint: str | None) -> DayIndex:
    """A day's index; without a fingerprint (frames not read from files), its content's."""
    if fingerprint is None:
        fingerprint = digest(frame.to_json(orient="split", date_format="iso", default_handler=str))
    return DayIndex(hashes(frame["row_id"]) if len(frame) else _NONE, fingerprint)


@dataclass
class _Part:
    """One part during the run: the stored frame it starts from, its queued texts (`key`:
    identity key hash, `p`: sureness, `row_id`, `excluded`: same_text_queued now) and its
    texts by (verdict, reason)."""

    source: str
    inputs: dict[str, str]
    queued: pd.DataFrame
    counts: dict[tuple[str, str], int]

    @classmethod
    def of(cls, source: str, inputs: dict[str, str], kept: pd.DataFrame) -> _Part:
        """From the `_KEPT` columns of the part stored at `source`."""
        rows = kept[kept["verdict_reason"].isin(_QUEUED)]
        sureness = pd.to_numeric(rows["p_correct"], errors="coerce").fillna(
            pd.to_numeric(rows["confidence"], errors="coerce")
        )
        queued = pd.DataFrame(
            {
                "key": hashes(rows["identity_key"].fillna("")),
                "p": sureness.fillna(0.0).to_numpy(),
                "row_id": rows["row_id"].astype("string[pyarrow]").array,
                "excluded": (
                    rows["verdict_reason"] == VerdictReason.SAME_TEXT_QUEUED.value
                ).to_numpy(),
            }
        )
        pairs = kept.groupby(["verdict", "verdict_reason"]).size()
        return cls(
            source, inputs, queued, {(str(v), str(r)): int(n) for (v, r), n in pairs.items()}
        )


@dataclass(frozen=True)
class _Maker:
    """What every part is made with, and where parts are stored."""

    calibration: Calibration
    settled: Mapping[str, tuple]
    audit_share: float
    doubted: set[str]
    store: PartStore
    previous: Mapping[str, PartRecord]

    def part(
        self,
        name: str,
        base: str,
        resolve: Callable[[], pd.DataFrame],
        *,
        later: np.ndarray = _NONE,
        fresh: int = 0,
    ) -> _Part:
        """The part stored last time if its inputs are unchanged; that part less the texts
        later days took from it since (`later`: their row id hashes; `fresh`: the rows left)
        if only those changed; else the part made now (`resolve` gives its resolved labels;
        settled within itself). Every row's label and verdict depend on that row alone (the
        queue rule is settled again over all parts), so dropping rows needs no resolving."""
        taken = digest(np.sort(later).tobytes()) if len(later) else ""
        last = self.previous.get(name)
        if last is not None and last.inputs.get("base") == base and self.store.has(last.address):
            if last.inputs.get("taken", "") == taken:
                kept = self.store.read(last.address, columns=_KEPT)
                if _settled_digest(kept["identity_key"], self.settled) == last.inputs["settled"]:
                    return _Part.of(last.address, dict(last.inputs), kept)
            else:
                frame = self.store.read(last.address)
                if _settled_digest(frame["identity_key"], self.settled) == last.inputs["settled"]:
                    frame = frame[~np.isin(hashes(frame["row_id"]), later)]
                    if len(frame) == fresh:
                        return self._stored(frame.reset_index(drop=True), base, taken)
        resolved = _with_trust_columns(resolve(), self.calibration)
        frame = settle_queue(
            row_verdicts(
                resolved, self.calibration, audit_share=self.audit_share, doubted=self.doubted
            )
        )
        validate_frame(frame, TRUSTED_LABEL_ROW, f"trusted_labels part {name}")
        return self._stored(frame, base, taken)

    def _stored(self, frame: pd.DataFrame, base: str, taken: str) -> _Part:
        settled = _settled_digest(frame["identity_key"], self.settled)
        inputs = {"base": base, "taken": taken, "settled": settled}
        address = _address(inputs, frame)
        if not self.store.has(address):
            self.store.write(address, frame)
        return _Part.of(address, inputs, frame[_KEPT])


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
    maker = _Maker(calibration, settled, audit_share, set(doubted), store, previous)
    common = digest(RESOLUTION_VERSION, calibration.model_dump_json(), repr(audit_share))
    decided = hashes(decisions["row_id"])
    newest = _held_later(index)
    parts: dict[str, _Part] = {}
    empty = pd.DataFrame()  # an empty day keeps its columns for a result without rows
    for key in sorted(days, reverse=True):
        day = index[key]
        if not len(day.rows):
            empty = days[key]
            continue
        fresh = ~newest[key]
        later = np.unique(day.rows[~fresh])  # this day's texts a later day holds again
        mine = decisions[np.isin(decided, day.rows[fresh])]
        # The decisions on every text of the day: a part may lose rows to later days and
        # still be derived from the one stored (`_Maker.part`).
        base = digest(
            common,
            day.fingerprint,
            _decisions_digest(decisions[np.isin(decided, day.rows)], maker.doubted),
        )

        def resolve(key=key, fresh=fresh, mine=mine) -> pd.DataFrame:
            model = days[key][fresh].reset_index(drop=True)
            model["p_correct"] = calibration.p_correct(tier_of(model), model["confidence"])
            return resolve_labels(model, mine, settled)

        parts[key] = maker.part(key, base, resolve, later=later, fresh=int(fresh.sum()))
    every = [index[key].rows for key in index]
    rest = decisions[~np.isin(decided, np.concatenate(every) if every else _NONE)]
    if len(rest) or not parts:
        base = digest(common, DECISIONS_PART, _decisions_digest(rest, maker.doubted))
        parts[DECISIONS_PART] = maker.part(
            DECISIONS_PART, base, lambda: resolve_labels(empty, rest)
        )
    return _settle_across(parts, store)


def _held_later(index: Mapping[str, DayIndex]) -> dict[str, np.ndarray]:
    """For each day, which of its rows a later day holds again: one sort of every row id
    hash with its day, not a pass over the later days for each day."""
    keys = sorted(index)
    rows = np.concatenate([index[k].rows for k in keys]) if keys else _NONE
    day = np.repeat(np.arange(len(keys)), [len(index[k].rows) for k in keys])
    order = np.lexsort((day, rows))  # by hash, then day
    ordered, ordered_day = rows[order], day[order]
    starts = np.r_[True, ordered[1:] != ordered[:-1]] if len(rows) else np.zeros(0, bool)
    group = np.cumsum(starts) - 1
    last = np.r_[starts[1:], True] if len(rows) else np.zeros(0, bool)
    held = np.empty(len(rows), dtype=bool)
    held[order] = ordered_day < ordered_day[last][group]
    bounds = np.cumsum([0] + [len(index[k].rows) for k in keys])
    return {k: held[bounds[i] : bounds[i + 1]] for i, k in enumerate(keys)}


def _settle_across(
    parts: dict[str, _Part], store: PartStore
) -> tuple[dict[str, PartRecord], dict[str, dict[str, int]]]:
    """One queued text per identity key over all parts; a part whose queued texts change is
    rewritten from its stored frame. Returns the records and the verdict counts."""
    table = pd.concat(
        [part.queued.assign(part=name) for name, part in parts.items()], ignore_index=True
    ).sort_values(["key", "p", "row_id"], kind="stable")
    table["lost"] = table["key"].duplicated().to_numpy()
    records: dict[str, PartRecord] = {}
    counts: dict[str, dict[str, int]] = {}
    for name, rows in table.groupby("part", sort=False):
        part = parts[name]
        address, tally = part.source, dict(part.counts)
        changed = rows[rows["lost"] != rows["excluded"]]
        if len(changed):
            lost = set(rows.loc[rows["lost"], "row_id"])
            frame = _requeued(store.read(part.source), lost)
            address = _address(part.inputs, frame)
            if not store.has(address):
                store.write(address, frame)
            moved = int(changed["lost"].sum())
            back = len(changed) - moved
            needs = (Verdict.QUEUED.value, VerdictReason.NEEDS_REVIEW.value)
            same = (Verdict.EXCLUDED.value, VerdictReason.SAME_TEXT_QUEUED.value)
            tally[needs] = tally.get(needs, 0) - moved + back
            tally[same] = tally.get(same, 0) + moved - back
        records[name] = PartRecord(address, part.inputs)
        _add_counts(counts, tally)
    for name, part in parts.items():
        if name not in records:  # no queued text at all
            records[name] = PartRecord(part.source, part.inputs)
            _add_counts(counts, part.counts)
    return {name: records[name] for name in parts}, counts


def _add_counts(counts: dict[str, dict[str, int]], tally: Mapping[tuple[str, str], int]) -> None:
    for (verdict, reason), n in tally.items():
        if n:
            by_reason = counts.setdefault(verdict, {})
            by_reason[reason] = by_reason.get(reason, 0) + n


def _requeued(frame: pd.DataFrame, lost: set[str]) -> pd.DataFrame:
    """`frame` with its queued texts in `lost` as same_text_queued, and the others queued as
    needs_review (the row order of the stored part)."""
    frame = frame.copy()
    queued = frame["verdict_reason"].isin(_QUEUED).to_numpy()
    excluded = queued & frame["row_id"].isin(lost).to_numpy()
    back = queued & ~excluded
    frame.loc[back, "verdict"] = Verdict.QUEUED.value
    frame.loc[back, "verdict_reason"] = VerdictReason.NEEDS_REVIEW.value
    frame.loc[excluded, "verdict"] = Verdict.EXCLUDED.value
    frame.loc[excluded, "verdict_reason"] = VerdictReason.SAME_TEXT_QUEUED.value
    return frame


def _address(inputs: Mapping[str, str], frame: pd.DataFrame) -> str:
    """A part's file name: its inputs and which of its texts the cross-part rule excluded."""
    out = frame.loc[frame["verdict_reason"] == VerdictReason.SAME_TEXT_QUEUED.value, "row_id"]
    named = [f"{name}={value}" for name, value in sorted(inputs.items())]
    return digest(*named, "\n".join(sorted(out)))


def _decisions_digest(decisions: pd.DataFrame, doubted: set[str]) -> str:
    mine = sorted(doubted & set(decisions["row_id"]))
    table = decisions.to_json(orient="split", date_format="iso", default_handler=str)
    return digest(table, "\n".join(mine))


def _settled_digest(keys: pd.Series, settled: Mapping[str, tuple]) -> str:
    """A digest of the settled identity keys (and what they settle) among `keys`."""
    if not settled or keys.empty:
        return digest("")
    touched = sorted(set(keys.dropna().unique()) & settled.keys())
    return digest("\n".join(f"{k}\t{settled[k]}" for k in touched))


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


def hashes(values: pd.Series) -> np.ndarray:
    """64-bit hashes of a column's values (row ids, identity keys)."""
    return pd.util.hash_pandas_object(values, index=False).to_numpy(dtype=np.uint64)
