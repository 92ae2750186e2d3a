"""Typed settings for every component, read from the environment and a `.env` file.

Each group reads its own prefix with the variable names of the original design
(LLM_*, LABELER_*, ETL_*, ...); `Settings.load()` builds them all at once. Secrets are
`SecretStr`, so they print as '**********' in logs, reprs and asset metadata.
"""

from __future__ import annotations

import functools
import logging
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from esk_pipeline.pipeline.connections import ClickHouseConfig, LLMEndpoint, OutputMode

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

    data_dir: Path = Path("data")
    # Where asset values live: a folder or an fsspec URL (s3://bucket/prefix); default
    # data_dir/assets. A deployment with several machines points it at object storage.
    assets_url: str | None = None
    # Level of the project's own loggers (`esk_pipeline.*`) in runs, the API and the CLI.
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    taxonomy_path: Path = Path("data/taxonomy.yaml")
    # First day the daily partitions cover; logs older than this are outside the asset graph.
    # The default is the first day of the sample week `esk-data seed` and the demo insert.
    partitions_start_date: str = "2026-11-01"
    # Declarative automation (assets/automation.py): off, so nothing spends LLM calls unasked.
    automation: bool = False
    # Token owner (the reviewer id) -> bearer token for the API, with its role:
    # APP_API_TOKENS='{"alice": {"token": "...", "role": "maintainer"}, "bob": "..."}'
    # (a plain token string is a reviewer's).
    api_tokens: dict[str, ApiToken] = Field(default_factory=dict)
    max_upload_mb: int = 50
    # An upload's ETL runs in a child process with these limits (413 past them).
    upload_cpu_seconds: int = Field(default=60, ge=1)
    upload_memory_mb: int = Field(default=4096, ge=256)
    upload_wall_seconds: float = Field(default=120.0, gt=0)

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
        """Refuse, at start-up, a token anyone could guess: short or a pasted placeholder.
        The message names the owner, never the token."""
        for owner, entry in tokens.items():
            token = entry.token.get_secret_value()
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


class LLMSettings(BaseSettings):
    """The main LLM and the optional per-agent overrides (LLM_LABELER_*, LLM_AUGMENTER_*)."""

    model_config = _group("LLM_")

    api_key: SecretStr | None = None
    api_base: str | None = None
    model: str | None = None
    labeler_api_key: SecretStr | None = None
    labeler_api_base: str | None = None
    labeler_model: str | None = None
    augmenter_api_key: SecretStr | None = None
    augmenter_api_base: str | None = None
    augmenter_model: str | None = None
    output_mode: OutputMode = "auto"
    fallback_model: str | None = None
    timeout_seconds: float = 60.0
    # Prices per 1,000 tokens, for cost accounting; zero for local servers.
    input_price_per_1k: float = 0.0
    output_price_per_1k: float = 0.0
    # Optional per-run budget: the run stops cleanly and leaves the rest for the next run.
    max_tokens_per_run: int | None = None
    max_requests_per_run: int | None = None

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


class LabelerSettings(BaseSettings):
    model_config = _group("LABELER_")

    batch_size: int = 20
    rate_limit: float = 0.4  # requests per second
    max_retries: int = 3
    low_conf_threshold: float = 0.5
    use_cache: bool = True
    use_dynamic_fewshot: bool = True
    concurrency: int = 4
    # Cascade: the local model's labels at or above this confidence need no LLM call.
    local_accept_threshold: float = 0.9
    fewshot_token_budget: int = 600


class AugmenterSettings(BaseSettings):
    model_config = _group("AUGMENTER_")

    variants_per_sample: int = 3
    include_hard_negatives: bool = False
    concurrency: int = 8
    rate_limit: float = 0.1
    max_samples_per_domain: int = 30
    min_source_confidence: float = 0.7
    # Balancing: samples wanted per domain (None = the median domain count) and the run's
    # total sample budget (None = unlimited), spent on the rarest domains first.
    target_per_domain: int | None = None
    max_total_samples: int | None = None
    max_retries: int = 3
    seed: int = 42
    # Character 3-gram Jaccard at or above which a sample is a near duplicate.
    near_duplicate_threshold: float = 0.9


