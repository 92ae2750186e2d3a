"""Calibration on the logs: how often each tier's labels are right, measured on the audit.

Input: audit records, one per audited text, with the tier that labelled it, the confidence and
domain that tier gave, and the human decision (`truth`). Per tier this fits

- an acceptance threshold: the lowest confidence t such that the tier's audited labels with
  confidence >= t are right at least `precision_target` of the time with `assurance`
  probability (the lower `1 - assurance` quantile of a Beta posterior over their precision),
  over at least `min_accept_audit` items. Choosing the lowest passing threshold on a point
  estimate would pick whichever cut the audit's noise flatters; the quantile keeps that winner's
  curse below the target. The threshold is pooled over the tier's domains: a per-domain
  threshold at 95% precision needs about 60 clean audited items, which most domains of a
  15-domain taxonomy never reach, and a rule fitted on 20 would veto a domain whose every
  audited label was right. So a domain gets a threshold of its own (from its own audited labels
  by the same rule) only once it has `min_domain_audit` audited labels, and then only where its
  audit says so with the same assurance: a looser one where its own labels pass lower, a
  stricter one where its labels at the pooled threshold fall short of the target. A domain
  whose audit merely fails to prove the target at the pooled threshold keeps it: holding it to
  a stricter cut on that evidence would let the audit's noise veto good domains (one or two
  audit errors among a hundred do it). The assurance of a domain's own verdict is raised for
  the number of domains judged (Bonferroni: 1 - (1 - assurance) / m): with six well-audited
  domains at 96%, one of them looks below 95% at 75% assurance in most audits, and a
  threshold of its own would be that noise's. Thinner domains share the pooled one, whose
  bound holds for the tier's accepted labels as a whole (`acceptance_rule`);
- a map from confidence to the probability of being right (Platt scaling: a logistic fit on the
  confidence's log-odds, smooth and monotone even on a few dozen audited texts, where an
  isotonic fit would jump to 0 and 1), which becomes each label's `p_correct`.

A tier with no audit accepts nothing: its labels need review, whatever the model says about
itself. That is the point: confidence is the model's claim, the audit is the evidence.

The thresholds assume the audited labels are a uniform sample. People work the audit highest
confidence first until a tier accepts something (`_audit`), so its decided part is not one;
the thresholds are then fitted on two samples that are, and the lower one kept (see
`fit_calibration`): the whole audit with each undecided label counted as wrong, and the part of
it that is decided to its last text.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from pydantic import BaseModel, Field
from scipy.special import expit
from scipy.stats import beta
from sklearn.linear_model import LogisticRegression

__all__ = [
    "ASSURANCE",
    "AUDIT_COLUMNS",
    "MIN_ACCEPT_AUDIT",
    "MIN_DOMAIN_AUDIT",
    "Calibration",
    "TierCalibration",
    "acceptance_rule",
    "fit_calibration",
    "laplace",
    "precision_lower_bound",
    "wilson_interval",
]

AUDIT_COLUMNS = ("row_id", "tier", "confidence", "predicted", "truth")
_Z = 1.959963984540054  # 95% two-sided
ASSURANCE = 0.75
# Audited labels a threshold at 95% needs above it: about 60 clean ones tell 95% from 90%
# (fewer let a lucky run of right labels at the top accept a tier at 90-93%).
MIN_ACCEPT_AUDIT = 60
MIN_DOMAIN_AUDIT = 60
# Beyond this many accepted audited labels `audit_still_needed` stops counting.
_MAX_AUDIT_PLANNED = 100_000


def acceptance_rule(precision_target: float) -> str:
    """The acceptance bound in one sentence, as the dataset card states it."""
    return (
        f"A tier's machine labels are accepted from the lowest confidence at which its audited "
        f"labels at or above it are at least {precision_target:.0%} right with "
        f"{ASSURANCE:.0%} probability (Beta posterior, at least {MIN_ACCEPT_AUDIT} audited "
        f"labels; an audit label not decided yet counts as wrong, or the audit's part decided "
        f"to its last text stands alone, whichever accepts more). That threshold is pooled "
        f"over the domains, so the bound holds for the "
        f"tier's accepted labels as a whole; a domain with at least {MIN_DOMAIN_AUDIT} audited "
        f"labels of its own gets a looser threshold where its labels pass lower by the same "
        f"rule, and a stricter one where its labels at the pooled threshold are below "
        f"{precision_target:.0%}, both with {ASSURANCE:.0%} probability over all the domains "
        f"so judged (1 - {1 - ASSURANCE:.2f} / their number for each)."
    )


def wilson_interval(correct: float, total: float) -> tuple[float, float]:
    """95% Wilson score interval for a proportion (0, 1 when there is no data)."""
    if total <= 0:
        return 0.0, 1.0
    p = correct / total
    denominator = 1 + _Z**2 / total
    centre = (p + _Z**2 / (2 * total)) / denominator
    half = _Z * math.sqrt(p * (1 - p) / total + _Z**2 / (4 * total**2)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def laplace(correct: float, total: float) -> float:
    return (correct + 1) / (total + 2)


def precision_lower_bound(correct: float, total: float, assurance: float) -> float:
    """The precision exceeded with probability `assurance` (Beta(1, 1) prior)."""
    return float(beta.ppf(1 - assurance, correct + 1, total - correct + 1))


class TierCalibration(BaseModel):
    """What the audit says about one tier ("local", "llm:<model>")."""

    tier: str
    audited: int
    audited_correct: int
    threshold: float | None = Field(description="accept at or above; None accepts nothing")
    # Domains with enough audit of their own (inf: none of its labels reach the target).
    domain_thresholds: dict[str, float] = Field(default_factory=dict)
    # Audit labels the thresholds accept, in the sample they were fitted on (`fit_calibration`).
    accepted_audited: int = 0
    accepted_correct: int = 0
    # p_correct = sigmoid(slope * logit(confidence) + intercept); None before two outcomes.
    platt: tuple[float, float] | None = None

    @property
    def accuracy(self) -> float | None:
        return self.audited_correct / self.audited if self.audited else None

    @property
    def accepted_precision(self) -> float | None:
        """Precision of the labels the thresholds accept, from the audited ones (Laplace: the
        thresholds were chosen on these very items, so the raw share flatters them)."""
        if not self.accepted_audited:
            return None
        return laplace(self.accepted_correct, self.accepted_audited)

    def threshold_for(self, domain: str) -> float | None:
        """The domain's own threshold where its audit sufficed, else the pooled one."""
        return self.domain_thresholds.get(domain, self.threshold)

    def p_correct(self, confidence: np.ndarray) -> np.ndarray:
        if self.platt is None:
            return np.full(len(confidence), np.nan)
        slope, intercept = self.platt
        return expit(slope * _logit(confidence) + intercept)


