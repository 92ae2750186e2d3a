"""The labeler's data: its config, one text's result, a run's cascade report.

`LabelerConfig` says how to label (batch size, thresholds, cache, the LLM endpoint it inherits
from `AgentEndpointConfig`). `ClassificationResult` is one row's label; `Outcome` is the same
without the row, what one unique (normalised) text got.
A result's `status` is "labeled", "failed" (never a label: `domain` is None) or "deferred"
(the run budget ran out; the next run labels it). Its `tier` says who decided: the local model,
the LLM, or a reviewer.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from esk_pipeline.pipeline.llm import AgentEndpointConfig
from esk_pipeline.pipeline.llm.cache import DEFAULT_CACHE_DIR
from esk_pipeline.pipeline.local_model import Prediction
from esk_pipeline.pipeline.options import LabelerOptions

__all__ = [
    "LOCAL_MODEL_NAME",
    "CascadeReport",
    "ClassificationResult",
    "Confidence",
    "LabelerConfig",
    "Outcome",
    "Status",
    "Tier",
    "local_outcome",
]

LOCAL_MODEL_NAME = "local"

Tier = Literal["local", "llm", "review"]
Status = Literal["labeled", "failed", "deferred"]


def _clamp_unit(value: float) -> float:
    """Small servers do not enforce numeric bounds in the schema: clamp instead of rejecting."""
    return min(1.0, max(0.0, value))


Confidence = Annotated[float, AfterValidator(_clamp_unit)]


class LabelerConfig(LabelerOptions, AgentEndpointConfig):
    """How to label. `model` "local" (the default) is the offline model alone; any other name
    goes to the endpoint. `esk_pipeline.configs.labeler_config` fills it from LABELER_*,
    LLM_LABELER_* / LLM_* and CACHE_*."""

    model_config = ConfigDict(extra="forbid")

    cache_dir: Path = DEFAULT_CACHE_DIR
    cache_ttl_hours: float = 24.0
    cache_unread_days: float = 90.0
    # Retry pacing of the LLM client (seconds); tests shorten them.
    backoff_seconds: float = Field(default=0.5, ge=0)
    retry_after_cap: float = Field(default=60.0, ge=0)
    # Ask for token logprobs (for `llm_token_confidence`); off for a server that rejects them.
    token_logprobs: bool = True


class ClassificationResult(BaseModel):
    """One text's label: which domain, how sure, the runners-up, and who decided."""

    row_id: str
    text: str
    domain: str | None = None  # None unless status is "labeled"
    confidence: Confidence = 0.0
    top_candidates: list[tuple[str, float]] = Field(default_factory=list)
    label_source: str = LOCAL_MODEL_NAME  # "local", the LLM model name, or "reviewer:<id>"
    model: str = LOCAL_MODEL_NAME
    tier: Tier = "local"
    status: Status = "labeled"
    error: str | None = None
    cached: bool = False  # the LLM answer came from a cache, not a request
    # LLM labels only (None otherwise): the model's own confidence, and the probability of the
    # domain id's first tokens when the endpoint returned logprobs (see `_answers`).
    llm_self_confidence: float | None = None
    llm_token_confidence: float | None = None
    # LLM labels only: the domain is the local model's top prediction too (see `_answers`).
    agrees_with_local: bool = False


class CascadeReport(BaseModel):
    """Who handled how much of a run: counts, shares of the total, cache hit rate, usage.

    This is the cascade's routing, not trust: a local label the cascade accepted (it did not ask
    the LLM) is no more trusted than any other until the audit has calibrated its tier."""

    total: int
    # local label at or above local_accept_threshold: the cascade asked no LLM about it
    cascade_accepted_local: int
    # local label below it, kept because no LLM is configured
    cascade_kept_local_below_threshold: int
    llm: int  # labelled by the LLM (from a request or a cache)
    llm_cached: int
    failed: int
    deferred: int
    for_review: int  # below low_conf_threshold, or failed
    usage: dict[str, Any] = Field(default_factory=dict)

    @property
    def shares(self) -> dict[str, float]:
        """Each tier's share of the total (0..1)."""
        counts = {
            "cascade_accepted_local": self.cascade_accepted_local,
            "cascade_kept_local_below_threshold": self.cascade_kept_local_below_threshold,
            "llm": self.llm,
            "failed": self.failed,
            "deferred": self.deferred,
        }
        return {name: count / self.total if self.total else 0.0 for name, count in counts.items()}

    @property
    def cache_hit_rate(self) -> float:
        """Share of LLM-tier labels that cost no request."""
        return self.llm_cached / self.llm if self.llm else 0.0

    @property
    def tokens_per_llm_label(self) -> float:
        """Input plus output tokens of the run per LLM-tier label (cache hits included, so a
        warm cache shows up as a cheaper label); 0 when the LLM labelled nothing."""
        tokens = self.usage.get("input_tokens", 0) + self.usage.get("output_tokens", 0)
        return tokens / self.llm if self.llm else 0.0

    @property
    def cost_per_label(self) -> float:
        """The run's LLM cost per labelled item, whatever the tier (local labels are free, so
        the cascade's savings show here); 0 when nothing was labelled."""
        labelled = self.cascade_accepted_local + self.cascade_kept_local_below_threshold + self.llm
        return self.usage.get("cost", 0.0) / labelled if labelled else 0.0


class Outcome(BaseModel):
    """A result without its row: what one unique (normalised) text got."""

    domain: str | None
    confidence: Confidence
    top_candidates: list[tuple[str, float]]
    label_source: str
    model: str
    tier: Tier
    status: Status
    error: str | None = None
    cached: bool = False
    llm_self_confidence: float | None = None
    llm_token_confidence: float | None = None
    # LLM labels only: the domain is the local model's top prediction too (see `_answers`).
    agrees_with_local: bool = False


def local_outcome(prediction: Prediction) -> Outcome:
    """The local model's label for one text, as an outcome of the "local" tier."""
    domain, confidence, top = prediction
    return Outcome(
        domain=domain,
        confidence=confidence,
        top_candidates=top,
        label_source=LOCAL_MODEL_NAME,
        model=LOCAL_MODEL_NAME,
        tier="local",
        status="labeled",
    )
