"""From model labels and review decisions to trusted labels: one assessment per graph run.

`assess_label_days` (and `assess_labels`, for labels in one frame) resolves every text's label
(`labels.resolve_labels`), then measures:

1. out-of-fold scores of the local model for every human-labelled text (`_out_of_fold`);
2. each tier's calibration on the audited texts, answering for the audit texts not decided
   yet too (`calibration`, `_days.open_audit_labels`): the local tier from the out-of-fold
   scores, an LLM tier (plain or agreeing with the local model, by the label row's `tier`)
   from the label its reviewers were shown;
3. each reviewer's reliability and each decision's probability of being right (`reviewers`),
   with the model's prediction as one more voter;
4. possible errors among single-reviewer decisions (`_label_errors`).

and writes `p_correct` (estimated probability of being right) on every label, then the one
trust verdict (`verdict.assign_verdicts`): trusted, queued or excluded, with its reason.

History need not fit in memory: the measures need only the labels of texts people decided or
voted on, which a first pass over the days keeps; a second applies them a day at a time (a text
seen on several days stays with the first that labelled it: `labels.first_label_per_text`),
each day into a part of its own (`_parts`: a part whose inputs did not change since last time
is reused, not made again), and only the queued texts' identity keys meet across days
(`verdict.queue_order`). The result's `parts` are read one at a time; `labels` puts them in
one frame for callers that can hold it.

A decision that confident learning doubts (or that waits on a second opinion the store already
asked for) stays human; the verdict keeps it out of eval until a second reviewer answers.
Folds, the audit and every other draw are hashes of content (texts, row ids), so the same
inputs always give the same assessment.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict

from esk_pipeline.pipeline.label_contract import LabelTier
from esk_pipeline.pipeline.labels import (
    first_label_per_text,
    is_human,
    propagates_to,
    settled_domain,
    tier_of,
)
from esk_pipeline.pipeline.options import TrustOptions
from esk_pipeline.pipeline.parts import FrameParts, MemoryPartStore, PartRecord, PartStore
from esk_pipeline.pipeline.taxonomy import Taxonomy
from esk_pipeline.pipeline.text import identity_key_series
from esk_pipeline.pipeline.trust._audit import audit_mask
from esk_pipeline.pipeline.trust._days import DayIndex, index_day, known_day, open_audit_labels
from esk_pipeline.pipeline.trust._label_errors import suspected_label_errors
from esk_pipeline.pipeline.trust._out_of_fold import out_of_fold_proba
from esk_pipeline.pipeline.trust._parts import apply_trust, hashes
from esk_pipeline.pipeline.trust.calibration import Calibration, fit_calibration
from esk_pipeline.pipeline.trust.estimate import AccuracyEstimate, combine, stratum
from esk_pipeline.pipeline.trust.reviewers import ReviewerReliability, estimate_reliability
from esk_pipeline.pipeline.trust.verdict import AUDIT_REASONS

__all__ = [
    "TrustAssessment",
    "TrustConfig",
    "assess_label_days",
    "assess_labels",
    "estimate_accuracy",
]


class TrustConfig(TrustOptions):
    """What a label must show before it enters a dataset, and how that is measured."""


class TrustAssessment(BaseModel):
    """The resolved labels with `p_correct` and the verdict, and the evidence behind them."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    parts: FrameParts  # the labels, a part per labels day (`_parts`)
    verdicts: dict[str, dict[str, int]]  # texts by verdict, then by reason
    calibration: Calibration
    reliability: ReviewerReliability
    audited: int  # audit texts with a decision or a first vote: the calibration's evidence
    audit_pending: int  # audit items not decided yet
    suspected_errors: list[str]  # decided item ids confident learning doubts
    doubted: list[str]  # decisions treated as doubted: suspected now or waiting in the store
    model_tiers: list[str] = []  # the tiers that labelled anything (before any decision)

    def estimate_accuracy(self, records: pd.DataFrame) -> AccuracyEstimate:
        """The label accuracy of `records` (dataset records): `estimate_accuracy`."""
        return estimate_accuracy(records, self.calibration, self.reliability)

    @property
    def labels(self) -> pd.DataFrame:
        """Every part in one frame, in row id order: for callers whose labels fit in memory."""
        frames = [self.parts[name] for name in self.parts]
        labels = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
        return labels.sort_values("row_id", kind="stable").reset_index(drop=True)

    def verdict_counts(self) -> dict[str, dict[str, int]]:
        """Labelled texts by verdict, then by reason (zero counts left out), sorted."""
        return {v: dict(sorted(r.items())) for v, r in sorted(self.verdicts.items())}