class Calibration(BaseModel):
    """Every tier's calibration, and the rule that turns it into accepted labels."""

    precision_target: float
    tiers: dict[str, TierCalibration] = Field(default_factory=dict)

    @property
    def audited(self) -> int:
        return sum(t.audited for t in self.tiers.values())

    def needs_audit(self) -> bool:
        """True while the audit still decides what is accepted: the most audited tier has no
        threshold yet, or the 95% interval of its accepted labels' precision is wider than
        the error the target allows (at 95%: wider than 0.95 +- 0.025, about 200 audited
        labels above the threshold)."""
        if not self.tiers:
            return True
        main = max(self.tiers.values(), key=lambda tier: tier.audited)
        low, high = wilson_interval(main.accepted_correct, main.accepted_audited)
        return high - low > 1 - self.precision_target

    def audit_still_needed(self) -> int | None:
        """About how many more audit decisions `needs_audit` waits for (0: none; None: not
        known yet, while the most audited tier accepts nothing). Assumes the accepted labels'
        precision and their share of the audit stay as they are; both tend to grow as the
        audit does, so this errs long."""
        if not self.needs_audit():
            return 0
        if not self.tiers:
            return None
        main = max(self.tiers.values(), key=lambda tier: tier.audited)
        if not main.accepted_audited:
            return None
        precision = main.accepted_correct / main.accepted_audited
        allowed = 1 - self.precision_target
        accepted = main.accepted_audited
        while accepted < _MAX_AUDIT_PLANNED:
            accepted += 1
            low, high = wilson_interval(precision * accepted, accepted)
            if high - low <= allowed:
                break
        return math.ceil((accepted - main.accepted_audited) * main.audited / main.accepted_audited)

    def p_correct(self, tiers: pd.Series, confidence: pd.Series) -> np.ndarray:
        """Each label's estimated probability of being right (NaN for an unaudited tier)."""
        out = np.full(len(tiers), np.nan)
        conf = pd.to_numeric(confidence, errors="coerce").fillna(0.0).to_numpy(dtype=float)
        tier_values = tiers.to_numpy()
        for name, calibration in self.tiers.items():
            mask = tier_values == name
            if mask.any():
                out[mask] = calibration.p_correct(conf[mask])
        return out

    def accepted(self, tiers: pd.Series, confidence: pd.Series, domains: pd.Series) -> np.ndarray:
        """True where a machine label clears its tier's (and domain's) threshold."""
        out = np.zeros(len(tiers), dtype=bool)
        conf = pd.to_numeric(confidence, errors="coerce").fillna(0.0).to_numpy(dtype=float)
        for i, (tier, domain) in enumerate(zip(tiers, domains, strict=True)):
            calibration = self.tiers.get(tier)
            threshold = calibration.threshold_for(domain) if calibration else None
            out[i] = threshold is not None and conf[i] >= threshold
        return out


