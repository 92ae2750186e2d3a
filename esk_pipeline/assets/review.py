"""Stage 4: the review queue people work through, and the verified labels they produce."""

import hashlib

import pandas as pd
from dagster import (
    AssetExecutionContext,
    DataVersion,
    ObserveResult,
    Output,
    asset,
    observable_source_asset,
)

from esk_pipeline.assets.automation import eager_when_enabled
from esk_pipeline.assets.metadata import counts_table, preview, table_metadata
from esk_pipeline.resources.stores import ReviewStoreResource
from esk_pipeline.resources.taxonomy import TaxonomyResource
from esk_pipeline.settings import get_settings


@asset(
    group_name="review",
    kinds={"sqlite", "parquet"},
    automation_condition=eager_when_enabled(),
)
def review_queue(
    context: AssetExecutionContext,
    labels: dict[str, pd.DataFrame],
    taxonomy_file: TaxonomyResource,
    review_store: ReviewStoreResource,
) -> Output:
    """Low-confidence and failed labels of every day, queued for people (keyed on row_id)."""
    everything = pd.concat(labels.values(), ignore_index=True) if labels else pd.DataFrame()
    threshold = get_settings().review.low_confidence_threshold
    needs_review = (
        # Deferred rows (a run budget stopped before them) are not labelled yet: not for review.
        everything[
            (everything["status"] == "failed")
            | ((everything["status"] == "labeled") & (everything["confidence"] < threshold))
        ].drop_duplicates("row_id")
        if len(everything)
        else everything
    )
    with review_store.open(taxonomy_file.load()) as store:
        report = store.add_items(needs_review.to_dict("records"))
        stats = store.stats()
    for message in report.messages:
        context.log.warning(message)
    queued = needs_review[
        [
            c
            for c in ("row_id", "text", "domain", "confidence", "status")
            if c in needs_review.columns
        ]
    ]
    return Output(
        queued.reset_index(drop=True),
        metadata={
            "sent_to_review": len(needs_review),
            "added": report.added,
            "refreshed": report.refreshed,
            "kept_human_decision": report.kept_decided,
            "rejected_queue_full": report.rejected_queue_full,
            "queue_length": stats.queue_length,
            "by_status": counts_table(stats.by_status, "status"),
            "by_priority": counts_table(stats.by_priority, "priority"),
            "preview": preview(queued.sort_values("confidence"), ["confidence", "domain", "text"]),
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
    added or changed), and every asset taking it as an input reads the store's current
    decisions. Observations are only events, so days labelled in parallel cannot race on it.
    """
    with review_store.open(taxonomy_file.load()) as store:
        frame = store.verified_labels()
    digest = hashlib.sha256()
    for row_id, domain in sorted(zip(frame["row_id"], frame["domain"], strict=False)):
        digest.update(f"{row_id}\t{domain}\n".encode())
    return ObserveResult(
        data_version=DataVersion(digest.hexdigest()[:16]),
        metadata={
            "verified": len(frame),
            **table_metadata(frame),
            "by_review_status": counts_table(
                frame["review_status"].value_counts().to_dict(), "review_status"
            ),
            "by_domain": counts_table(frame["domain"].value_counts().to_dict(), "domain"),
            "preview": preview(frame, ["reviewer_id", "predicted_domain", "domain", "text"]),
        },
    )
