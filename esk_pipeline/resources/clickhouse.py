"""The ClickHouse log source as a Dagster resource."""

from __future__ import annotations

from dagster import ConfigurableResource
from pydantic import Field

from esk_pipeline.pipeline.log_source import LogSource
from esk_pipeline.settings import get_settings


class ClickHouseResource(ConfigurableResource):
    """clickhouse-connect to a server, or the embedded engine when none is configured.

    Connection details and secrets come from the CLICKHOUSE_* settings at run time, so no
    password ever lands in run config or the UI; the fields here only override where to look.
    """

    table: str | None = Field(default=None, description="Overrides CLICKHOUSE_TABLE.")
    embedded_path: str | None = Field(
        default=None, description="Overrides CLICKHOUSE_EMBEDDED_PATH (embedded mode only)."
    )

    def get_source(self) -> LogSource:
        settings = get_settings().clickhouse.model_copy()
        if self.table:
            settings.table = self.table
        if self.embedded_path:
            settings.embedded_path = settings.embedded_path.__class__(self.embedded_path)
        return LogSource(settings)
