"""The labeler: cascade, batching and id matching, failures, budget, cache, few-shot, feedback.

Unit tests drive the LLM tier with pydantic-ai's FunctionModel/TestModel through
`model_override`; the integration tests at the end go over real HTTP to the fault-injecting
OpenAI-compatible server in `esk_pipeline_tests/fakes`.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from pydantic_ai.exceptions import ModelHTTPError
from pydantic_ai.messages import ModelMessage, ModelResponse, ToolCallPart, UserPromptPart
from pydantic_ai.models.function import AgentInfo, FunctionModel
from pydantic_ai.models.test import TestModel

from esk_pipeline.pipeline.ids import row_id
from esk_pipeline.pipeline.labeler_agent import (
    _LOCAL_CHUNK,
    PROMPT_VERSION,
    CascadeReport,
    ClassificationResult,
    LabelerAgent,
    LabelerConfig,
    _token_confidences,
    label_dataframe_batched,
    results_to_frame,
)
from esk_pipeline.pipeline.llm import LLMClient, ResponseCache, UsageMeter
from esk_pipeline.pipeline.taxonomy import Taxonomy
from esk_pipeline.settings import LLMEndpoint, get_settings
from esk_pipeline_tests.fakes.openai_server import (
    FakeOpenAIServer,
    batch_texts,
    request_text,
    with_batch_faults,
)

TAXONOMY_PATH = Path(__file__).resolve().parents[2] / "data" / "taxonomy.yaml"

# Texts the local model is unsure of, with the domain the scripted LLM gives them.
TRUTH = {
    "хочу уточнить по поводу вчерашнего": "other",
    "а можно как-то побыстрее решить вопрос": "other",
    "соседка говорит надо куда-то звонить": "public_order",
    "опять та же история что и в прошлом году": "housing_utilities",
    "у нас во дворе непонятно что творится": "roads",
    "подскажите кому писать по такому вопросу": "documents",
    "мне сказали обратиться к вам": "other",
    "это уже пятое обращение": "payments",
}
TEXTS = list(TRUTH)

Answer = Callable[[dict[str, str], int], list[dict[str, Any]]]


@pytest.fixture(scope="module")
def taxonomy() -> Taxonomy:
    return Taxonomy.load(TAXONOMY_PATH)


def truthful(texts: dict[str, str], call: int) -> list[dict[str, Any]]:
    return [{"id": i, "domain": TRUTH.get(t, "other"), "confidence": 0.9} for i, t in texts.items()]


class Scripted:
    """A FunctionModel answering through `answer(texts_by_id, call_number)`; records calls."""

    def __init__(self, answer: Answer = truthful) -> None:
        self.answer = answer
        self.calls: list[dict[str, str]] = []
        self.prompts: list[str] = []
        self.instructions: list[str] = []
        self.schemas: list[dict[str, Any]] = []
        self.model = FunctionModel(self._respond)

    def _respond(self, messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        request = messages[-1]
        prompt = next(p.content for p in request.parts if isinstance(p, UserPromptPart))
        assert isinstance(prompt, str)
        texts = batch_texts(prompt)
        self.calls.append(texts)
        self.prompts.append(prompt)
        self.instructions.append(getattr(request, "instructions", None) or "")
        tool = info.output_tools[0]
        self.schemas.append(tool.parameters_json_schema)
        items = self.answer(texts, len(self.calls))
        return ModelResponse(parts=[ToolCallPart(tool.name, {"items": items})])


def _config(tmp_path: Path, **overrides: Any) -> LabelerConfig:
    values: dict[str, Any] = {
        "model": "scripted",
        "cache_dir": tmp_path / "cache",
        "use_cache": False,
        "batch_size": 4,
        "rate_limit": 0,
        "max_retries": 2,
        "concurrency": 2,
        "local_accept_threshold": 1.0,
        "backoff_seconds": 0.0,
        "retry_after_cap": 0.0,
    }
    return LabelerConfig(**{**values, **overrides})


def _label(agent: LabelerAgent, texts: list[str] | pd.DataFrame) -> list[ClassificationResult]:
    """Label in one event loop and close the agent's connections in the same loop."""
    frame = texts if isinstance(texts, pd.DataFrame) else pd.DataFrame({"text": texts})

    async def run() -> list[ClassificationResult]:
        try:
            return await agent.classify_dataframe(frame)
        finally:
            await agent.aclose()

    return asyncio.run(run())


# -- configuration and the local tier ---------------------------------------------------


def test_config_is_local_without_an_endpoint(project_env: Path, monkeypatch) -> None:
    assert LabelerConfig().model == "local"
    assert LabelerConfig().is_local
    monkeypatch.setenv("LLM_API_BASE", "http://127.0.0.1:9/v1")
    monkeypatch.setenv("LLM_LABELER_MODEL", "qwen2.5")
    get_settings.cache_clear()
    config = LabelerConfig()
    assert (config.model, config.api_base) == ("qwen2.5", "http://127.0.0.1:9/v1")
    assert not config.is_local


