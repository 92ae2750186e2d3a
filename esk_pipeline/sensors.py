"""Sensors: new days in ClickHouse, an edited taxonomy, and enough new human reviews."""

import json

from dagster import (
    AssetKey,
    DefaultSensorStatus,
    RunRequest,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)

from esk_pipeline.assets.ingest import day_observation
from esk_pipeline.pipeline.taxonomy import TaxonomyError
from esk_pipeline.resources.clickhouse import ClickHouseResource
from esk_pipeline.resources.stores import ReviewStoreResource
from esk_pipeline.resources.taxonomy import TaxonomyResource
from esk_pipeline.runs import (
    DAILY_JOB,
    DATASET_JOB,
    TAXONOMY_JOB,
    active_day_runs,
    dataset_refreshes_in_flight,
    labelled_days,
    materialized_row_counts,
    range_tags,
)


@sensor(
    job_name=DAILY_JOB,
    minimum_interval_seconds=60,
    default_status=DefaultSensorStatus.STOPPED,
    description="Observes esk_logs (each day's row count, when it changed) and requests a run "
    "for each day whose row count in ClickHouse differs from the count its last raw_logs "
    "materialization recorded, unless a run of that day is in flight.",
)
def new_log_days_sensor(
    context: SensorEvaluationContext, clickhouse: ClickHouseResource
) -> SensorResult | SkipReason:
    # The cursor only saves instance look-ups: a day whose count it has seen is not re-checked.
    seen: dict[str, int] = json.loads(context.cursor) if context.cursor else {}
    partitions = context.repository_def.get_job(DAILY_JOB).partitions_def
    valid_keys = set(partitions.get_partition_keys(dynamic_partitions_store=None))
    current = {day.isoformat(): n for day, n in clickhouse.get_source().day_counts().items()}
    outside = sorted(set(current) - valid_keys)
    if outside:
        context.log.warning(
            f"days before APP_PARTITIONS_START_DATE are ignored: {outside[:5]}"
            + (f" and {len(outside) - 5} more" if len(outside) > 5 else "")
        )
    candidates = {day: n for day, n in current.items() if day in valid_keys and seen.get(day) != n}
    # Only days whose count the cursor has not seen are observed (not every day on every tick).
    observations = [day_observation(day, n) for day, n in sorted(candidates.items())]
    in_flight = active_day_runs(context.instance)
    materialized = materialized_row_counts(context.instance, sorted(candidates))
    to_run = {
        day: n
        for day, n in candidates.items()
        if materialized.get(day) != n and day not in in_flight
    }
    cursor = json.dumps(
        {**seen, **{d: n for d, n in candidates.items() if d not in in_flight}}, sort_keys=True
    )
    if not to_run:
        return SensorResult(
            skip_reason="every day in ClickHouse is materialized with its current row count "
            "or has a run in flight",
            cursor=cursor,
            asset_events=observations,
        )
    return SensorResult(
        asset_events=observations,
        # The run key names the day and its row count: the same state never runs twice.
        run_requests=[
            RunRequest(run_key=f"{day}:{n}", partition_key=day) for day, n in sorted(to_run.items())
        ],
        cursor=cursor,
    )


@sensor(
    job_name=TAXONOMY_JOB,
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


@sensor(
    job_name=DATASET_JOB,
    minimum_interval_seconds=120,
    default_status=DefaultSensorStatus.STOPPED,
    description="Refreshes the dataset once REVIEW_SENSOR_MIN_NEW_REVIEWS decisions came in, "
    "unless a refresh is queued or running (its decisions then wait for the next tick).",
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
    needed = review_store.sensor_min_new_reviews
    if new < needed:
        return SkipReason(f"{new} new review(s) since the last refresh; waiting for {needed}")
    days = labelled_days(context.instance)
    if not days:
        return SkipReason("no day is labelled yet: nothing to rebuild")
    if dataset_refreshes_in_flight(context.instance):
        # The cursor stays: these reviews are counted again once that refresh is over.
        return SkipReason(f"{new} new review(s); a dataset refresh is queued or running")
    return SensorResult(
        run_requests=[RunRequest(run_key=f"reviews:{latest}", tags=range_tags(days))],
        cursor=str(latest),
    )
