"""The whole graph in-process on seeded sample data: logs in, a versioned dataset out."""

import json
from pathlib import Path

import pandas as pd
import pytest
from dagster import AssetKey, RunRequest, SkipReason, build_sensor_context

from esk_pipeline.definitions import build_defs
from esk_pipeline.pipeline.parts import FolderPartStore, FrameParts
from esk_pipeline.pipeline.taxonomy import Taxonomy
from esk_pipeline_tests.assets_tests.graph import review_store, run_graph, storage


@pytest.fixture(scope="module")
def pipeline_run(tmp_path_factory):
    """One full run that the read-only tests below share (it is the expensive part)."""
    return run_graph(tmp_path_factory.mktemp("graph"), n_rows=2500)


@pytest.fixture
def own_pipeline_run(tmp_path):
    """A smaller run of its own, for a test that reviews, inserts logs or edits files."""
    return run_graph(tmp_path / "graph", n_rows=800)


def _trusted(root):
    """Every part of trusted_labels (a folder of parts and their manifest), in one frame."""
    store = FolderPartStore(root / "assets" / "trusted_labels")
    parts = FrameParts(store, store.manifest())
    return pd.concat([parts[name] for name in parts], ignore_index=True)


def _frames(root, asset):
    return pd.concat(
        pd.read_parquet(p) for p in sorted((root / "assets" / asset).glob("*.parquet"))
    )


def test_every_raw_row_is_kept_or_rejected_with_a_reason(pipeline_run):
    root = pipeline_run["root"]
    raw, cleaned, rejected = (
        _frames(root, a) for a in ("raw_logs", "cleaned_texts", "rejected_texts")
    )
    assert len(raw) == pipeline_run["seeded"] == 2500
    assert len(cleaned) + len(rejected) == len(raw)
    assert rejected["reason"].notna().all() and {"duplicate", "empty"} <= set(rejected["reason"])


def test_every_cleaned_text_gets_one_label_from_the_taxonomy(pipeline_run):
    root = pipeline_run["root"]
    labels, cleaned = _frames(root, "labels"), _frames(root, "cleaned_texts")
    assert len(labels) == len(cleaned)
    assert set(labels["domain"].dropna()) <= set(Taxonomy.load("data/taxonomy.yaml").ids)
    assert (labels["label_source"] == "local").all()  # no LLM configured: the offline model


def test_before_any_audit_no_machine_label_is_trusted_and_all_wait_for_review(pipeline_run):
    root = pipeline_run["root"]
    trusted = _trusted(root)
    queued = pd.read_parquet(root / "assets" / "review_queue.parquet")
    assert not trusted["trusted"].any()  # confidence alone is a claim, not evidence
    assert set(trusted["label_origin"]) == {"local_model"}
    with review_store(pipeline_run) as store:
        stats = store.stats()
    assert stats.queue_length == len(queued) == queued["row_id"].nunique()
    # One text per identity key, plus the uniform audit sample (TRUST_AUDIT_SHARE of all).
    needs = queued[queued["review_reason"] == "needs_review"]
    audit = queued[queued["review_reason"] == "audit"]
    assert len(needs) + len(audit) == len(queued)
    share = pipeline_run["settings"].trust.audit_share
    assert 0.6 * share < len(audit) / len(trusted) < 1.4 * share


def test_a_stable_version_with_contract_records_is_committed(pipeline_run):
    summary = pipeline_run["summary"]
    versions = storage(pipeline_run)
    [version] = versions.list_versions()
    assert summary["version"] == version.version
    # Nothing is reviewed yet: train and eval are empty rather than filled with guesses, and
    # every label waits in the unverified split with its estimate.
    assert (version.path / "train.jsonl").read_bytes() == b""
    assert (version.path / "eval.jsonl").read_bytes() == b""
    # One unverified file per day of labels.
    days = sorted(version.path.glob("unverified-*.jsonl"))
    assert len(days) >= 2
    unverified = pd.concat(pd.read_json(p, lines=True) for p in days)
    contract = {"text", "domain", "row_id", "label_source", "confidence", "is_synthetic"}
    assert contract | {"source_row_id", "label_origin", "p_correct"} <= set(unverified.columns)
    # Every record kept out has its verdict's reason; the card and the asset agree on them.
    metadata = json.loads((version.path / "metadata.json").read_text(encoding="utf-8"))
    not_trusted = metadata["dataset"]["stats"]["not_trusted"]
    assert sum(not_trusted.values()) == len(unverified)
    waiting = not_trusted["needs_review"] + not_trusted.get("audit", 0)
    assert summary["waiting_for_review"] == waiting
    card = (version.path / "README.md").read_text(encoding="utf-8")
    assert f"waiting for review: {waiting} text(s)" in card


