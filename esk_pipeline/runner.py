"""A build, end to end: read and clean the days whose logs changed, then rebuild the dataset.

Runs through a real Dagster instance (DAGSTER_HOME), so every run, materialisation and check
shows up in `dagster dev` afterwards, exactly as if it had been launched from the UI: one
`log_etl_job` run for the changed days (a single-run partition range), then one
`dataset_refresh_job` run over every day, from the labels through `dataset_versions`. The
second is the same job `enough_new_reviews_sensor` starts, so a rebuild gives the same version
for the same decisions whoever starts it.

`submit_day_run` is how other processes (the API) start one day's run: through the instance's
run queue and launcher, like the sensor's runs, with one run per day in flight.
"""

import contextlib
import datetime as dt
import logging
import os
import shutil
import socket
import sys
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from dagster import (
    AssetKey,
    AssetRecordsFilter,
    DagsterInstance,
    DagsterRun,
    ExecuteInProcessResult,
    RunsFilter,
)
from dagster._core.errors import DagsterRunAlreadyExists
from dagster._core.remote_origin import InProcessCodeLocationOrigin
from dagster._core.storage.dagster_run import NOT_FINISHED_STATUSES
from dagster._core.storage.tags import PARTITION_NAME_TAG
from dagster._core.types.loadable_target_origin import LoadableTargetOrigin
from dagster._core.workspace.context import BaseWorkspaceRequestContext, WorkspaceProcessContext
from dagster._core.workspace.load_target import InProcessWorkspaceLoadTarget

from esk_pipeline.assets.progress import PROGRESS_LOGGER, PROGRESS_SECONDS
from esk_pipeline.pipeline.fsutil import process_alive
from esk_pipeline.pipeline.log_source import LogSource
from esk_pipeline.pipeline.progress import Progress
from esk_pipeline.pipeline.taxonomy import Taxonomy
from esk_pipeline.settings import Settings, get_settings

DAILY_JOB = "daily_labels_job"
ETL_JOB = "log_etl_job"
DATASET_JOB = "dataset_refresh_job"
# The code location's name in workspace.yaml (and of `-m esk_pipeline`).
LOCATION_NAME = "esk_pipeline"
_RUN_ID_NAMESPACE = uuid.UUID("6f1c3e0a-5d7b-4f1e-9c52-0b8e7a4d2c31")
# Events still reach the instance (and the UI); the terminal gets warnings only.
_QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
# In-process runs carry the process that runs them, so a later `esk-data` can tell a run whose
# process was killed (it stays STARTED for ever otherwise) and mark it failed.
RUNNER_HOST_TAG = "esk/runner_host"
RUNNER_PID_TAG = "esk/runner_pid"


class PipelineRunError(RuntimeError):
    """A step of the main job failed; the message names the run and the failed steps."""


def ensure_dagster_home(project_dir: Path) -> Path:
    """Use DAGSTER_HOME if set, else `.dagster_home/` in the project, with the shipped config."""
    home = Path(os.environ.get("DAGSTER_HOME") or project_dir / ".dagster_home").resolve()
    home.mkdir(parents=True, exist_ok=True)
    # Not in the project folder itself: `dagster dev` warns about a dagster.yaml there that
    # DAGSTER_HOME does not point at, though this very file is the one copied into it.
    shipped = project_dir / "deploy" / "local" / "dagster.yaml"
    if shipped.exists() and not (home / "dagster.yaml").exists():
        shutil.copyfile(shipped, home / "dagster.yaml")
    os.environ["DAGSTER_HOME"] = str(home)
    return home


def seed_sample_logs(
    settings: Settings,
    *,
    n_rows: int = 6000,
    seed: int = 42,
    replace: bool = False,
    progress: Callable[[str], None] | None = None,
) -> int:
    """Insert the seeded synthetic ESK logs unless the table already has rows (or `replace`);
    `progress` receives progress lines while the rows are made and inserted."""
    from esk_pipeline.sample_data import generate_logs

    source = LogSource(settings.clickhouse)
    if source.day_counts() and not replace:
        return 0
    if replace:
        source.drop_table()
    taxonomy = Taxonomy.load(settings.app.taxonomy_path)
    with Progress(
        n_rows,
        description="seed",
        unit="rows",
        callback=progress or _ignore,
        every_seconds=PROGRESS_SECONDS,
    ) as reporter:
        logs = generate_logs(taxonomy, n_rows=n_rows, seed=seed, progress=reporter)
        # Ground truth is for benchmarks only: real logs do not carry it.
        return source.insert_logs(logs.drop(columns=["true_domain"]))


def _ignore(line: str) -> None:
    """A progress callback for callers that want no lines."""


