"""Domain sizes: small domains, per-domain caps, train balancing, class weights, eval shortfall.

Caps and balancing remove synthetic samples first, then machine labels, by a seeded hash,
and never a human label; what they remove is counted per domain.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Literal

import pandas as pd

from esk_pipeline.pipeline.splits._grouping import eval_eligible


def small_domains(
    frame: pd.DataFrame, minimum: int, policy: Literal["drop", "train_only"]
) -> tuple[pd.DataFrame, dict[str, int], list[str], list[str], int]:
    """Domains with fewer real samples than `minimum`, handled per `policy`.

    Returns (frame, small domain -> real samples, dropped domains, train-only domains,
    records dropped).
    """
    real_counts = frame.loc[~frame["is_synthetic"], "domain"].value_counts()
    small = {
        d: int(real_counts.get(d, 0))
        for d in sorted(frame["domain"].unique())
        if real_counts.get(d, 0) < minimum
    }
    if policy != "drop":
        return frame, small, [], sorted(small), 0
    dropped = sorted(small)
    drop_mask = frame["domain"].isin(dropped)
    return frame[~drop_mask].reset_index(drop=True), small, dropped, [], int(drop_mask.sum())


def downsample(frame: pd.DataFrame, cap: int) -> tuple[pd.DataFrame, dict[str, int]]:
    """Keep at most `cap` records per domain, or every human label if there are more:
    humans first, then real machine labels, then synthetic, each by a seeded hash."""
    ordered = frame.sort_values(
        ["domain", "_human", "is_synthetic", "_keep_rank"],
        ascending=[True, False, True, True],
        kind="stable",
    )
    position = ordered.groupby("domain").cumcount()
    keep = (position < cap) | ordered["_human"]
    kept = ordered[keep]
    removed = counts(ordered.loc[~keep, "domain"])
    return kept.sort_values("row_id", kind="stable").reset_index(drop=True), removed


def balance_train(frame: pd.DataFrame, ratio: float) -> tuple[pd.DataFrame, dict[str, int]]:
    """Cap each domain's train records at ratio x the median train domain size."""
    train = frame[frame["split"] == "train"]
    counts = train["domain"].value_counts()
    if counts.empty:
        return frame, {}
    cap = max(1, math.ceil(ratio * float(counts.median())))
    if counts.max() <= cap:
        return frame, {}
    kept_train, removed = downsample(train, cap)
    rest = frame[frame["split"] != "train"]
    combined = pd.concat([kept_train, rest]).sort_values("row_id", kind="stable")
    return combined.reset_index(drop=True), removed


def counts(values: pd.Series) -> dict[str, int]:
    return {str(k): int(v) for k, v in sorted(values.value_counts().items())}


def eval_shortfall(
    frame: pd.DataFrame, min_eval: int, eval_fraction: float, train_only: Iterable[str]
) -> dict[str, int]:
    """What eval still lacks, from the split policy: `audited_reviews`, how many more audited
    human decisions bring eval to `min_eval` records, and each domain in train with no eval
    record (1 each).

    Eval takes about `eval_fraction` of a domain's records, and only from audited human
    decisions (`grouping.assign_splits`). With E such decisions among T records, eval holds
    about min(E, eval_fraction * T); k more audited decisions raise both E and T by k. Each
    domain's share is rounded, so one record per domain is added as a margin.
    """
    eval_ = frame[frame["split"] == "eval"]
    shortfall: dict[str, int] = {}
    if len(eval_) < min_eval:
        real = frame[~frame["is_synthetic"]]
        eligible = int(eval_eligible(real).sum())
        for_target = math.ceil(min_eval / eval_fraction) - len(real)
        margin = max(real["domain"].nunique(), 1)
        shortfall["audited_reviews"] = max(for_target, min_eval - eligible, 1) + margin
    train = frame[frame["split"] == "train"]
    missing = sorted(set(train["domain"]) - set(eval_["domain"]) - set(train_only))
    shortfall.update(dict.fromkeys(missing, 1))
    return shortfall


def class_weights(train: pd.DataFrame) -> dict[str, float]:
    """Balanced class weights (n / (k * n_d)) for the train split as written."""
    counts = train["domain"].value_counts()
    if counts.empty:
        return {}
    return {
        str(d): round(len(train) / (len(counts) * int(n)), 4) for d, n in sorted(counts.items())
    }