def test_reviews_flow_into_a_new_version_through_the_sensor(own_pipeline_run):
    from esk_pipeline.sensors import enough_new_reviews_sensor

    defs, instance = own_pipeline_run["defs"], own_pipeline_run["instance"]
    taxonomy = Taxonomy.load("data/taxonomy.yaml")
    resources = {k: defs.resources[k] for k in ("taxonomy_file", "review_store")}
    quiet = enough_new_reviews_sensor(build_sensor_context(instance=instance, resources=resources))
    assert not getattr(quiet, "run_requests", None)

    decided = {}
    with review_store(own_pipeline_run) as store:
        # Skips are not decisions: eight of them must not wake the sensor.
        for item in store.get_next(count=8, reviewer_id="bob"):
            store.skip(item.id, "bob")
        skipped = enough_new_reviews_sensor(
            build_sensor_context(instance=instance, resources=resources)
        )
        assert not getattr(skipped, "run_requests", None)
        for item in store.get_next(count=6, reviewer_id="alice"):
            other = next(d for d in taxonomy.ids if d != item.predicted_domain)
            store.submit_review(item.id, other, "alice")
            decided[item.id] = other
        # Each contradicts the model, so each waits for a second reviewer before it counts
        # (not bob: he skipped these very items).
        assert store.verified_labels().empty
        for item in store.get_next(count=6, reviewer_id="carol"):
            store.submit_review(item.id, decided[item.id], "carol")
    fired = enough_new_reviews_sensor(build_sensor_context(instance=instance, resources=resources))
    [request] = fired.run_requests

    job = defs.resolve_job_def("dataset_refresh_job")
    assert job.execute_in_process(instance=instance, tags=request.tags).success
    latest = instance.get_latest_materialization_event(AssetKey("dataset_versions"))
    record = latest.asset_materialization.metadata
    assert record["relabelled"].value + record["added"].value >= len(decided)

    version = storage(own_pipeline_run).list_versions()[-1]
    records = pd.concat(
        pd.read_json(p, lines=True)
        for split in ("train", "eval")
        for p in version.path.glob(f"{split}*.jsonl")
        if p.stat().st_size
    )
    human = records[records["row_id"].isin(decided)]
    assert len(human) == len(decided)
    assert all(human["label_source"] == "reviewer:carol")  # who closed it
    assert set(human["label_origin"]) == {"human_verified"}
    assert dict(zip(human["row_id"], human["domain"], strict=False)) == decided


def test_an_edited_taxonomy_is_observed_and_the_labels_show_as_stale(own_pipeline_run, tmp_path):
    """The daily run observed the taxonomy it labelled with; the sensor observes an edit (and
    only an edit); after that the labels' recorded taxonomy version is not the current one,
    which is what the UI shows as stale."""
    from esk_pipeline.sensors import taxonomy_changed_sensor

    instance = own_pipeline_run["instance"]

    def observed() -> str:
        [record] = instance.fetch_observations(AssetKey("taxonomy"), limit=1).records
        return record.asset_observation.data_version

    labels = instance.get_latest_materialization_event(AssetKey("labels")).asset_materialization
    labelled_with = labels.tags["dagster/input_data_version/taxonomy"]
    shipped = Path("data/taxonomy.yaml").read_text(encoding="utf-8")
    assert observed() == labelled_with == Taxonomy.load("data/taxonomy.yaml").fingerprint

    path = tmp_path / "taxonomy.yaml"
    path.write_text(shipped, encoding="utf-8")
    settings = own_pipeline_run["settings"].model_copy(deep=True)
    settings.app.taxonomy_path = path
    defs = build_defs(settings)
    resources = {"taxonomy_file": defs.resources["taxonomy_file"]}

    def evaluate():
        return taxonomy_changed_sensor(build_sensor_context(instance=instance, resources=resources))

    assert isinstance(evaluate(), SkipReason)  # the same content: nothing to observe
    path.write_text(shipped.replace("передать показания", "передать показание"), "utf-8")
    request = evaluate()
    assert isinstance(request, RunRequest)
    job = defs.resolve_job_def("taxonomy_observation_job")
    assert job.execute_in_process(instance=instance, tags=request.tags).success
    assert observed() == Taxonomy.load(path).fingerprint != labelled_with
    assert isinstance(evaluate(), SkipReason)

    path.write_text(shipped, encoding="utf-8")  # back to the old content: a change again
    back = evaluate()
    assert isinstance(back, RunRequest) and back.run_key != request.run_key

    path.write_text("domains: [", encoding="utf-8")
    broken = evaluate()
    assert isinstance(broken, SkipReason) and str(path) in broken.skip_message


