"""Trust: how likely each label is to be right, measured on the logs.

`assess.assess_label_days` (`assess_labels` for labels in one frame) is the entry point the
labels pipeline calls once per run. Its public parts are the calibration of each tier
(`calibration`), reviewer reliability (`reviewers`), accuracy estimates (`estimate`), the one
trust verdict (`verdict`) and the report the next stages read (`report.TrustReport`); the
private ones are audit sampling (`_audit`), out-of-fold scores (`_out_of_fold`) and label-error
detection (`_label_errors`). What people review next is planned from the verdicts by
`pipeline.review.planning`.
"""

from esk_pipeline.pipeline.trust.assess import (
    TrustAssessment,
    TrustConfig,
    assess_label_days,
    assess_labels,
)
from esk_pipeline.pipeline.trust.calibration import Calibration, TierCalibration
from esk_pipeline.pipeline.trust.estimate import AccuracyEstimate, AuditProgress
from esk_pipeline.pipeline.trust.report import TrustReport
from esk_pipeline.pipeline.trust.verdict import assign_verdicts

__all__ = [
    "AccuracyEstimate",
    "AuditProgress",
    "Calibration",
    "TierCalibration",
    "TrustAssessment",
    "TrustConfig",
    "TrustReport",
    "assess_label_days",
    "assess_labels",
    "assign_verdicts",
]