def test_local_model_alone_labels_everything(taxonomy: Taxonomy, tmp_path: Path) -> None:
    agent = LabelerAgent(_config(tmp_path, model="local"), taxonomy)
    results = _label(agent, [*TEXTS, "нет горячей воды"])
    assert [r.status for r in results] == ["labeled"] * (len(TEXTS) + 1)
    assert {(r.tier, r.label_source, r.model) for r in results} == {("local", "local", "local")}
    assert results[-1].domain == "housing_utilities"
    report = agent.cascade_report(results)
    assert report.local_accepted + report.local_unaccepted == len(results)
    assert report.llm == report.failed == report.deferred == 0
    assert sum(report.shares.values()) == pytest.approx(1.0)
    # Without an LLM, only what the local model is unsure of goes to review.
    low = agent.get_low_confidence_items(results)
    assert all(r.confidence < agent.config.low_conf_threshold for r in low)


def test_cascade_sends_only_unsure_texts_to_the_llm(taxonomy: Taxonomy, tmp_path: Path) -> None:
    confident = ["нет горячей воды уже третий день", "как передать показания электросчётчика"]
    scripted = Scripted()
    agent = LabelerAgent(
        _config(tmp_path, local_accept_threshold=0.8), taxonomy, model_override=scripted.model
    )
    results = _label(agent, [*confident, *TEXTS])
    sent = {text for call in scripted.calls for text in call.values()}
    by_text = {r.text: r for r in results}
    for text in confident:
        assert by_text[text].tier == "local" and by_text[text].confidence >= 0.8
        assert text not in sent
    for text in sent:
        assert by_text[text].tier == "llm"
        assert by_text[text].domain == TRUTH[text]
        assert by_text[text].label_source == "scripted"
    report = agent.cascade_report(results)
    assert report.local_accepted + report.llm == len(results)
    assert report.local_accepted >= len(confident)
    assert report.usage["requests"] == len(scripted.calls)