def test_verified_labels_are_observed_not_rematerialised_by_daily_runs(pipeline_run):
    instance = pipeline_run["instance"]
    assert instance.get_latest_materialization_event(AssetKey("verified_labels")) is None
    observed = [
        record.asset_observation.data_version
        for record in instance.fetch_observations(AssetKey("verified_labels"), limit=100).records
    ]
    labels = instance.get_latest_materialization_event(AssetKey("labels")).asset_materialization
    # Lineage: the labels record which observed state of the decisions they were made with.
    assert labels.tags["dagster/input_data_version/verified_labels"] in observed


def test_the_log_days_sensor_after_the_demo_runs_only_what_changed(own_pipeline_run):
    from esk_pipeline.pipeline.log_source import LogSource
    from esk_pipeline.sensors import new_log_days_sensor

    defs, instance = own_pipeline_run["defs"], own_pipeline_run["instance"]
    resources = {"clickhouse": defs.resources["clickhouse"], "etl": defs.resources["etl"]}
    source = LogSource(own_pipeline_run["settings"].clickhouse)
    days = sorted(source.day_counts())
    assert len(days) == 7

    # Turned on after the demo, with no cursor: every day is materialized with its count.
    after_demo = new_log_days_sensor(
        build_sensor_context(instance=instance, resources=resources, definitions=defs)
    )
    assert not after_demo.run_requests
    source.insert_logs(
        pd.DataFrame(
            {
                "ts": [pd.Timestamp(days[2], tz="UTC") + pd.Timedelta(hours=12)],
                "text": ["Второй день нет отопления в квартире"],
                "user_id": ["u-late"],
            }
        )
    )
    grown = new_log_days_sensor(
        build_sensor_context(
            instance=instance, cursor=after_demo.cursor, resources=resources, definitions=defs
        )
    )
    assert [r.partition_key for r in grown.run_requests] == [days[2].isoformat()]


def test_a_day_whose_rows_are_all_deleted_is_cleaned_again_as_a_day_of_no_rows(own_pipeline_run):
    """The sensor asks for it and a build empties its cleaned texts and labels (the dataset
    keeps none of its texts); after that, the day is current."""
    from esk_pipeline.pipeline.log_source import LogSource
    from esk_pipeline.runner import run_pipeline
    from esk_pipeline.sensors import new_log_days_sensor

    run = own_pipeline_run
    defs, instance, assets = run["defs"], run["instance"], run["root"] / "assets"
    resources = {"clickhouse": defs.resources["clickhouse"], "etl": defs.resources["etl"]}

    def requested() -> list[str]:
        context = build_sensor_context(instance=instance, resources=resources, definitions=defs)
        return [r.partition_key for r in new_log_days_sensor(context).run_requests or []]

    source = LogSource(run["settings"].clickhouse)
    day = sorted(source.day_counts())[2]
    assert not pd.read_parquet(assets / "labels" / f"{day}.parquet").empty
    source._call(
        "command", "DELETE FROM esk_logs WHERE toDate(ts) = {day:Date}", parameters={"day": day}
    )
    assert requested() == [day.isoformat()]
    run_pipeline(instance, settings=run["settings"], log=lambda _: None)
    assert pd.read_parquet(assets / "cleaned_texts" / f"{day}.parquet").empty
    assert pd.read_parquet(assets / "labels" / f"{day}.parquet").empty
    assert requested() == []


