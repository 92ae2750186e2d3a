"""The label contract: the one declaration of what a label row is.

Every table that carries labels (`labels`, `trusted_labels`, `review_queue`,
`synthetic_samples`, the dataset's records) is a pandas frame whose columns, dtypes and values
are declared here. A label is a claim, so each row says:

- `status`: whether the labeler produced a label at all (`LabelStatus`);
- `label_origin`: who made the claim (`LabelOrigin`); `label_source` names the exact maker
  (the LLM model, `reviewer:<id>`);
- `tier`: the calibration tier its `p_correct` is measured on (`LabelTier`), one name per tier;
- after the trust assessment, `verdict` and `verdict_reason`: every labelled text is exactly
  one of trusted, queued for review, or excluded, each with its reason (`Verdict`,
  `VerdictReason`), decided once in `trust.verdict`.

`validate_frame` checks a frame against a shape and raises `LabelContractError` naming the
column; the Dagster asset types in `esk_pipeline.assets.frame_types` are built from the same
shapes, so the library and the asset boundary cannot disagree.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

import pandas as pd

__all__ = [
    "DATASET_RECORD",
    "HUMAN_ORIGINS",
    "LABEL_ROW",
    "MODEL_ORIGINS",
    "QUEUE_ROW",
    "SYNTHETIC_ROW",
    "TIER_OF_ORIGIN",
    "TRUSTED_LABEL_ROW",
    "Column",
    "LabelContractError",
    "LabelOrigin",
    "LabelStatus",
    "LabelTier",
    "Verdict",
    "VerdictReason",
    "validate_frame",
    "with_optional_columns",
]


class LabelStatus(StrEnum):
    LABELED = "labeled"
    FAILED = "failed"  # every attempt failed: the text goes to review with the error
    DEFERRED = "deferred"  # the LLM budget ran out: labelled on a later run


class LabelOrigin(StrEnum):
    HUMAN_VERIFIED = "human_verified"  # a review decision no reviewer contradicted
    ADJUDICATED = "adjudicated"  # reviewers disagreed; an adjudicating review decided
    PROPAGATED = "propagated"  # a decision on another text with the same identity key
    LLM = "llm"
    LOCAL_MODEL = "local_model"
    SYNTHETIC = "synthetic"  # a generated paraphrase; trusted as far as its source is


class LabelTier(StrEnum):
    """The calibration tier of a machine or propagated label: what the audit measures."""

    LOCAL_MODEL = "local_model"
    LLM = "llm"
    # An LLM label (with token logprobs) whose domain is the local model's top prediction too:
    # two different models agreeing are right more often than either alone, so the audit
    # measures them apart, with its own threshold. Still a claim, like every tier.
    LLM_AGREES_WITH_LOCAL = "llm_agrees_with_local"
    PROPAGATED = "propagated"


class Verdict(StrEnum):
    TRUSTED = "trusted"  # may enter a dataset
    QUEUED = "queued"  # waits for a review decision
    EXCLUDED = "excluded"  # neither: the reason says why


class VerdictReason(StrEnum):
    HUMAN = "human"  # a review decision
    DOUBTED_HUMAN = "doubted_human"  # a decision waiting for a second opinion: train, not eval
    ACCEPTED = "accepted"  # a machine or propagated label its tier's audit accepts
    NEEDS_REVIEW = "needs_review"  # a machine label below the precision target
    LABELER_FAILED = "labeler_failed"
    AUDIT = "audit"  # drawn into the uniform audit: reviewed whatever its confidence
    # In the audit and accepted like any label of its tier: trusted while its review waits.
    AUDIT_ACCEPTED = "audit_accepted"
    SAME_TEXT_QUEUED = "same_text_queued"  # a text with the same identity key is queued
    DEFERRED = "deferred"  # not labelled yet (LLM budget)
    NO_DOMAIN = "no_domain"


HUMAN_ORIGINS = frozenset({LabelOrigin.HUMAN_VERIFIED, LabelOrigin.ADJUDICATED})
MODEL_ORIGINS = frozenset({LabelOrigin.LLM, LabelOrigin.LOCAL_MODEL})
TIER_OF_ORIGIN = {
    LabelOrigin.LOCAL_MODEL: LabelTier.LOCAL_MODEL,
    LabelOrigin.LLM: LabelTier.LLM,
    LabelOrigin.PROPAGATED: LabelTier.PROPAGATED,
}


class LabelContractError(ValueError):
    """A frame does not match the label contract; the message names the column."""


@dataclass(frozen=True)
class Column:
    """One declared column: its kind and, for enum columns, the values it may hold."""

    kind: str  # "string", "float", "bool", "int", "object"
    values: type[StrEnum] | None = None
    nullable: bool = True
    description: str = ""


_TEXT = {
    "row_id": Column("string", nullable=False, description="stable id of the text (row_ids)"),
    "text": Column("string", nullable=False, description="the cleaned text"),
    "domain": Column("string", description="the label: a taxonomy domain id"),
}
_CLAIM = {
    "confidence": Column("float", description="the labeler's own score (calibrated later)"),
    "label_source": Column("string", description="who exactly: model name or reviewer:<id>"),
    "label_origin": Column("string", LabelOrigin, nullable=False, description="who made it"),
}
# The labels asset's rows (the labeler's output, one per text and day).
LABEL_ROW: Mapping[str, Column] = {
    **_TEXT,
    **_CLAIM,
    "top_candidates": Column("string", description="JSON [[domain, score], ...]"),
    "status": Column("string", LabelStatus, nullable=False),
    "error": Column("string"),
    "tier": Column("string", LabelTier, description="calibration tier (machine labels)"),
}
# trusted_labels: one row per text after resolution and assessment.
TRUSTED_LABEL_ROW: Mapping[str, Column] = {
    **LABEL_ROW,
    "p_correct": Column("float", description="estimated probability the label is right"),
    "trusted": Column("bool", nullable=False),
    "verdict": Column("string", Verdict, nullable=False),
    "verdict_reason": Column("string", VerdictReason, nullable=False),
    # The splits draw eval from audited human labels; the augmenter skips those sources.
    "review_reason": Column("string", description="why a person reviewed it (human labels)"),
}
# review_queue: the rows sent to the review queue this run (those it held, the most urgent new).
QUEUE_ROW: Mapping[str, Column] = {
    **_TEXT,
    "confidence": _CLAIM["confidence"],
    "p_correct": TRUSTED_LABEL_ROW["p_correct"],
    "review_reason": Column("string", VerdictReason, nullable=False),
}
# synthetic_samples: paraphrases of trusted texts.
SYNTHETIC_ROW: Mapping[str, Column] = {
    **_TEXT,
    "label_origin": _CLAIM["label_origin"],
    "is_synthetic": Column("bool", nullable=False),
    "source_row_id": Column("string", nullable=False, description="the paraphrased text"),
}
# A record of train, eval or unverified (what the dataset files hold).
DATASET_RECORD: Mapping[str, Column] = {
    **_TEXT,
    **_CLAIM,
    "p_correct": TRUSTED_LABEL_ROW["p_correct"],
    "is_synthetic": SYNTHETIC_ROW["is_synthetic"],
    "source_row_id": Column("string"),
}


def with_optional_columns(frame: pd.DataFrame, shape: Mapping[str, Column]) -> pd.DataFrame:
    """`frame` with every nullable column of `shape` it lacks added as missing values."""
    missing = [c for c, spec in shape.items() if spec.nullable and c not in frame.columns]
    return frame.assign(**dict.fromkeys(missing, None)) if missing else frame


def validate_frame(frame: pd.DataFrame, shape: Mapping[str, Column], name: str) -> None:
    """Raise `LabelContractError` unless `frame` has every column of `shape`, with the
    declared kind, no missing value where none is allowed, and only declared enum values."""
    for column, spec in shape.items():
        if column not in frame.columns:
            raise LabelContractError(f"{name}: column {column!r} is missing")
        values = frame[column]
        if not spec.nullable and values.isna().any():
            raise LabelContractError(f"{name}: column {column!r} has missing values")
        problem = _kind_problem(values, spec.kind)
        if problem:
            raise LabelContractError(f"{name}: column {column!r} {problem}")
        if spec.values is not None:
            unknown = set(values.dropna().unique()) - {v.value for v in spec.values}
            if unknown:
                raise LabelContractError(
                    f"{name}: column {column!r} has unknown value(s) {sorted(map(str, unknown))}; "
                    f"expected one of {[v.value for v in spec.values]}"
                )


def _kind_problem(values: pd.Series, kind: str) -> str | None:
    if kind == "float" and not (
        pd.api.types.is_float_dtype(values) or values.isna().all() or values.empty
    ):
        return f"must be float, is {values.dtype}"
    if kind == "bool" and not pd.api.types.is_bool_dtype(values):
        return f"must be bool, is {values.dtype}"
    if kind == "string":
        # infer_dtype looks at every value in C: "string" only when each one is a str.
        kind_found = pd.api.types.infer_dtype(values, skipna=True)
        if kind_found not in ("string", "empty"):
            return "must hold strings"
    return None
