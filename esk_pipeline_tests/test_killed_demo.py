"""`esk-data demo` killed with kill -9 mid-run: the next demo proceeds, and so does a day run
queued the way the API queues one (through the instance's run queue, launched by a real
`dagster-daemon`, which takes it off the queue and starts it).

The instance is the local profile's (deploy/local/dagster.yaml) with one run at a time instead
of two, so that a single dead run is enough to fill the queue: with nothing marking it failed,
the queued day run would wait for good (as two crashes did with the shipped limit of two).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from dagster import DagsterInstance, DagsterRunStatus, RunsFilter

from esk_pipeline.pipeline.log_source import LogSource
from esk_pipeline.runner import submit_day_run
from esk_pipeline.runs import RUNNER_PID_TAG
from esk_pipeline.settings import get_settings

pytestmark = [pytest.mark.slow, pytest.mark.timeout(400)]
REPO = Path(__file__).resolve().parents[1]
ESK_DATA = str(Path(sys.executable).with_name("esk-data"))
DAGSTER_DAEMON = str(Path(sys.executable).with_name("dagster-daemon"))
ROWS = "300"


def _wait_for(condition, seconds: float, what: str):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"{what}: not within {seconds:.0f} s")


def _status(run_id: str) -> DagsterRunStatus:
    with DagsterInstance.get() as instance:
        return instance.get_run_by_id(run_id).status


def test_a_killed_demo_blocks_neither_the_next_demo_nor_a_queued_day_run(project_env, monkeypatch):
    monkeypatch.setenv("APP_TAXONOMY_PATH", str(REPO / "data" / "taxonomy.yaml"))
    home = project_env / "dagster_home"
    home.mkdir()
    config = yaml.safe_load((REPO / "deploy" / "local" / "dagster.yaml").read_text())
    config["run_queue"]["max_concurrent_runs"] = 1
    (home / "dagster.yaml").write_text(yaml.safe_dump(config))
    log = (project_env / "demo.log").open("w")
    demo = subprocess.Popen(
        [ESK_DATA, "demo", "--rows", ROWS],
        cwd=project_env,
        stdout=log,
        stderr=log,
        start_new_session=True,
    )

    def started_run() -> str | None:
        assert demo.poll() is None, (project_env / "demo.log").read_text()[-2000:]
        with DagsterInstance.get() as instance:
            runs = instance.get_runs(RunsFilter(statuses=[DagsterRunStatus.STARTED]))
        return next((r.run_id for r in runs if r.tags.get(RUNNER_PID_TAG) == str(demo.pid)), None)

    try:
        dead_run = _wait_for(started_run, 180, "the demo started no run")
    finally:
        os.killpg(demo.pid, signal.SIGKILL)  # the demo and its embedded ClickHouse helper
        demo.wait()

    day = min(LogSource(get_settings().clickhouse).day_counts()).isoformat()
    day_run, status = submit_day_run(day, requested_by="api:test")
    assert status == "QUEUED"
    daemon = subprocess.Popen(
        [DAGSTER_DAEMON, "run", "-w", str(REPO / "workspace.yaml")],
        cwd=project_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        again = subprocess.run(
            [ESK_DATA, "demo", "--rows", ROWS],
            cwd=project_env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert again.returncode == 0, again.stderr[-2000:]
        assert f"run {dead_run} was left unfinished by a process that is gone" in again.stdout
        assert _status(dead_run) == DagsterRunStatus.FAILURE
        # The daemon launches it once the queue has room: it left the queue, and it runs.
        launched = _wait_for(
            lambda: _status(day_run) != DagsterRunStatus.QUEUED and _status(day_run),
            120,
            "the queued day run was not launched",
        )
        assert launched in {
            DagsterRunStatus.STARTING,
            DagsterRunStatus.STARTED,
            DagsterRunStatus.SUCCESS,
        }
    finally:
        os.killpg(daemon.pid, signal.SIGKILL)  # the daemon and the runs it launched
        daemon.wait()