def test_requests_start_after_the_first_chunk_and_batches_stay_full(
    taxonomy: Taxonomy, tmp_path: Path
) -> None:
    """A big frame: the first request goes out before the local model has scored all of it,
    and chunk boundaries do not cut batches short (requests = ceil(texts / batch_size))."""
    texts = [f"{a} {b}, дом {n}" for a in TEXTS for b in TEXTS for n in range(40)]
    assert len(texts) > 4 * _LOCAL_CHUNK  # several chunks
    agent: LabelerAgent
    scored_at_first_request: list[int] = []

    def answer(batch: dict[str, str], call: int) -> list[dict[str, Any]]:
        if call == 1:
            scored_at_first_request.append(scored)
        return truthful(batch, call)

    scripted = Scripted(answer)
    agent = LabelerAgent(_config(tmp_path, batch_size=20), taxonomy, model_override=scripted.model)
    scored = 0
    predict = agent.local_model.predict_with_vectors

    def counting_predict(chunk: list[str], **kwargs: Any) -> Any:
        nonlocal scored
        scored += len(chunk)
        return predict(chunk, **kwargs)

    agent.local_model.predict_with_vectors = counting_predict  # type: ignore[method-assign]
    results = _label(agent, texts)
    assert scored == len(texts)
    assert scored_at_first_request and scored_at_first_request[0] < len(texts)
    assert len(scripted.calls) == -(-len(texts) // 20)
    assert sorted(t for call in scripted.calls for t in call.values()) == sorted(texts)
    assert [r.text for r in results] == texts and {r.status for r in results} == {"labeled"}


def test_an_error_midway_leaves_no_request_running(taxonomy: Taxonomy, tmp_path: Path) -> None:
    """The local model fails on a later chunk while earlier requests are in flight: the error
    comes out as it is, and those requests are cancelled and awaited, not left behind."""
    texts = [f"{a} {b}, дом {n}" for a in TEXTS for b in TEXTS for n in range(20)]
    started: list[int] = []

    async def slow(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        started.append(1)
        await asyncio.sleep(30)  # still in flight when the error comes
        raise AssertionError("never answered")

    agent = LabelerAgent(
        _config(tmp_path, batch_size=20), taxonomy, model_override=FunctionModel(slow)
    )
    predict = agent.local_model.predict_with_vectors
    chunks = 0

    def failing_second_chunk(chunk: list[str], **kwargs: Any) -> Any:
        nonlocal chunks
        chunks += 1
        if chunks == 2:
            time.sleep(0.2)  # the first chunk's requests get under way meanwhile
            raise RuntimeError("model file gone")
        return predict(chunk, **kwargs)

    agent.local_model.predict_with_vectors = failing_second_chunk  # type: ignore[method-assign]

    async def run() -> list[str]:
        with pytest.raises(RuntimeError, match="model file gone"):
            await agent.classify_dataframe(pd.DataFrame({"text": texts}))
        pending = asyncio.all_tasks() - {asyncio.current_task()}
        return [task.get_coro().__qualname__ for task in pending if not task.done()]

    left = asyncio.run(asyncio.wait_for(run(), timeout=10))
    assert started  # requests were in flight
    assert "LabelerAgent._run_batch" not in left, left


# -- the LLM tier: typed output, validation, id matching ---------------------------------


def test_answer_schema_restricts_domains_to_the_taxonomy(
    taxonomy: Taxonomy, tmp_path: Path
) -> None:
    scripted = Scripted()
    agent = LabelerAgent(_config(tmp_path), taxonomy, model_override=scripted.model)
    _label(agent, TEXTS[:2])
    schema = json.dumps(scripted.schemas[0])
    assert json.dumps(taxonomy.ids) in schema  # the enum of allowed domain ids


def test_answer_ids_are_the_batchs_short_ids_one_type_per_size(
    taxonomy: Taxonomy, tmp_path: Path
) -> None:
    scripted = Scripted()
    agent = LabelerAgent(_config(tmp_path, batch_size=4), taxonomy, model_override=scripted.model)
    _label(agent, TEXTS[:6])  # a batch of 4 and one of 2
    calls = zip(scripted.calls, scripted.schemas, strict=True)
    by_size = {len(call): schema for call, schema in calls}
    for size, schema in by_size.items():
        item = schema["$defs"]["LabeledText"]["properties"]["id"]
        assert item["enum"] == [f"t{i}" for i in range(1, size + 1)]
    assert agent._answer_type(4) is agent._answer_type(4)  # built once per size
    foreign = {"items": [{"id": "meter_readings", "domain": "roads", "confidence": 0.9}]}
    with pytest.raises(ValueError, match="t1"):
        agent._answer_type(4).model_validate(foreign)


def test_llm_confidence_is_clamped(taxonomy: Taxonomy, tmp_path: Path) -> None:
    def wild(texts: dict[str, str], call: int) -> list[dict[str, Any]]:
        return [
            {"id": "t1", "domain": "roads", "confidence": 7.5},
            {"id": "t2", "domain": "roads", "confidence": -2},
        ]

    agent = LabelerAgent(_config(tmp_path), taxonomy, model_override=Scripted(wild).model)
    first, second = _label(agent, TEXTS[:2])
    assert (first.confidence, second.confidence) == (1.0, 0.0)


def test_testmodel_answer_is_typed_and_checked(taxonomy: Taxonomy, tmp_path: Path) -> None:
    answer = {"items": [{"id": "t1", "domain": "waste", "confidence": 0.7}]}
    agent = LabelerAgent(
        _config(tmp_path), taxonomy, model_override=TestModel(custom_output_args=answer)
    )
    [result] = _label(agent, TEXTS[:1])
    assert (result.domain, result.confidence, result.status) == ("waste", 0.7, "labeled")
    assert (result.llm_self_confidence, result.llm_token_confidence) == (0.7, None)
    # The LLM's choice first, then the local model's other candidates as hints for review.
    local_top = agent.local_model.predict(TEXTS[:1])[0][2]
    hints = [pair for pair in local_top if pair[0] != "waste"]
    assert result.top_candidates == [("waste", 0.7), *hints][:3]


def test_out_of_taxonomy_answer_is_never_a_label(taxonomy: Taxonomy, tmp_path: Path) -> None:
    poison = TEXTS[0]

    def stubborn(texts: dict[str, str], call: int) -> list[dict[str, Any]]:
        return [
            {"id": i, "domain": "not_a_domain" if t == poison else TRUTH[t], "confidence": 0.9}
            for i, t in texts.items()
        ]

    agent = LabelerAgent(
        _config(tmp_path, batch_size=8, max_retries=3),
        taxonomy,
        model_override=Scripted(stubborn).model,
    )
    results = _label(agent, TEXTS)
    by_text = {r.text: r for r in results}
    assert by_text[poison].status == "failed"
    assert by_text[poison].domain is None
    # Invalid output after the client's retries (the shared layer's message gives no detail).
    assert "failed after" in (by_text[poison].error or "")
    # The batch is split until the poisonous text fails alone; the rest are labelled.
    assert all(by_text[t].domain == TRUTH[t] for t in TEXTS[1:])


def test_skipped_and_conflicting_ids_are_asked_again(taxonomy: Taxonomy, tmp_path: Path) -> None:
    def sloppy(texts: dict[str, str], call: int) -> list[dict[str, Any]]:
        answers = truthful(texts, call)
        if call > 1:
            return answers
        _skipped, conflicting, doubled, fine = answers
        return [
            conflicting,
            {**conflicting, "domain": "waste"},
            doubled,
            {**doubled, "confidence": 0.5},  # the same domain twice: fine, highest confidence
            fine,
        ]

    scripted = Scripted(sloppy)
    agent = LabelerAgent(_config(tmp_path), taxonomy, model_override=scripted.model)
    results = _label(agent, TEXTS[:4])
    assert [r.domain for r in results] == [TRUTH[t] for t in TEXTS[:4]]
    assert [r.status for r in results] == ["labeled"] * 4
    assert results[2].confidence == 0.9
    assert len(scripted.calls) == 2
    assert sorted(scripted.calls[1].values()) == sorted(TEXTS[:2])


def test_an_id_never_answered_fails_after_max_retries(taxonomy: Taxonomy, tmp_path: Path) -> None:
    ignored = TEXTS[1]

    def forgetful(texts: dict[str, str], call: int) -> list[dict[str, Any]]:
        return [a for a in truthful(texts, call) if texts[a["id"]] != ignored]

    scripted = Scripted(forgetful)
    agent = LabelerAgent(_config(tmp_path, max_retries=2), taxonomy, model_override=scripted.model)
    results = _label(agent, TEXTS[:4])
    assert len(results) == 4
    failed = [r for r in results if r.status == "failed"]
    assert [r.text for r in failed] == [ignored]
    assert "skipped" in (failed[0].error or "")
    assert len(scripted.calls) == 3  # the first request and two follow-ups
    assert [list(call.values()) for call in scripted.calls[1:]] == [[ignored], [ignored]]
    assert failed[0].top_candidates, "failed items keep the local model's candidates for review"
    assert failed[0] in agent.get_low_confidence_items(results)


def test_http_error_fails_the_batch_with_the_reason(taxonomy: Taxonomy, tmp_path: Path) -> None:
    calls = []

    def unauthorised(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        calls.append(1)
        raise ModelHTTPError(status_code=401, model_name="scripted", body={"error": "bad key"})

    agent = LabelerAgent(_config(tmp_path), taxonomy, model_override=FunctionModel(unauthorised))
    results = _label(agent, TEXTS[:4])
    assert [r.status for r in results] == ["failed"] * 4
    assert all("401" in (r.error or "") for r in results)
    assert len(calls) == 1  # not retryable, and not split: it would only fail again


def test_cost_and_tokens_per_label_come_from_the_usage_snapshot() -> None:
    usage = {"input_tokens": 900, "output_tokens": 300, "cost": 0.06}
    report = CascadeReport(
        total=12,
        local_accepted=6,
        local_unaccepted=0,
        llm=4,
        llm_cached=1,
        failed=1,
        deferred=1,
        for_review=2,
        usage=usage,
    )
    assert report.tokens_per_llm_label == 300.0  # 1200 tokens over 4 LLM labels
    assert report.cost_per_label == pytest.approx(0.006)  # over all 10 labelled items
    nothing = report.model_copy(update={"local_accepted": 0, "llm": 0, "llm_cached": 0})
    assert nothing.tokens_per_llm_label == nothing.cost_per_label == 0.0


def test_cascade_report_figures_per_label_for_a_run(taxonomy: Taxonomy, tmp_path: Path) -> None:
    agent = LabelerAgent(_config(tmp_path), taxonomy, model_override=Scripted().model)
    report = agent.cascade_report(_label(agent, TEXTS))
    tokens = report.usage["input_tokens"] + report.usage["output_tokens"]
    assert report.llm == len(TEXTS) and tokens > 0
    assert report.tokens_per_llm_label == tokens / len(TEXTS)


def test_spent_budget_defers_the_rest(taxonomy: Taxonomy, tmp_path: Path) -> None:
    scripted = Scripted()
    agent = LabelerAgent(
        _config(tmp_path, batch_size=2, concurrency=1),
        taxonomy,
        model_override=scripted.model,
        usage=UsageMeter(max_requests=1),
    )
    results = _label(agent, TEXTS[:6])
    assert [r.status for r in results] == ["labeled"] * 2 + ["deferred"] * 4
    assert all(r.domain is None and "budget" in (r.error or "") for r in results[2:])
    assert len(scripted.calls) == 1
    report = agent.cascade_report(results)
    assert (report.llm, report.deferred, report.failed) == (2, 4, 0)
    assert not any(r.status == "deferred" for r in agent.get_low_confidence_items(results))


# -- cache ---------------------------------------------------------------------------------


def test_aclose_closes_the_cache_and_the_agent_stays_usable(
    taxonomy: Taxonomy, tmp_path: Path
) -> None:
    scripted = Scripted()
    agent = LabelerAgent(_config(tmp_path, use_cache=True), taxonomy, model_override=scripted.model)
    first = _label(agent, TEXTS[:4])  # closes the agent after labelling
    assert agent._cache is not None and not agent._cache.is_open
    calls = len(scripted.calls)

    again = _label(agent, TEXTS[:4])  # reopens the cache file: every text is a hit
    assert len(scripted.calls) == calls
    assert [r.domain for r in again] == [r.domain for r in first] and all(r.cached for r in again)
    assert not agent._cache.is_open


def test_rerun_over_unchanged_input_makes_no_requests(taxonomy: Taxonomy, tmp_path: Path) -> None:
    first = Scripted()
    agent = LabelerAgent(
        _config(tmp_path, use_cache=True, batch_size=3), taxonomy, model_override=first.model
    )
    before = _label(agent, TEXTS)
    assert first.calls

    again = Scripted()  # batches composed differently: the per-text cache still answers
    agent = LabelerAgent(
        _config(tmp_path, use_cache=True, batch_size=5), taxonomy, model_override=again.model
    )
    after = _label(agent, list(reversed(TEXTS)))
    assert again.calls == []
    assert [r.domain for r in reversed(after)] == [r.domain for r in before]
    assert all(r.cached for r in after)
    assert agent.cascade_report(after).cache_hit_rate == 1.0


def test_deferred_items_are_picked_up_by_the_next_run(taxonomy: Taxonomy, tmp_path: Path) -> None:
    config = _config(tmp_path, use_cache=True, batch_size=2, concurrency=1)
    first = Scripted()
    agent = LabelerAgent(
        config, taxonomy, model_override=first.model, usage=UsageMeter(max_requests=2)
    )
    results = _label(agent, TEXTS)
    assert [r.status for r in results].count("deferred") == len(TEXTS) - 4

    second = Scripted()
    agent = LabelerAgent(config, taxonomy, model_override=second.model)
    results = _label(agent, TEXTS)
    assert [r.status for r in results] == ["labeled"] * len(TEXTS)
    asked_again = sorted(t for call in second.calls for t in call.values())
    assert asked_again == sorted(TEXTS[4:])  # what the first run labelled came from the cache


def test_cache_key_changes_with_the_taxonomy(taxonomy: Taxonomy, tmp_path: Path) -> None:
    config = _config(tmp_path, use_cache=True)
    agent = LabelerAgent(config, taxonomy, model_override=Scripted().model)
    _label(agent, TEXTS[:2])
    changed = taxonomy.model_copy(deep=True)
    changed.domains[0].description += " Капремонт."
    scripted = Scripted()
    agent = LabelerAgent(config, changed, model_override=scripted.model)
    _label(agent, TEXTS[:2])
    assert len(scripted.calls) == 1
    assert agent.version != LabelerAgent(_config(tmp_path), taxonomy).version
    assert agent.version.startswith(PROMPT_VERSION)


# -- few-shot, feedback, frames, the legacy shim --------------------------------------------


def test_dynamic_fewshot_picks_similar_examples_within_budget(
    taxonomy: Taxonomy, tmp_path: Path
) -> None:
    scripted = Scripted()
    budget = 120
    agent = LabelerAgent(
        _config(tmp_path, fewshot_token_budget=budget), taxonomy, model_override=scripted.model
    )
    _label(agent, ["течёт крыша в квартире, заливает уже неделю"])
    examples = [line for line in scripted.prompts[0].splitlines() if line.startswith("- ")]
    assert any("течёт крыша" in line for line in examples)
    assert sum(len(line) // 3 + 1 for line in examples) <= budget

    none = Scripted()
    agent = LabelerAgent(
        _config(tmp_path, fewshot_token_budget=0), taxonomy, model_override=none.model
    )
    _label(agent, TEXTS[:1])
    assert "Labelled examples" not in none.prompts[0]


def test_learn_retrains_and_feeds_fewshot(taxonomy: Taxonomy, tmp_path: Path) -> None:
    scripted = Scripted()
    agent = LabelerAgent(_config(tmp_path), taxonomy, model_override=scripted.model)
    taught = "по поводу вчерашнего звонка про снос гаражей"
    agent.learn([(taught, "roads")] * 3)
    assert agent.local_model.predict([taught])[0][0] == "roads"
    _label(agent, ["снос гаражей во дворе когда"])
    assert json.dumps(taught, ensure_ascii=False) in scripted.prompts[0]


def test_one_result_per_row_and_row_ids_kept(taxonomy: Taxonomy, tmp_path: Path) -> None:
    scripted = Scripted()
    agent = LabelerAgent(_config(tmp_path), taxonomy, model_override=scripted.model)
    frame = pd.DataFrame({"row_id": ["a", "b", "c"], "text": [TEXTS[0], TEXTS[0], TEXTS[1]]})
    results = asyncio.run(agent.classify_dataframe(frame))
    assert [r.row_id for r in results] == ["a", "b", "c"]
    assert sum(len(call) for call in scripted.calls) == 2  # the repeated text asked once
    [one] = _label(agent, [TEXTS[2]])
    assert one.row_id == row_id(TEXTS[2])
    single = asyncio.run(agent.classify_one(TEXTS[3]))
    assert (single.domain, single.row_id) == (TRUTH[TEXTS[3]], row_id(TEXTS[3]))


def test_progress_is_reported_to_the_callback(taxonomy: Taxonomy, tmp_path: Path) -> None:
    lines: list[str] = []
    agent = LabelerAgent(
        _config(tmp_path), taxonomy, model_override=Scripted().model, progress_callback=lines.append
    )
    _label(agent, TEXTS)
    assert lines and lines[-1].startswith(f"labeling: {len(TEXTS)}/{len(TEXTS)} (100.0%)")


def test_an_empty_frame_gives_no_results(taxonomy: Taxonomy, tmp_path: Path) -> None:
    scripted = Scripted()
    agent = LabelerAgent(_config(tmp_path), taxonomy, model_override=scripted.model)
    assert _label(agent, pd.DataFrame(columns=["row_id", "text"])) == []
    assert scripted.calls == []
    assert results_to_frame([]).empty


def test_results_to_frame_has_the_label_row_shape(taxonomy: Taxonomy, tmp_path: Path) -> None:
    agent = LabelerAgent(_config(tmp_path, model="local"), taxonomy)
    frame = results_to_frame(_label(agent, TEXTS[:3]))
    assert list(frame.columns) == [
        "row_id",
        "text",
        "domain",
        "confidence",
        "top_candidates",
        "label_source",
        "label_origin",
        "status",
        "error",
        "tier",
        "llm_self_confidence",
        "llm_token_confidence",
    ]
    assert set(frame["label_origin"]) == {"local_model"}
    candidates = json.loads(frame["top_candidates"][0])
    assert candidates[0][0] == frame["domain"][0]
    assert frame["confidence"].dtype == "float64"
    # Local labels have no LLM confidences: NaN, in float columns a calibration can read.
    assert frame["llm_token_confidence"].dtype == "float64"
    assert frame["llm_self_confidence"].isna().all()


def test_legacy_label_dataframe_batched(taxonomy: Taxonomy, tmp_path: Path) -> None:
    frame = pd.DataFrame({"text": TEXTS[:3], "user_id": ["u1", "u2", "u3"]})
    scripted = Scripted()
    out = asyncio.run(
        label_dataframe_batched(
            frame,
            system_prompt="Legacy instructions.",
            fewshot=[{"text": "где мой автобус", "domain": "transport"}],
            taxonomy=taxonomy,
            model_override=scripted.model,
            **_config(tmp_path).model_dump(exclude={"api_key"}),
        )
    )
    assert list(out["user_id"]) == ["u1", "u2", "u3"]
    assert list(out["domain"]) == [TRUTH[t] for t in TEXTS[:3]]
    assert {"row_id", "confidence", "top_candidates", "label_source", "status"} <= set(out)
    assert scripted.instructions[0].startswith("Legacy instructions.")

    local = asyncio.run(label_dataframe_batched(frame, taxonomy=taxonomy, model="local"))
    assert set(local["tier"]) == {"local"}


def test_legacy_shim_sends_through_a_given_llm_client(taxonomy: Taxonomy, tmp_path: Path) -> None:
    scripted = Scripted()
    client = LLMClient(
        LLMEndpoint(model="legacy-model"), rate_limit=0, model_override=scripted.model
    )
    frame = pd.DataFrame({"text": TEXTS[:2]})
    out = asyncio.run(
        label_dataframe_batched(
            frame,
            client,
            None,
            [("где мой автобус", "transport")],
            taxonomy=taxonomy,
            use_cache=False,
            local_accept_threshold=1.0,
        )
    )
    assert list(out["label_source"]) == ["legacy-model", "legacy-model"]
    assert client.usage.requests == len(scripted.calls) == 1


# -- integration: real HTTP against the fault-injecting server -------------------------------


def _server_answers(request: dict[str, Any]) -> dict[str, Any]:
    texts = batch_texts(request_text(request))
    return {"items": truthful(texts, 0)}


def _http_config(tmp_path: Path, server: FakeOpenAIServer, **overrides: Any) -> LabelerConfig:
    return _config(
        tmp_path,
        model="fake-model",
        api_base=server.base_url,
        api_key="sk-test",
        timeout_seconds=0.5,
        **overrides,
    )


def test_thirty_percent_faults_lose_and_duplicate_nothing(
    taxonomy: Taxonomy, tmp_path: Path
) -> None:
    texts = [f"{text} (обращение {n})" for n in range(12) for text in TEXTS]
    for text in texts:
        TRUTH.setdefault(text, TRUTH[text.split(" (")[0]])
    responder = with_batch_faults(_server_answers, rate=0.1, seed=3)
    with FakeOpenAIServer(
        responder, latency_ms=5, fault_rate=0.3, seed=1, hang_seconds=1.0
    ) as server:
        agent = LabelerAgent(
            _http_config(tmp_path, server, batch_size=8, concurrency=4, max_retries=4), taxonomy
        )
        frame = pd.DataFrame({"text": texts})
        frame["row_id"] = [f"r{i}" for i in range(len(frame))]
        results = _label(agent, frame)
        requests = server.request_count

    assert len(results) == len(frame)
    assert {r.row_id for r in results} == set(frame["row_id"])
    assert {r.status for r in results} <= {"labeled", "failed"}
    for result in results:
        if result.status == "labeled" and result.tier == "llm":
            assert result.domain == TRUTH[result.text]  # matched back to the right text
        if result.status == "failed":
            assert result.domain is None and result.error
    # A batch fails as a whole only when all its attempts fail (about 1 in 100 batches here).
    labeled = sum(r.status == "labeled" for r in results)
    assert labeled >= 0.75 * len(results)
    assert requests > len(texts) / 8  # faults were retried


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


UNSURE_TEXTS = [f"{text} (обращение {n})" for n in range(3) for text in TEXTS[:7]]  # 21 texts


def test_an_unreachable_endpoint_fails_each_batch_without_splitting(
    taxonomy: Taxonomy, tmp_path: Path
) -> None:
    config = _config(
        tmp_path,
        model="fake-model",
        api_base=f"http://127.0.0.1:{_closed_port()}/v1",
        batch_size=7,
        max_retries=3,
        timeout_seconds=0.5,
    )
    agent = LabelerAgent(config, taxonomy)
    results = _label(agent, UNSURE_TEXTS)
    assert [r.status for r in results] == ["failed"] * len(UNSURE_TEXTS)
    assert all("Connection" in (r.error or "") for r in results)
    # 3 batches, each its client's 1 + max_retries attempts: no halves, no follow-ups.
    assert agent.usage.requests == 3 * 4


def test_a_broken_http_body_fails_the_batch_without_splitting(
    taxonomy: Taxonomy, tmp_path: Path
) -> None:
    with FakeOpenAIServer(_server_answers, fault_rate=1.0, fault_kinds=["malformed_body"]) as srv:
        agent = LabelerAgent(_http_config(tmp_path, srv, batch_size=7, max_retries=3), taxonomy)
        results = _label(agent, UNSURE_TEXTS)
        requests = srv.request_count
    assert {r.status for r in results} == {"failed"}
    assert requests == 3 * 4


@pytest.mark.parametrize("mode", ["tool", "forced_tool", "json_schema", "json_object", "prompted"])
def test_every_output_mode_over_http(taxonomy: Taxonomy, tmp_path: Path, mode: str) -> None:
    with FakeOpenAIServer(_server_answers) as server:
        agent = LabelerAgent(_http_config(tmp_path, server, output_mode=mode), taxonomy)
        results = _label(agent, TEXTS[:3])
    assert [r.domain for r in results] == [TRUTH[t] for t in TEXTS[:3]]
    assert {r.tier for r in results} == {"llm"}


# -- follow-ups that really re-ask, over HTTP ---------------------------------------------------


def test_a_follow_up_is_a_new_question_and_reaches_the_server(
    taxonomy: Taxonomy, tmp_path: Path
) -> None:
    def skips_everything_at_first(request: dict[str, Any]) -> dict[str, Any]:
        first = len(server.requests) == 1
        return {"items": []} if first else _server_answers(request)

    with FakeOpenAIServer(skips_everything_at_first) as server:
        config = _http_config(tmp_path, server, batch_size=4, max_retries=2, use_cache=True)
        results = _label(LabelerAgent(config, taxonomy), TEXTS[:4])
        prompts = [request_text(r) for r in server.requests]
    assert [r.domain for r in results] == [TRUTH[t] for t in TEXTS[:4]]
    assert len(prompts) == 2
    assert prompts[1] != prompts[0]  # the same texts, asked as a new question
    assert sorted(batch_texts(prompts[1]).values()) == sorted(TEXTS[:4])


def test_a_reply_that_settled_nothing_is_not_cached(taxonomy: Taxonomy, tmp_path: Path) -> None:
    with FakeOpenAIServer(lambda request: {"items": []}) as server:
        config = _http_config(tmp_path, server, batch_size=4, max_retries=2, use_cache=True)
        results = _label(LabelerAgent(config, taxonomy), TEXTS[:4])
        first_run = server.request_count
        results_again = _label(LabelerAgent(config, taxonomy), TEXTS[:4])
        prompts = [request_text(r) for r in server.requests]
    assert {r.status for r in [*results, *results_again]} == {"failed"}
    assert first_run == 3  # the request and max_retries follow-ups, each reaching the server
    assert len(set(prompts[:first_run])) == first_run  # never the identical prompt
    assert len(prompts) == 2 * first_run  # nothing was cached, so the rerun asks again


def test_a_cache_hit_does_not_use_up_a_round(taxonomy: Taxonomy, tmp_path: Path) -> None:
    skipped = TEXTS[3]
    skipping = [True]

    def answers(request: dict[str, Any]) -> dict[str, Any]:
        items = _server_answers(request)["items"]
        texts = batch_texts(request_text(request))
        return {"items": [i for i in items if not (skipping[0] and texts[i["id"]] == skipped)]}

    cache = ResponseCache(tmp_path / "batches.sqlite", ttl_hours=24)
    with FakeOpenAIServer(answers) as server, cache:
        endpoint = LLMEndpoint(model="fake-model", api_base=server.base_url, timeout_seconds=2)

        def run() -> pd.DataFrame:
            client = LLMClient(endpoint, rate_limit=0, max_retries=0, cache=cache)
            frame = pd.DataFrame({"text": TEXTS[:4]})
            return asyncio.run(
                label_dataframe_batched(
                    frame,
                    client,
                    taxonomy=taxonomy,
                    use_cache=False,
                    max_retries=0,
                    local_accept_threshold=1.0,
                    batch_size=4,
                )
            )

        first = run()
        skipping[0] = False
        second = run()  # the batch's reply comes from the client's cache ...
        asked = [batch_texts(request_text(r)) for r in server.requests]
    assert list(first["status"]) == ["labeled"] * 3 + ["failed"]
    # ... and the follow-up for the skipped text still goes out, though max_retries is 0.
    assert list(second["status"]) == ["labeled"] * 4
    assert [list(texts.values()) for texts in asked] == [TEXTS[:4], [skipped]]


# -- the prompt and the token confidence ------------------------------------------------------


def test_static_prompt_part_comes_first_and_says_the_format_once(
    taxonomy: Taxonomy, tmp_path: Path
) -> None:
    with FakeOpenAIServer(_server_answers) as server:
        config = _http_config(tmp_path, server, batch_size=2, use_dynamic_fewshot=False)
        _label(LabelerAgent(config, taxonomy), TEXTS[:4])
        requests = list(server.requests)
    systems = [r["messages"][0] for r in requests]
    assert {m["role"] for m in systems} == {"system"}
    assert systems[0] == systems[1]  # identical static prefix: a server can reuse it
    system = systems[0]["content"]
    assert "Labelled examples" in system  # static few-shot lives in the static part
    assert "Labelled examples" not in request_text(requests[0])
    assert system.count('"items"') == 1 and "$defs" not in system  # no schema dump besides
    assert all(r["cache_prompt"] is True and r["temperature"] == 0 for r in requests)


def test_token_confidence_comes_from_the_domain_tokens_logprobs(
    taxonomy: Taxonomy, tmp_path: Path
) -> None:
    def probability(token: str) -> float:  # a domain id's token (with the quote after it)
        return 0.6 if re.sub(r"\W", "", token) in taxonomy.ids else 0.99

    with FakeOpenAIServer(_server_answers, token_probability=probability) as server:
        config = _http_config(tmp_path, server, output_mode="json_object")
        results = _label(LabelerAgent(config, taxonomy), TEXTS[:3])
        asked = server.requests[0]
    assert asked["logprobs"] is True
    assert [r.llm_token_confidence for r in results] == [0.6] * 3
    assert [r.llm_self_confidence for r in results] == [0.9] * 3
    frame = results_to_frame(results)
    assert list(frame["llm_token_confidence"]) == [0.6] * 3

    with FakeOpenAIServer(_server_answers) as server:  # tool calls carry no logprobs
        config = _http_config(tmp_path, server, output_mode="forced_tool")
        results = _label(LabelerAgent(config, taxonomy), TEXTS[:1])
    assert results[0].llm_token_confidence is None and results[0].llm_self_confidence == 0.9


def test_a_server_refusing_logprobs_is_asked_again_without_them(
    taxonomy: Taxonomy, tmp_path: Path
) -> None:
    with FakeOpenAIServer(_server_answers, quirks="llamacpp") as server:
        agent = LabelerAgent(_http_config(tmp_path, server, batch_size=4, max_retries=0), taxonomy)
        results = _label(agent, TEXTS[:4]) + _label(agent, TEXTS[4:8])
        asked_logprobs = [bool(r.get("logprobs")) for r in server.requests]
    assert [r.domain for r in results] == [TRUTH[t] for t in TEXTS[:8]]
    assert {r.llm_token_confidence for r in results} == {None}
    # Refused once, asked again at once without them, and not asked for them again.
    assert asked_logprobs == [True, False, False]


def test_token_confidence_counts_only_the_tokens_that_decide_the_domain() -> None:
    ids = ["public_order", "public_transport", "roads"]
    content = '{"items": [{"id": "t1", "domain": "public_order", "confidence": 0.8}]}'
    tokens = re.findall(r"public|_|\w+|\W", content)  # "public" "_" "order": decided at "o"
    logprobs = [(t, math.log(0.5) if t in ("public", "order") else 0.0) for t in tokens]
    assert _token_confidences(logprobs, ["public_order"], ids) == [0.25]
    assert _token_confidences(logprobs, ["roads"], ids) == [None]  # does not line up
    assert _token_confidences(None, ["public_order"], ids) == [None]
