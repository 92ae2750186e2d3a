"""The cascade: which tier labels what, pipelining, splitting, failures, budget, faults."""

from __future__ import annotations

import asyncio
import socket
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from pydantic_ai.exceptions import ModelHTTPError
from pydantic_ai.messages import ModelMessage, ModelResponse
from pydantic_ai.models.function import AgentInfo, FunctionModel

from esk_pipeline.pipeline.labeler import LabelerAgent
from esk_pipeline.pipeline.labeler._cascade import LOCAL_CHUNK, Cascade
from esk_pipeline.pipeline.llm import UsageMeter
from esk_pipeline.pipeline.taxonomy import Taxonomy
from esk_pipeline_tests.fakes.openai_server import FakeOpenAIServer, with_batch_faults

from .conftest import http_config, label_texts, make_config, server_answers
from .scripted import TEXTS, TRUTH, Scripted, truthful


def test_cascade_sends_only_unsure_texts_to_the_llm(taxonomy: Taxonomy, tmp_path: Path) -> None:
    confident = ["нет горячей воды уже третий день", "как передать показания электросчётчика"]
    scripted = Scripted()
    agent = LabelerAgent(
        make_config(tmp_path, local_accept_threshold=0.8), taxonomy, model_override=scripted.model
    )
    results = label_texts(agent, [*confident, *TEXTS])
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
    assert report.cascade_accepted_local + report.llm == len(results)
    assert report.cascade_accepted_local >= len(confident)
    assert report.usage["requests"] == len(scripted.calls)


def test_requests_start_after_the_first_chunk_and_batches_stay_full(
    taxonomy: Taxonomy, tmp_path: Path
) -> None:
    """A big frame: the first request goes out before the local model has scored all of it,
    and chunk boundaries do not cut batches short (requests = ceil(texts / batch_size))."""
    texts = [f"{a} {b}, дом {n}" for a in TEXTS for b in TEXTS for n in range(40)]
    assert len(texts) > 4 * LOCAL_CHUNK  # several chunks
    agent: LabelerAgent
    scored_at_first_request: list[int] = []

    def answer(batch: dict[str, str], call: int) -> list[dict[str, Any]]:
        if call == 1:
            scored_at_first_request.append(scored)
        return truthful(batch, call)

    scripted = Scripted(answer)
    agent = LabelerAgent(
        make_config(tmp_path, batch_size=20), taxonomy, model_override=scripted.model
    )
    scored = 0
    predict = agent.local_model.predict_with_vectors

    def counting_predict(chunk: list[str], **kwargs: Any) -> Any:
        nonlocal scored
        scored += len(chunk)
        return predict(chunk, **kwargs)

    agent.local_model.predict_with_vectors = counting_predict  # type: ignore[method-assign]
    results = label_texts(agent, texts)
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
        make_config(tmp_path, batch_size=20), taxonomy, model_override=FunctionModel(slow)
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
    assert Cascade._run_batch.__qualname__ not in left, left


def test_out_of_taxonomy_answer_is_never_a_label(taxonomy: Taxonomy, tmp_path: Path) -> None:
    poison = TEXTS[0]

    def stubborn(texts: dict[str, str], call: int) -> list[dict[str, Any]]:
        return [
            {"id": i, "domain": "not_a_domain" if t == poison else TRUTH[t], "confidence": 0.9}
            for i, t in texts.items()
        ]

    agent = LabelerAgent(
        make_config(tmp_path, batch_size=8, max_retries=3),
        taxonomy,
        model_override=Scripted(stubborn).model,
    )
    results = label_texts(agent, TEXTS)
    by_text = {r.text: r for r in results}
    assert by_text[poison].status == "failed"
    assert by_text[poison].domain is None
    # Invalid output after the client's retries (the shared layer's message gives no detail).
    assert "failed after" in (by_text[poison].error or "")
    # The batch is split until the poisonous text fails alone; the rest are labelled.
    assert all(by_text[t].domain == TRUTH[t] for t in TEXTS[1:])


def test_http_error_fails_the_batch_with_the_reason(taxonomy: Taxonomy, tmp_path: Path) -> None:
    calls = []

    def unauthorised(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        calls.append(1)
        raise ModelHTTPError(status_code=401, model_name="scripted", body={"error": "bad key"})

    agent = LabelerAgent(
        make_config(tmp_path), taxonomy, model_override=FunctionModel(unauthorised)
    )
    results = label_texts(agent, TEXTS[:4])
    assert [r.status for r in results] == ["failed"] * 4
    assert all("401" in (r.error or "") for r in results)
    assert len(calls) == 1  # not retryable, and not split: it would only fail again


def test_spent_budget_defers_the_rest(taxonomy: Taxonomy, tmp_path: Path) -> None:
    scripted = Scripted()
    agent = LabelerAgent(
        make_config(tmp_path, batch_size=2, concurrency=1),
        taxonomy,
        model_override=scripted.model,
        usage=UsageMeter(max_requests=1),
    )
    results = label_texts(agent, TEXTS[:6])
    assert [r.status for r in results] == ["labeled"] * 2 + ["deferred"] * 4
    assert all(r.domain is None and "budget" in (r.error or "") for r in results[2:])
    assert len(scripted.calls) == 1
    report = agent.cascade_report(results)
    assert (report.llm, report.deferred, report.failed) == (2, 4, 0)
    assert not any(r.status == "deferred" for r in agent.get_low_confidence_items(results))


def test_thirty_percent_faults_lose_and_duplicate_nothing(
    taxonomy: Taxonomy, tmp_path: Path
) -> None:
    texts = [f"{text} (обращение {n})" for n in range(12) for text in TEXTS]
    for text in texts:
        TRUTH.setdefault(text, TRUTH[text.split(" (")[0]])
    responder = with_batch_faults(server_answers, rate=0.1, seed=3)
    with FakeOpenAIServer(
        responder, latency_ms=5, fault_rate=0.3, seed=1, hang_seconds=1.0
    ) as server:
        agent = LabelerAgent(
            http_config(tmp_path, server, batch_size=8, concurrency=4, max_retries=4), taxonomy
        )
        frame = pd.DataFrame({"text": texts})
        frame["row_id"] = [f"r{i}" for i in range(len(frame))]
        results = label_texts(agent, frame)
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
    config = make_config(
        tmp_path,
        model="fake-model",
        api_base=f"http://127.0.0.1:{_closed_port()}/v1",
        batch_size=7,
        max_retries=3,
        timeout_seconds=0.5,
    )
    agent = LabelerAgent(config, taxonomy)
    results = label_texts(agent, UNSURE_TEXTS)
    assert [r.status for r in results] == ["failed"] * len(UNSURE_TEXTS)
    assert all("Connection" in (r.error or "") for r in results)
    # 3 batches, each its client's 1 + max_retries attempts: no halves, no follow-ups.
    assert agent.usage.requests == 3 * 4


def test_a_broken_http_body_fails_the_batch_without_splitting(
    taxonomy: Taxonomy, tmp_path: Path
) -> None:
    with FakeOpenAIServer(server_answers, fault_rate=1.0, fault_kinds=["malformed_body"]) as srv:
        agent = LabelerAgent(http_config(tmp_path, srv, batch_size=7, max_retries=3), taxonomy)
        results = label_texts(agent, UNSURE_TEXTS)
        requests = srv.request_count
    assert {r.status for r in results} == {"failed"}
    assert requests == 3 * 4
