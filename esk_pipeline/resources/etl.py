"""The ETL's rules as a resource: how a day's raw logs become cleaned texts."""

from __future__ import annotations

from esk_pipeline import configs
from esk_pipeline.pipeline import ETLConfig, ETLProcessor
from esk_pipeline.resources._fields import config_of, fields_of, values_of
from esk_pipeline.settings import Settings


class ETLResource(fields_of(ETLConfig)):
    @classmethod
    def from_settings(cls, settings: Settings) -> ETLResource:
        return cls(**values_of(cls, configs.etl_config(settings)))

    def config(self) -> ETLConfig:
        return config_of(self, ETLConfig)

    def processor(self) -> ETLProcessor:
        return ETLProcessor(self.config())
