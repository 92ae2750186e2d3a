"""The review sensor starts one dataset refresh at a time: while one is queued or running, new
decisions wait for the next tick (two refreshes at once would write the same trust parts,
split cache and dataset folder together)."""

from __future__ import annotations

from pathlib import Path

from dagster import (
    AssetMaterialization,
    DagsterInstance,
    DagsterRun,
    DagsterRunStatus,
    build_sensor_context,
)

from esk_pipeline.resources.stores import ReviewStoreResource
from esk_pipeline.resources.taxonomy import TaxonomyResource
from esk_pipeline.runs import DATASET_JOB
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