def estimate_accuracy(
    records: pd.DataFrame, calibration: Calibration, reliability: ReviewerReliability
) -> AccuracyEstimate:
    """The label accuracy of dataset records, by stratum (see `estimate`). Synthetic samples
    are not counted: they have no text in the logs to audit."""
    real = records[~records["is_synthetic"].astype(bool)]
    human = is_human(real["label_origin"])
    strata = []
    if human.any():
        p_correct = float(pd.to_numeric(real.loc[human, "p_correct"]).fillna(0).mean())
        strata.append(stratum("human", int(human.sum()), p_correct, reliability.overlap_items))
    machine = real[~human]
    for tier, rows in machine.groupby(tier_of(machine), sort=True):
        fitted = calibration.tiers.get(str(tier))
        precision = fitted.accepted_precision if fitted else None
        evidence = fitted.accepted_audited if fitted else 0
        strata.append(stratum(str(tier), len(rows), precision, evidence))
    return combine(strata)


def assess_labels(
    model_labels: pd.DataFrame,
    decisions: pd.DataFrame,
    votes: pd.DataFrame,
    taxonomy: Taxonomy,
    config: TrustConfig,
    *,
    temperature: float,
) -> TrustAssessment:
    """`assess_label_days` of label rows held in one frame (one "day")."""
    return assess_label_days(
        {"": model_labels}, decisions, votes, taxonomy, config, temperature=temperature
    )


def assess_label_days(
    days: Mapping[str, pd.DataFrame],
    decisions: pd.DataFrame,
    votes: pd.DataFrame,
    taxonomy: Taxonomy,
    config: TrustConfig,
    *,
    temperature: float,
    store: PartStore | None = None,
    previous: Mapping[str, PartRecord] | None = None,
) -> TrustAssessment:
    """Resolve and measure (see the module docstring).

    `days`: label rows by day key (ISO dates sort in time order); each day is read at most
    twice and then let go, so a mapping that reads its frames on access keeps one day in
    memory at a time (and one with a `fingerprint(day)` method spares hashing each day's
    content). `decisions`: the review store's verified labels; `votes`: its decision votes;
    `temperature`: the labels' local model's temperature. A decision whose `doubt_pending` is
    true waits for a second opinion the store asked for. The labels go to `store` as parts
    (in memory by default); parts of `previous` whose inputs are unchanged are reused.
    """
    decisions = decisions.reset_index(drop=True)
    wanted = set(decisions["row_id"]) | set(votes["item_id"])
    store = MemoryPartStore() if store is None else store
    previous = previous or {}
    evidence, model_tiers, index = _evidence(days, wanted, store, previous, config.audit_share)
    # Audit texts whose decision waits for a second reviewer count with their first vote: left
    # out, the audit would keep the model's easy successes and lose its failures for a while.
    waiting = _waiting_audit_items(evidence, decisions, votes, config.audit_share)
    pool = pd.concat([decisions, waiting], ignore_index=True) if len(waiting) else decisions
    proba_all = out_of_fold_proba(
        taxonomy,
        pool["text"].tolist(),
        pool["domain"].tolist(),
        temperature=temperature,
        folds=config.folds,
    )
    proba = proba_all[: len(decisions)]
    audited = audit_mask(decisions["row_id"], config.audit_share)
    pool_audited = audit_mask(pool["row_id"], config.audit_share)
    parts = [
        _audit_records(pool[pool_audited], proba_all[pool_audited], taxonomy.ids, evidence),
        _propagation_audit(evidence, decisions, audited),
    ]
    audit = pd.concat([p for p in parts if len(p)] or parts[:1], ignore_index=True)
    undecided = open_audit_labels(index, hashes(pool["row_id"]))
    # Every audit text below the smallest undecided row hash is decided: a uniform sample.
    below = undecided["row"].min() if len(undecided) else np.iinfo(np.uint64).max
    calibration = fit_calibration(
        audit,
        config.precision_target,
        undecided=undecided,
        complete=hashes(audit["row_id"]) < np.uint64(below),
    )
    reliability, posteriors = estimate_reliability(
        votes, len(taxonomy.ids), model_votes=_model_votes(decisions, calibration, evidence)
    )
    decided_p = decisions.merge(
        posteriors, left_on=["row_id", "domain"], right_on=["item_id", "domain"], how="left"
    )["posterior"]
    decisions = decisions.assign(p_correct=decided_p.to_numpy())

    suspected: list[str] = []
    if config.detect_label_errors and len(decisions):
        single = (decisions["votes"] == 1).to_numpy()
        flags = suspected_label_errors(decisions["domain"].tolist(), proba, taxonomy.ids)
        suspected = decisions.loc[flags & single, "row_id"].tolist()
    waiting_doubt = decisions.get("doubt_pending", pd.Series(False, index=decisions.index))
    doubted = sorted(set(suspected) | set(decisions.loc[waiting_doubt.astype(bool), "row_id"]))

    records, verdicts = apply_trust(
        days,
        index,
        decisions,
        calibration,
        audit_share=config.audit_share,
        doubted=doubted,
        store=store,
        previous=previous,
    )
    pending = sum(n for r in verdicts.values() for why, n in r.items() if why in AUDIT_REASONS)
    return TrustAssessment(
        parts=FrameParts(store, records),
        verdicts=verdicts,
        calibration=calibration,
        reliability=reliability,
        audited=int(pool_audited.sum()),
        audit_pending=pending,
        suspected_errors=suspected,
        doubted=doubted,
        model_tiers=sorted(model_tiers),
    )


