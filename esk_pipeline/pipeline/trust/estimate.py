"""A dataset's estimated label accuracy, with a 95% interval, from the audit and the reviews.

Records fall into strata by who vouches for them:

- human labels (and labels propagated from them): their mean posterior probability of being
  right (`reviewers`), with the uncertainty of the reviewer accuracies behind it (the items
  with two or more votes are its evidence);
- accepted machine labels of each tier: the share right among that tier's audit labels that
  the same thresholds accept, in the uniform sample the thresholds were fitted on (a sample of
  exactly this stratum; where undecided audit labels count as wrong, a cautious one).

The estimate is the record-weighted mean of the strata; the interval adds each stratum's
sampling variance (Wilson intervals) to the variance of the realised accuracy of this many
records. A stratum without evidence gives no estimate: the version says so instead.
"""

from __future__ import annotations

import math

from pydantic import BaseModel, Field

from esk_pipeline.pipeline.trust.calibration import wilson_interval

__all__ = ["AccuracyEstimate", "AuditProgress", "Stratum", "combine", "pooled", "stratum"]

_Z = 1.959963984540054


class AuditProgress(BaseModel):
    """How much of the audit a version's accuracy estimate rests on."""

    audited: int = Field(ge=0, description="audited texts with a human decision")
    needed: int = Field(ge=0, description="audited texts an estimate needs to be reliable")

    @property
    def enough(self) -> bool:
        return self.audited >= self.needed

    def __str__(self) -> str:
        return f"{self.audited} of {self.needed} audited"


class Stratum(BaseModel):
    name: str
    records: int
    accuracy: float | None
    evidence: int  # audited labels (machine strata) or overlapping items (human stratum)
    low: float | None = None
    high: float | None = None


class AccuracyEstimate(BaseModel):
    estimate: float | None
    low: float | None
    high: float | None
    records: int
    strata: list[Stratum] = Field(default_factory=list)
    method: str = (
        "record-weighted mean over strata: human labels by their Dawid-Skene posterior, "
        "accepted machine labels by the precision of the audited labels the same thresholds "
        "accept; 95% interval from Wilson intervals per stratum"
    )


def stratum(name: str, records: int, accuracy: float | None, evidence: int) -> Stratum:
    """A stratum with its 95% interval (from `evidence` items at `accuracy`)."""
    if accuracy is None or evidence <= 0:
        return Stratum(name=name, records=records, accuracy=accuracy, evidence=evidence)
    low, high = wilson_interval(accuracy * evidence, evidence)
    return Stratum(
        name=name, records=records, accuracy=accuracy, evidence=evidence, low=low, high=high
    )


def combine(strata: list[Stratum]) -> AccuracyEstimate:
    """The weighted estimate and interval over non-empty strata (None if any lacks evidence)."""
    present = [s for s in strata if s.records]
    total = sum(s.records for s in present)
    if not total or any(s.accuracy is None or s.low is None for s in present):
        return AccuracyEstimate(estimate=None, low=None, high=None, records=total, strata=strata)
    estimate = sum(s.records * s.accuracy for s in present) / total  # type: ignore[operator]
    variance = 0.0
    for s in present:
        weight = s.records / total
        half = (s.high - s.low) / 2  # type: ignore[operator]
        variance += (weight * half / _Z) ** 2
        variance += weight * s.accuracy * (1 - s.accuracy) / total  # type: ignore[operator]
    half = _Z * math.sqrt(variance)
    return AccuracyEstimate(
        estimate=estimate,
        low=max(0.0, estimate - half),
        high=min(1.0, estimate + half),
        records=total,
        strata=strata,
    )


def pooled(estimates: list[AccuracyEstimate]) -> AccuracyEstimate:
    """The estimate of the records of several estimates together (parts of one split): each
    stratum's records summed, its accuracy record-weighted, its evidence kept, then `combine`d
    as if estimated over all the records at once."""
    by_name: dict[str, list[Stratum]] = {}
    for estimate in estimates:
        for s in estimate.strata:
            by_name.setdefault(s.name, []).append(s)
    strata = []
    for name, parts in by_name.items():
        records = sum(s.records for s in parts)
        known = [s for s in parts if s.accuracy is not None and s.records]
        accuracy = None
        if records and len(known) == len([s for s in parts if s.records]):
            accuracy = sum(s.records * s.accuracy for s in known) / records  # type: ignore[operator]
        strata.append(stratum(name, records, accuracy, max(s.evidence for s in parts)))
    return combine(strata)
