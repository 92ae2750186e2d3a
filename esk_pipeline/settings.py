"""Typed settings for every component, read from the environment and a `.env` file.

Each group reads its own prefix (LLM_*, LABELER_*, ETL_*, ...); `Settings.load()` builds them
all at once. A group inherits the library's options class for its component
(`esk_pipeline.pipeline.options`), where each of those settings is declared once with its
default, bounds and meaning, and declares here only what the project itself wires (the
application's own settings, per-agent endpoint overrides, bounds in megabytes). Secrets are
`SecretStr`, so they print as '**********' in logs, reprs and asset metadata.
"""

from __future__ import annotations

import difflib
import functools
import logging
import os
import re
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from dotenv import dotenv_values
from pydantic import BaseModel, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from esk_pipeline.pipeline.connections import ClickHouseConfig, LLMEndpoint
from esk_pipeline.pipeline.options import (
    AugmenterOptions,
    DataStorageOptions,
    DataWriterOptions,
    ETLOptions,
    LabelerOptions,
    LLMBudget,
    ReviewOptions,
    TrustOptions,
)

logger = logging.getLogger(__name__)

# API roles, each allowed everything the ones before it are: review routes; + ingest, runs,
# classification and versions; + everything.
Role = Literal["reviewer", "maintainer", "admin"]
ROLES: tuple[Role, ...] = ("reviewer", "maintainer", "admin")
TOKEN_OWNER = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}")
# A token shorter than this is guessable; `secrets.token_urlsafe()` gives 43 characters.
MIN_TOKEN_LENGTH = 24
# What a copied example looks like rather than a secret: <token>, {token}, ${TOKEN}, %TOKEN%,
# "changeme", "your-token-here", a run of one character.
PLACEHOLDER_TOKEN = re.compile(
    r".*([<>{}]|\$\{|%\w+%|change[-_ ]?me|placeholder|your[-_ ]?token|(.)\2{7}).*",
    re.IGNORECASE | re.DOTALL,
)
NEW_TOKEN_HINT = "python3 -c 'import secrets; print(secrets.token_urlsafe())'"
# Names of the seed design's configuration this project does not read, and what to set instead.
SEED_NAMES_REPLACED = {
    "REVIEW_LOW_CONFIDENCE_THRESHOLD": "the queue takes what trusted_labels does not accept "
    "(TRUST_*); LABELER_LOW_CONF_THRESHOLD sets which labels count as unsure",
    "APP_MODE": "the project has no modes: development and production differ only in settings",
}


def _group(prefix: str) -> SettingsConfigDict:
    return SettingsConfigDict(
        env_prefix=prefix, env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )


class ApiToken(BaseModel):
    """One API token and the role it acts with."""

    token: SecretStr
    role: Role = "reviewer"


