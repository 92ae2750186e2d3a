"""The writer's data shapes: its config, the columns of a written record, the stats it reports.

`DataWriterConfig` has literal defaults; `esk_pipeline.configs.writer_config(settings)` maps
the DATA_WRITER_* settings (and TRUST_PRECISION_TARGET) onto it.
"""

from __future__ import annotations

from typing import Literal

import pyarrow as pa
from pydantic import BaseModel, Field

from esk_pipeline.pipeline.options import DataWriterOptions
from esk_pipeline.pipeline.trust.estimate import AccuracyEstimate, AuditProgress
from esk_pipeline.pipeline.trust.reviewers import ReviewerReliability
from esk_pipeline.pipeline.versions.models import StagedDataset

__all__ = [
    "RECORD_COLUMNS",
    "RECORD_SCHEMA",
    "DataWriterConfig",
    "DatasetQualityError",
    "DatasetStats",
    "LeakageReport",
    "WrittenSplits",
]

# The columns of every written record, in this order.
RECORD_COLUMNS = (
    "row_id",
    "text",
    "domain",
    "label_source",
    "label_origin",
    "confidence",
    "p_correct",
    "is_synthetic",
    "source_row_id",
    "group_id",
)
RECORD_SCHEMA = pa.schema(
    [
        ("row_id", pa.string()),
        ("text", pa.string()),
        ("domain", pa.string()),
        ("label_source", pa.string()),
        ("label_origin", pa.string()),
        ("confidence", pa.float64()),
        ("p_correct", pa.float64()),
        ("is_synthetic", pa.bool_()),
        ("source_row_id", pa.string()),
        ("group_id", pa.string()),
    ]
)


class DatasetQualityError(ValueError):
    """A split that must not be used; `problems` lists every rule it breaks."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("dataset failed quality validation: " + "; ".join(problems))


class DataWriterConfig(DataWriterOptions):
    # Machine labels enter train at this precision: the trust policy's (TRUST_PRECISION_TARGET).
    precision_target: float = Field(default=0.95, gt=0, le=1)


class LeakageReport(BaseModel):
    """What the post-split check found; `passed` is False when anything leaks."""

    passed: bool
    row_id_overlap: int = 0
    text_overlap: int = 0  # identity keys present on both sides
    user_overlap: int = 0  # only checked when grouping by user
    synthetic_in_eval: int = 0
    synthetic_source_in_eval: int = 0
    unverified_in_eval: int = 0  # records in eval whose label is not human
    groups: int = 0
    multi_record_groups: int = 0


class DatasetStats(BaseModel):
    train_samples: int
    eval_samples: int
    domain_distribution: dict[str, int]
    train_distribution: dict[str, int]
    eval_distribution: dict[str, int]
    input_items: int
    superseded_labels: int = Field(description="labels that lost to a stronger label for a row_id")
    rejected: dict[str, int] = Field(description="items not written, by reason")
    label_sources: dict[str, int] = Field(description="train + eval records by label origin")
    eval_origins: dict[str, int] = Field(default_factory=dict)
    unverified_samples: int = 0
    not_trusted: dict[str, int] = Field(
        default_factory=dict, description="records in the unverified split, by reason"
    )
    eval_shortfall: dict[str, int] = Field(
        default_factory=dict,
        description="what eval lacks: 'audited_reviews', the audited human decisions that bring "
        "it to min_eval_samples, and 1 per domain present in train but absent from eval",
    )
    class_weights: dict[str, float] = Field(
        default_factory=dict, description="train class weights n / (k * n_domain)"
    )
    precision_target: float = Field(description="what a machine label needs to enter train")
    accuracy: dict[str, AccuracyEstimate] = Field(
        default_factory=dict, description="split -> estimated label accuracy"
    )
    audit: AuditProgress | None = Field(
        default=None, description="the audit the accuracy estimate rests on"
    )
    synthetic_samples: int
    small_domains: dict[str, int] = Field(description="domain -> real samples, below the minimum")
    small_domain_policy: Literal["drop", "train_only"]
    dropped_domains: list[str]
    train_only_domains: list[str]
    capped: dict[str, int] = Field(description="machine labels removed by max_samples_per_domain")
    balanced: dict[str, int] = Field(description="train machine labels removed by balance_domains")
    leakage: LeakageReport
    shards: dict[str, list[str]] = Field(description="split -> JSONL files, relative paths")
    parquet_files: dict[str, list[str]]
    quality_problems: list[str]


class WrittenSplits(BaseModel):
    """Where a written dataset is and what it holds: the splits asset's value."""

    dataset_dir: str
    train_path: str
    eval_path: str
    stats: DatasetStats
    reliability: ReviewerReliability  # the reviewers the human labels rest on
    # The files already in the version store, so any worker can commit them without the folder.
    staged: StagedDataset | None = None
