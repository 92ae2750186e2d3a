"""Every text's label with its origin, its estimated probability of being right and its trust
verdict; plus the evidence (calibration per tier, reviewer reliability, audit) as a report."""

import pandas as pd
from dagster import AssetExecutionContext, AssetIn, AssetOut, MetadataValue, Output, multi_asset

from esk_pipeline.assets.frame_types import TrustedLabelFrame
from esk_pipeline.assets.metadata import counts_table, preview, table_metadata
from esk_pipeline.assets.progress import step_progress
from esk_pipeline.pipeline.local_model import LocalModel
from esk_pipeline.pipeline.trust import Calibration, TrustReport, assess_label_days
from esk_pipeline.resources.io_manager import READ_ON_ACCESS, DayFrames
from esk_pipeline.resources.stores import ReviewStoreResource
from esk_pipeline.resources.taxonomy import TaxonomyResource
from esk_pipeline.resources.trust import TrustPolicyResource


@multi_asset(
    group_name="review",
    # Every day's labels, read one day at a time (`assess_label_days`).
    ins={"labels": AssetIn(metadata={READ_ON_ACCESS: True})},
    outs={
        "trusted_labels": AssetOut(
            kinds={"parquet"},
            dagster_type=TrustedLabelFrame,
            description="One label per text: origin, p_correct and the trust verdict "
            "(trusted, queued or excluded, with its reason)",
        ),
        "label_trust": AssetOut(
            kinds={"json"},
            dagster_type=TrustReport,
            description="Calibration per tier, reviewer reliability, audit progress, doubts",
        ),
    },
)
def trusted_labels(
    context: AssetExecutionContext,
    labels: DayFrames,
    verified_labels: pd.DataFrame,
    taxonomy_file: TaxonomyResource,
    review_store: ReviewStoreResource,
    trust_policy: TrustPolicyResource,
):
    """Resolve every text's label, measure how far each can be trusted on the audit, and
    give each its one verdict (`pipeline.trust.verdict`)."""
    taxonomy = taxonomy_file.load()
    with review_store.open(taxonomy) as store:
        votes = store.decision_votes()
    # Whole passes over the days (resolution, calibration, verdicts): an opening and a
    # closing line.
    progress = step_progress(context, len(labels), "trusted_labels", unit="days")
    # The labels' local model is trained on every decision: its temperature sets the scale of
    # the out-of-fold scores the calibration is fitted on.
    temperature = (
        LocalModel()
        .fit(taxonomy, zip(verified_labels["text"], verified_labels["domain"], strict=True))
        .temperature
    )
    config = trust_policy.config()
    assessment = assess_label_days(
        labels, verified_labels, votes, taxonomy, config, temperature=temperature
    )
    progress.advance(len(labels))
    progress.close()
    report = TrustReport.of(assessment, config)
    frame = assessment.labels
    by_verdict = {
        f"{verdict}: {reason}": n
        for verdict, reasons in report.verdicts.items()
        for reason, n in reasons.items()
    }
    yield Output(
        frame,
        output_name="trusted_labels",
        metadata={
            **table_metadata(frame),
            "trusted": int(frame["trusted"].sum()),
            "by_origin": counts_table(frame["label_origin"].value_counts().to_dict(), "origin"),
            "by_verdict": counts_table(by_verdict, "verdict: reason"),
            "preview": preview(
                frame.sort_values("p_correct"),
                ["domain", "label_origin", "confidence", "p_correct", "verdict", "text"],
            ),
        },
    )
    yield Output(
        report,
        output_name="label_trust",
        metadata={
            "audited": report.audit.audited,
            "audit_progress": MetadataValue.text(str(report.audit)),
            "audit_pending": report.audit_pending,
            "tiers": MetadataValue.json(
                {name: t.model_dump() for name, t in report.tiers().items()}
            ),
            # A tier the audit does not vouch for sends all its labels to review.
            "gated_tiers": MetadataValue.json(
                sorted(_gated_tiers(assessment.model_tiers, report.calibration))
            ),
            "reviewer_accuracy": MetadataValue.json(
                {r: round(a, 4) for r, a in report.reliability.accuracy.items()}
            ),
            "overlap_items": report.reliability.overlap_items,
            "possible_label_errors": len(report.suspected_errors),
            "doubted_decisions": len(report.doubted),
        },
    )


def _gated_tiers(tiers: list[str], calibration: Calibration) -> set[str]:
    """Tiers that labelled something but whose audit accepts none of it (yet)."""
    return {t for t in tiers if (c := calibration.tiers.get(t)) is None or c.threshold is None}
