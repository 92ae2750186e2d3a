"""A Celery worker killed with kill -9 mid-task: with the deploy profile's settings, the task
goes to another worker; a task that kills its own pool process is retried up to its cap, then
fails. Real Redis (Debian's redis-server), real Celery worker processes.

The settings are the profile's own (`cluster_definitions.CELERY_SETTINGS`) with a visibility
timeout of a few seconds instead of an hour, so the test waits seconds for the redelivery.
Without the late acknowledgement the killed worker's task would be lost: Redis would have
forgotten it when the first worker took it, and `result.get` would time out.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

import pytest

pytest.importorskip("celery", reason="celery is not installed (dev extra)")
pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]
# Longer than a loaded machine takes to notice a dead pool process (4 s was not).
VISIBILITY_SECONDS = 10

TASKS = """
import json, os, time
from pathlib import Path

from celery import Celery

app = Celery("redelivery", broker=os.environ["BROKER"], backend=os.environ["BACKEND"])
app.conf.update(json.loads(os.environ["SETTINGS"]))


@app.task(name="step")
def step(marker: str) -> str:
    attempts = Path(marker)
    with attempts.open("a") as out:
        out.write(f"{os.getpid()}\\n")
    if len(attempts.read_text().split()) == 1:
        time.sleep(300)  # the first attempt hangs until its worker is killed
    return "done"


# Retried at once (a dagster-celery step waits Celery's default 3 minutes), at most twice.
@app.task(name="poison", max_retries=2, default_retry_delay=0)
def poison(marker: str) -> None:
    with Path(marker).open("a") as out:
        out.write(f"{os.getpid()}\\n")
    os.kill(os.getpid(), 9)  # as the kernel's OOM killer would: the pool process dies
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for(condition, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return False


@pytest.fixture
def celery_cluster(tmp_path):
    """(client, start_worker): real Redis and Celery workers with the profile's settings."""
    redis_server = shutil.which("redis-server")
    if redis_server is None:
        pytest.skip("needs Debian's redis-server")
    from celery import Celery

    from esk_pipeline.cluster_definitions import CELERY_SETTINGS

    settings = {
        **CELERY_SETTINGS,
        # Workers scan for overdue tasks every second here (kombu: every 100 s).
        "broker_transport_options": {
            "visibility_timeout": VISIBILITY_SECONDS,
            "unacked_restore_interval": 1,
            "unacked_restore_throttle": 1,
        },
    }
    port = _free_port()
    redis = subprocess.Popen(
        [redis_server, "--port", str(port), "--bind", "127.0.0.1", "--save", ""],
        stdout=subprocess.DEVNULL,
    )
    (tmp_path / "redelivery_tasks.py").write_text(TASKS)
    env = {
        **os.environ,
        "PYTHONPATH": str(tmp_path),
        "BROKER": f"redis://127.0.0.1:{port}/0",
        "BACKEND": f"redis://127.0.0.1:{port}/1",
        "SETTINGS": json.dumps(settings),
    }
    # Celery's default pool (prefork) acknowledges a task before running it unless told to ack
    # late.
    celery = [sys.executable, "-m", "celery", "-A", "redelivery_tasks", "worker", "-c", "1"]
    workers: list[subprocess.Popen] = []

    def start_worker(name: str) -> subprocess.Popen:
        worker = subprocess.Popen(
            [*celery, "-n", f"{name}@%h", "--loglevel", "warning"],
            env=env,
            cwd=tmp_path,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        workers.append(worker)
        return worker

    try:
        client = Celery("redelivery", broker=env["BROKER"], backend=env["BACKEND"])
        client.conf.update(settings)
        yield client, start_worker
    finally:
        for worker in workers:
            if worker.poll() is None:
                os.killpg(worker.pid, signal.SIGKILL)
                worker.wait()
        redis.kill()
        redis.wait()


def test_the_task_of_a_killed_worker_is_run_by_another(tmp_path, celery_cluster):
    client, start_worker = celery_cluster
    first = start_worker("first")
    marker = tmp_path / "attempts"
    result = client.send_task("step", args=[str(marker)])
    assert _wait_for(marker.exists, 60), "no worker took the task"
    os.killpg(first.pid, signal.SIGKILL)  # the worker whole: its main process and its child
    first.wait()
    start_worker("second")
    assert result.get(timeout=60) == "done"
    assert len(set(marker.read_text().split())) == 2  # two attempts, in two processes


def test_a_task_that_kills_its_own_process_is_retried_up_to_its_cap_then_fails(
    tmp_path, celery_cluster
):
    from celery.exceptions import WorkerLostError

    client, start_worker = celery_cluster
    start_worker("only")
    marker = tmp_path / "attempts"
    result = client.send_task("poison", args=[str(marker)])
    with pytest.raises(WorkerLostError):
        result.get(timeout=90)
    time.sleep(VISIBILITY_SECONDS + 3)  # past the point where an unacked task comes back
    assert len(marker.read_text().split()) == 3  # the first run and its 2 retries, no more
