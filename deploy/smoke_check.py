"""The Python half of deploy/cluster-smoke.sh: what is easier to ask Dagster, S3 and the
version store in Python than in shell. Every subcommand reads the same environment as the
cluster (DAGSTER_HOME, APP_*, AWS_*, CLICKHOUSE_*).

    smoke_check.py days                 the days in ClickHouse, comma-separated
    smoke_check.py bucket s3://name     create the bucket
    smoke_check.py celery-config SRC DST SECONDS
                                        the worker config SRC with a visibility timeout of
                                        SECONDS (and a scan for overdue tasks every 10 s)
    smoke_check.py busy WORKER SECONDS  wait until WORKER runs a step; print run and step
    smoke_check.py wait N SECONDS       wait for N runs to finish; fail if any did not succeed,
                                        naming each such run, its day and its step
    smoke_check.py compare REF_STORAGE  check the cluster's work and print the summary line
"""

from __future__ import annotations

import hashlib
import os
import sys
import time
from pathlib import Path

FINISHED = {"SUCCESS", "FAILURE", "CANCELED"}


def days() -> None:
    from esk_pipeline.pipeline.log_source import LogSource
    from esk_pipeline.settings import get_settings

    counts = LogSource(get_settings().clickhouse).day_counts()
    print(",".join(day.isoformat() for day in sorted(counts)))


def bucket(url: str) -> None:
    import s3fs

    s3fs.S3FileSystem().mkdir(url.removeprefix("s3://").split("/")[0])


def celery_config(source: str, target: str, seconds: str) -> None:
    import yaml

    config = yaml.safe_load(Path(source).read_text(encoding="utf-8"))
    options = config["execution"]["config"]["config_source"]["broker_transport_options"]
    options.update(
        visibility_timeout=int(seconds), unacked_restore_interval=10, unacked_restore_throttle=1
    )
    Path(target).write_text(yaml.safe_dump(config), encoding="utf-8")


def busy(worker: str, seconds: float) -> None:
    """Wait until `worker` has started a step that has not finished; print its run and step."""
    from dagster import DagsterEventType, DagsterInstance, EventRecordsFilter

    deadline = time.monotonic() + seconds
    with DagsterInstance.get() as instance:
        while time.monotonic() < deadline:
            for record in instance.get_event_records(
                EventRecordsFilter(event_type=DagsterEventType.ENGINE_EVENT), limit=1000
            ):
                entry = record.event_log_entry
                name = entry.dagster_event.engine_event_data.metadata.get("Celery worker")
                step = entry.step_key
                if name is None or not name.value.startswith(f"{worker}@") or step is None:
                    continue
                if step in _steps_in_flight(instance, entry.run_id):
                    print(f"run {entry.run_id} step {step}")
                    return
            time.sleep(0.5)
    sys.exit(f"cluster-smoke: FAIL {worker} ran no step within {seconds:.0f} s")


def _steps_in_flight(instance, run_id: str) -> set[str]:
    from dagster import DagsterEventType

    started: set[str] = set()
    for entry in instance.all_logs(
        run_id,
        of_type={
            DagsterEventType.STEP_START,
            DagsterEventType.STEP_SUCCESS,
            DagsterEventType.STEP_FAILURE,
            DagsterEventType.STEP_SKIPPED,
        },
    ):
        if entry.dagster_event.event_type == DagsterEventType.STEP_START:
            started.add(entry.step_key)
        else:
            started.discard(entry.step_key)
    return started


def _describe(instance, run) -> str:
    """A run that did not succeed: its id, day, status and the steps in flight or failed."""
    from dagster import DagsterEventType

    failed = {
        entry.step_key
        for entry in instance.all_logs(run.run_id, of_type=DagsterEventType.STEP_FAILURE)
    }
    steps = sorted(failed) or sorted(_steps_in_flight(instance, run.run_id))
    day = run.tags.get("dagster/partition", "no day")
    what = "failed at" if failed else "still in"
    return f"run {run.run_id} ({run.job_name}, {day}) {run.status.value}, {what} step(s) " + (
        ", ".join(steps) or "none started"
    )


def wait(expected: int, seconds: float) -> None:
    from dagster import DagsterInstance

    deadline = time.monotonic() + seconds
    with DagsterInstance.get() as instance:
        while True:
            runs = [r for r in instance.get_runs() if r.job_name != "taxonomy_observation_job"]
            statuses = [r.status.value for r in runs]
            if len(runs) >= expected and all(s in FINISHED for s in statuses):
                break
            if time.monotonic() > deadline:
                unfinished = [
                    _describe(instance, r) for r in runs if r.status.value not in FINISHED
                ]
                sys.exit(
                    f"cluster-smoke: FAIL runs not finished after {seconds:.0f} s: "
                    + "; ".join(unfinished or [f"{len(runs)} of {expected} runs exist"])
                )
            time.sleep(2)
        failed = [_describe(instance, r) for r in runs if r.status.value != "SUCCESS"]
    if failed:
        sys.exit(f"cluster-smoke: FAIL {len(failed)} of {len(runs)} runs: " + "; ".join(failed))


