"""How the library reaches the two outside systems: an OpenAI-compatible endpoint and ClickHouse.

Plain configs with literal defaults. `esk_pipeline.settings` builds them from the environment
(LLM_*, CLICKHOUSE_*); a notebook builds them by hand.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, SecretStr, field_validator

OutputMode = Literal["auto", "tool", "forced_tool", "json_schema", "json_object", "prompted"]
# Names that become SQL identifiers; always checked with re.fullmatch.
IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class LLMEndpoint(BaseModel):
    """One resolved OpenAI-compatible endpoint: what an agent needs to make requests."""

    model: str = "local"
    api_base: str | None = None
    api_key: SecretStr | None = None
    output_mode: OutputMode = "auto"
    fallback_model: str | None = None
    timeout_seconds: float = 60.0

    @property
    def is_local(self) -> bool:
        """True when no endpoint is configured and the offline model does the work."""
        return self.model == "local"


class ClickHouseConfig(BaseModel):
    """The log source. No host and no URL means the embedded engine under `embedded_path`."""

    url: SecretStr | None = None  # may carry a password, so it is a secret
    host: str | None = None
    port: int = 8123
    user: str = "default"
    password: SecretStr | None = None
    database: str = "default"
    secure: bool = False
    table: str = "esk_logs"
    embedded_path: Path = Path("data/clickhouse")

    @field_validator("table", "database")
    @classmethod
    def _plain_identifier(cls, value: str) -> str:
        if not IDENTIFIER.fullmatch(value):
            raise ValueError(f"{value!r} is not a plain name (letters, digits, _)")
        return value

    @property
    def is_embedded(self) -> bool:
        return self.url is None and self.host is None