def run_pipeline(
    instance: DagsterInstance,
    *,
    settings: Settings | None = None,
    log: Callable[[str], None] = print,
    days: Sequence[dt.date] | None = None,
    progress: Callable[[str], None] | None = None,
) -> dict[str, object]:
    """Clean every day (of `days`, default all in ClickHouse) whose row count changed, then
    rebuild the dataset over those days; returns the `dataset_versions` metadata and the days.
    `progress` receives the long steps' progress lines (`assets.progress`) as they come."""
    from esk_pipeline.definitions import build_defs

    settings = settings or get_settings()
    defs = build_defs(settings)
    counts = {d.isoformat(): n for d, n in LogSource(settings.clickhouse).day_counts().items()}
    if days is not None:
        wanted = {d.isoformat() for d in days}
        counts = {d: n for d, n in counts.items() if d in wanted}
    if not counts:
        raise PipelineRunError("esk_logs has no rows: run `esk-data seed` or ingest a file first")
    keys = sorted(counts)
    for run_id in fail_runs_of_dead_runners(instance):
        log(f"run {run_id} was left unfinished by a process that is gone: marked failed")
    runner = {RUNNER_HOST_TAG: socket.gethostname(), RUNNER_PID_TAG: str(os.getpid())}
    materialized = materialized_row_counts(instance, keys)
    changed = [d for d in keys if materialized.get(d) != counts[d]]
    with _lines_of(PROGRESS_LOGGER, progress):
        if changed:
            log(f"days {changed[0]} .. {changed[-1]}: raw logs, cleaned texts ...")
            _execute(defs, ETL_JOB, instance, range_tags(changed) | runner)
        log(f"days {keys[0]} .. {keys[-1]}: labels, trust, review queue, splits, version ...")
        _execute(defs, DATASET_JOB, instance, range_tags(keys) | runner)

    event = instance.get_latest_materialization_event(AssetKey("dataset_versions"))
    materialization = event.asset_materialization if event else None
    metadata = materialization.metadata if materialization else {}
    return {key: value.value for key, value in metadata.items()} | {"days": keys}


class _CallbackHandler(logging.Handler):
    def __init__(self, callback: Callable[[str], None]) -> None:
        super().__init__()
        self.callback = callback

    def emit(self, record: logging.LogRecord) -> None:
        self.callback(record.getMessage())


@contextlib.contextmanager
def _lines_of(logger_name: str, callback: Callable[[str], None] | None) -> Iterator[None]:
    """While inside, the messages of the logger `logger_name` go to `callback` too."""
    if callback is None:
        yield
        return
    logger, handler = logging.getLogger(logger_name), _CallbackHandler(callback)
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)


def range_tags(days: list[str]) -> dict[str, str]:
    """Tags that make one run cover the days from the first to the last of `days`."""
    return {
        "dagster/asset_partition_range_start": min(days),
        "dagster/asset_partition_range_end": max(days),
    }


def materialized_row_counts(instance: DagsterInstance, days: list[str]) -> dict[str, int]:
    """The row count each day's latest raw_logs materialization recorded (if it recorded one)."""
    counts = {}
    for day in days:
        records = instance.fetch_materializations(
            AssetRecordsFilter(asset_key=AssetKey("raw_logs"), asset_partitions=[day]), limit=1
        ).records
        metadata = records[0].asset_materialization.metadata if records else {}
        if "dagster/row_count" in metadata:
            counts[day] = int(metadata["dagster/row_count"].value)
    return counts


def labelled_days(instance: DagsterInstance) -> list[str]:
    """The days that have a cleaned_texts materialization: what a dataset rebuild covers."""
    return sorted(instance.get_materialized_partitions(AssetKey("cleaned_texts")))


def _execute(defs, job_name: str, instance: DagsterInstance, tags: dict[str, str]) -> None:
    result = defs.resolve_job_def(job_name).execute_in_process(
        instance=instance, tags=tags, run_config=_QUIET, raise_on_error=False
    )
    _raise_if_failed(result)


def fail_runs_of_dead_runners(instance: DagsterInstance) -> list[str]:
    """Mark failed the unfinished in-process runs of this machine whose process is gone (killed
    with kill -9, or the machine restarted); returns their run ids. A run of a live process,
    or of another machine, is left alone."""
    host = socket.gethostname()
    orphans = []
    for run in instance.get_runs(RunsFilter(statuses=NOT_FINISHED_STATUSES)):
        pid = run.tags.get(RUNNER_PID_TAG)
        if run.tags.get(RUNNER_HOST_TAG) != host or pid is None or process_alive(int(pid)):
            continue
        instance.report_run_failed(
            run, f"the process that ran it (pid {pid} on {host}) is gone; marked failed"
        )
        orphans.append(run.run_id)
    return orphans


