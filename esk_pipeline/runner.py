"""A build, end to end: read and clean the days whose logs or cleaning changed, then rebuild the
dataset.

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
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from dagster import (
    AssetKey,
    DagsterInstance,
    ExecuteInProcessResult,
    HookContext,
    RunsFilter,
    failure_hook,
    success_hook,
)

from esk_pipeline._dagster_private import queue_run
from esk_pipeline.assets.ingest import NO_ROWS, cleaned_from
from esk_pipeline.assets.labeling import RELABEL_TAG
from esk_pipeline.assets.progress import PROGRESS_LOGGER, PROGRESS_SECONDS
from esk_pipeline.definitions import build_defs
from esk_pipeline.pipeline.log_source import IngestRecord, LogSource
from esk_pipeline.pipeline.memory import release_freed_memory
from esk_pipeline.pipeline.progress import Progress
from esk_pipeline.pipeline.taxonomy import Taxonomy
from esk_pipeline.runs import (
    DAILY_JOB,
    DATASET_JOB,
    ETL_JOB,
    PARTITION_TAG,
    RUNNING,
    active_day_runs,
    cleaned_days,
    dataset_refreshes_in_flight,
    fail_runs_of_dead_runners,
    labelled_days,
    range_tags,
    runner_tags,
)
from esk_pipeline.settings import Settings, get_settings

# The code location's name in workspace.yaml (and of `-m esk_pipeline`).
LOCATION_NAME = "esk_pipeline"
_RUN_ID_NAMESPACE = uuid.UUID("6f1c3e0a-5d7b-4f1e-9c52-0b8e7a4d2c31")
# Events still reach the instance (and the UI); the terminal gets warnings only.
_QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


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
    batch_rows: int | None = None,
) -> int:
    """Insert the seeded synthetic ESK logs unless the table already has rows (or `replace`);
    `progress` receives progress lines while the rows are made and inserted.

    The sample goes in `batch_rows` (default `SEED_BATCH_ROWS`) at a time, each batch under a
    deduplication token of its own, between a "started" and a "done" record in the ingest
    ledger. A seed cut short (killed between batches) is finished by the next call with the
    same arguments, which inserts every batch again and ClickHouse keeps each once. (A table
    emptied by hand keeps its tokens: reseed it with `replace`.)
    """
    from esk_pipeline.sample_data import SEED_BATCH_ROWS, generate_log_batches

    batch_rows = batch_rows or SEED_BATCH_ROWS
    key = f"seed-{seed}-{n_rows}-{batch_rows}"
    source = LogSource(settings.clickhouse)
    if replace:
        source.drop_table()
    elif source.day_counts() and (
        _seed_mark(source, key, "done") or not _seed_mark(source, key, "started")
    ):
        return 0
    _mark_seed(source, key, "started")
    taxonomy = Taxonomy.load(settings.app.taxonomy_path)
    with Progress(
        n_rows,
        description="seed",
        unit="rows",
        callback=progress or _ignore,
        every_seconds=PROGRESS_SECONDS,
    ) as reporter:
        # One batch at a time, made and inserted: memory does not grow with n_rows.
        batches = generate_log_batches(
            taxonomy, n_rows=n_rows, batch_rows=batch_rows, seed=seed, progress=reporter
        )
        inserted = sum(
            # Ground truth is for benchmarks only: real logs do not carry it.
            source.insert_logs(logs.drop(columns=["true_domain"]), dedup_token=f"{key}-{i}")
            for i, logs in enumerate(batches)
        )
    _mark_seed(source, key, "done")
    return inserted


_SEED_CALLER = "esk-data seed"


def _seed_mark(source: LogSource, key: str, stage: str) -> bool:
    return source.find_ingest(caller=_SEED_CALLER, idempotency_key=f"{key}:{stage}") is not None


def _mark_seed(source: LogSource, key: str, stage: str) -> None:
    source.record_ingest(
        IngestRecord(
            sha256="",
            caller=_SEED_CALLER,
            idempotency_key=f"{key}:{stage}",
            answer="",
            ingested_at=dt.datetime.now(dt.UTC),
        )
    )


def _ignore(line: str) -> None:
    """A progress callback for callers that want no lines."""


def run_pipeline(
    instance: DagsterInstance,
    *,
    settings: Settings | None = None,
    log: Callable[[str], None] = print,
    days: Sequence[dt.date] | None = None,
    progress: Callable[[str], None] | None = None,
    relabel: bool = False,
) -> dict[str, object]:
    """Clean every day (of `days`, default all in ClickHouse) whose rows or cleaning changed
    since it was last cleaned (`assets.ingest.cleaned_from`), then rebuild the dataset over
    those days; returns the `dataset_versions` metadata and the days.
    `progress` receives the long steps' progress lines (`assets.progress`) as they come.
    `relabel`: refit the labelling model and label every day again (`RELABEL_TAG`)."""
    settings = settings or get_settings()
    for run_id in fail_runs_of_dead_runners(instance):
        log(f"run {run_id} was left unfinished by a process that is gone: marked failed")
    # A queued one waits for this one in the run queue (`DATASET_REFRESH_TAG`).
    running = dataset_refreshes_in_flight(instance, RUNNING)
    if running:
        raise PipelineRunError(
            f"a dataset refresh is running (run {', '.join(running)}): two would write the same "
            "dataset folder; run this again when it has finished"
        )
    defs = build_defs(settings)
    source = LogSource(settings.clickhouse)
    asked = None if days is None else set(days)
    bounds = (min(asked), max(asked)) if asked else ()
    prints = {d: p for d, p in source.day_prints(*bounds).items() if asked is None or d in asked}
    if not prints:
        raise PipelineRunError("esk_logs has no rows: run `esk-data seed` or ingest a file first")
    # A day cleaned before whose rows are all gone now is cleaned again, as a day of no rows.
    gone = {dt.date.fromisoformat(d) for d in labelled_days(instance)} - set(prints)
    prints |= dict.fromkeys(gone if asked is None else gone & asked, NO_ROWS)
    keys = sorted(d.isoformat() for d in prints)
    runner = runner_tags()
    etl = defs.resources["etl"].config()
    wanted = {d.isoformat(): cleaned_from(str(p), etl) for d, p in prints.items()}
    cleaned = cleaned_days(instance, keys)
    # A day cleaned before days recorded what they were made from is cleaned once more.
    changed = [d for d in keys if d not in cleaned or cleaned[d].made_from != wanted[d]]
    with _lines_of(PROGRESS_LOGGER, progress):
        for block in _adjacent_runs(changed, keys):
            log(f"days {block[0]} .. {block[-1]}: raw logs, cleaned texts ...")
            _execute(defs, ETL_JOB, instance, range_tags(block) | runner)
        log(f"days {keys[0]} .. {keys[-1]}: labels, trust, review queue, splits, version ...")
        forced = {RELABEL_TAG: "true"} if relabel else {}
        _execute(defs, DATASET_JOB, instance, range_tags(keys) | runner | forced)

    event = instance.get_latest_materialization_event(AssetKey("dataset_versions"))
    materialization = event.asset_materialization if event else None
    metadata = materialization.metadata if materialization else {}
    return {key: value.value for key, value in metadata.items()} | {"days": keys}


def _adjacent_runs(changed: list[str], keys: list[str]) -> list[list[str]]:
    """`changed` (sorted, of the sorted `keys`) cut into runs of days next to each other in
    `keys`: an ETL run each, since a range run cleans every day of its range, and an unchanged
    day between two changed ones would be read and cleaned again."""
    position = {day: i for i, day in enumerate(keys)}
    blocks: list[list[str]] = []
    for day in changed:
        if blocks and position[day] == position[blocks[-1][-1]] + 1:
            blocks[-1].append(day)
        else:
            blocks.append([day])
    return blocks


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


@success_hook
def _release_memory_after_step(context: HookContext) -> None:
    release_freed_memory()


@failure_hook
def _release_memory_after_failed_step(context: HookContext) -> None:
    release_freed_memory()


def _execute(defs, job_name: str, instance: DagsterInstance, tags: dict[str, str]) -> None:
    """Every step of the job in this process, one after another. The next step would start
    from whatever the allocators kept of what a step freed (a run launched by the daemon runs
    each step in a process of its own instead), so a hook gives it back after every step."""
    job = defs.resolve_job_def(job_name).with_hooks(
        {_release_memory_after_step, _release_memory_after_failed_step}
    )
    result = job.execute_in_process(
        instance=instance, tags=tags, run_config=_QUIET, raise_on_error=False
    )
    _raise_if_failed(result)


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
            RunsFilter(job_name=DAILY_JOB, tags={PARTITION_TAG: day})
        )
        run = queue_run(
            instance,
            module_name="esk_pipeline.definitions",
            location_name=LOCATION_NAME,
            job_name=DAILY_JOB,
            run_id=str(uuid.uuid5(_RUN_ID_NAMESPACE, f"{DAILY_JOB}:{day}:{runs_so_far}")),
            tags={PARTITION_TAG: day, "esk/requested_by": requested_by},
        )
    return run.run_id, run.status.value


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
