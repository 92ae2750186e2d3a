"""One dataset refresh at a time: the review sensor waits while one is queued or running, the
run queue launches one at a time, and a build by hand does not start beside one (two at once
would write the same trust parts, split cache and dataset folder together)."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest
import yaml
from dagster import (
    AssetMaterialization,
    DagsterInstance,
    DagsterRun,
    DagsterRunStatus,
    build_sensor_context,
)

from esk_pipeline.resources.stores import ReviewStoreResource
from esk_pipeline.resources.taxonomy import TaxonomyResource
from esk_pipeline.runner import PipelineRunError, run_pipeline
from esk_pipeline.runs import (
    DATASET_JOB,
    DATASET_REFRESH_TAG,
    RUNNER_HOST_TAG,
    RUNNER_PID_TAG,
)
from esk_pipeline.sensors import enough_new_reviews_sensor


def _tick(instance: DagsterInstance, resources: dict, cursor: str | None = None):
    return enough_new_reviews_sensor(
        build_sensor_context(instance=instance, resources=resources, cursor=cursor)
    )


def test_new_reviews_wait_while_a_dataset_refresh_is_queued_or_running(tmp_path: Path) -> None:
    taxonomy = TaxonomyResource()
    review_store = ReviewStoreResource(data_dir=str(tmp_path), sensor_min_new_reviews=2)
    resources = {"taxonomy_file": taxonomy, "review_store": review_store}
    with review_store.open(taxonomy.load()) as store:
        domain = taxonomy.load().ids[0]
        store.add_items(
            [{"row_id": f"r{i}", "text": f"текст номер {i}", "domain": domain} for i in range(3)]
        )
        for item in store.get_next(count=3, reviewer_id="alice"):
            store.submit_review(item.id, domain, "alice")  # agrees with the model: decided
    with DagsterInstance.ephemeral() as instance:
        instance.report_runless_asset_event(
            AssetMaterialization("cleaned_texts", partition="2026-11-01")
        )
        for status in (DagsterRunStatus.NOT_STARTED, DagsterRunStatus.STARTED):
            run = DagsterRun(job_name=DATASET_JOB, run_id=f"refresh-{status.value}", status=status)
            instance.add_run(run)
            waiting = _tick(instance, resources, cursor="0")
            assert not getattr(waiting, "run_requests", None), status
            assert getattr(waiting, "cursor", None) is None  # the reviews still count later
            instance.report_run_failed(run, "over")  # finished: the next refresh may start
        fired = _tick(instance, resources, cursor="0")
        [request] = fired.run_requests
        assert request.tags["dagster/asset_partition_range_start"] == "2026-11-01"


def test_the_run_queue_launches_one_dataset_refresh_at_a_time() -> None:
    """Whoever queues a refresh (the sensor, the UI, a backfill), the queue of either
    instance config holds it while another runs: the refresh job carries a tag both limit."""
    from esk_pipeline.definitions import defs

    job = defs().resolve_job_def(DATASET_JOB)
    assert job.tags[DATASET_REFRESH_TAG]
    deploy = Path(__file__).resolve().parents[1] / "deploy"
    for config in (deploy / "local" / "dagster.yaml", deploy / "dagster.yaml"):
        settings = yaml.safe_load(config.read_text(encoding="utf-8"))
        queue = settings.get("run_queue") or settings["run_coordinator"]["config"]
        limits = {limit["key"]: limit for limit in queue["tag_concurrency_limits"]}
        assert limits[DATASET_REFRESH_TAG] == {"key": DATASET_REFRESH_TAG, "limit": 1}, config


def test_a_build_by_hand_waits_for_no_refresh_it_would_write_beside(tmp_path: Path) -> None:
    """`esk-data build` (in-process) refuses to start while a refresh of a live process runs:
    the two would write the same dataset folder."""
    with DagsterInstance.ephemeral() as instance:
        running = DagsterRun(
            job_name=DATASET_JOB,
            run_id="refresh-running",
            status=DagsterRunStatus.STARTED,
            tags={RUNNER_HOST_TAG: socket.gethostname(), RUNNER_PID_TAG: str(os.getpid())},
        )
        instance.add_run(running)
        with pytest.raises(PipelineRunError, match="refresh-running"):
            run_pipeline(instance, log=lambda _: None)
