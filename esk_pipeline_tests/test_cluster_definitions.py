"""The deploy profile's code location: the same jobs as the default one, on the Celery executor."""

from pathlib import Path

import pytest
import yaml
from dagster import DagsterInstance

pytest.importorskip("dagster_celery", reason="dagster-celery is not installed (dev extra)")


def test_every_job_runs_its_steps_on_celery_workers(project_env):
    from esk_pipeline import cluster_definitions, definitions

    cluster, default = cluster_definitions.defs(), definitions.defs()
    names = {job.name for job in default.get_repository_def().get_all_jobs()}
    assert names == {job.name for job in cluster.get_repository_def().get_all_jobs()}
    assert {"daily_labels_job", "dataset_refresh_job"} <= names
    assert {cluster.resolve_job_def(name).executor_def.name for name in names} == {"celery"}
    assert {default.resolve_job_def(name).executor_def.name for name in names} != {"celery"}


def test_the_instance_config_queues_runs_with_a_limit_per_llm_endpoint(tmp_path):
    config = yaml.safe_load(Path("deploy/dagster.yaml").read_text(encoding="utf-8"))
    config["storage"] = {"sqlite": {"base_dir": str(tmp_path)}}  # the rest as shipped
    (tmp_path / "dagster.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    with DagsterInstance.from_config(str(tmp_path)) as instance:
        coordinator = instance.run_coordinator
        assert type(coordinator).__name__ == "QueuedRunCoordinator"
        limits = coordinator.get_run_queue_config().tag_concurrency_limits
    assert [(limit["key"], limit["limit"]) for limit in limits] == [("esk/llm_endpoint", 1)]
