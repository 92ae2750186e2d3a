"""Sensors: new or changed days in ClickHouse (or a changed cleaning), an edited taxonomy, and
enough new human reviews."""

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

from esk_pipeline.assets.ingest import NO_ROWS, cleaned_from, cleaning_version, day_observation
from esk_pipeline.pipeline.taxonomy import TaxonomyError
from esk_pipeline.resources.clickhouse import ClickHouseResource
from esk_pipeline.resources.etl import ETLResource
from esk_pipeline.resources.stores import ReviewStoreResource
from esk_pipeline.resources.taxonomy import TaxonomyResource
from esk_pipeline.runs import (
    DAILY_JOB,
    DATASET_JOB,
    TAXONOMY_JOB,
    active_day_runs,
    cleaned_days,
    cleaning_ranges_in_flight,
    dataset_refreshes_in_flight,
    labelled_days,
    range_tags,
)


@sensor(
    job_name=DAILY_JOB,
    minimum_interval_seconds=60,
    default_status=DefaultSensorStatus.STOPPED,
    description="Observes esk_logs (each day's row count and content print, when they changed) "
    "and requests a run for each day whose cleaned texts were made from other rows or another "
    "cleaning than ClickHouse holds and the settings say now, unless a run of that day (or "
    "cleaning a range of days holding it) is in flight.",
)
def new_log_days_sensor(
    context: SensorEvaluationContext, clickhouse: ClickHouseResource, etl: ETLResource
) -> SensorResult | SkipReason:
    # The cursor only saves instance look-ups: a day whose print it has seen, with the same
    # cleaning, is not re-checked unless a run of it was in flight then ("recheck"). (A cursor
    # of an earlier release, row counts by day, holds no "days": every day is checked once.)
    seen = json.loads(context.cursor) if context.cursor else {}
    seen_days: dict[str, str] = seen.get("days", {})
    recheck = set(seen.get("recheck", []))
    config = etl.config()
    cleaning = cleaning_version(config)
    partitions = context.repository_def.get_job(DAILY_JOB).partitions_def
    valid_keys = set(partitions.get_partition_keys(dynamic_partitions_store=None))
    prints = {day.isoformat(): p for day, p in clickhouse.get_source().day_prints().items()}
    if not prints:
        # As the runner: an emptied or missing table is no reason to clean every day as empty.
        return SensorResult(
            skip_reason="esk_logs holds no rows (or does not exist): nothing is cleaned",
            cursor=context.cursor,
        )
    outside = sorted(set(prints) - valid_keys)
    if outside:
        context.log.warning(
            f"days before APP_PARTITIONS_START_DATE are ignored: {outside[:5]}"
            + (f" and {len(outside) - 5} more" if len(outside) > 5 else "")
        )
    # A day cleaned before whose rows are all gone now is to be cleaned as a day of no rows.
    prints |= dict.fromkeys(set(labelled_days(context.instance)) - set(prints), NO_ROWS)
    current = {day: str(p) for day, p in prints.items() if day in valid_keys}
    # Only days whose print the cursor has not seen are observed (not every day on every tick).
    observations = [
        day_observation(day, prints[day])
        for day, p in sorted(current.items())
        if seen_days.get(day) != p
    ]
    new_cleaning = seen.get("cleaning") != cleaning
    candidates = {
        d: p for d, p in current.items() if new_cleaning or seen_days.get(d) != p or d in recheck
    }
    # A day is in flight with a run of it, or inside the range of a run cleaning many days
    # (`esk-data build`'s ETL runs carry no single-day tag).
    ranges = cleaning_ranges_in_flight(context.instance)
    in_flight = set(active_day_runs(context.instance)) | {
        day for day in candidates if any(first <= day <= last for first, last in ranges)
    }
    cleaned = cleaned_days(context.instance, sorted(candidates))
    to_run = {
        day: cleaned[day].storage_id if day in cleaned else 0
        for day, p in candidates.items()
        if day not in in_flight
        and (day not in cleaned or cleaned[day].made_from != cleaned_from(p, config))
    }
    # A day to check with a run in flight is checked again by the next tick (its print is
    # kept: it is not observed again while esk_logs holds the same rows).
    waiting = in_flight & candidates.keys()
    days = {**seen_days, **candidates}
    cursor = json.dumps(
        {"cleaning": cleaning, "days": days, "recheck": sorted(waiting)}, sort_keys=True
    )
    if not to_run:
        return SensorResult(
            skip_reason="every day in ClickHouse is cleaned from its current rows with the "
            "current cleaning, or has a run in flight",
            cursor=cursor,
            asset_events=observations,
        )
    return SensorResult(
        asset_events=observations,
        # The run key names the day, what it would be made from and the day's last cleaning:
        # the same state never runs twice, and going back to an earlier one runs again.
        run_requests=[
            RunRequest(run_key=f"{day}:{current[day]}:{cleaning}:{since}", partition_key=day)
            for day, since in sorted(to_run.items())
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
