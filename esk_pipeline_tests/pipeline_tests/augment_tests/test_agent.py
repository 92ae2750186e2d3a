"""AugmenterAgent: the seed's `augment_batch`, generation on the LLM path (test models, the
fault-injecting server, the cache) and on the offline path with the real local labeler, and what
`aclose` closes."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr
from pydantic_ai.models.test import TestModel

from esk_pipeline.pipeline import LabelerAgent, LabelerConfig
from esk_pipeline.pipeline.augment import (
    AugmentationReport,
    AugmentedSample,
    AugmenterAgent,
    AugmenterConfig,
)
from esk_pipeline.pipeline.ids import row_id
from esk_pipeline.pipeline.llm import ResponseCache, UsageMeter
from esk_pipeline.pipeline.taxonomy import Taxonomy
from esk_pipeline_tests.fakes.openai_server import FakeOpenAIServer, request_text
from esk_pipeline_tests.pipeline_tests.augment_tests.conftest import (
    GOOD,
    LIFT,
    KeywordLabeler,
    function_model,
    llm_config,
    run,
)

# -- the LLM path ----------------------------------------------------------------------------


def test_llm_path_with_test_model_produces_typed_samples(taxonomy: Taxonomy) -> None:
    paraphrase = "у нас в подъезде опять не ходит лифт, жильцы поднимаются пешком"
    model = TestModel(custom_output_args={"paraphrases": [paraphrase], "hard_negatives": []})
    agent = AugmenterAgent(llm_config(), taxonomy, labeler=KeywordLabeler(), model_override=model)

    samples = run(agent.augment_batch([{"text": LIFT, "domain_id": "housing_utilities"}]))

    assert samples == [
        AugmentedSample(
            row_id=row_id(paraphrase),
            text=paraphrase,
            domain="housing_utilities",
            source_text=LIFT,
            source_row_id=row_id(LIFT),
            method="llm_paraphrase",
            model="gpt-4o-mini",
        )
    ]


def test_personal_data_an_llm_writes_into_a_sample_is_masked(taxonomy: Taxonomy) -> None:
    """The sources are masked, but a model may fill a placeholder in or make a phone up: a
    sample goes through the ETL's masking like every text of the dataset."""
    paraphrase = "у нас в подъезде опять не ходит лифт, звоните +7 912 345-67-89"
    model = TestModel(custom_output_args={"paraphrases": [paraphrase], "hard_negatives": []})
    agent = AugmenterAgent(llm_config(), taxonomy, labeler=KeywordLabeler(), model_override=model)

    [sample] = run(agent.augment_batch([{"text": LIFT, "domain_id": "housing_utilities"}]))

    assert sample.text == "у нас в подъезде опять не ходит лифт, звоните <PHONE>"
    assert sample.row_id == row_id(sample.text)


def test_a_failed_llm_call_leaves_an_explicit_record(taxonomy: Taxonomy) -> None:
    answers = {LIFT: {"paraphrases": [GOOD]}}
    agent = AugmenterAgent(
        llm_config(), taxonomy, labeler=KeywordLabeler(), model_override=function_model(answers)
    )
    items = [
        {"text": LIFT, "domain_id": "housing_utilities"},
        {"text": "сбой: автобус не пришёл", "domain_id": "transport", "row_id": "src-7"},
    ]

    report = run(agent.augment(items))

    assert [s.text for s in report.samples] == [GOOD]
    [failed] = report.rejected
    assert (failed.reason, failed.text, failed.source_row_id) == ("llm_failed", None, "src-7")
    assert "the model is down" in failed.detail


def test_a_spent_budget_defers_the_remaining_sources(taxonomy: Taxonomy) -> None:
    sources = [f"не работает лифт в доме номер {n}, ходим пешком" for n in range(3)]
    answers = {
        s: {"paraphrases": [f"лифт в доме {i} стоит, на этаж приходится идти пешком"]}
        for i, s in enumerate(sources)
    }
    agent = AugmenterAgent(
        llm_config(concurrency=1),
        taxonomy,
        labeler=KeywordLabeler(),
        model_override=function_model(answers),
        usage=UsageMeter(max_requests=1),
    )
    report = run(agent.augment([{"text": s, "domain_id": "housing_utilities"} for s in sources]))
    assert len(report.samples) == 1
    assert report.rejections == {"deferred": 2}


HOUSING_SOURCES = [
    "не работает лифт в подъезде второй день",
    "лифт застрял между этажами, внутри ребёнок",
    "в лифте сломана кнопка вызова на первом этаже",
    "лифт страшно скрипит и дёргается при остановке",
    "после ремонта лифт ходит только до пятого этажа",
    "в лифте нет света и воняет",
]
TRANSPORT_SOURCES = [
    "автобус 42 опять не пришёл на остановку",
    "водитель автобуса не остановился по требованию",
    "в автобусе не работает валидатор карт",
    "автобус ходит раз в час вместо пятнадцати минут",
    "в ночном автобусе холодно, печка не работает",
    "автобус изменил маршрут без объявления",
]
SERVER_SOURCES = [(t, "housing_utilities") for t in HOUSING_SOURCES] + [
    (t, "transport") for t in TRANSPORT_SOURCES
]
SUFFIXES = ("когда это починят?", "прошу разобраться как можно быстрее", "сколько можно ждать")


def _paraphrasing_responder(request: dict[str, Any]) -> dict[str, Any]:
    task = json.loads(request_text(request))
    return {
        "paraphrases": [
            f"здравствуйте, у меня проблема: {task['request']}, {suffix}"
            for suffix in SUFFIXES[: task["paraphrases_wanted"]]
        ],
        "hard_negatives": [],
    }


