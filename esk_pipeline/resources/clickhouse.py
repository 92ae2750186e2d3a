"""The ClickHouse log source as a Dagster resource."""

from __future__ import annotations

from dagster import ConfigurableResource
from pydantic import Field

from esk_pipeline.pipeline.connections import ClickHouseConfig
from esk_pipeline.pipeline.log_source import LogSource
from esk_pipeline.resources._fields import resource_values, secret_env, to_config
from esk_pipeline.settings import Settings


class ClickHouseResource(ConfigurableResource):
    """clickhouse-connect to a server, or the embedded engine when no host and no URL are set.

    The password and a URL (which may carry one) are `EnvVar`s: only their names are stored.
    """

    url: str | None = Field(default=None, description="CLICKHOUSE_URL (an env var: a secret)")
    host: str | None = Field(default=None, description="No host and no URL: embedded engine")
    port: int = 8123
    user: str = "default"
    password: str | None = Field(default=None, description="CLICKHOUSE_PASSWORD (an env var)")
    database: str = "default"
    secure: bool = False
    table: str = "esk_logs"
    embedded_path: str = Field(
        default="data/clickhouse", description="The embedded engine's folder"
    )

    @classmethod
    def from_settings(cls, settings: Settings) -> ClickHouseResource:
        clickhouse = settings.clickhouse
        return cls(
            **resource_values(
                cls,
                clickhouse,
                url=secret_env(clickhouse.url, "CLICKHOUSE_URL"),
                password=secret_env(clickhouse.password, "CLICKHOUSE_PASSWORD"),
            )
        )

    def config(self) -> ClickHouseConfig:
        return to_config(self, ClickHouseConfig)

    def get_source(self) -> LogSource:
        return LogSource(self.config())