def fit_calibration(
    audit: pd.DataFrame,
    precision_target: float,
    *,
    undecided: pd.DataFrame | None = None,
    complete: np.ndarray | None = None,
    assurance: float = ASSURANCE,
    min_accept_audit: int = MIN_ACCEPT_AUDIT,
    min_domain_audit: int = MIN_DOMAIN_AUDIT,
) -> Calibration:
    """Fit every tier present in `audit` (columns AUDIT_COLUMNS).

    Where people work the audit in an order of their own (`_audit`), the decided part of it is
    no uniform sample, and the thresholds are fitted on two that are, keeping per tier the one
    that accepts more (the lower threshold):
    - the whole audit, with `undecided` (its labels not decided yet: tier, confidence,
      predicted) each counted as a wrong label wherever a threshold would accept it;
    - the `complete` rows of `audit` (a mask: a part of the audit decided to its last text).
    Without either, `audit` is taken as the uniform sample it is."""
    rule = _Rule(precision_target, assurance)
    undecided = _NO_UNDECIDED if undecided is None else undecided
    open_by_tier = dict(tuple(undecided.groupby("tier", sort=False)))
    audit = audit.assign(complete=True if complete is None else complete)
    tiers = {}
    for tier, rows in audit.groupby("tier", sort=True):
        fits = [
            _fit_tier(str(tier), sample, rule, min_accept_audit, min_domain_audit)
            for sample in (
                _sample(rows, open_by_tier.get(tier, _NO_UNDECIDED)),
                _sample(rows[rows["complete"].to_numpy(dtype=bool)], _NO_UNDECIDED),
            )
        ]
        best = min(fits, key=lambda fit: math.inf if fit.threshold is None else fit.threshold)
        tiers[str(tier)] = _with_map(best, rows)
    return Calibration(precision_target=precision_target, tiers=tiers)


_NO_UNDECIDED = pd.DataFrame(columns=["tier", "confidence", "predicted"])


def _sample(decided: pd.DataFrame, undecided: pd.DataFrame) -> pd.DataFrame:
    """Audit labels as (confidence, predicted, right): an undecided one as a wrong one."""
    return pd.DataFrame(
        {
            "confidence": np.r_[
                decided["confidence"].to_numpy(dtype=float),
                undecided["confidence"].to_numpy(dtype=float),
            ],
            "predicted": np.r_[
                decided["predicted"].to_numpy(dtype=object),
                undecided["predicted"].to_numpy(dtype=object),
            ],
            "right": np.r_[
                (decided["predicted"] == decided["truth"]).to_numpy(dtype=bool),
                np.zeros(len(undecided), dtype=bool),
            ],
        }
    )


