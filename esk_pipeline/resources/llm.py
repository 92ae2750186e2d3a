"""The two agents as resources: labeler (local model + LLM cascade) and augmenter.

Each holds the values its runs use (the launchpad shows them), built from the settings in
`definitions.py`; the API key is an `EnvVar`, so only the variable's name is stored.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Literal
from urllib.parse import urlsplit

from dagster import EnvVar

from esk_pipeline import configs
from esk_pipeline.pipeline import AugmenterAgent, AugmenterConfig, LabelerAgent, LabelerConfig
from esk_pipeline.pipeline.labeler.snapshot import RefitRule
from esk_pipeline.pipeline.llm.usage import UsageMeter
from esk_pipeline.pipeline.options import LLMBudget
from esk_pipeline.pipeline.taxonomy import Taxonomy
from esk_pipeline.resources._fields import config_of, fields_of, values_of
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


class LabelerResource(fields_of(LabelerConfig, LLMBudget)):
    """The cascade: the local model first, the LLM for what it is unsure of."""

    @classmethod
    def from_settings(cls, settings: Settings) -> LabelerResource:
        return cls(
            **values_of(cls, configs.labeler_config(settings), settings.llm),
            api_key=_api_key_env(settings, "labeler"),
        )

    def config(self) -> LabelerConfig:
        return config_of(self, LabelerConfig)

    def refit_rule(self) -> RefitRule:
        """When the labelling model is fitted anew (`pipeline.labeler.snapshot`)."""
        return RefitRule(min_new=self.refit_min_new, growth=self.refit_growth)

    def usage_meter(self) -> UsageMeter:
        return UsageMeter.for_budget(config_of(self, LLMBudget))

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


class AugmenterResource(fields_of(AugmenterConfig)):
    """Paraphrases for rare domains, judged by the labeler."""

    @classmethod
    def from_settings(cls, settings: Settings) -> AugmenterResource:
        return cls(
            **values_of(cls, configs.augmenter_config(settings)),
            api_key=_api_key_env(settings, "augmenter"),
        )

    def config(self) -> AugmenterConfig:
        return config_of(self, AugmenterConfig)

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
