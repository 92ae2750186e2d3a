"""`labels` through the cascade against a real OpenAI-compatible HTTP endpoint (the fake one)."""

import math

import pandas as pd
import pytest
from dagster import AssetSpec, materialize

from esk_pipeline.assets import labeling
from esk_pipeline.assets.partitions import daily_partitions
from esk_pipeline.pipeline.llm.cache import CACHE_FILE_NAME, ResponseCache
from esk_pipeline.pipeline.local_model import LocalModel
from esk_pipeline.resources.io_manager import AssetFilesIOManager
from esk_pipeline.resources.llm import LabelerResource
from esk_pipeline.resources.taxonomy import TaxonomyResource
from esk_pipeline.settings import Settings
from esk_pipeline_tests.fakes.openai_server import FakeOpenAIServer, labeler_responder

DAY = "2026-11-03"
TEXTS = [
    "ну и что теперь",  # unsure: below the local accept threshold
    "подскажите кому писать по такому вопросу",
    "нет горячей воды уже третий день",
    "передать показания счётчика воды",
]


@pytest.fixture
def partition(project_env):
    folder = project_env / "assets"
    for asset, frame in {
        "cleaned_texts": pd.DataFrame(
            {
                "row_id": [f"r{i}" for i in range(len(TEXTS))],
                "text": TEXTS,
                "ts": pd.Timestamp(DAY, tz="UTC"),
                "user_id": "u1",
            }
        ),
    }.items():
        (folder / asset).mkdir(parents=True)
        frame.to_parquet(folder / asset / f"{DAY}.parquet")
    empty = pd.DataFrame(columns=["row_id", "text", "domain", "review_status", "reviewed_at"])
    empty.to_parquet(folder / "verified_labels.parquet")
    return folder


def _materialize(folder, **run: object):
    """Materialize `labels` for DAY, or for the partitions `run` names (tags of a range)."""
    settings = Settings.load()
    partitions = daily_partitions(settings.app.partitions_start_date)
    # Upstream values are read from the files above, as in a real run.
    upstream = [
        AssetSpec("cleaned_texts", partitions_def=partitions),
        AssetSpec("verified_labels"),
    ]
    return materialize(
        [labeling.build_labels_asset(partitions), labeling.taxonomy, *upstream],
        selection=["labels"],
        **(run or {"partition_key": DAY}),
        resources={
            "io_manager": AssetFilesIOManager(base_dir=str(folder)),
            "taxonomy_file": TaxonomyResource.from_settings(settings),
            "labeler": LabelerResource.from_settings(settings),
        },
    )


def test_unsure_texts_go_to_the_llm_and_a_rerun_costs_no_request(partition, monkeypatch):
    with FakeOpenAIServer(labeler_responder(lambda text: "documents")) as server:
        monkeypatch.setenv("LLM_API_BASE", server.base_url)
        monkeypatch.setenv("LLM_MODEL", "fake-model")
        monkeypatch.setenv("LLM_API_KEY", "sk-test-not-a-real-key")

        first = _materialize(partition)
        assert first.success
        labels = pd.read_parquet(partition / "labels" / f"{DAY}.parquet")
        assert len(labels) == len(TEXTS) and set(labels["row_id"]) == {"r0", "r1", "r2", "r3"}
        by_llm = labels[labels["label_origin"] == "llm"]
        assert len(by_llm) >= 1 and set(by_llm["label_source"]) == {"fake-model"}
        requests = server.request_count
        assert requests >= 1
        metadata = first.asset_materializations_for_node("labels")[0].metadata
        assert metadata["llm_requests"].value == requests
        assert metadata["tokens_per_llm_label"].value > 0  # the server's real usage counts
        assert "sk-test-not-a-real-key" not in str(metadata)
        assert metadata["dagster/row_count"].value == len(TEXTS)
        checks = {c.check_name: c.passed for c in first.get_asset_check_evaluations()}
        assert checks == dict.fromkeys(
            ["domains_in_taxonomy", "confidence_in_unit_range", "failed_share_under_bound"], True
        )

        # Labelled again (a stored day with nothing new would be kept without asking).
        again = _materialize(partition, partition_key=DAY, tags={labeling.RELABEL_TAG: "true"})
        assert again.success
        assert server.request_count == requests  # the cache answered everything
        rerun = again.asset_materializations_for_node("labels")[0].metadata
        assert rerun["llm_requests"].value == 0 and rerun["cache_hit_rate"].value == 1.0


