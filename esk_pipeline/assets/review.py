"""The review queue people work through, and the verified labels they produce."""

import hashlib
from collections.abc import Mapping

import pandas as pd
from dagster import (
    AssetExecutionContext,
    AssetIn,
    DataVersion,
    ObserveResult,
    Output,
    asset,
    observable_source_asset,
)

from esk_pipeline.assets.automation import EAGER
from esk_pipeline.assets.frame_types import QueueFrame, TrustedLabelParts
from esk_pipeline.assets.metadata import counts_table, preview, table_metadata
from esk_pipeline.assets.progress import step_progress
from esk_pipeline.pipeline.review import ReviewReason
from esk_pipeline.pipeline.review.planning import audit_hand_out_share, plan_review
from esk_pipeline.pipeline.trust import TrustReport
from esk_pipeline.resources.stores import ReviewStoreResource
from esk_pipeline.resources.taxonomy import TaxonomyResource
from esk_pipeline.resources.trust import TrustPolicyResource


@asset(
    ins={"trusted_labels": AssetIn(dagster_type=TrustedLabelParts)},
    group_name="review",
    kinds={"sqlite", "parquet"},
    automation_condition=EAGER,
    dagster_type=QueueFrame,
)
def review_queue(
    context: AssetExecutionContext,
    trusted_labels: Mapping[str, pd.DataFrame],
    label_trust: TrustReport,
    taxonomy_file: TaxonomyResource,
    review_store: ReviewStoreResource,
    trust_policy: TrustPolicyResource,
) -> Output:
    """What people should review, best first: every text without a trusted label, and the
    random audit, which gets every hand-out while the calibration needs it (see
    `pipeline.review.planning`), and one second opinion
    on each decision confident learning doubts. Items waiting on a person keep their place.
    The trusted labels are read a part at a time, through small summaries kept beside each
    part; only the rows that can reach the queue (those it holds and the most urgent others,
    up to its size) are kept and are this asset's value."""
    progress = step_progress(context, len(trusted_labels), "review_queue", unit="parts")
    with review_store.open(taxonomy_file.load()) as store:
        plan = plan_review(
            trusted_labels,
            precision_target=trust_policy.precision_target,
            audit_review_share=audit_hand_out_share(
                label_trust.calibration,
                prioritised=trust_policy.audit_review_share,
                settled=trust_policy.audit_share,
            ),
            progress=progress,
            held=store.item_ids(),
            new_items=store.config.max_queue_size,
        )
        report = store.add_items(
            plan.rows, withdraw_others=True, left_out=plan.left_out, progress=progress
        )
        doubted = store.request_second_opinion(
            label_trust.suspected_errors, ReviewReason.POSSIBLE_LABEL_ERROR
        )
        stats = store.stats()
    progress.close()
    for message in report.messages:
        context.log.warning(message)
    queued = plan.rows[["row_id", "text", "domain", "confidence", "p_correct", "review_reason"]]
    return Output(
        queued.reset_index(drop=True),
        metadata={
            **table_metadata(queued),
            "sent_to_review": plan.planned,
            "by_reason": counts_table(plan.by_reason, "reason"),
            "sent_to_store": len(plan.rows),
            "added": report.added,
            "refreshed": report.refreshed,
            "withdrawn": report.withdrawn,
            "kept_human_decision": report.kept_decided,
            "rejected_queue_full": report.rejected_queue_full,
            "doubts_raised": doubted,
            "queue_length": stats.queue_length,
            "by_status": counts_table(stats.by_status, "status"),
            "by_priority": counts_table(stats.by_priority, "priority"),
            "preview": preview(
                queued.sort_values("p_correct"), ["review_reason", "p_correct", "domain", "text"]
            ),
        },
    )


@observable_source_asset(
    group_name="review",
    kinds={"sqlite"},
    io_manager_key="review_decisions_io_manager",
)
def verified_labels(
    taxonomy_file: TaxonomyResource, review_store: ReviewStoreResource
) -> ObserveResult:
    """Approved and corrected review items, with reviewer and time: the human ground truth.

    People write it through the API into the review store, so it is observed, not made: the
    data version is a hash of the decisions (downstream assets go stale exactly when one was
    added, changed or doubted), and every asset taking it as an input reads the store's current
    decisions. Observations are only events, so days labelled in parallel cannot race on it.
    """
    with review_store.open(taxonomy_file.load()) as store:
        frame = store.verified_labels()
    digest = hashlib.sha256()
    # What the graph reads of a decision: a doubt (it stands, but trains instead of
    # evaluating) and whether it approved the model's label (it then settles its key) too.
    decided = zip(
        frame["row_id"],
        frame["domain"],
        frame["votes"],
        frame["doubt_pending"],
        frame["predicted_domain"],
        strict=True,
    )
    for row_id, domain, votes, doubt, predicted in sorted(decided):
        digest.update(f"{row_id}\t{domain}\t{votes}\t{doubt}\t{predicted}\n".encode())
    return ObserveResult(
        data_version=DataVersion(digest.hexdigest()[:16]),
        metadata={
            "verified": len(frame),
            **table_metadata(frame),
            "by_origin": counts_table(frame["label_origin"].value_counts().to_dict(), "origin"),
            "by_review_status": counts_table(
                frame["review_status"].value_counts().to_dict(), "review_status"
            ),
            "by_domain": counts_table(frame["domain"].value_counts().to_dict(), "domain"),
            "preview": preview(frame, ["reviewer_id", "predicted_domain", "domain", "text"]),
        },
    )
