"""The ETL's rules as a resource: how a day's raw logs become cleaned texts."""

from __future__ import annotations

from dagster import ConfigurableResource
from pydantic import Field

from esk_pipeline import configs
from esk_pipeline.pipeline import ETLConfig, ETLProcessor
from esk_pipeline.resources._fields import resource_values, to_config
from esk_pipeline.settings import Settings


class ETLResource(ConfigurableResource):
    max_rows: int | None = Field(description="rows read per run at most; none: all")
    deduplicate: bool
    near_duplicates: bool = Field(description="also drop texts that differ only in case, ё/е, ...")
    min_text_length: int
    max_text_length: int
    remove_empty: bool
    normalize_whitespace: bool
    lowercase: bool
    text_column: str | None

    @classmethod
    def from_settings(cls, settings: Settings) -> ETLResource:
        return cls(**resource_values(cls, configs.etl_config(settings)))

    def processor(self) -> ETLProcessor:
        return ETLProcessor(to_config(self, ETLConfig))