def _evidence(
    days: Mapping[str, pd.DataFrame],
    wanted: set[str],
    store: PartStore,
    previous: Mapping[str, PartRecord],
    audit_share: float,
) -> tuple[pd.DataFrame, set, dict[str, DayIndex]]:
    """The label rows of the texts in `wanted` (decided or voted on), oldest day first, the
    tiers that labelled anything, and each day's index (`_days.index_day`). A day whose index
    was kept beside its part last time (`_days.known_day`) is read only if it holds one of
    those texts."""
    kept, tiers, index = [], set(), {}
    fingerprint = getattr(days, "fingerprint", lambda _: None)
    wanted_rows = hashes(pd.Series(sorted(wanted), dtype=object))
    for key in sorted(days):
        frame = None
        day = known_day(store, previous.get(key), fingerprint(key), audit_share)
        if day is None:
            frame = days[key]
            day = index_day(frame, fingerprint(key), audit_share)
        index[key] = day
        tiers.update(day.tiers)
        if np.isin(day.rows, wanted_rows).any():
            frame = days[key] if frame is None else frame
            kept.append(frame[frame["row_id"].isin(wanted)])
        del frame
    evidence = pd.concat(kept, ignore_index=True) if kept else pd.DataFrame()
    return evidence, tiers, index


def _waiting_audit_items(
    model_labels: pd.DataFrame, decisions: pd.DataFrame, votes: pd.DataFrame, share: float
) -> pd.DataFrame:
    """Audit texts with a vote but no decision yet, as (row_id, text, domain = first vote)."""
    columns = ["row_id", "text", "domain", "predicted_domain", "predicted_source", "confidence"]
    open_votes = votes[~votes["item_id"].isin(decisions["row_id"])]
    open_votes = open_votes[audit_mask(open_votes["item_id"], share)]
    if open_votes.empty or model_labels.empty:
        return pd.DataFrame(columns=columns)
    first = open_votes.drop_duplicates("item_id").set_index("item_id")["domain"]
    labels = first_label_per_text(model_labels).set_index("row_id")
    known = first.index.intersection(labels.index)
    shown = labels.loc[known]
    return pd.DataFrame(
        {
            "row_id": known,
            "text": shown["text"].to_numpy(),
            "domain": first.loc[known].to_numpy(),
            "predicted_domain": shown["domain"].to_numpy(),
            "predicted_source": shown["label_source"].to_numpy(),
            "confidence": shown["confidence"].to_numpy(),
        }
    )


