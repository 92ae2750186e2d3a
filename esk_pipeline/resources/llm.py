"""The two agents as resources: labeler (local model + LLM cascade) and augmenter.

Endpoints and keys come from the LLM_* settings at run time, so no secret reaches run config;
the fields here are the knobs a person tunes per run from the launchpad.
"""

from collections.abc import Callable, Iterable
from typing import Any, Literal
from urllib.parse import urlsplit

from dagster import ConfigurableResource
from pydantic import Field

from esk_pipeline.pipeline.augmenter_agent import AugmenterAgent, AugmenterConfig
from esk_pipeline.pipeline.labeler import LabelerAgent, LabelerConfig
from esk_pipeline.pipeline.taxonomy import Taxonomy
from esk_pipeline.settings import get_settings

# The run tag the deployment's run queue limits on (deploy/dagster.yaml): one run per endpoint.
LLM_ENDPOINT_TAG = "esk/llm_endpoint"


def llm_endpoint_tags(agent: Literal["labeler", "augmenter"]) -> dict[str, str]:
    """Run tags naming the endpoint an agent's runs send requests to (host and port, never a
    key or password); none with the offline model, whose runs the queue need not limit."""
    endpoint = get_settings().llm.endpoint_for(agent)
    if endpoint.is_local:
        return {}
    parts = urlsplit(endpoint.api_base or "https://api.openai.com/v1")
    host = parts.hostname or "default"
    return {LLM_ENDPOINT_TAG: f"{host}-{parts.port}" if parts.port else host}


def _set_fields(resource: ConfigurableResource) -> dict[str, Any]:
    return {name: value for name, value in resource.model_dump().items() if value is not None}


class LabelerResource(ConfigurableResource):
    """Overrides of LABELER_* / LLM_LABELER_MODEL; unset fields keep the settings' values."""

    model: str | None = Field(default=None, description='"local" forces the offline model.')
    batch_size: int | None = None
    concurrency: int | None = None
    local_accept_threshold: float | None = None
    low_conf_threshold: float | None = None
    use_dynamic_fewshot: bool | None = None

    def build(
        self,
        taxonomy: Taxonomy,
        verified: Iterable[tuple[str, str]] = (),
        progress_callback: Callable[[str], Any] | None = None,
    ) -> LabelerAgent:
        return LabelerAgent(
            LabelerConfig(**_set_fields(self)),
            taxonomy,
            verified=verified,
            progress_callback=progress_callback,
        )


class AugmenterResource(ConfigurableResource):
    """Overrides of AUGMENTER_* / LLM_AUGMENTER_MODEL; unset fields keep the settings' values."""

    model: str | None = Field(default=None, description='"local" forces offline augmentation.')
    variants_per_sample: int | None = None
    max_samples_per_domain: int | None = None
    target_per_domain: int | None = None
    include_hard_negatives: bool | None = None

    def build(
        self,
        taxonomy: Taxonomy,
        labeler: LabelerAgent,
        progress_callback: Callable[[str], Any] | None = None,
    ) -> AugmenterAgent:
        """The augmenter, judged by `labeler` and sharing its usage meter (one cost figure)."""
        return AugmenterAgent(
            AugmenterConfig(**_set_fields(self)),
            taxonomy,
            labeler=labeler,
            usage=labeler.usage,
            progress_callback=progress_callback,
        )
