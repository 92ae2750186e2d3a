"""Label origin and precedence: where a label came from, and which label a text ends up with.

A label is a claim. Every label row says who made it (`label_origin`, written where the label
is made: the labeler, the review store, the augmenter) and, once calibrated, how likely it is
to be right (`p_correct`). `resolve_labels` is the one place that decides which claim a text
keeps; the dataset writer, the review queue and the calibration all read its result.

A text seen on several days has a label row per day: the first usable one in day order is its
model label (`first_label_per_text`; a failed or deferred row gives way to a later day's
label), so a text stays with the day that first labelled it and a later day adds nothing.

Precedence for one `row_id`: a usable label (status "labeled" with a domain) beats an unusable
one; then the stronger origin (`ORIGIN_RANK`); then the later review; then the higher
confidence. A corroborated human decision (the reviewer approved the model's label, or two
reviewers agreed) also settles every other text with the same identity key
(`text.identity_key`) whose own label agrees with it: those get origin "propagated", the
decision's `p_correct` and its row id in `propagated_from` (`label_source` still names the
model), unless the decisions on that key disagree, and lose it again as soon as the decision is
undone (nothing is stored: it is recomputed from the decisions every time).
Propagation never changes a label, and it skips texts of fewer than `MIN_PROPAGATION_WORDS`
words: replies such as "Сколько ждать ответа?" share a key across conversations about
different things, so a decision on one says nothing about the others.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from esk_pipeline.pipeline.label_contract import (
    HUMAN_ORIGINS,
    MODEL_ORIGINS,
    TIER_OF_ORIGIN,
    LabelOrigin,
    LabelStatus,
    LabelTier,
)
from esk_pipeline.pipeline.text import identity_key_series

__all__ = [
    "HUMAN_ORIGINS",
    "MODEL_ORIGINS",
    "ORIGIN_RANK",
    "LabelOrigin",
    "first_label_per_text",
    "is_human",
    "resolve_labels",
    "strongest_per_row",
    "tier_of",
    "usable",
]


ORIGIN_RANK = {
    LabelOrigin.ADJUDICATED: 6,
    LabelOrigin.HUMAN_VERIFIED: 5,
    LabelOrigin.PROPAGATED: 4,
    LabelOrigin.LLM: 3,
    LabelOrigin.LOCAL_MODEL: 2,
    LabelOrigin.SYNTHETIC: 1,
}
MIN_PROPAGATION_WORDS = 4


def tier_of(frame: pd.DataFrame) -> pd.Series:
    """The calibration tier (`LabelTier` value) of each label row, from its origin, except an
    LLM label the labeler recorded as agreeing with the local model (its `tier` column says
    so); None for human and synthetic labels, which no tier measures."""
    tiers = frame["label_origin"].map(
        {origin.value: tier.value for origin, tier in TIER_OF_ORIGIN.items()}
    )
    if "tier" not in frame.columns:
        return tiers
    agreeing = (frame["label_origin"] == LabelOrigin.LLM.value) & (
        frame["tier"] == LabelTier.LLM_AGREES_WITH_LOCAL.value
    )
    return tiers.mask(agreeing, LabelTier.LLM_AGREES_WITH_LOCAL.value)


def is_human(origins: pd.Series) -> pd.Series:
    """True where the label is a human decision (eval may hold only these)."""
    return origins.isin([o.value for o in HUMAN_ORIGINS])


def usable(frame: pd.DataFrame) -> pd.Series:
    """Rows that carry a label at all: status "labeled" and a domain."""
    if "status" not in frame:
        return frame["domain"].notna()
    # Decision rows carry no labeler status: a decision is a label.
    status = frame["status"].fillna(LabelStatus.LABELED.value)
    return (status == LabelStatus.LABELED) & frame["domain"].notna()


def first_label_per_text(labels: pd.DataFrame) -> pd.DataFrame:
    """One label row per `row_id` of rows in day order: the first usable one, else the first
    (see the module docstring); the rows kept stay in their order."""
    if labels.empty or not labels["row_id"].duplicated().any():
        return labels
    order = np.lexsort((np.arange(len(labels)), ~usable(labels).to_numpy(dtype=bool)))
    first = ~pd.Series(labels["row_id"].to_numpy()[order]).duplicated().to_numpy()
    return labels.iloc[np.sort(order[first])]


def strongest_per_row(frame: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """One row per `row_id` by the precedence above; returns it and how many rows lost."""
    if frame.empty:
        return frame, 0
    reviewed = (
        pd.to_datetime(frame["reviewed_at"], utc=True, errors="coerce")
        if "reviewed_at" in frame
        else pd.Series(pd.NaT, index=frame.index, dtype="datetime64[ns, UTC]")
    )
    ranked = frame.assign(
        _usable=usable(frame),
        _rank=frame["label_origin"].map(lambda o: ORIGIN_RANK.get(o, 0)),
        _reviewed=reviewed.fillna(pd.Timestamp.min.tz_localize("UTC")),
        _confidence=pd.to_numeric(frame.get("confidence"), errors="coerce").fillna(-1.0),
    )
    ranked = ranked.sort_values(
        ["row_id", "_usable", "_rank", "_reviewed", "_confidence"],
        ascending=[True, False, False, False, False],
        kind="stable",
    )
    winners = ranked.drop_duplicates("row_id", keep="first")
    helpers = ["_usable", "_rank", "_reviewed", "_confidence"]
    return winners.drop(columns=helpers).reset_index(drop=True), len(ranked) - len(winners)


def resolve_labels(
    model_labels: pd.DataFrame,
    decisions: pd.DataFrame,
    settled: dict[str, tuple[str, str, float]] | None = None,
) -> pd.DataFrame:
    """One label row per text: the human decision where there is one, a propagated decision
    for texts sharing its identity key, else the model's label.

    `model_labels` are label rows (labeler output, any number of days in day order: a text's
    first usable row is its label, `first_label_per_text`); `decisions` are the review store's
    verified labels. Both carry `label_origin`. The result keeps every column of both, plus
    `identity_key`. `settled` (`settled_keys` of every decision) lets a batch of labels be
    resolved with only the decisions on its own rows; by default it comes from `decisions`.
    """
    model = model_labels.copy()
    human = decisions.assign(status=LabelStatus.LABELED.value, is_synthetic=False)
    if len(model):
        model = first_label_per_text(model)
    frame = pd.concat([f for f in (model, human) if len(f)] or [model], ignore_index=True)
    if frame.empty:
        return frame.assign(identity_key=pd.Series(dtype=object))
    frame, _ = strongest_per_row(frame)
    frame["identity_key"] = identity_key_series(frame["text"])
    if settled is None:
        human = is_human(frame["label_origin"])
        settled = settled_keys(frame[human]) if human.any() else {}
    return _propagate(frame, settled)


def corroborated(decisions: pd.DataFrame) -> pd.Series:
    """Decisions that approved the model's label or that two reviewers agreed on."""
    votes = decisions.get("votes", pd.Series(0, index=decisions.index)).fillna(0)
    return (decisions["domain"] == decisions.get("predicted_domain")) | (votes >= 2)


