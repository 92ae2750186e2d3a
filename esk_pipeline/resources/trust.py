"""The trust policy as a resource: what a label must show before it enters a dataset."""

from __future__ import annotations

from dagster import ConfigurableResource
from pydantic import Field

from esk_pipeline import configs
from esk_pipeline.pipeline.trust import TrustConfig
from esk_pipeline.resources._fields import resource_values, to_config
from esk_pipeline.settings import Settings


class TrustPolicyResource(ConfigurableResource):
    precision_target: float = Field(description="machine labels enter train at this precision")
    audit_share: float = Field(description="share of labelled texts in the random audit")
    audit_review_share: float = Field(
        description="share of hand-outs given to audit items while the calibration needs them"
    )
    min_audit_for_estimate: int = Field(description="audited items a reliable estimate needs")
    detect_label_errors: bool = Field(description="re-ask doubted human labels (cleanlab)")

    @classmethod
    def from_settings(cls, settings: Settings) -> TrustPolicyResource:
        return cls(**resource_values(cls, configs.trust_config(settings)))

    def config(self) -> TrustConfig:
        return to_config(self, TrustConfig)