def test_llm_labels_that_agree_with_the_local_model_are_their_own_tier(partition, monkeypatch):
    """The fake server answers the local model's top domain for the first text and another
    domain for every other: of the texts the LLM labelled (with token logprobs), the first is
    of the agreement tier, with the two models' geometric-mean confidence; the rest stay "llm"."""
    settings = Settings.load()
    local = LocalModel().fit(TaxonomyResource.from_settings(settings).load())
    top = {text: prediction for text, prediction in zip(TEXTS, local.predict(TEXTS), strict=True)}
    other = {d: next(o for o in ("documents", "roads") if o != d) for d, _, _ in top.values()}

    def answer(text: str) -> str:
        domain = top[text][0]
        return domain if text == TEXTS[0] else other[domain]

    with FakeOpenAIServer(labeler_responder(answer)) as server:
        monkeypatch.setenv("LLM_API_BASE", server.base_url)
        monkeypatch.setenv("LLM_MODEL", "fake-model")
        monkeypatch.setenv("LLM_API_KEY", "sk-test-not-a-real-key")
        monkeypatch.setenv("LABELER_LOCAL_ACCEPT_THRESHOLD", "1.0")  # every text to the LLM
        assert _materialize(partition).success
    labels = pd.read_parquet(partition / "labels" / f"{DAY}.parquet").set_index("text")
    by_llm = labels[labels["label_origin"] == "llm"]
    assert TEXTS[0] in by_llm.index and len(by_llm) >= 3  # a certain one may stay local
    assert by_llm["llm_token_confidence"].notna().all()
    agreeing = by_llm.loc[TEXTS[0]]
    assert agreeing["tier"] == "llm_agrees_with_local"
    expected = math.sqrt(agreeing["llm_token_confidence"] * top[TEXTS[0]][1])
    assert agreeing["confidence"] == pytest.approx(expected, abs=1e-6)
    assert set(by_llm.drop(index=TEXTS[0])["tier"]) == {"llm"}


def test_a_labels_run_prunes_the_answer_cache(partition):
    path = Settings.load().cache.dir / CACHE_FILE_NAME
    with ResponseCache(path, clock=lambda: 0.0) as ancient:
        ancient.put("expired prompt answer", "1")
        ancient.put("per-text answer nobody read", "2", lasting=True)
    with ResponseCache(path) as cache:
        cache.put("per-text answer of this month", "3", lasting=True)

    result = _materialize(partition)
    assert result.success
    (observation,) = result.asset_observations_for_node("labels")
    assert observation.metadata["llm_cache_pruned"].value == 2
    with ResponseCache(path) as cache:
        assert len(cache) == 1 and cache.get("per-text answer of this month") == "3"


def test_the_labels_code_version_names_the_prompt_and_the_model_recipe():
    from esk_pipeline.pipeline.labeler import PROMPT_VERSION
    from esk_pipeline.pipeline.local_model import MODEL_VERSION

    labels = labeling.build_labels_asset(daily_partitions("2026-11-01"))
    spec = labels.specs_by_key[labels.key]
    assert spec.code_version == f"{PROMPT_VERSION}+{MODEL_VERSION}"
    assert labeling.taxonomy.key in {dep.asset_key for dep in spec.deps}