def settled_domain(siblings: pd.DataFrame) -> str | None:
    """The domain one key's decisions settle: unanimous, with at least one corroborated."""
    if siblings.empty or siblings["domain"].nunique() != 1 or not corroborated(siblings).any():
        return None
    return str(siblings["domain"].iloc[0])


def propagates_to(frame: pd.DataFrame, domain: pd.Series) -> pd.Series:
    """Rows that a settled `domain` (aligned with `frame`) is propagated to: labelled, long
    enough to carry their meaning, and already labelled with that domain."""
    return usable(frame) & long_enough(frame["identity_key"]) & (frame["domain"] == domain)


def long_enough(keys: pd.Series) -> pd.Series:
    """Identity keys of at least `MIN_PROPAGATION_WORDS` words: a decision on one of their
    texts can settle the others."""
    return keys.fillna("").str.count(" ") + 1 >= MIN_PROPAGATION_WORDS


def settled_keys(decisions: pd.DataFrame) -> dict[str, tuple[str, str, float]]:
    """identity key -> (settled domain, smallest decided row id, lowest p_correct) for every
    key whose decisions settle a domain (`settled_domain`)."""
    if decisions.empty:
        return {}
    keys = (
        decisions["identity_key"]
        if "identity_key" in decisions
        else identity_key_series(decisions["text"])
    )
    return {
        key: (domain, group["row_id"].min(), group["p_correct"].min())
        for key, group in decisions.groupby(keys)
        if (domain := settled_domain(group)) is not None
    }


def _propagate(frame: pd.DataFrame, settled: dict[str, tuple[str, str, float]]) -> pd.DataFrame:
    """Mark texts whose label agrees with the decision settled on their identity key."""
    human = is_human(frame["label_origin"])
    if not settled:
        return frame
    keys = frame["identity_key"]
    domain = keys.map(lambda k: settled[k][0] if k in settled else None)
    target = ~human & propagates_to(frame, domain)
    if not target.any():
        return frame
    frame = frame.copy()
    frame.loc[target, "label_origin"] = LabelOrigin.PROPAGATED.value
    frame.loc[target, "propagated_from"] = [settled[k][1] for k in keys[target]]
    frame.loc[target, "p_correct"] = [settled[k][2] for k in keys[target]]
    return frame
