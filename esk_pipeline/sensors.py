"""Sensors: new days in ClickHouse, and enough new human reviews."""

import json

from dagster import (
    AssetSelection,
    DefaultSensorStatus,
    RunRequest,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    define_asset_job,
    sensor,
)

from esk_pipeline.assets.partitions import daily_partitions
from esk_pipeline.resources.clickhouse import ClickHouseResource
from esk_pipeline.resources.stores import ReviewStoreResource
from esk_pipeline.resources.taxonomy import TaxonomyResource
from esk_pipeline.settings import get_settings

daily_labels_job = define_asset_job(
    "daily_labels_job",
    # verified_labels is unpartitioned: each day is labelled with the latest human decisions.
    selection=AssetSelection.assets(
        "verified_labels", "raw_logs", "cleaned_texts", "rejected_texts", "labels"
    ),
    partitions_def=daily_partitions,
    description="ETL and labelling of one day of logs.",
)


@sensor(
    job=daily_labels_job,
    minimum_interval_seconds=60,
    default_status=DefaultSensorStatus.STOPPED,
    description="Requests a run for each day whose row count in ClickHouse is new or has grown.",
)
def new_log_days_sensor(
    context: SensorEvaluationContext, clickhouse: ClickHouseResource
) -> SensorResult | SkipReason:
    seen: dict[str, int] = json.loads(context.cursor) if context.cursor else {}
    valid_keys = set(daily_partitions.get_partition_keys(dynamic_partitions_store=None))
    current = {day.isoformat(): n for day, n in clickhouse.get_source().day_counts().items()}
    changed = {day: n for day, n in current.items() if seen.get(day) != n and day in valid_keys}
    outside = sorted(set(current) - valid_keys)
    if outside:
        context.log.warning(f"days outside the partition range are ignored: {outside[:5]}")
    if not changed:
        return SkipReason("no new or grown days in ClickHouse")
    return SensorResult(
        # The run key names the day and its row count: the same state never runs twice.
        run_requests=[
            RunRequest(run_key=f"{day}:{n}", partition_key=day)
            for day, n in sorted(changed.items())
        ],
        cursor=json.dumps({**seen, **changed}, sort_keys=True),
    )


dataset_refresh_job = define_asset_job(
    "dataset_refresh_job",
    selection=AssetSelection.assets(
        "verified_labels", "synthetic_samples", "train_eval_splits", "dataset_versions"
    ),
    description="Rebuilds the dataset from the latest human decisions.",
)


@sensor(
    job=dataset_refresh_job,
    minimum_interval_seconds=120,
    default_status=DefaultSensorStatus.STOPPED,
    description="Refreshes the dataset once REVIEW_SENSOR_MIN_NEW_REVIEWS decisions came in.",
)
def enough_new_reviews_sensor(
    context: SensorEvaluationContext,
    taxonomy_file: TaxonomyResource,
    review_store: ReviewStoreResource,
) -> SensorResult | SkipReason:
    last_seen = int(context.cursor) if context.cursor else 0
    with review_store.open(taxonomy_file.load()) as store:
        latest = store.last_review_seq()
        new = store.reviews_since(last_seen)  # decisions only: skips and releases do not count
    needed = get_settings().review.sensor_min_new_reviews
    if new < needed:
        return SkipReason(f"{new} new review(s) since the last refresh; waiting for {needed}")
    return SensorResult(run_requests=[RunRequest(run_key=f"reviews:{latest}")], cursor=str(latest))
