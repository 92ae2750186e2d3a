"""The ClickHouse log source as a Dagster resource."""

from __future__ import annotations

from esk_pipeline.pipeline.connections import ClickHouseConfig
from esk_pipeline.pipeline.log_source import LogSource
from esk_pipeline.resources._fields import config_of, fields_of, secret_env, values_of
from esk_pipeline.settings import Settings


class ClickHouseResource(fields_of(ClickHouseConfig)):
    """clickhouse-connect to a server, or the embedded engine when no host and no URL are set.

    The password and a URL (which may carry one) are `EnvVar`s: only their names are stored.
    """

    @classmethod
    def from_settings(cls, settings: Settings) -> ClickHouseResource:
        clickhouse = settings.clickhouse
        return cls(
            **values_of(cls, clickhouse),
            url=secret_env(clickhouse.url, "CLICKHOUSE_URL"),
            password=secret_env(clickhouse.password, "CLICKHOUSE_PASSWORD"),
        )

    def config(self) -> ClickHouseConfig:
        return config_of(self, ClickHouseConfig)

    def get_source(self) -> LogSource:
        return LogSource(self.config())