def test_each_day_of_a_range_run_records_its_own_label_metadata(partition):
    """Three days of 4, 1 and 2 texts in one run: every day's counts are its own."""
    days = {DAY: 4, "2026-11-04": 1, "2026-11-05": 2}
    for day, n in days.items():
        frame = pd.DataFrame(
            {
                "row_id": [f"{day}-{i}" for i in range(n)],
                "text": TEXTS[:n],
                "ts": pd.Timestamp(day, tz="UTC"),
                "user_id": "u1",
            }
        )
        frame.to_parquet(partition / "cleaned_texts" / f"{day}.parquet")
    result = _materialize(
        partition,
        tags={
            "dagster/asset_partition_range_start": DAY,
            "dagster/asset_partition_range_end": "2026-11-05",
        },
    )
    assert result.success
    metadata = {
        m.partition: {k: v.value for k, v in m.metadata.items()}
        for m in result.asset_materializations_for_node("labels")
    }
    assert sorted(metadata) == sorted(days)
    for day, n in days.items():
        written = pd.read_parquet(partition / "labels" / f"{day}.parquet")
        assert len(written) == n
        day_metadata = metadata[day]
        assert day_metadata["rows"] == day_metadata["rows_written"] == n, day
        assert day_metadata["dagster/row_count"] == n
        assert day_metadata["path"].endswith(f"labels/{day}.parquet")
        # The cascade's routing, named so that nobody reads it as "trusted".
        routes = {
            r.data["route"]: r.data["share"] for r in day_metadata["cascade_routing_shares"].records
        }
        assert "cascade_accepted_local" in routes and "local_accepted" not in routes
        assert sum(routes.values()) == pytest.approx(1.0)


def test_a_day_of_a_range_without_cleaned_texts_gets_an_empty_labels_day(partition):
    """A range can hold a day no log reached (its cleaned texts were never made): that day
    is labelled as no rows, and the days around it as usual."""
    result = _materialize(
        partition,
        tags={
            "dagster/asset_partition_range_start": DAY,
            "dagster/asset_partition_range_end": "2026-11-04",
        },
    )
    assert result.success
    assert len(pd.read_parquet(partition / "labels" / f"{DAY}.parquet")) == len(TEXTS)
    empty = pd.read_parquet(partition / "labels" / "2026-11-04.parquet")
    assert empty.empty and {"row_id", "domain", "status", "ts", "user_id"} <= set(empty.columns)


def test_a_day_labelled_in_slices_gets_what_one_pass_gives(partition, monkeypatch):
    assert _materialize(partition).success
    whole = pd.read_parquet(partition / "labels" / f"{DAY}.parquet")
    monkeypatch.setattr(labeling, "LABEL_SLICE_ROWS", 3)  # slices of 3 and 1 texts
    result = _materialize(partition, partition_key=DAY, tags={labeling.RELABEL_TAG: "true"})
    assert result.success
    pd.testing.assert_frame_equal(pd.read_parquet(partition / "labels" / f"{DAY}.parquet"), whole)
    metadata = result.asset_materializations_for_node("labels")[0].metadata
    assert metadata["rows"].value == len(TEXTS)
    routes = [r.data["share"] for r in metadata["cascade_routing_shares"].value.records]
    assert sum(routes) == pytest.approx(1.0)


def test_the_label_checks_catch_unknown_domains_bad_confidence_and_many_failures():
    taxonomy = {"documents", "other"}
    good = pd.DataFrame(
        {"domain": ["documents", "other", None], "confidence": [0.9, 0.0, None]}
    ).assign(status=["labeled", "labeled", "deferred"])
    assert all(check.passed for check in labeling._label_checks(_tally(good), taxonomy))

    bad = pd.DataFrame(
        {
            "domain": ["documents", "invented", None, None],
            "confidence": [1.2, 0.5, None, None],
            "status": ["labeled", "labeled", "failed", "failed"],
        }
    )
    # Counted over two days: the checks see the range's totals.
    tally = _tally(bad.iloc[:1], bad.iloc[1:])
    verdicts = {c.check_name: c for c in labeling._label_checks(tally, taxonomy)}
    assert {name: c.passed for name, c in verdicts.items()} == {
        "domains_in_taxonomy": False,
        "confidence_in_unit_range": False,
        "failed_share_under_bound": False,
    }
    assert verdicts["domains_in_taxonomy"].metadata["unknown_domains"].value == "invented"
    assert verdicts["failed_share_under_bound"].metadata["failed_share"].value == 0.5
    assert verdicts["failed_share_under_bound"].metadata["bound"].value == "0.2"  # text


def _tally(*days: pd.DataFrame) -> labeling.LabelTally:
    tally = labeling.LabelTally()
    for frame in days:
        tally.add(frame)
    return tally
