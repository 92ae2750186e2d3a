"""The deploy profile's code location: the same jobs as the default one, on the Celery executor."""

import sys
from pathlib import Path

import pytest
import yaml
from dagster import DagsterInstance

from esk_pipeline_tests.s3 import (
    fresh_bucket,
    s3_server,  # noqa: F401 (a fixture)
)

pytest.importorskip("dagster_celery", reason="dagster-celery is not installed (dev extra)")
pytest.importorskip("dagster_aws", reason="dagster-aws is not installed (dev extra)")


def test_every_job_runs_its_steps_on_celery_workers(project_env):
    from esk_pipeline import cluster_definitions, definitions

    cluster, default = cluster_definitions.defs(), definitions.defs()
    names = {job.name for job in default.get_repository_def().get_all_jobs()}
    assert names == {job.name for job in cluster.get_repository_def().get_all_jobs()}
    assert {"daily_labels_job", "dataset_refresh_job"} <= names
    assert {cluster.resolve_job_def(name).executor_def.name for name in names} == {"celery"}
    assert {default.resolve_job_def(name).executor_def.name for name in names} != {"celery"}


def _deploy_instance(tmp_path: Path) -> DagsterInstance:
    """A real instance from deploy/dagster.yaml as shipped, with SQLite instead of PostgreSQL."""
    config = yaml.safe_load(Path("deploy/dagster.yaml").read_text(encoding="utf-8"))
    config["storage"] = {"sqlite": {"base_dir": str(tmp_path)}}  # the rest as shipped
    tmp_path.mkdir(parents=True, exist_ok=True)
    (tmp_path / "dagster.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    return DagsterInstance.from_config(str(tmp_path))


def test_the_instance_config_queues_one_run_per_day_and_per_llm_endpoint(tmp_path, monkeypatch):
    monkeypatch.setenv("DAGSTER_COMPUTE_LOGS_BUCKET", "logs")
    monkeypatch.setenv("DAGSTER_COMPUTE_LOGS_PREFIX", "compute")
    with _deploy_instance(tmp_path) as instance:
        coordinator = instance.run_coordinator
        assert type(coordinator).__name__ == "QueuedRunCoordinator"
        limits = coordinator.get_run_queue_config().tag_concurrency_limits
        assert instance.get_settings("python_logs")["managed_python_loggers"] == ["esk_pipeline"]
        assert instance.run_monitoring_enabled
    assert [(limit["key"], limit["limit"]) for limit in limits] == [
        ("dagster/partition", 1),
        ("esk/llm_endpoint", 1),
        ("esk/dataset_refresh", 1),  # any value: one refresh at a time in all
    ]
    assert all(limit["value"] == {"applyLimitPerUniqueValue": True} for limit in limits[:2])


def test_the_celery_workers_and_the_executor_share_one_late_acking_config(monkeypatch):
    from dagster_celery.cli import get_validated_config
    from dagster_celery.make_app import make_app

    from esk_pipeline.cluster_definitions import CELERY_SETTINGS

    monkeypatch.setenv("DAGSTER_CELERY_BROKER_URL", "redis://127.0.0.1:1/0")
    monkeypatch.setenv("DAGSTER_CELERY_BACKEND_URL", "redis://127.0.0.1:1/1")
    workers = get_validated_config("deploy/celery.yaml")["config_source"]
    assert workers == CELERY_SETTINGS
    app = make_app({"config_source": CELERY_SETTINGS})
    assert app.conf.task_acks_late and app.conf.task_retry_on_worker_lost
    assert app.conf.broker_transport_options["visibility_timeout"] >= 1800


def test_step_output_is_kept_on_the_object_store(request, tmp_path, monkeypatch):
    bucket = fresh_bucket(request.getfixturevalue("s3_server"), monkeypatch).removeprefix("s3://")
    monkeypatch.setenv("DAGSTER_COMPUTE_LOGS_BUCKET", bucket)
    monkeypatch.setenv("DAGSTER_COMPUTE_LOGS_PREFIX", "compute")
    log_key = ["run-1", "compute_logs", "labels"]
    with (
        _deploy_instance(tmp_path / "worker") as worker,
        worker.compute_log_manager.capture_logs(log_key),
    ):
        print("labelled 811 texts", flush=True)
        print("a warning", file=sys.stderr, flush=True)
    import s3fs

    stored = s3fs.S3FileSystem().find(f"{bucket}/compute")
    assert sorted(path.rsplit("/", 1)[-1] for path in stored) == ["labels.err", "labels.out"]
    # Another machine (its own DAGSTER_HOME, nothing on its disk) reads them back.
    with _deploy_instance(tmp_path / "webserver") as webserver:
        data = webserver.compute_log_manager.get_log_data(log_key)
    assert b"labelled 811 texts" in data.stdout
    assert b"a warning" in data.stderr
