"""Trust: how likely each label is to be right, measured on the logs, and what to review next.

`assess.assess_label_days` is the entry point the labels pipeline calls once per run; the other
modules are its parts (audit sampling, out-of-fold scores, calibration, reviewer reliability,
label-error detection, accuracy estimates), the one trust verdict (`verdict`), the report the
next stages read (`report.TrustReport`) and the review queue's planner (`queue`).
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