class _Rule:
    """When a set of audited labels is precise enough: its precision's lower quantile."""

    def __init__(self, target: float, assurance: float):
        self.target, self.assurance = target, assurance

    def passes(self, correct: float, total: float) -> bool:
        return precision_lower_bound(correct, total, self.assurance) >= self.target

    def fails(self, correct: float, total: float) -> bool:
        """The mirror of `passes`: the precision is below the target with `assurance`."""
        return precision_lower_bound(correct, total, 1 - self.assurance) < self.target


def _fit_tier(
    tier: str,
    audit: pd.DataFrame,
    rule: _Rule,
    min_accept_audit: int,
    min_domain_audit: int,
) -> TierCalibration:
    """The thresholds on one sample of audit labels (`_sample`)."""
    conf = audit["confidence"].to_numpy(dtype=float)
    correct = audit["right"].to_numpy(dtype=bool)
    threshold = _threshold(conf, correct, rule, min_accept_audit)
    domain_thresholds: dict[str, float] = {}
    judged = [
        (domain, rows)
        for domain, rows in audit.groupby("predicted", sort=True)
        if len(rows) >= min_domain_audit
    ]
    # Each domain's verdict at an assurance that holds for all of them together.
    domain_rule = _Rule(rule.target, 1 - (1 - rule.assurance) / max(len(judged), 1))
    for domain, rows in judged:
        d_conf = rows["confidence"].to_numpy(dtype=float)
        d_correct = rows["right"].to_numpy(dtype=bool)
        own = _threshold(d_conf, d_correct, domain_rule, min_accept_audit)
        if own is not None and (threshold is None or own < threshold):
            domain_thresholds[str(domain)] = own  # its own audit passes lower
        elif threshold is not None:
            at_pooled = d_correct[d_conf >= threshold]
            failing = domain_rule.fails(at_pooled.sum(), len(at_pooled))
            if len(at_pooled) >= min_accept_audit and failing:
                # No threshold of its own reaches the target: accept none of this domain.
                domain_thresholds[str(domain)] = own if own is not None else math.inf
    calibration = TierCalibration(
        tier=tier,
        audited=0,
        audited_correct=0,
        threshold=threshold,
        domain_thresholds=domain_thresholds,
    )
    limits = [calibration.threshold_for(str(d)) for d in audit["predicted"]]
    if any(limit is not None for limit in limits):
        accepted = conf >= np.array([np.inf if t is None else t for t in limits], dtype=float)
        calibration.accepted_audited = int(accepted.sum())
        calibration.accepted_correct = int(correct[accepted].sum())
    return calibration


def _with_map(calibration: TierCalibration, audit: pd.DataFrame) -> TierCalibration:
    """`calibration` with the tier's decided audit labels counted and its confidence map."""
    conf = audit["confidence"].to_numpy(dtype=float)
    correct = (audit["predicted"] == audit["truth"]).to_numpy(dtype=bool)
    calibration = calibration.model_copy(
        update={"audited": len(audit), "audited_correct": int(correct.sum())}
    )
    if 0 < correct.sum() < len(correct):
        platt = LogisticRegression(C=1.0).fit(_logit(conf).reshape(-1, 1), correct)
        calibration.platt = (float(platt.coef_[0, 0]), float(platt.intercept_[0]))
    elif len(correct):  # all right or all wrong: a constant, smoothed like the thresholds
        calibration.platt = (
            0.0,
            float(_logit(np.array([laplace(correct.sum(), len(correct))]))[0]),
        )
    return calibration


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=float), 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


def _threshold(
    confidence: np.ndarray, correct: np.ndarray, rule: _Rule, min_accept: int
) -> float | None:
    """The lowest confidence whose at-or-above set passes `rule`, or None."""
    order = np.argsort(-confidence, kind="stable")
    conf, ok = confidence[order], correct[order].astype(float)
    cumulative = np.cumsum(ok)
    best: float | None = None
    for m in range(min_accept, len(conf) + 1):
        # Only cut between distinct confidences: a threshold accepts all ties together.
        if m < len(conf) and conf[m] == conf[m - 1]:
            continue
        if rule.passes(cumulative[m - 1], m):
            best = float(conf[m - 1])
    return best
