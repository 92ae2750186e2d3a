"""A run whose process was killed (kill -9) is marked failed by the next runner, so it never
holds a place in the run queue for good; runs of live processes and other machines stay."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import yaml
from dagster import DagsterInstance, DagsterRun, DagsterRunStatus

from esk_pipeline.runs import (
    RUNNER_HOST_TAG,
    RUNNER_PID_TAG,
    fail_runs_of_dead_runners,
    runner_tags,
)


def _run(instance: DagsterInstance, run_id: str, host: str, pid: int, **tags: str) -> None:
    instance.add_run(
        DagsterRun(
            job_name="daily_labels_job",
            run_id=run_id,
            status=DagsterRunStatus.STARTED,
            tags={RUNNER_HOST_TAG: host, RUNNER_PID_TAG: str(pid), **tags},
        )
    )


def test_runs_of_a_killed_process_are_failed_and_others_are_left(tmp_path: Path) -> None:
    runner = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    os.kill(runner.pid, signal.SIGKILL)
    runner.wait()
    host = socket.gethostname()
    with DagsterInstance.local_temp(str(tmp_path)) as instance:
        _run(instance, "killed", host, runner.pid)
        _run(instance, "alive", host, os.getpid())
        _run(instance, "elsewhere", "another-machine", runner.pid)
        assert fail_runs_of_dead_runners(instance) == ["killed"]
        statuses = {
            run_id: instance.get_run_by_id(run_id).status
            for run_id in ("killed", "alive", "elsewhere")
        }
        assert statuses == {
            "killed": DagsterRunStatus.FAILURE,
            "alive": DagsterRunStatus.STARTED,
            "elsewhere": DagsterRunStatus.STARTED,
        }
        assert fail_runs_of_dead_runners(instance) == []


def test_a_run_whose_process_id_now_belongs_to_another_process_is_failed(tmp_path: Path) -> None:
    """After a restart (or in a container, where the runner is often pid 1 every time) a
    killed runner's id can belong to a live process: its start time tells them apart, and the
    run it left STARTED (which would block every later build) is failed."""
    mine = runner_tags()
    assert set(mine) == {RUNNER_HOST_TAG, RUNNER_PID_TAG, "esk/runner_started"}
    with DagsterInstance.local_temp(str(tmp_path)) as instance:
        earlier = {**mine, "esk/runner_started": str(int(mine["esk/runner_started"]) - 1)}
        _run(instance, "earlier", mine[RUNNER_HOST_TAG], os.getpid(), **earlier)
        _run(instance, "this", mine[RUNNER_HOST_TAG], os.getpid(), **mine)
        assert fail_runs_of_dead_runners(instance) == ["earlier"]
        assert instance.get_run_by_id("this").status is DagsterRunStatus.STARTED


def test_both_instance_configs_monitor_runs_with_a_max_runtime(tmp_path: Path) -> None:
    deploy = Path(__file__).resolve().parents[1] / "deploy"
    for config in (deploy / "local" / "dagster.yaml", deploy / "dagster.yaml"):
        settings = yaml.safe_load(config.read_text())
        # The deploy profile's PostgreSQL is not needed to read its monitoring settings.
        settings.pop("storage", None)
        home = tmp_path / config.parent.name
        home.mkdir()
        (home / "dagster.yaml").write_text(yaml.safe_dump(settings))
        with DagsterInstance.from_config(str(home)) as instance:
            assert instance.run_monitoring_enabled, config
            assert 0 < instance.run_monitoring_max_runtime_seconds <= 24 * 3600, config