def test_cleaning_again_to_the_same_rows_labels_no_day_again(own_pipeline_run):
    """A cleaning setting that changes no cleaned row (as a day cleaned by a release before
    `made_from`, cleaned once more) cleans every day again, but rewrites no cleaned file: every
    labels day is kept as stored."""
    from dagster import AssetRecordsFilter

    from esk_pipeline import configs
    from esk_pipeline.assets.ingest import cleaning_version
    from esk_pipeline.runner import run_pipeline

    run = own_pipeline_run
    instance, settings = run["instance"], run["settings"]
    files = sorted((run["root"] / "assets" / "cleaned_texts").glob("*.parquet"))
    before = {p.name: p.stat().st_mtime_ns for p in files}
    capped = settings.model_copy(
        update={"etl": settings.etl.model_copy(update={"max_rows": 10**8})}
    )
    cleaning = cleaning_version(configs.etl_config(capped))
    assert cleaning != cleaning_version(configs.etl_config(settings))
    run_pipeline(instance, settings=capped, log=lambda _: None)

    def latest(asset: str, day: str):
        records = instance.fetch_materializations(
            AssetRecordsFilter(asset_key=AssetKey(asset), asset_partitions=[day]), limit=1
        ).records
        return records[0].asset_materialization.metadata

    days = [p.stem for p in files]
    assert len(days) == 7
    assert all(
        latest("cleaned_texts", day)["made_from"].value["cleaning"] == cleaning for day in days
    )
    assert {p.name: p.stat().st_mtime_ns for p in files} == before
    assert all(latest("labels", day)["labelled"].value.startswith("reused") for day in days)


def test_the_stored_version_check_passes_and_catches_a_damaged_file(own_pipeline_run):
    from esk_pipeline.assets.checks import stored_version_verifies

    instance = own_pipeline_run["instance"]
    run_id = instance.get_latest_materialization_event(AssetKey("dataset_versions")).run_id
    events = [r.event_log_entry.dagster_event for r in instance.get_records_for_run(run_id).records]
    [evaluation] = [
        event.event_specific_data
        for event in events
        if event is not None
        and event.event_type_value == "ASSET_CHECK_EVALUATION"
        and event.event_specific_data.check_name == "stored_version_verifies"
    ]
    assert evaluation.passed

    version = storage(own_pipeline_run).list_versions()[-1]
    record = {"version": version.version}
    store = own_pipeline_run["defs"].resources["dataset_store"]
    assert stored_version_verifies(dataset_versions=record, dataset_store=store).passed
    # Before any review, train and eval are empty: damage a day of unverified labels.
    damaged = sorted(version.path.glob("unverified-*.jsonl"))[0]
    original = damaged.read_bytes()
    try:
        damaged.write_bytes(original.replace(b"{", b"[", 1))
        verdict = stored_version_verifies(dataset_versions=record, dataset_store=store)
        assert not verdict.passed and verdict.metadata["problems"].value >= 1
    finally:
        damaged.write_bytes(original)


def test_every_labelled_text_is_trusted_queued_or_excluded_and_the_queue_reads_it(pipeline_run):
    labels = _trusted(pipeline_run["root"])
    assert labels["row_id"].is_unique
    assert set(labels["verdict"]) <= {"trusted", "queued", "excluded"}
    assert labels["verdict_reason"].notna().all()
    assert (labels["trusted"] == (labels["verdict"] == "trusted")).all()
    queue = pd.read_parquet(pipeline_run["root"] / "assets" / "review_queue.parquet")
    assert set(queue["row_id"]) == set(labels.loc[labels["verdict"] == "queued", "row_id"])


def test_a_frame_that_breaks_the_label_contract_fails_at_the_asset_boundary():
    from dagster import asset, materialize

    from esk_pipeline.assets.frame_types import TrustedLabelFrame

    @asset(dagster_type=TrustedLabelFrame)
    def broken() -> pd.DataFrame:
        return pd.DataFrame({"row_id": ["a"], "text": ["t"], "label_origin": ["oracle"]})

    result = materialize([broken], raise_on_error=False)
    [failure] = result.get_step_failure_events()
    assert "domain" in failure.step_failure_data.error.message
