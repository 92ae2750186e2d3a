"""Sensors: new days in ClickHouse, an edited taxonomy, and enough new human reviews."""

import json

from dagster import (
    AssetKey,
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
from esk_pipeline.pipeline.taxonomy import TaxonomyError
from esk_pipeline.resources.clickhouse import ClickHouseResource
from esk_pipeline.resources.stores import ReviewStoreResource
from esk_pipeline.resources.taxonomy import TaxonomyResource
from esk_pipeline.settings import get_settings

daily_labels_job = define_asset_job(
    "daily_labels_job",
    # The taxonomy and the human decisions are observed first (observations are events, so
    # days in parallel never race): labels record the versions they were made with.
    selection=AssetSelection.assets(
        "taxonomy", "verified_labels", "raw_logs", "cleaned_texts", "rejected_texts", "labels"
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


taxonomy_observation_job = define_asset_job(
    "taxonomy_observation_job",
    selection=AssetSelection.assets("taxonomy"),
    description="Records the taxonomy file's content hash as the taxonomy's data version.",
)


@sensor(
    job=taxonomy_observation_job,
    minimum_interval_seconds=30,
    default_status=DefaultSensorStatus.RUNNING,
    description="Observes the taxonomy when its content changes: the labels made with the old "
    "one then show as stale.",
)
def taxonomy_changed_sensor(
    context: SensorEvaluationContext, taxonomy_file: TaxonomyResource
) -> RunRequest | SkipReason:
    try:
        fingerprint = taxonomy_file.load().fingerprint
    except TaxonomyError as exc:
        return SkipReason(f"the taxonomy cannot be used, so it is not observed: {exc}")
    records = context.instance.fetch_observations(AssetKey("taxonomy"), limit=1).records
    last = records[0] if records else None
    if last is not None and last.asset_observation.data_version == fingerprint:
        return SkipReason("the taxonomy has not changed since it was last observed")
    # Keyed on the last observation too: going back to an earlier content is a change again.
    since = last.storage_id if last is not None else 0
    return RunRequest(run_key=f"taxonomy:{since}:{fingerprint}")


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
