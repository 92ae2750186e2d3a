"""Domain sizes: small domains, per-domain caps, train balancing, class weights, eval shortfall.

Caps and balancing remove synthetic samples first, then machine labels, by a seeded hash of
the row_id, and never a human label; what they remove is counted per domain. The cap
(`max_samples_per_domain`) counts every part: its machine labels are kept up to a per-domain
hash threshold found once over all parts. Balancing works within each part (a day of labels):
a part's domains keep at most `balance_ratio` x the median of that part's train domains, so a
day's records do not change when other days arrive.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd

from esk_pipeline.pipeline.ids import stable_rank

# A z-score: the audited decisions asked for bring eval to its minimum about 98% of the time.
_SHORTFALL_Z = 2.0
_MAX_ASKED = 10_000_000


def small_domains(
    real_counts: Mapping[str, int], domains: Iterable[str], minimum: int
) -> dict[str, int]:
    """Domains (among `domains`) with fewer real trusted records than `minimum`."""
    return {
        d: int(real_counts.get(d, 0)) for d in sorted(domains) if real_counts.get(d, 0) < minimum
    }


def small_domain_handling(
    small: Mapping[str, int], policy: Literal["drop", "train_only"]
) -> tuple[list[str], list[str]]:
    """(dropped domains, train-only domains) under `policy`."""
    return (sorted(small), []) if policy == "drop" else ([], sorted(small))


def cap_thresholds(
    ranks: pd.DataFrame, kept_before: Mapping[str, int], cap: int
) -> tuple[dict[str, int], dict[str, int]]:
    """Per-domain rank thresholds for `max_samples_per_domain`.

    `ranks`: (domain, rank: uint64) of the records the cap may remove, kept lowest rank first
    (a synthetic sample's rank is offset by 2**63, past every machine label's); `kept_before`:
    records per domain the cap never removes (human labels). Returns (domain -> highest rank
    kept, -1 for none, capped domains only; domain -> records removed).
    """
    thresholds: dict[str, int] = {}
    removed: dict[str, int] = {}
    for domain, rows in ranks.groupby("domain", sort=True):
        room = max(0, cap - int(kept_before.get(domain, 0)))
        if len(rows) <= room:
            continue
        ordered = np.sort(rows["rank"].to_numpy())
        thresholds[str(domain)] = int(ordered[room - 1]) if room else -1
        removed[str(domain)] = len(rows) - room
    return thresholds, removed


def within_cap(domains: pd.Series, ranks: np.ndarray, thresholds: Mapping[str, int]) -> pd.Series:
    """Records (with uint64 `ranks`) the cap keeps."""
    keep = pd.Series(True, index=domains.index)
    for domain, highest in thresholds.items():
        mine = (domains == domain).to_numpy()
        keep[mine] = (ranks[mine] <= np.uint64(highest)) if highest >= 0 else False
    return keep


def keep_rank(frame: pd.DataFrame, seed: int) -> pd.Series:
    """The order caps and balancing keep records in: a seeded hash of the row_id."""
    return pd.Series(stable_rank(frame["row_id"], seed), index=frame.index)


def downsample(frame: pd.DataFrame, cap: int, seed: int) -> tuple[pd.DataFrame, dict[str, int]]:
    """Keep at most `cap` records per domain, or every human label if there are more:
    humans first, then real machine labels, then synthetic, each by a seeded hash."""
    ordered = frame.assign(_keep_rank=keep_rank(frame, seed)).sort_values(
        ["domain", "_human_origin", "is_synthetic", "_keep_rank"],
        ascending=[True, False, True, True],
        kind="stable",
    )
    position = ordered.groupby("domain").cumcount()
    keep = (position < cap) | ordered["_human_origin"]
    kept = ordered[keep].drop(columns="_keep_rank")
    removed = counts(ordered.loc[~keep, "domain"])
    return kept.sort_values("row_id", kind="stable").reset_index(drop=True), removed


def balance_part(
    train: pd.DataFrame, ratio: float, seed: int
) -> tuple[pd.DataFrame, dict[str, int]]:
    """Cap each domain of one part's train records at ratio x the part's median domain."""
    sizes = train["domain"].value_counts()
    if sizes.empty:
        return train, {}
    cap = max(1, math.ceil(ratio * float(sizes.median())))
    if sizes.max() <= cap:
        return train, {}
    return downsample(train, cap, seed)


def counts(values: pd.Series) -> dict[str, int]:
    return {str(k): int(v) for k, v in sorted(values.value_counts().items())}


def add_counts(total: dict[str, int], more: Mapping[str, int]) -> None:
    for key, n in more.items():
        total[key] = total.get(key, 0) + int(n)


def eval_shortfall(
    eval_records: int,
    min_eval: int,
    eval_fraction: float,
    min_per_domain: int,
    domains: DomainCounts,
    missing_domains: Iterable[str],
) -> dict[str, int]:
    """What eval still lacks: `audited_reviews`, how many more audited human decisions bring
    eval to `min_eval` records, and each domain in train with no eval record (1 each).

    Each eligible group goes to eval with probability `eval_fraction` (a hash draw). Audited
    texts are a uniform sample of the logs, so k more decisions fall into each domain in
    proportion to its labels; a domain's decisions count once it has `min_per_domain` trusted
    records (a smaller domain is train-only). The count asked for is the smallest k at which
    the draw over the groups that become eligible brings eval to `min_eval` about 98% of the
    time (a normal bound on the draw).
    """
    shortfall: dict[str, int] = {}
    if eval_records < min_eval:
        f = eval_fraction
        before = domains.eligible_after(0, min_per_domain)

        def enough(k: int) -> bool:
            new = domains.eligible_after(k, min_per_domain) - before
            spread = _SHORTFALL_Z * math.sqrt(f * (1 - f) * max(new, 0.0))
            return eval_records + f * new - spread >= min_eval

        high = 1
        while not enough(high) and high < _MAX_ASKED:
            high *= 2
        low = high // 2
        while low + 1 < high:  # the smallest k that is enough lies in (low, high]
            middle = (low + high) // 2
            low, high = (low, middle) if enough(middle) else (middle, high)
        shortfall["audited_reviews"] = high
    shortfall.update(dict.fromkeys(sorted(missing_domains), 1))
    return shortfall


@dataclass
class DomainCounts:
    """Per domain: audited settled human labels, trusted real records, labelled real records."""

    audited: dict[str, int] = field(default_factory=dict)
    trusted: dict[str, int] = field(default_factory=dict)
    labelled: dict[str, int] = field(default_factory=dict)

    def eligible_after(self, k: float, min_per_domain: int) -> float:
        """Audited human labels eval may draw from after k more audited decisions."""
        total = sum(self.labelled.values())
        if not total:  # nothing to tell how decisions spread: each one counts
            return sum(self.audited.values()) + k
        eligible = 0.0
        for domain in sorted(set(self.labelled) | set(self.audited)):  # one sum order everywhere
            more = k * self.labelled.get(domain, 0) / total
            if self.trusted.get(domain, 0) + more >= min_per_domain:
                eligible += self.audited.get(domain, 0) + more
        return eligible


def class_weights(train_counts: Mapping[str, int]) -> dict[str, float]:
    """Balanced class weights (n / (k * n_d)) for the train split as written."""
    present = {d: n for d, n in train_counts.items() if n}
    if not present:
        return {}
    total = sum(present.values())
    return {str(d): round(total / (len(present) * int(n)), 4) for d, n in sorted(present.items())}