def submit_day_run(day: str, *, requested_by: str) -> tuple[str, str]:
    """Queue the daily job for one day on the project's instance: (run id, status).

    The run goes through the instance's run coordinator and launcher exactly like one the
    sensor or the UI starts (the daemon dequeues it). While a run of the day is queued or
    running, that run is the answer and nothing new is made. Two processes racing past that
    check derive the same run id (the day and how many runs it has had), and run storage
    refuses the second copy, so the rule holds across processes.
    """
    ensure_dagster_home(Path.cwd())
    with DagsterInstance.get() as instance:
        active = active_day_runs(instance).get(day)
        if active is not None:
            return active.run_id, active.status.value
        runs_so_far = instance.get_runs_count(
            RunsFilter(job_name=DAILY_JOB, tags={PARTITION_NAME_TAG: day})
        )
        run_id = str(uuid.uuid5(_RUN_ID_NAMESPACE, f"{DAILY_JOB}:{day}:{runs_so_far}"))
        tags = {PARTITION_NAME_TAG: day, "esk/requested_by": requested_by}
        try:
            with _code_location_workspace(instance) as workspace:
                _create_run(instance, workspace, run_id, tags)
                run = instance.submit_run(run_id, workspace)
        except DagsterRunAlreadyExists:
            run = instance.get_run_by_id(run_id)
            assert run is not None
    return run.run_id, run.status.value


def active_day_runs(instance: DagsterInstance) -> dict[str, DagsterRun]:
    """Daily-job runs of one day not finished yet (queued too), by day; the sensor uses this
    too. Range runs (single-run backfills) carry no single day and are not counted."""
    runs = instance.get_runs(RunsFilter(job_name=DAILY_JOB, statuses=NOT_FINISHED_STATUSES))
    return {run.tags[PARTITION_NAME_TAG]: run for run in runs if PARTITION_NAME_TAG in run.tags}


@contextlib.contextmanager
def _code_location_workspace(instance: DagsterInstance) -> Iterator[BaseWorkspaceRequestContext]:
    """This code location, loaded in-process under its workspace name (as `dagster job launch`
    does), so the daemon finds the submitted run's job in its own copy of the location."""
    origin = InProcessCodeLocationOrigin(
        LoadableTargetOrigin(
            executable_path=sys.executable,
            module_name="esk_pipeline.definitions",
            attribute="defs",
            working_directory=str(Path.cwd()),
        ),
        location_name=LOCATION_NAME,
    )
    with WorkspaceProcessContext(instance, InProcessWorkspaceLoadTarget(origin)) as context:
        yield context.create_request_context()


def _create_run(
    instance: DagsterInstance,
    workspace: BaseWorkspaceRequestContext,
    run_id: str,
    tags: dict[str, str],
) -> DagsterRun:
    location = workspace.get_code_location(LOCATION_NAME)
    (repository,) = location.get_repositories().values()
    job = repository.get_full_job(DAILY_JOB)
    plan = location.get_execution_plan(
        job, {}, step_keys_to_execute=None, known_state=None, instance=instance
    ).execution_plan_snapshot
    return instance.create_run(
        job_name=DAILY_JOB,
        run_id=run_id,
        run_config={},
        resolved_op_selection=None,
        step_keys_to_execute=plan.step_keys_to_execute,
        op_selection=None,
        status=None,
        root_run_id=None,
        parent_run_id=None,
        tags={**job.tags, **tags},
        job_snapshot=job.job_snapshot,
        execution_plan_snapshot=plan,
        parent_job_snapshot=job.parent_job_snapshot,
        remote_job_origin=job.get_remote_origin(),
        job_code_origin=job.get_python_origin(),
        asset_selection=None,
        asset_check_selection=None,
        asset_graph=repository.asset_graph,
    )


def run_status(run_id: str) -> str | None:
    """A run's Dagster status (QUEUED, STARTED, SUCCESS, FAILURE, ...), None if unknown."""
    ensure_dagster_home(Path.cwd())
    with DagsterInstance.get() as instance:
        run = instance.get_run_by_id(run_id)
    return run.status.value if run else None


def _raise_if_failed(result: ExecuteInProcessResult) -> None:
    if result.success:
        return
    failures = result.get_step_failure_events()
    messages = [
        _root_cause(e.step_failure_data.error) for e in failures if e.step_failure_data.error
    ]
    raise PipelineRunError(
        f"run {result.run_id} failed at {', '.join(e.step_key for e in failures) or 'a step'}: "
        f"{'; '.join(messages)} (details: `dagster dev`, Runs)"
    )


def _root_cause(error) -> str:
    """The innermost error's message: what went wrong, not Dagster's wrapper around it."""
    while error.cause is not None:
        error = error.cause
    return error.message.strip()
