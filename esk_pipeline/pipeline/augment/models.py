"""The augmenter's data: its config, the records a run produces, the balancing plan and the
LLM's answer schema.

`AugmentedSample` is the shared synthetic sample row (`AugmentationReport.to_frame`), and
`RejectedSample` is a discarded candidate or a failed source item, with its `RejectReason`.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any, Literal

import pandas as pd
from pydantic import BaseModel, Field

from esk_pipeline.pipeline.labels import LabelOrigin
from esk_pipeline.pipeline.llm import AgentEndpointConfig
from esk_pipeline.pipeline.llm.cache import DEFAULT_CACHE_DIR
from esk_pipeline.pipeline.options import AugmenterOptions

__all__ = [
    "HARD_NEGATIVE_METHOD",
    "PARAPHRASE_METHOD",
    "AugmentationReport",
    "AugmentedSample",
    "AugmenterConfig",
    "BalancePlan",
    "DomainPlan",
    "LLMAugmentation",
    "RejectReason",
    "RejectedSample",
    "SourceRequest",
]

RejectReason = Literal[
    "invalid_domain",
    "duplicate",
    "too_short",
    "too_long",
    "wrong_language",
    "near_duplicate",
    "label_mismatch",
    "judge_failed",
    "llm_failed",
    "deferred",
]
PARAPHRASE_METHOD = "llm_paraphrase"
HARD_NEGATIVE_METHOD = "llm_hard_negative"


class AugmenterConfig(AugmenterOptions, AgentEndpointConfig):
    """The contract's fields plus balancing and QC knobs (``model="local"``: offline augmentation).

    `esk_pipeline.configs.augmenter_config` fills it from AUGMENTER_*, the LLM_AUGMENTER_* /
    LLM_* endpoint and CACHE_*."""

    use_cache: bool = True
    cache_dir: Path = DEFAULT_CACHE_DIR
    cache_ttl_hours: float = 24.0
    cache_unread_days: float = 90.0
    hard_negatives_per_sample: int = Field(default=1, ge=0)
    # Candidates generated per needed sample, to make up for quality-control losses.
    oversample: float = Field(default=1.5, ge=1.0)
    # First retry delay of the LLM client (seconds, exponential after); tests shorten it.
    backoff_seconds: float = Field(default=0.5, ge=0)
    # The ETL's length bounds (ETL_MIN_TEXT_LENGTH / ETL_MAX_TEXT_LENGTH): no sample may be
    # a text the ETL would have dropped.
    min_text_length: int = Field(default=3, ge=0)
    max_text_length: int = Field(default=1000, ge=1)


class AugmentedSample(BaseModel):
    """One accepted synthetic sample (the shared synthetic sample row)."""

    row_id: str
    text: str
    domain: str
    source_text: str
    source_row_id: str
    method: str
    model: str
    is_synthetic: bool = True
    is_hard_negative: bool = False
    label_origin: str = LabelOrigin.SYNTHETIC.value


class RejectedSample(BaseModel):
    """A candidate quality control discarded, or a source item whose generation failed
    (``llm_failed``/``deferred``, with ``text=None``)."""

    text: str | None
    domain: str
    source_text: str
    source_row_id: str
    method: str
    model: str
    reason: RejectReason
    detail: str = ""


class SourceRequest(BaseModel):
    """Ask for `n_variants` variants (and `n_hard_negatives` hard negatives) of one source."""

    text: str
    domain: str
    row_id: str
    n_variants: int = Field(ge=0)
    n_hard_negatives: int = Field(default=0, ge=0)


class DomainPlan(BaseModel):
    domain: str
    count_before: int
    needed: int
    n_sources: int
    per_source_cap: int  # the fair share: ceil(needed / n_sources)


class BalancePlan(BaseModel):
    target_per_domain: int
    domains: dict[str, DomainPlan]
    requests: list[SourceRequest]

    @property
    def counts_before(self) -> dict[str, int]:
        return {d: p.count_before for d, p in self.domains.items()}

    @property
    def needed(self) -> dict[str, int]:
        return {d: p.needed for d, p in self.domains.items()}


class AugmentationReport(BaseModel):
    """What a run produced and why: samples, rejections by reason, counts, examples, cost."""

    samples: list[AugmentedSample]
    rejected: list[RejectedSample]
    counts_before: dict[str, int]
    counts_after: dict[str, int]
    needed: dict[str, int]
    n_sources: int
    n_candidates: int
    n_surplus: int = 0
    examples: list[dict[str, str]] = Field(default_factory=list)
    usage: dict[str, Any] = Field(default_factory=dict)

    @property
    def rejections(self) -> dict[str, int]:
        """Rejected candidates and failed source items, counted by reason."""
        return dict(Counter(r.reason for r in self.rejected))

    @property
    def acceptance_rate(self) -> float:
        """Share of generated candidates that passed quality control (surplus included)."""
        checked = self.n_candidates
        rejected = sum(1 for r in self.rejected if r.text is not None)
        return (checked - rejected) / checked if checked else 0.0

    def to_frame(self) -> pd.DataFrame:
        """The accepted samples as synthetic sample rows."""
        columns = list(AugmentedSample.model_fields)
        frame = pd.DataFrame([s.model_dump() for s in self.samples], columns=columns)
        # An empty frame would type its flags as object: the label contract wants bool.
        return frame.astype({"is_synthetic": bool, "is_hard_negative": bool})

    def summary(self) -> dict[str, Any]:
        """Figures for logs and asset metadata (no sample texts beyond the examples)."""
        return {
            "n_samples": len(self.samples),
            "n_candidates": self.n_candidates,
            "n_sources": self.n_sources,
            "acceptance_rate": round(self.acceptance_rate, 4),
            "rejections": self.rejections,
            "n_surplus": self.n_surplus,
            "counts_before": self.counts_before,
            "counts_after": self.counts_after,
            "needed": self.needed,
            "usage": self.usage,
        }


class _HardNegative(BaseModel):
    text: str = Field(description="the request text")
    domain: str = Field(description="the taxonomy id of the domain this text really belongs to")


class LLMAugmentation(BaseModel):
    """The LLM's answer for one source text."""

    paraphrases: list[str] = Field(
        default_factory=list, description="rewordings of the source with the same request"
    )
    hard_negatives: list[_HardNegative] = Field(
        default_factory=list,
        description="similar-looking requests that belong to a different domain",
    )
