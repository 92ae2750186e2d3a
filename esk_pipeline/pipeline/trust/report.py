"""The trust report: what one assessment measured, as a typed value the next stages read.

`label_trust` (the asset) is a `TrustReport`: each tier's calibration, each reviewer's
reliability, how far the audit has come (`AuditProgress`), the doubted decisions and how many
texts got each verdict. The review queue and the dataset writer take it as it is; nothing is
re-parsed from loose dicts.
"""

from __future__ import annotations

import pandas as pd
from pydantic import BaseModel

from esk_pipeline.pipeline.trust.assess import TrustAssessment, TrustConfig, estimate_accuracy
from esk_pipeline.pipeline.trust.calibration import Calibration
from esk_pipeline.pipeline.trust.estimate import AccuracyEstimate, AuditProgress
from esk_pipeline.pipeline.trust.reviewers import ReviewerReliability

__all__ = ["TierSummary", "TrustReport"]


class TierSummary(BaseModel):
    """One tier's calibration in a line of the UI."""

    audited: int
    accuracy: float | None
    threshold: float | None
    accepted_precision: float | None
    domain_thresholds: dict[str, float]


class TrustReport(BaseModel):
    precision_target: float
    calibration: Calibration
    reliability: ReviewerReliability
    audit: AuditProgress
    audit_pending: int  # audit texts waiting for a decision
    suspected_errors: list[str]  # decisions confident learning doubts in this assessment
    doubted: list[str]  # decisions treated as doubted (kept out of eval)
    verdicts: dict[str, dict[str, int]]  # verdict -> reason -> texts

    @classmethod
    def of(cls, assessment: TrustAssessment, config: TrustConfig) -> TrustReport:
        return cls(
            precision_target=assessment.calibration.precision_target,
            calibration=assessment.calibration,
            reliability=assessment.reliability,
            audit=AuditProgress(audited=assessment.audited, needed=config.min_audit_for_estimate),
            audit_pending=assessment.audit_pending,
            suspected_errors=assessment.suspected_errors,
            doubted=assessment.doubted,
            verdicts=assessment.verdict_counts(),
        )

    def estimate_accuracy(self, records: pd.DataFrame) -> AccuracyEstimate:
        """The label accuracy of dataset records (`assess.estimate_accuracy`)."""
        return estimate_accuracy(records, self.calibration, self.reliability)

    def tiers(self) -> dict[str, TierSummary]:
        return {
            name: TierSummary(
                audited=t.audited,
                accuracy=_rounded(t.accuracy),
                threshold=t.threshold,
                accepted_precision=_rounded(t.accepted_precision),
                domain_thresholds=t.domain_thresholds,
            )
            for name, t in self.calibration.tiers.items()
        }


def _rounded(value: float | None) -> float | None:
    return round(value, 4) if value is not None else None
