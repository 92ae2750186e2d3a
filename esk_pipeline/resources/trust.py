"""The trust policy as a resource: what a label must show before it enters a dataset."""

from __future__ import annotations

from esk_pipeline import configs
from esk_pipeline.pipeline.trust import TrustConfig
from esk_pipeline.resources._fields import config_of, fields_of, values_of
from esk_pipeline.settings import Settings


class TrustPolicyResource(fields_of(TrustConfig)):
    @classmethod
    def from_settings(cls, settings: Settings) -> TrustPolicyResource:
        return cls(**values_of(cls, configs.trust_config(settings)))

    def config(self) -> TrustConfig:
        return config_of(self, TrustConfig)