class AppSettings(BaseSettings):
    # An error must not echo APP_API_TOKENS' values (pydantic prints the input by default).
    model_config = SettingsConfigDict(**_group("APP_"), hide_input_in_errors=True)

    data_dir: Path = Field(default=Path("data"), description="the project's data folder")
    # A deployment with several machines points it at object storage.
    assets_url: str | None = Field(
        default=None,
        description="where asset values live: a folder or an fsspec URL (s3://bucket/prefix); "
        "none: data_dir/assets",
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = Field(
        default="INFO", description="the project's loggers (esk_pipeline.*) in runs, API, CLI"
    )
    taxonomy_path: Path = Field(default=Path("data/taxonomy.yaml"), description="the domains")
    # The default is the first day of the sample week `esk-data seed` and the demo insert.
    partitions_start_date: str = Field(
        default="2026-11-01",
        description="first day of the daily partitions; older logs are outside the graph",
    )
    automation: bool = Field(
        default=False,
        description="declarative automation (assets/automation.py); off, so nothing spends "
        "LLM calls unasked",
    )
    # APP_API_TOKENS='{"alice": {"token": "...", "role": "maintainer"}, "bob": "..."}'
    # (a plain token string is a reviewer's).
    api_tokens: dict[str, ApiToken] = Field(
        default_factory=dict, description="token owner (the reviewer id) -> token and role"
    )
    max_upload_mb: int = Field(default=50, ge=1, description="larger uploads are refused")
    # An upload's ETL runs in a child process with these limits (413 past them).
    upload_cpu_seconds: int = Field(default=60, ge=1, description="CPU an upload's parse may use")
    upload_memory_mb: int = Field(
        default=4096, ge=256, description="memory an upload's parse may use"
    )
    upload_wall_seconds: float = Field(
        default=120.0, gt=0, description="time an upload's parse may take"
    )

    @field_validator("api_tokens", mode="before")
    @classmethod
    def _plain_tokens_are_reviewers(cls, value: Any) -> Any:
        if not isinstance(value, dict):
            return value
        tokens = {}
        for owner, token in value.items():
            if not isinstance(owner, str) or not TOKEN_OWNER.fullmatch(owner):
                raise ValueError(
                    f"APP_API_TOKENS: owner {owner!r} must be 1-64 letters, digits or _.@- "
                    "(it becomes the reviewer id)"
                )
            tokens[owner] = {"token": token} if isinstance(token, str | SecretStr) else token
        return tokens

    @field_validator("api_tokens")
    @classmethod
    def _tokens_are_secrets(cls, tokens: dict[str, ApiToken]) -> dict[str, ApiToken]:
        """Refuse, at start-up, a token anyone could guess (short or a pasted placeholder) and
        one token given to two owners (a request would act as either). The message names the
        owners, never the token."""
        owner_of: dict[str, str] = {}
        for owner, entry in tokens.items():
            token = entry.token.get_secret_value()
            if token in owner_of:
                raise ValueError(
                    f"APP_API_TOKENS: {owner_of[token]} and {owner} share one token; give each "
                    f"owner their own, made with {NEW_TOKEN_HINT}"
                )
            owner_of[token] = owner
            if len(token) < MIN_TOKEN_LENGTH:
                problem = f"is {len(token)} characters long (at least {MIN_TOKEN_LENGTH} needed)"
            elif PLACEHOLDER_TOKEN.fullmatch(token):
                problem = "looks like a placeholder, not a secret"
            else:
                continue
            raise ValueError(
                f"APP_API_TOKENS: {owner}'s token {problem}; make one with {NEW_TOKEN_HINT}"
            )
        return tokens


class LLMSettings(BaseSettings, LLMEndpoint, LLMBudget):
    """The main LLM (the fields of `LLMEndpoint`), prices and budget (`LLMBudget`), and the
    optional per-agent overrides (LLM_LABELER_*, LLM_AUGMENTER_*)."""

    model_config = _group("LLM_")

    model: str | None = Field(
        default=None, description='none: "gpt-4o-mini" when a key or base URL is set, else "local"'
    )
    labeler_api_key: SecretStr | None = Field(
        default=None, description="the labeler's own key; LLM_API_KEY only for the main server"
    )
    labeler_api_base: str | None = Field(default=None, description="the labeler's own server")
    labeler_model: str | None = Field(default=None, description="the labeler's own model")
    augmenter_api_key: SecretStr | None = Field(
        default=None, description="the augmenter's own key; LLM_API_KEY only for the main server"
    )
    augmenter_api_base: str | None = Field(default=None, description="the augmenter's own server")
    augmenter_model: str | None = Field(default=None, description="the augmenter's own model")

    def endpoint_for(self, agent: Literal["labeler", "augmenter"]) -> LLMEndpoint:
        """Resolve an agent's endpoint: its own LLM_<AGENT>_* settings, else the main LLM_*.

        The main key goes only to the main server: an agent with a base URL of its own uses
        its own key (or none), so a cloud key never reaches a different, local server.
        With no endpoint configured at all the model is "local": the offline path.
        """
        own_base = getattr(self, f"{agent}_api_base")
        api_base = own_base or self.api_base
        api_key = getattr(self, f"{agent}_api_key")
        if api_key is None and (own_base is None or own_base == self.api_base):
            api_key = self.api_key
        model = getattr(self, f"{agent}_model") or self.model
        if model is None:
            model = "gpt-4o-mini" if (api_key or api_base) else "local"
        return LLMEndpoint(
            model=model,
            api_base=api_base,
            api_key=api_key,
            output_mode=self.output_mode,
            fallback_model=self.fallback_model,
            timeout_seconds=self.timeout_seconds,
        )


class LabelerSettings(BaseSettings, LabelerOptions):
    """LABELER_*: the fields of `LabelerOptions`."""

    model_config = _group("LABELER_")


class AugmenterSettings(BaseSettings, AugmenterOptions):
    """AUGMENTER_*: the fields of `AugmenterOptions`."""

    model_config = _group("AUGMENTER_")


class ETLSettings(BaseSettings, ETLOptions):
    """ETL_*: the fields of `ETLOptions`, and the bound on what a packed upload may unpack to."""

    model_config = _group("ETL_")

    max_unpacked_ratio: int = Field(
        default=10,
        ge=1,
        description="an XLSX or Parquet file may unpack to this x the upload limit",
    )


class ReviewSettings(BaseSettings, ReviewOptions):
    """REVIEW_*: the fields of `ReviewOptions`, and when the review sensor refreshes."""

    model_config = _group("REVIEW_")

    sensor_min_new_reviews: int = Field(
        default=20, ge=1, description="new decisions the review sensor waits for"
    )


class DataWriterSettings(BaseSettings, DataWriterOptions):
    """DATA_WRITER_*: the fields of `DataWriterOptions`."""

    model_config = _group("DATA_WRITER_")


class DataStorageSettings(BaseSettings, DataStorageOptions):
    """DATA_STORAGE_*: the fields of `DataStorageOptions`, and the bound on imports."""

    model_config = _group("DATA_STORAGE_")

    max_import_mb: int = Field(
        default=4096, ge=1, description="`versions import` refuses archives that unpack to more"
    )


class TrustSettings(BaseSettings, TrustOptions):
    """TRUST_*: the fields of `TrustOptions`."""

    model_config = _group("TRUST_")


class CacheSettings(BaseSettings):
    """CACHE_*: the LLM answer cache both agents share."""

    model_config = _group("CACHE_")

    enabled: bool = Field(default=True, description="reuse LLM answers across runs")
    ttl_hours: float = Field(
        default=24,
        gt=0,
        description="how long a prompt's answer is reused (the labeler's per-text answers last)",
    )
    unread_days: float = Field(
        default=90,
        gt=0,
        description="a labeler's per-text answer neither written nor read for this long is pruned",
    )
    dir: Path = Field(default=Path("data/cache"), description="where the cache lives")


class ClickHouseSettings(BaseSettings, ClickHouseConfig):
    """CLICKHOUSE_*: the fields of `ClickHouseConfig`."""

    model_config = _group("CLICKHOUSE_")


class Settings(BaseModel):
    app: AppSettings = Field(default_factory=AppSettings)
    llm: LLMSettings = Field(default_factory=LLMSettings)
    labeler: LabelerSettings = Field(default_factory=LabelerSettings)
    augmenter: AugmenterSettings = Field(default_factory=AugmenterSettings)
    etl: ETLSettings = Field(default_factory=ETLSettings)
    review: ReviewSettings = Field(default_factory=ReviewSettings)
    trust: TrustSettings = Field(default_factory=TrustSettings)
    data_writer: DataWriterSettings = Field(default_factory=DataWriterSettings)
    data_storage: DataStorageSettings = Field(default_factory=DataStorageSettings)
    cache: CacheSettings = Field(default_factory=CacheSettings)
    clickhouse: ClickHouseSettings = Field(default_factory=ClickHouseSettings)

    @classmethod
    def load(cls) -> Settings:
        """Read every group afresh from the environment and `.env`."""
        return cls()

    def apply_log_level(self) -> None:
        """Set APP_LOG_LEVEL on the project's loggers (`esk_pipeline` and below)."""
        logging.getLogger("esk_pipeline").setLevel(self.app.log_level)


class SettingDoc(BaseModel):
    """One environment variable the project reads, as its single declaration describes it."""

    variable: str
    type: str
    default: str
    description: str


def documentation() -> list[SettingDoc]:
    """Every variable, group by group: its type, default and meaning (`esk-data settings`)."""
    docs = []
    for group in Settings.model_fields.values():
        group_cls = group.annotation
        for name, field in group_cls.model_fields.items():
            default = field.get_default(call_default_factory=True)
            docs.append(
                SettingDoc(
                    variable=f"{group_cls.model_config['env_prefix']}{name}".upper(),
                    type=_type_name(field.annotation),
                    default="" if default is None or default == {} else str(default),
                    description=field.description or "",
                )
            )
    return docs


def _type_name(annotation: Any) -> str:
    name = str(annotation) if typing.get_args(annotation) else annotation.__name__
    return name.replace("typing.", "").replace("pathlib.", "").replace("pydantic.types.", "")


def unread_variables(
    environ: Mapping[str, str] | None = None, env_file: Path | None = Path(".env")
) -> list[str]:
    """One line per variable in the environment or `env_file` that carries a group's prefix but
    names no setting (a typo, or a name of the seed design), with what was probably meant.

    The groups ignore such variables (other software shares prefixes like APP_), so without
    this a misspelt setting would silently change nothing.
    """
    environ = os.environ if environ is None else environ
    from_file = dotenv_values(env_file) if env_file is not None and env_file.is_file() else {}
    known = [doc.variable for doc in documentation()]
    prefixes = tuple(
        group.annotation.model_config["env_prefix"].upper()
        for group in Settings.model_fields.values()
    )
    lines = []
    for name in sorted({name.upper() for name in [*environ, *from_file]}):
        if not name.startswith(prefixes) or name in known:
            continue
        if name in SEED_NAMES_REPLACED:
            lines.append(f"{name} is not read: {SEED_NAMES_REPLACED[name]}")
            continue
        close = difflib.get_close_matches(name, known, n=1, cutoff=0.8)
        lines.append(f"{name} is not a setting" + (f"; did you mean {close[0]}?" if close else ""))
    return lines


@functools.cache
def get_settings() -> Settings:
    """The process-wide settings, read once, for the wiring (definitions, API, CLI).

    Variables that look like settings but are not read are logged as warnings.
    Library configs never read it: `esk_pipeline.configs` builds them from a `Settings`.
    """
    for line in unread_variables():
        logger.warning("%s (esk-data settings lists every setting)", line)
    return Settings.load()