def _server_config(server: FakeOpenAIServer, **overrides: Any) -> AugmenterConfig:
    return llm_config(
        model="fake-model",
        api_base=server.base_url,
        api_key=SecretStr("sk-test-secret"),
        output_mode="auto",
        **overrides,
    )


def test_against_the_fault_injecting_server_nothing_is_lost_or_duplicated(
    taxonomy: Taxonomy,
) -> None:
    items = [{"text": t, "domain_id": d} for t, d in SERVER_SOURCES]
    with FakeOpenAIServer(
        _paraphrasing_responder,
        fault_rate=0.3,
        fault_kinds=("500", "502", "503", "429", "malformed_body", "malformed_output"),
        retry_after_seconds=0,
        seed=3,
    ) as server:
        agent = AugmenterAgent(_server_config(server), taxonomy, labeler=KeywordLabeler())
        report = run(agent.augment(items))
        sent = server.request_count

    assert sent > len(items)  # faults were retried
    by_source: dict[str, list[str]] = {row_id(t): [] for t, _ in SERVER_SOURCES}
    for sample in report.samples:
        by_source[sample.source_row_id].append("accepted")
    for rejected in report.rejected:
        by_source[rejected.source_row_id].append(rejected.reason if rejected.text else "failed")
    for source, outcomes in by_source.items():
        # Each source yields its three paraphrases' outcomes, or one explicit failure record.
        assert outcomes == ["failed"] or len(outcomes) == 3, (source, outcomes)
    assert len({s.row_id for s in report.samples}) == len(report.samples)
    assert len(report.samples) >= 3 * (len(items) - 2)
    assert report.counts_after == dict(Counter(s.domain for s in report.samples))


def test_aclose_closes_only_the_labeler_and_cache_the_agent_built(
    project_env: Path, taxonomy: Taxonomy
) -> None:
    answers = {LIFT: {"paraphrases": [GOOD]}}
    items = [{"text": LIFT, "domain_id": "housing_utilities"}]
    given_cache = ResponseCache(project_env / "given.sqlite")
    given_labeler = LabelerAgent(
        LabelerConfig(model="local", use_cache=True, cache_dir=project_env / "given"), taxonomy
    )
    given = AugmenterAgent(
        llm_config(use_cache=True),
        taxonomy,
        labeler=given_labeler,
        cache=given_cache,
        model_override=function_model(answers),
    )
    built = AugmenterAgent(
        llm_config(use_cache=True), taxonomy, model_override=function_model(answers)
    )

    async def run_and_close(agent: AugmenterAgent) -> AugmentationReport:
        try:
            return await agent.augment(items)
        finally:
            await agent.aclose()

    run(run_and_close(given))
    report = run(run_and_close(built))

    assert given_cache.is_open and given_labeler._cache is not None
    assert given_labeler._cache.is_open
    default_labeler = built.labeler
    assert isinstance(default_labeler, LabelerAgent) and default_labeler._cache is not None
    assert not default_labeler._cache.is_open
    assert built._client is not None and built._client.cache is not None
    assert not built._client.cache.is_open
    assert [s.text for s in report.samples] == [GOOD]  # the default labeler judged it
    given_cache.close()
    given_labeler._cache.close()


def test_a_rerun_is_served_from_the_cache_without_requests(
    taxonomy: Taxonomy, tmp_path: Path
) -> None:
    items = [{"text": t, "domain_id": d} for t, d in SERVER_SOURCES[:4]]
    with FakeOpenAIServer(_paraphrasing_responder) as server:

        def agent_on_the_cache_file() -> AugmenterAgent:
            return AugmenterAgent(
                _server_config(server),
                taxonomy,
                labeler=KeywordLabeler(),
                cache=ResponseCache(tmp_path / "cache.sqlite"),
            )

        first_report = run(agent_on_the_cache_file().augment(items))
        assert server.request_count == 4

        second = agent_on_the_cache_file()
        second_report = run(second.augment(items))

        assert server.request_count == 4
    assert second.usage.snapshot()["requests"] == 0
    assert second.usage.snapshot()["cached_hits"] == 4
    assert second_report.samples == first_report.samples


# -- the offline path with the real local labeler ------------------------------------------------


def test_offline_augment_batch_with_the_local_labeler(taxonomy: Taxonomy) -> None:
    labeler = LabelerAgent(LabelerConfig(model="local", use_cache=False), taxonomy)
    agent = AugmenterAgent(llm_config(model="local"), taxonomy, labeler=labeler)
    items = [
        {
            "text": "не могу внести показания счетчика воды в личном кабинете",
            "domain_id": "meter_readings",
        },
        {"text": "автобус 42 не ходит по расписанию", "domain": "transport", "row_id": "r-bus"},
    ]

    report = run(agent.augment(items))

    assert report.n_candidates == 6
    assert len(report.samples) + len(report.rejected) == 6
    assert report.samples, "the local model keeps most meaning-preserving variants"
    sources = {items[0]["text"]: row_id(items[0]["text"]), items[1]["text"]: "r-bus"}
    domains = {items[0]["text"]: "meter_readings", items[1]["text"]: "transport"}
    for sample in report.samples:
        assert sample.model == "offline" and sample.method.startswith("offline:")
        assert sample.is_synthetic and not sample.is_hard_negative
        assert sample.row_id == row_id(sample.text)
        assert sample.source_row_id == sources[sample.source_text]
        assert sample.domain == domains[sample.source_text]
    assert report.usage["requests"] == 0


def test_items_with_a_domain_outside_the_taxonomy_are_refused(taxonomy: Taxonomy) -> None:
    agent = AugmenterAgent(llm_config(model="local"), taxonomy, labeler=KeywordLabeler())
    with pytest.raises(ValueError, match="not in the taxonomy"):
        run(agent.augment_batch([{"text": "передать показания", "domain_id": "house"}]))
