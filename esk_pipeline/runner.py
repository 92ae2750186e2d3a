"""The main job, end to end: seed sample logs if asked, then materialise the whole graph.

Runs through a real Dagster instance (DAGSTER_HOME), so every run, materialisation and check
shows up in `dagster dev` afterwards, exactly as if it had been launched from the UI: one run
for all days present in ClickHouse (a single-run partition range), one for the dataset.
"""

import os
import shutil
from collections.abc import Callable
from pathlib import Path

from dagster import (
    AssetKey,
    AssetSelection,
    DagsterInstance,
    ExecuteInProcessResult,
    materialize,
)

from esk_pipeline.pipeline.log_source import LogSource
from esk_pipeline.pipeline.taxonomy import Taxonomy
from esk_pipeline.settings import Settings, get_settings

DAILY_JOB = "daily_labels_job"
# Events still reach the instance (and the UI); the terminal gets warnings only.
_QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


class PipelineRunError(RuntimeError):
    """A step of the main job failed; the message names the run and the failed steps."""


def ensure_dagster_home(project_dir: Path) -> Path:
    """Use DAGSTER_HOME if set, else `.dagster_home/` in the project, with the shipped config."""
    home = Path(os.environ.get("DAGSTER_HOME") or project_dir / ".dagster_home").resolve()
    home.mkdir(parents=True, exist_ok=True)
    shipped = project_dir / "dagster.yaml"
    if shipped.exists() and not (home / "dagster.yaml").exists():
        shutil.copyfile(shipped, home / "dagster.yaml")
    os.environ["DAGSTER_HOME"] = str(home)
    return home


def seed_sample_logs(
    settings: Settings, *, n_rows: int = 6000, seed: int = 42, replace: bool = False
) -> int:
    """Insert the seeded synthetic ESK logs unless the table already has rows (or `replace`)."""
    from esk_pipeline.sample_data import generate_logs

    source = LogSource(settings.clickhouse)
    if source.day_counts() and not replace:
        return 0
    if replace:
        source.drop_table()
    logs = generate_logs(Taxonomy.load(settings.app.taxonomy_path), n_rows=n_rows, seed=seed)
    # Ground truth is for benchmarks only: real logs do not carry it.
    return source.insert_logs(logs.drop(columns=["true_domain"]))


def run_pipeline(
    instance: DagsterInstance, *, log: Callable[[str], None] = print
) -> dict[str, object]:
    """Materialise every day in ClickHouse, then review queue -> ... -> dataset version."""
    from esk_pipeline.definitions import defs

    settings = get_settings()
    days = sorted(LogSource(settings.clickhouse).day_counts())
    if not days:
        raise PipelineRunError("esk_logs has no rows: run `esk-data seed` or ingest a file first")
    first, last = days[0].isoformat(), days[-1].isoformat()

    log(f"days {first} .. {last}: verified labels, raw logs, cleaned texts, labels ...")
    daily = defs.resolve_job_def(DAILY_JOB).execute_in_process(
        instance=instance,
        tags={
            "dagster/asset_partition_range_start": first,
            "dagster/asset_partition_range_end": last,
        },
        run_config=_QUIET,
        raise_on_error=False,
    )
    _raise_if_failed(daily)
    log("review queue, synthetic samples, train/eval splits, dataset version ...")
    downstream = AssetSelection.assets("labels").downstream() - AssetSelection.assets("labels")
    dataset = materialize(
        list(defs.assets or []),
        resources=dict(defs.resources or {}),
        selection=downstream,
        instance=instance,
        run_config=_QUIET,
        raise_on_error=False,
    )
    _raise_if_failed(dataset)

    event = instance.get_latest_materialization_event(AssetKey("dataset_versions"))
    materialization = event.asset_materialization if event else None
    metadata = materialization.metadata if materialization else {}
    return {key: value.value for key, value in metadata.items()} | {
        "days": [d.isoformat() for d in days],
    }


def run_day(day: str, *, run_id: str, requested_by: str) -> bool:
    """Ingest and label one day: the daily job for that partition, on the project's instance,
    so the run shows up in the UI like one the sensor launched."""
    from esk_pipeline.definitions import defs

    ensure_dagster_home(Path.cwd())
    with DagsterInstance.get() as instance:
        result = defs.resolve_job_def(DAILY_JOB).execute_in_process(
            partition_key=day,
            instance=instance,
            run_id=run_id,
            tags={"esk/requested_by": requested_by},
            run_config=_QUIET,
            raise_on_error=False,
        )
    return result.success


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
