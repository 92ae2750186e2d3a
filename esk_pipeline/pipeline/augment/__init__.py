"""Synthetic samples for rare domains: planning, generation (LLM or offline) and quality control.

`AugmenterAgent.balance(labelled, real_texts)` is the whole job; `augment_batch(items)` is the
contract's lower-level call. The files, one concern each:

- `models`: `AugmenterConfig`, the records (`AugmentedSample`, `RejectedSample`,
  `AugmentationReport`), the balancing plan and the LLM's answer schema;
- `_planning`: how many samples each domain needs and from which sources (`plan_balance`,
  or `SourceTally` over rows given a part at a time);
- `_prompts`: the LLM's system prompt and per-source task;
- `offline/`: the offline generator (`OfflineAugmenter`) and its operations;
- `_quality`: the checks every candidate goes through, and the labeler as judge;
- `_near_duplicates`: the MinHash/LSH index behind the near-duplicate checks;
- `agent`: `AugmenterAgent`, which runs generation and quality control and keeps the plan.

Synthetic samples carry ``is_synthetic=True`` and ``source_row_id``, so the dataset writer keeps
them in train only and in their source's group: they never reach an eval split.
"""

from esk_pipeline.pipeline.augment._near_duplicates import NearDuplicateIndex, Sketches
from esk_pipeline.pipeline.augment._planning import SourceTally, plan_balance
from esk_pipeline.pipeline.augment._quality import DomainLabeler
from esk_pipeline.pipeline.augment.agent import AugmenterAgent
from esk_pipeline.pipeline.augment.models import (
    AugmentationReport,
    AugmentedSample,
    AugmenterConfig,
    BalancePlan,
    DomainPlan,
    LLMAugmentation,
    RejectedSample,
    RejectReason,
    SourceRequest,
)
from esk_pipeline.pipeline.augment.offline import OFFLINE_MODEL, OfflineAugmenter

__all__ = [
    "OFFLINE_MODEL",
    "AugmentationReport",
    "AugmentedSample",
    "AugmenterAgent",
    "AugmenterConfig",
    "BalancePlan",
    "DomainLabeler",
    "DomainPlan",
    "LLMAugmentation",
    "NearDuplicateIndex",
    "OfflineAugmenter",
    "RejectReason",
    "RejectedSample",
    "Sketches",
    "SourceRequest",
    "SourceTally",
    "plan_balance",
]
