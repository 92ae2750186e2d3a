"""What the Dagster instance knows about this project's runs and materialisations.

The sensors, the runner and the API ask the same questions (which days have cleaned texts,
what a day's cleaned texts were made from, which day runs are in flight), so the answers live
here, below all of them.
"""

import os
import socket
from dataclasses import dataclass

from dagster import (
    AssetKey,
    AssetRecordsFilter,
    DagsterInstance,
    DagsterRun,
    DagsterRunStatus,
    RunsFilter,
)

from esk_pipeline.assets.ingest import MADE_FROM
from esk_pipeline.pipeline.fsutil import owner_alive, process_started

DAILY_JOB = "daily_labels_job"
ETL_JOB = "log_etl_job"
DATASET_JOB = "dataset_refresh_job"
TAXONOMY_JOB = "taxonomy_observation_job"
# The tag every dataset refresh carries: the run queue launches one such run at a time.
DATASET_REFRESH_TAG = "esk/dataset_refresh"
# The tag Dagster puts on a run of one partition, and those of a run over a range of them.
PARTITION_TAG = "dagster/partition"
RANGE_START = "dagster/asset_partition_range_start"
RANGE_END = "dagster/asset_partition_range_end"
# In-process runs carry the process that runs them, so a later `esk-data` can tell a run whose
# process was killed (it stays STARTED for ever otherwise) and mark it failed.
RUNNER_HOST_TAG = "esk/runner_host"
RUNNER_PID_TAG = "esk/runner_pid"
# ... and when that process started: a later process given the same id is not the runner.
RUNNER_STARTED_TAG = "esk/runner_started"
# A run executing now (a queued one has not started: the run queue holds it behind others).
RUNNING = [DagsterRunStatus.STARTING, DagsterRunStatus.STARTED, DagsterRunStatus.CANCELING]
UNFINISHED = [
    DagsterRunStatus.QUEUED,
    DagsterRunStatus.NOT_STARTED,
    DagsterRunStatus.STARTING,
    DagsterRunStatus.STARTED,
    DagsterRunStatus.SUSPENDED,
    DagsterRunStatus.CANCELING,
]


def range_tags(days: list[str]) -> dict[str, str]:
    """Tags that make one run cover the days from the first to the last of `days`."""
    return {RANGE_START: min(days), RANGE_END: max(days)}


@dataclass(frozen=True)
class CleanedDay:
    """A day's latest cleaned_texts materialization: its place in the event log, and what it
    recorded it was made from (`assets.ingest.cleaned_from`; {} if it recorded nothing)."""

    storage_id: int
    made_from: dict[str, str]


def cleaned_days(instance: DagsterInstance, days: list[str]) -> dict[str, CleanedDay]:
    """The days of `days` that have a cleaned_texts materialization: its latest."""
    found = {}
    for day in days:
        records = instance.fetch_materializations(
            AssetRecordsFilter(asset_key=AssetKey("cleaned_texts"), asset_partitions=[day]),
            limit=1,
        ).records
        if records:
            metadata = records[0].asset_materialization.metadata
            made_from = metadata[MADE_FROM].value if MADE_FROM in metadata else {}
            found[day] = CleanedDay(records[0].storage_id, made_from)
    return found


def labelled_days(instance: DagsterInstance) -> list[str]:
    """The days that have a cleaned_texts materialization: what a dataset rebuild covers."""
    return sorted(instance.get_materialized_partitions(AssetKey("cleaned_texts")))


def active_day_runs(instance: DagsterInstance) -> dict[str, DagsterRun]:
    """Daily-job runs of one day not finished yet (queued too), by day. Range runs
    (single-run backfills) carry no single day and are not counted."""
    runs = instance.get_runs(RunsFilter(job_name=DAILY_JOB, statuses=UNFINISHED))
    return {run.tags[PARTITION_TAG]: run for run in runs if PARTITION_TAG in run.tags}


def cleaning_ranges_in_flight(instance: DagsterInstance) -> list[tuple[str, str]]:
    """The (first, last) day of each range run that cleans days (the ETL and daily jobs over
    `range_tags`, as `esk-data build` runs them) not finished yet (queued too)."""
    return [
        (run.tags[RANGE_START], run.tags[RANGE_END])
        for run in instance.get_runs(RunsFilter(statuses=UNFINISHED))
        if run.job_name in (ETL_JOB, DAILY_JOB) and {RANGE_START, RANGE_END} <= run.tags.keys()
    ]


def dataset_refreshes_in_flight(
    instance: DagsterInstance, statuses: list[DagsterRunStatus] = UNFINISHED
) -> list[str]:
    """The ids of dataset refreshes queued or running (by default; else in `statuses`): one
    at a time, since two would write the same trust parts, split cache and dataset folder."""
    return instance.get_run_ids(RunsFilter(job_name=DATASET_JOB, statuses=statuses))


def fail_runs_of_dead_runners(instance: DagsterInstance) -> list[str]:
    """Mark failed the unfinished in-process runs of this machine whose process is gone (killed
    with kill -9, or the machine restarted, even where its id now belongs to another
    process: `fsutil.owner_alive`); returns their run ids. A run of a live process, or of
    another machine, is left alone."""
    host = socket.gethostname()
    orphans = []
    for run in instance.get_runs(RunsFilter(statuses=UNFINISHED)):
        pid = run.tags.get(RUNNER_PID_TAG)
        if (
            run.tags.get(RUNNER_HOST_TAG) != host
            or pid is None
            or owner_alive(int(pid), run.tags.get(RUNNER_STARTED_TAG))
        ):
            continue
        instance.report_run_failed(
            run, f"the process that ran it (pid {pid} on {host}) is gone; marked failed"
        )
        orphans.append(run.run_id)
    return orphans


def runner_tags() -> dict[str, str]:
    """The tags naming this process as a run's runner (`fail_runs_of_dead_runners`)."""
    tags = {RUNNER_HOST_TAG: socket.gethostname(), RUNNER_PID_TAG: str(os.getpid())}
    started = process_started(os.getpid())
    return tags | ({RUNNER_STARTED_TAG: started} if started is not None else {})
