"""The two agents as resources: labeler (local model + LLM cascade) and augmenter.

Each holds the values its runs use (the launchpad shows them), built from the settings in
`definitions.py`; the API key is an `EnvVar`, so only the variable's name is stored.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Literal
from urllib.parse import urlsplit

from dagster import ConfigurableResource, EnvVar
from pydantic import Field

from esk_pipeline import configs
from esk_pipeline.pipeline import AugmenterAgent, AugmenterConfig, LabelerAgent, LabelerConfig
from esk_pipeline.pipeline.llm.usage import UsageMeter
from esk_pipeline.pipeline.taxonomy import Taxonomy
from esk_pipeline.resources._fields import resource_values, to_config
from esk_pipeline.settings import Settings

Agent = Literal["labeler", "augmenter"]
# The run tag the deployment's run queue limits on (deploy/dagster.yaml): one run per endpoint.
LLM_ENDPOINT_TAG = "esk/llm_endpoint"


def llm_endpoint_tags(settings: Settings, agent: Agent) -> dict[str, str]:
    """Run tags naming the endpoint an agent's runs send requests to (host and port, never a
    key or password); none with the offline model, whose runs the queue need not limit."""
    endpoint = settings.llm.endpoint_for(agent)
    if endpoint.is_local:
        return {}
    parts = urlsplit(endpoint.api_base or "https://api.openai.com/v1")
    host = parts.hostname or "default"
    return {LLM_ENDPOINT_TAG: f"{host}-{parts.port}" if parts.port else host}


def _api_key_env(settings: Settings, agent: Agent) -> EnvVar | None:
    """The variable the agent's key comes from (`LLMSettings.endpoint_for` decides which)."""
    if settings.llm.endpoint_for(agent).api_key is None:
        return None
    own = getattr(settings.llm, f"{agent}_api_key")
    return EnvVar(f"LLM_{agent.upper()}_API_KEY" if own is not None else "LLM_API_KEY")


class _EndpointResource(ConfigurableResource):
    model: str = Field(description='"local": the offline model alone, no LLM calls')
    api_base: str | None = Field(description="OpenAI-compatible base URL; none: OpenAI's own")
    api_key: str | None = Field(default=None, description="an env var: LLM_API_KEY or the agent's")
    output_mode: str = Field(description="auto, tool, forced_tool, json_schema, json_object, ...")
    fallback_model: str | None
    timeout_seconds: float
    concurrency: int
    rate_limit: float = Field(description="requests per second")
    max_retries: int
    use_cache: bool
    cache_dir: str
    cache_ttl_hours: float


class LabelerResource(_EndpointResource):
    """The cascade: the local model first, the LLM for what it is unsure of."""

    batch_size: int
    low_conf_threshold: float
    use_dynamic_fewshot: bool
    local_accept_threshold: float = Field(description="local labels this sure need no LLM call")
    fewshot_token_budget: int
    input_price_per_1k: float
    output_price_per_1k: float
    max_tokens_per_run: int | None = Field(description="the run stops cleanly past this budget")
    max_requests_per_run: int | None

    @classmethod
    def from_settings(cls, settings: Settings) -> LabelerResource:
        return cls(
            **resource_values(
                cls,
                configs.labeler_config(settings),
                settings.llm,
                api_key=_api_key_env(settings, "labeler"),
            )
        )

    def config(self) -> LabelerConfig:
        return to_config(self, LabelerConfig)

    def usage_meter(self) -> UsageMeter:
        return UsageMeter(
            input_price_per_1k=self.input_price_per_1k,
            output_price_per_1k=self.output_price_per_1k,
            max_tokens=self.max_tokens_per_run,
            max_requests=self.max_requests_per_run,
        )

    def build(
        self,
        taxonomy: Taxonomy,
        verified: Iterable[tuple[str, str]] = (),
        progress_callback: Callable[[str], Any] | None = None,
    ) -> LabelerAgent:
        return LabelerAgent(
            self.config(),
            taxonomy,
            verified=verified,
            usage=self.usage_meter(),
            progress_callback=progress_callback,
        )


class AugmenterResource(_EndpointResource):
    """Paraphrases for rare domains, judged by the labeler."""

    variants_per_sample: int
    include_hard_negatives: bool
    max_samples_per_domain: int
    min_source_confidence: float
    target_per_domain: int | None = Field(description="none: the median domain count")
    max_total_samples: int | None
    seed: int
    near_duplicate_threshold: float
    min_text_length: int = Field(description="the ETL's bounds: no sample the ETL would drop")
    max_text_length: int

    @classmethod
    def from_settings(cls, settings: Settings) -> AugmenterResource:
        return cls(
            **resource_values(
                cls,
                configs.augmenter_config(settings),
                api_key=_api_key_env(settings, "augmenter"),
            )
        )

    def config(self) -> AugmenterConfig:
        return to_config(self, AugmenterConfig)

    def build(
        self,
        taxonomy: Taxonomy,
        labeler: LabelerAgent,
        progress_callback: Callable[[str], Any] | None = None,
    ) -> AugmenterAgent:
        """The augmenter, judged by `labeler` and sharing its usage meter (one cost figure)."""
        return AugmenterAgent(
            self.config(),
            taxonomy,
            labeler=labeler,
            usage=labeler.usage,
            progress_callback=progress_callback,
        )