class ETLSettings(BaseSettings):
    model_config = _group("ETL_")

    max_rows: int | None = None
    deduplicate: bool = True
    near_duplicates: bool = True
    min_text_length: int = 3
    max_text_length: int = 1000
    remove_empty: bool = True
    normalize_whitespace: bool = True
    lowercase: bool = False
    text_column: str | None = None
    # Files with more columns are refused (a header of a million columns is an attack).
    max_columns: int = Field(default=2000, ge=1)
    # An XLSX or Parquet file may unpack to at most this many times the upload limit.
    max_unpacked_ratio: int = Field(default=10, ge=1)


class ReviewSettings(BaseSettings):
    model_config = _group("REVIEW_")

    max_queue_size: int = 10000
    # SQLAlchemy URL; default is SQLite (WAL) under APP_DATA_DIR.
    database_url: SecretStr | None = None
    lease_seconds: int = 900
    reviews_per_item: int = 1
    # A lone decision against a model at least this confident waits for a second reviewer
    # before it becomes training data (0: every correction of the model gets one; empty: never).
    second_opinion_confidence: float | None = 0.0
    # ...unless the reviewer's measured agreement with final labels reaches this (empty:
    # every such decision waits); a model at least sure_model_confidence sure always waits.
    reliable_reviewer_agreement: float | None = 0.92
    sure_model_confidence: float = 0.99
    # The review sensor requests downstream runs after this many new decisions.
    sensor_min_new_reviews: int = 20


class DataWriterSettings(BaseSettings):
    model_config = _group("DATA_WRITER_")

    output_dir: Path = Path("data/artifacts")
    eval_fraction: float = 0.1
    min_eval_samples: int = 50
    min_samples_per_domain: int = 5
    balance_domains: bool = True
    max_samples_per_domain: int | None = None
    shard_size: int | None = None
    include_metadata: bool = True
    validate_quality: bool = True
    seed: int = 42
    group_by_user: bool = False
    # Domains with fewer real samples than min_samples_per_domain: dropped, or kept in train only.
    small_domain_policy: Literal["drop", "train_only"] = "train_only"
    # balance_domains caps each domain's train count at this multiple of the median domain.
    balance_ratio: float = 3.0


class DataStorageSettings(BaseSettings):
    model_config = _group("DATA_STORAGE_")

    # A folder, or an fsspec URL such as s3://bucket/prefix (the version store on object storage).
    storage_dir: Path | str = Path("data/storage")
    max_versions: int = 100
    auto_archive_old: bool = True
    # `versions import` refuses archives that unpack to more than this.
    max_import_mb: int = Field(default=4096, ge=1)

    @field_validator("storage_dir", mode="before")
    @classmethod
    def _folder_unless_url(cls, value: object) -> object:
        return value if "://" in str(value) else Path(str(value))


class TrustSettings(BaseSettings):
    """TRUST_*: the trust policy (`pipeline.trust.TrustConfig` says what each field decides)."""

    model_config = _group("TRUST_")

    precision_target: float = Field(default=0.95, gt=0, le=1)
    audit_share: float = Field(default=0.15, ge=0, le=1)
    audit_review_share: float = Field(default=0.7, ge=0, le=1)
    min_audit_for_estimate: int = Field(default=200, ge=0)
    detect_label_errors: bool = True


class CacheSettings(BaseSettings):
    model_config = _group("CACHE_")

    enabled: bool = True
    ttl_hours: float = 24
    dir: Path = Path("data/cache")


class ClickHouseSettings(BaseSettings, ClickHouseConfig):
    """CLICKHOUSE_*: the fields of `ClickHouseConfig`, read from the environment."""

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


@functools.cache
def get_settings() -> Settings:
    """The process-wide settings, read once, for the wiring (definitions, API, CLI).

    Library configs never read it: `esk_pipeline.configs` builds them from a `Settings`.
    """
    return Settings.load()