def _audit_records(
    decisions: pd.DataFrame, proba: np.ndarray, classes: list[str], evidence: pd.DataFrame
) -> pd.DataFrame:
    """(row_id, tier, confidence, predicted, truth) for each audited decision and tier."""
    records = []
    usable = ~np.isnan(proba).any(axis=1) if len(proba) else np.zeros(0, dtype=bool)
    if usable.any():
        best = proba[usable].argmax(axis=1)
        local = decisions[usable]
        records.append(
            pd.DataFrame(
                {
                    "row_id": local["row_id"].to_numpy(),
                    "tier": LabelTier.LOCAL_MODEL.value,
                    "confidence": proba[usable].max(axis=1),
                    "predicted": np.asarray(classes, dtype=object)[best],
                    "truth": local["domain"].to_numpy(),
                }
            )
        )
    shown = decisions[decisions["predicted_domain"].notna() & _shown_llm(decisions)]
    if len(shown):
        records.append(
            pd.DataFrame(
                {
                    "row_id": shown["row_id"].to_numpy(),
                    "tier": _shown_tiers(shown, evidence).to_numpy(),
                    "confidence": shown["confidence"].to_numpy(dtype=float),
                    "predicted": shown["predicted_domain"].to_numpy(),
                    "truth": shown["domain"].to_numpy(),
                }
            )
        )
    if not records:
        return pd.DataFrame(columns=["row_id", "tier", "confidence", "predicted", "truth"])
    return pd.concat(records, ignore_index=True)


def _model_votes(
    decisions: pd.DataFrame, calibration: Calibration, evidence: pd.DataFrame
) -> pd.DataFrame:
    """The prediction each reviewer saw, as a voter whose accuracy is its calibrated p."""
    shown = decisions[decisions["predicted_domain"].notna()]
    return pd.DataFrame(
        {
            "item_id": shown["row_id"],
            "domain": shown["predicted_domain"],
            "accuracy": calibration.p_correct(_shown_tiers(shown, evidence), shown["confidence"]),
        }
    )


def _shown_tiers(decisions: pd.DataFrame, evidence: pd.DataFrame) -> pd.Series:
    """The tier of the label each reviewer was shown: the local model's, or an LLM's; that of
    LLM labels agreeing with the local model where the text's label row says so (the
    review store keeps the shown label and its source, not its tier)."""
    tiers = pd.Series(
        np.where(_shown_llm(decisions), LabelTier.LLM.value, LabelTier.LOCAL_MODEL.value),
        index=decisions.index,
    )
    if evidence.empty or "tier" not in evidence.columns:
        return tiers
    held = first_label_per_text(evidence).set_index("row_id")
    label_tier = decisions["row_id"].map(held["tier"])
    label_domain = decisions["row_id"].map(held["domain"])
    agreeing = (
        (tiers == LabelTier.LLM.value)
        & (label_tier == LabelTier.LLM_AGREES_WITH_LOCAL.value)
        & (label_domain == decisions["predicted_domain"])
    )
    return tiers.mask(agreeing, LabelTier.LLM_AGREES_WITH_LOCAL.value)


def _propagation_audit(
    model_labels: pd.DataFrame, decisions: pd.DataFrame, audited: np.ndarray
) -> pd.DataFrame:
    """Audit records for the propagated tier: for each audited text, what the decisions on its
    near duplicates (itself left out) would have propagated to it, against its own decision."""
    columns = ["row_id", "tier", "confidence", "predicted", "truth"]
    if not audited.any() or model_labels.empty:
        return pd.DataFrame(columns=columns)
    keyed = decisions.assign(identity_key=identity_key_series(decisions["text"]))
    by_key = dict(tuple(keyed.groupby("identity_key")))
    own = first_label_per_text(model_labels).set_index("row_id")
    records = []
    for _, row in keyed[audited].iterrows():
        if row["row_id"] not in own.index:
            continue
        siblings = by_key[row["identity_key"]]
        domain = settled_domain(siblings[siblings["row_id"] != row["row_id"]])
        label = own.loc[[row["row_id"]]].assign(identity_key=row["identity_key"])
        if domain is not None and propagates_to(label, pd.Series(domain, index=label.index)).all():
            records.append((row["row_id"], LabelTier.PROPAGATED.value, 1.0, domain, row["domain"]))
    return pd.DataFrame(records, columns=columns)


def _shown_llm(decisions: pd.DataFrame) -> pd.Series:
    """Decisions whose reviewer was shown an LLM's label (the local model's source is "local")."""
    return ~decisions["predicted_source"].fillna("local").isin(["", "local"])