def compare(reference_storage: str) -> None:
    """Checks, then one summary line: runs, workers, where values went, versions equal."""
    import sqlalchemy as sa
    from dagster import DagsterEventType, DagsterInstance, EventRecordsFilter
    from upath import UPath

    from esk_pipeline import configs
    from esk_pipeline.pipeline.versions import DataStorage, DataStorageConfig
    from esk_pipeline.settings import get_settings

    settings = get_settings()
    problems: list[str] = []
    with DagsterInstance.get() as instance:
        runs = [r for r in instance.get_runs() if r.job_name != "taxonomy_observation_job"]
        daily = [r for r in runs if r.job_name == "daily_labels_job"]
        steps_by_worker: dict[str, int] = {}
        for record in instance.get_event_records(
            EventRecordsFilter(event_type=DagsterEventType.ENGINE_EVENT), limit=10_000
        ):
            entry = record.event_log_entry
            worker = entry.dagster_event.engine_event_data.metadata.get("Celery worker")
            if worker is not None:
                steps_by_worker[worker.value] = steps_by_worker.get(worker.value, 0) + 1
    if len(steps_by_worker) < 2:
        problems.append(f"steps ran on {len(steps_by_worker)} worker(s), not 2")

    values = UPath(settings.app.assets_url)
    label_files = sorted(values.joinpath("labels").glob("*.parquet"))
    if len(label_files) != len(daily):
        problems.append(f"{len(label_files)} labels files in {values}, not {len(daily)}")
    compute_logs = UPath(f"s3://{os.environ['DAGSTER_COMPUTE_LOGS_BUCKET']}")
    if not list(compute_logs.rglob("*.out")):
        problems.append(f"no step output (compute logs) in {compute_logs}")
    if (settings.app.data_dir / "assets").exists():
        problems.append(f"asset values were written to {settings.app.data_dir / 'assets'}")

    review_tables = sa.inspect(
        sa.create_engine(settings.review.database_url.get_secret_value())
    ).get_table_names()
    if not review_tables:
        problems.append("the review store made no tables in PostgreSQL")
    if (settings.app.data_dir / "review.sqlite3").exists():
        problems.append("the review store fell back to SQLite on local disk")

    cluster = DataStorage(configs.storage_config(settings))
    if not str(cluster.root).startswith("s3://"):
        problems.append(f"the version store is at {cluster.root}, not on S3")
    reference = DataStorage(DataStorageConfig(storage_dir=Path(reference_storage)))
    ours, theirs = _data_digest(cluster), _data_digest(reference)
    if ours != theirs:
        problems.append(f"dataset differs from the embedded default's: {ours} vs {theirs}")
    unverified = cluster.verify()
    if unverified:
        problems.append(f"the cluster's version does not verify: {unverified}")

    workers = ", ".join(f"{name.split('@')[0]} {n}" for name, n in sorted(steps_by_worker.items()))
    version = cluster.list_versions()[-1].version if cluster.list_versions() else "none"
    logs = "embedded chdb" if settings.clickhouse.is_embedded else "ClickHouse server"
    line = (
        f"{len(daily)} daily runs + {len(runs) - len(daily)} dataset run(s), steps by worker: "
        f"{workers}; values on {values.protocol or 'disk'}; versions on {cluster.root}; "
        "instance and review store on "
        f"PostgreSQL; version {version} "
        f"{'=' if ours == theirs else '!='} embedded default ({ours[:12]}); logs: {logs}"
    )
    if problems:
        sys.exit("cluster-smoke: FAIL " + line + " | " + "; ".join(problems))
    print("cluster-smoke: PASS " + line)


def _data_digest(storage) -> str:
    """One digest of the latest version's JSONL files, names included, from its manifest
    (the store checksums every file; `verify` re-hashes them)."""
    versions = storage.list_versions()
    manifest = versions[-1].files if versions else {}
    files = {n: f for n, f in manifest.items() if n.endswith(".jsonl")}
    if not files:
        sys.exit(f"cluster-smoke: FAIL no dataset version with data in {storage.root}")
    digest = hashlib.sha256()
    for name in sorted(files):
        digest.update(name.encode())
        digest.update(bytes.fromhex(files[name].sha256))
    return digest.hexdigest()


if __name__ == "__main__":
    command, *args = sys.argv[1:]
    commands = {
        "days": days,
        "bucket": bucket,
        "celery-config": celery_config,
        "busy": lambda worker, s: busy(worker, float(s)),
        "wait": lambda n, s: wait(int(n), float(s)),
        "compare": compare,
    }
    if command not in commands:
        sys.exit(f"smoke_check.py: unknown command {command!r} (one of {', '.join(commands)})")
    commands[command](*args)
