"""Stage 4b: every text's label with its origin, its estimated probability of being right, and
whether it is trusted; plus the evidence (calibration per tier, reviewer reliability, audit)."""

import pandas as pd
from dagster import AssetExecutionContext, AssetOut, MetadataValue, Output, multi_asset

from esk_pipeline.assets.metadata import counts_table, preview, table_metadata
from esk_pipeline.pipeline.local_model import LocalModel
from esk_pipeline.pipeline.trust import Calibration, assess_labels
from esk_pipeline.pipeline.trust.assess import tier_of
from esk_pipeline.resources.stores import ReviewStoreResource
from esk_pipeline.resources.taxonomy import TaxonomyResource
from esk_pipeline.resources.trust import TrustPolicyResource


@multi_asset(
    group_name="review",
    outs={
        "trusted_labels": AssetOut(
            kinds={"parquet"},
            description="One label per text: origin, p_correct, trusted (the trust policy's input)",
        ),
        "label_trust": AssetOut(
            kinds={"json"},
            description="Calibration per tier, reviewer reliability and audit size",
        ),
    },
)
def trusted_labels(
    context: AssetExecutionContext,
    labels: dict[str, pd.DataFrame],
    verified_labels: pd.DataFrame,
    taxonomy_file: TaxonomyResource,
    review_store: ReviewStoreResource,
    trust_policy: TrustPolicyResource,
):
    """Resolve every text's label and measure how far each can be trusted, on the audit."""
    taxonomy = taxonomy_file.load()
    with review_store.open(taxonomy) as store:
        votes = store.decision_votes()
    model_labels = pd.concat(labels.values(), ignore_index=True) if labels else pd.DataFrame()
    # The labels' local model is trained on every decision: its temperature sets the scale of
    # the out-of-fold scores the calibration is fitted on.
    temperature = (
        LocalModel()
        .fit(taxonomy, zip(verified_labels["text"], verified_labels["domain"], strict=True))
        .temperature
    )
    assessment = assess_labels(
        model_labels,
        verified_labels,
        votes,
        taxonomy,
        trust_policy.config(),
        temperature=temperature,
    )
    frame = assessment.labels
    calibration = assessment.calibration
    tiers = {
        name: {
            "audited": t.audited,
            "accuracy": round(t.accuracy, 4) if t.accuracy is not None else None,
            "threshold": t.threshold,
            "accepted_precision": (
                round(t.accepted_precision, 4) if t.accepted_precision is not None else None
            ),
            "domain_thresholds": t.domain_thresholds,
        }
        for name, t in calibration.tiers.items()
    }
    trust = {
        "precision_target": calibration.precision_target,
        "calibration": calibration.model_dump(mode="json"),
        "reliability": assessment.reliability.model_dump(mode="json"),
        "audited": assessment.audited,
        "audit_pending": assessment.audit_pending,
        "suspected_errors": assessment.suspected_errors,
        "needs_review": assessment.needs_review_counts(),
    }
    yield Output(
        frame,
        output_name="trusted_labels",
        metadata={
            **table_metadata(frame),
            "trusted": int(frame["trusted"].sum()),
            "by_origin": counts_table(frame["label_origin"].value_counts().to_dict(), "origin"),
            "needs_review": counts_table(assessment.needs_review_counts(), "reason"),
            "preview": preview(
                frame.sort_values("p_correct"),
                ["domain", "label_origin", "confidence", "p_correct", "trusted", "text"],
            ),
        },
    )
    yield Output(
        trust,
        output_name="label_trust",
        metadata={
            "audited": assessment.audited,
            "audit_pending": assessment.audit_pending,
            "tiers": MetadataValue.json(tiers),
            # A tier the audit does not vouch for sends all its labels to review.
            "gated_tiers": MetadataValue.json(sorted(_gated_tiers(model_labels, calibration))),
            "reviewer_accuracy": MetadataValue.json(
                {r: round(a, 4) for r, a in assessment.reliability.accuracy.items()}
            ),
            "overlap_items": assessment.reliability.overlap_items,
            "possible_label_errors": len(assessment.suspected_errors),
        },
    )


def _gated_tiers(model_labels: pd.DataFrame, calibration: Calibration) -> set[str]:
    """Tiers that labelled something but whose audit accepts none of it (yet)."""
    used = set(tier_of(model_labels)) if len(model_labels) else set()
    return {t for t in used if (c := calibration.tiers.get(t)) is None or c.threshold is None}
