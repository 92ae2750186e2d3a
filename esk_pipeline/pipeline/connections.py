"""How the library reaches the two outside systems: an OpenAI-compatible endpoint and ClickHouse.

Plain configs with literal defaults. `esk_pipeline.settings` builds them from the environment
(LLM_*, CLICKHOUSE_*); a notebook builds them by hand.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr, field_validator

__all__ = ["IDENTIFIER", "ClickHouseConfig", "LLMEndpoint", "OutputMode"]

OutputMode = Literal["auto", "tool", "forced_tool", "json_schema", "json_object", "prompted"]
# Names that become SQL identifiers; always checked with re.fullmatch.
IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class LLMEndpoint(BaseModel):
    """One resolved OpenAI-compatible endpoint: what an agent needs to make requests."""

    model: str = Field(default="local", description='"local": the offline model, no LLM calls')
    api_base: str | None = Field(
        default=None, description="OpenAI-compatible base URL; none: OpenAI's own"
    )
    api_key: SecretStr | None = Field(default=None, description="the server's API key (a secret)")
    output_mode: OutputMode = Field(
        default="auto",
        description="tool, forced_tool, json_schema, json_object or prompted; auto: by endpoint",
    )
    fallback_model: str | None = Field(
        default=None, description="asked once the model has failed for good"
    )
    timeout_seconds: float = Field(default=60.0, gt=0, description="per LLM request")

    @property
    def is_local(self) -> bool:
        """True when no endpoint is configured and the offline model does the work."""
        return self.model == "local"


class ClickHouseConfig(BaseModel):
    """The log source. No host and no URL means the embedded engine under `embedded_path`."""

    url: SecretStr | None = Field(
        default=None, description="a server URL; it may carry a password, so it is a secret"
    )
    host: str | None = Field(default=None, description="no host and no URL: the embedded engine")
    port: int = Field(default=8123, ge=1, le=65535, description="the server's HTTP port")
    user: str = Field(default="default", description="the server's user")
    password: SecretStr | None = Field(default=None, description="the user's password")
    database: str = Field(default="default", description="the database holding the table")
    secure: bool = Field(default=False, description="HTTPS to the server")
    table: str = Field(default="esk_logs", description="the log table other systems write")
    embedded_path: Path = Field(
        default=Path("data/clickhouse"), description="the embedded engine's folder"
    )

    @field_validator("table", "database")
    @classmethod
    def _plain_identifier(cls, value: str) -> str:
        if not IDENTIFIER.fullmatch(value):
            raise ValueError(f"{value!r} is not a plain name (letters, digits, _)")
        return value

    @property
    def is_embedded(self) -> bool:
        return self.url is None and self.host is None
