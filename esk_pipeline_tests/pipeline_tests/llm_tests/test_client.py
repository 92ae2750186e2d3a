"""LLMClient end to end over real HTTP against the fault-injecting fake OpenAI server."""

from __future__ import annotations

import asyncio
import gc
import itertools
import json
import socket
import warnings

import pytest
from pydantic import SecretStr
from pydantic_ai.exceptions import ModelHTTPError
from pydantic_ai.messages import ModelMessage, ModelResponse, ToolCallPart
from pydantic_ai.models.function import AgentInfo, FunctionModel
from pydantic_ai.models.test import TestModel

from esk_pipeline.pipeline.connections import LLMEndpoint
from esk_pipeline.pipeline.llm import (
    BudgetExhausted,
    LLMCallFailed,
    LLMClient,
    ResponseCache,
    UsageMeter,
)
from esk_pipeline_tests.pipeline_tests.llm_tests.conftest import (
    API_KEY,
    Verdict,
    ask,
    make_client,
    make_endpoint,
)

MODES = ["tool", "forced_tool", "json_schema", "json_object", "prompted"]


@pytest.mark.parametrize("mode", MODES)
def test_each_output_mode_returns_validated_output(server_factory, mode):
    server = server_factory()
    client = make_client(make_endpoint(server, mode=mode))

    reply = asyncio.run(ask(client))

    assert reply.output == Verdict(domain="meter_readings", confidence=0.9)
    assert reply.model == "fake-model"
    assert not reply.cached
    assert server.request_count == 1


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        ("tool", {"tool_choice": "required"}),
        (
            "forced_tool",
            {"tool_choice": {"type": "function", "function": {"name": "final_result"}}},
        ),
        ("json_schema", {"response_format.type": "json_schema"}),
        ("json_object", {"response_format.type": "json_object"}),
        ("prompted", {"response_format": None, "tools": None}),
    ],
)
def test_each_mode_sends_its_request_shape(server_factory, mode, expected):
    server = server_factory()
    asyncio.run(ask(make_client(make_endpoint(server, mode=mode))))
    request = server.requests[0]
    for field, value in expected.items():
        if field == "response_format.type":
            assert request["response_format"]["type"] == value
        else:
            assert request.get(field) == value
    if mode == "json_object":  # the schema travels with it, for llama.cpp's grammar
        assert set(request["response_format"]["schema"]["properties"]) == {"domain", "confidence"}


def test_auto_mode_works_against_llamacpp_quirks(server_factory):
    server = server_factory(quirks="llamacpp")
    client = make_client(make_endpoint(server, mode="auto"))

    reply = asyncio.run(ask(client))

    assert client.output_mode == "json_object"
    assert reply.output.domain == "meter_readings"
    assert server.request_count == 1


def test_forced_tool_works_against_llamacpp_quirks(server_factory):
    server = server_factory(quirks="llamacpp")
    reply = asyncio.run(ask(make_client(make_endpoint(server, mode="forced_tool"))))
    assert reply.output.domain == "meter_readings"


def test_tool_mode_fails_against_llamacpp_which_ignores_required(server_factory):
    server = server_factory(quirks="llamacpp")
    client = make_client(make_endpoint(server, mode="tool"), max_retries=1)
    with pytest.raises(LLMCallFailed, match="2 attempt"):
        asyncio.run(ask(client))


def test_json_schema_mode_fails_clearly_against_llamacpp(server_factory):
    server = server_factory(quirks="llamacpp")
    client = make_client(make_endpoint(server, mode="json_schema"), max_retries=1)

    with pytest.raises(LLMCallFailed) as failure:
        asyncio.run(ask(client))

    assert failure.value.status_code == 500
    assert "json_schema" in str(failure.value)
    assert failure.value.attempts == 2


@pytest.mark.parametrize("fault", ["500", "502", "503", "malformed_body", "malformed_output"])
def test_retryable_fault_is_retried_then_succeeds(server_factory, fault):
    server = server_factory(fault_plan=[fault])
    client = make_client(make_endpoint(server, mode="tool"))

    reply = asyncio.run(ask(client))

    assert reply.output.domain == "meter_readings"
    assert server.request_count == 2
    assert reply.usage.requests == 2


def test_malformed_json_content_is_retried_in_json_object_mode(server_factory):
    server = server_factory(fault_plan=["malformed_output", "malformed_output"])
    reply = asyncio.run(ask(make_client(make_endpoint(server, mode="json_object"))))
    assert reply.output.domain == "meter_readings"
    assert server.request_count == 3


def test_schema_invalid_output_is_retried(server_factory):
    answers = iter([{"domain": "x", "confidence": 7.0}, {"domain": "x", "confidence": 0.5}])
    server = server_factory(responder=lambda request: next(answers))
    reply = asyncio.run(ask(make_client(make_endpoint(server, mode="forced_tool"))))
    assert reply.output.confidence == 0.5
    assert server.request_count == 2


class _RecordedSleep:
    """Stands in for asyncio.sleep: records each wait the client asks for, waits for none."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


def test_429_retry_after_is_honoured(server_factory):
    server = server_factory(fault_plan=["429"], retry_after_seconds=7)
    sleep = _RecordedSleep()
    client = make_client(make_endpoint(server), sleep=sleep)

    reply = asyncio.run(ask(client))

    assert reply.output.domain == "meter_readings"
    assert server.request_count == 2
    assert sleep.waits == [7.0]


def test_retry_after_is_capped(server_factory):
    server = server_factory(fault_plan=["429"], retry_after_seconds=30)
    sleep = _RecordedSleep()
    client = make_client(make_endpoint(server), retry_after_cap=2.5, sleep=sleep)
    asyncio.run(ask(client))
    assert sleep.waits == [2.5]


def test_without_retry_after_the_backoff_grows_exponentially(server_factory):
    server = server_factory(fault_plan=["503", "503", "503"])
    sleep = _RecordedSleep()
    client = make_client(
        make_endpoint(server), max_retries=3, backoff_initial=1.0, backoff_max=30, sleep=sleep
    )
    asyncio.run(ask(client))
    assert server.request_count == 4
    # Exponential with jitter: the n-th wait is 2**n seconds plus up to 1 s (backoff_initial).
    assert len(sleep.waits) == 3
    for n, wait in enumerate(sleep.waits):
        assert 2**n <= wait <= 2**n + 1.0


def test_401_is_not_retried(server_factory):
    server = server_factory(fault_plan=["401"])
    client = make_client(make_endpoint(server), max_retries=3)

    with pytest.raises(LLMCallFailed) as failure:
        asyncio.run(ask(client))

    assert server.request_count == 1
    assert failure.value.status_code == 401
    assert failure.value.attempts == 1
    assert "not retryable" in str(failure.value)


def test_timeout_is_retried(server_factory):
    server = server_factory(fault_plan=["timeout"], hang_seconds=1.5)
    client = make_client(make_endpoint(server, timeout_seconds=0.3))

    reply = asyncio.run(ask(client))

    assert reply.output.domain == "meter_readings"
    assert server.request_count == 2


def test_failure_after_max_retries_names_attempts_and_hides_key(server_factory):
    server = server_factory(fault_rate=1.0, fault_kinds=["500"])
    usage = UsageMeter()
    client = make_client(make_endpoint(server), max_retries=2, usage=usage)

    with pytest.raises(LLMCallFailed) as failure:
        asyncio.run(ask(client))

    message = str(failure.value)
    assert server.request_count == 3
    assert failure.value.attempts == 3
    assert "3 attempt" in message and "500" in message
    assert API_KEY not in message and API_KEY not in repr(failure.value)
    assert usage.failures == 1 and usage.requests == 3


def test_fallback_model_answers_after_primary_fails(server_factory):
    server = server_factory(model_faults={"primary": "503"})
    endpoint = make_endpoint(server, model="primary", fallback_model="backup")
    client = make_client(endpoint, max_retries=1)

    reply = asyncio.run(ask(client))

    assert reply.model == "backup"
    assert [r["model"] for r in server.requests] == ["primary", "primary", "backup"]


def test_fallback_failure_reports_both_models(server_factory):
    server = server_factory(model_faults={"primary": "503", "backup": "500"})
    endpoint = make_endpoint(server, model="primary", fallback_model="backup")
    client = make_client(endpoint, max_retries=0)

    with pytest.raises(LLMCallFailed) as failure:
        asyncio.run(ask(client))

    assert "'primary'" in str(failure.value) and "'backup'" in str(failure.value)
    assert failure.value.attempts == 2


async def _ask_many(client: LLMClient, count: int) -> list:
    return await asyncio.gather(*(ask(client, f"текст {i}") for i in range(count)))


def test_rate_limit_spaces_requests(server_factory):
    server = server_factory()
    client = make_client(make_endpoint(server), rate_limit=5, concurrency=8)

    async def warm_then_burst() -> None:
        await ask(client, "warm-up")  # builds the HTTP client, so the burst below is all limiter
        await _ask_many(client, 4)

    asyncio.run(warm_then_burst())

    # 5 requests/s: one every 0.2 s; unlimited, the four burst requests arrive within ~50 ms.
    times = sorted(server.request_times)[1:]
    gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
    assert len(gaps) == 3
    assert min(gaps) >= 0.15


def test_concurrency_cap_is_observed_by_the_server(server_factory):
    server = server_factory(latency_ms=150)
    client = make_client(make_endpoint(server), concurrency=2)

    replies = asyncio.run(_ask_many(client, 6))

    assert len(replies) == 6
    assert server.max_concurrent == 2


def test_fallback_requests_count_towards_the_same_cap(server_factory):
    """The primary and the fallback model send through one connection pool."""
    server = server_factory(latency_ms=150, model_faults={"primary": "503"})
    endpoint = make_endpoint(server, model="primary", fallback_model="backup")
    client = make_client(endpoint, concurrency=2, max_retries=0)

    replies = asyncio.run(_ask_many(client, 6))

    assert [reply.model for reply in replies] == ["backup"] * 6
    assert server.request_count == 12
    assert server.max_concurrent == 2


def test_second_call_is_a_cache_hit_with_zero_requests(server_factory, cache):
    server = server_factory()
    usage = UsageMeter()
    client = make_client(make_endpoint(server), cache=cache, usage=usage)

    first = asyncio.run(ask(client))
    second = asyncio.run(ask(client))

    assert server.request_count == 1
    assert not first.cached and second.cached
    assert second.output == first.output and second.model == first.model
    assert second.usage.requests == 0
    assert usage.cached_hits == 1 and usage.requests == 1


def test_cache_survives_reopen(server_factory, tmp_path):
    server = server_factory()
    path = tmp_path / "persist.sqlite"
    with ResponseCache(path) as cache:
        asyncio.run(ask(make_client(make_endpoint(server), cache=cache)))
    server.reset()

    with ResponseCache(path) as reopened:
        reply = asyncio.run(ask(make_client(make_endpoint(server), cache=reopened)))

    assert reply.cached
    assert server.request_count == 0


@pytest.mark.parametrize("model", ["missing", None, 7])
def test_a_cached_entry_without_a_readable_model_is_asked_again(server_factory, cache, model):
    # The entry's output reads, its model does not: the call asks the server again (and
    # overwrites the entry) instead of failing with a KeyError or ValidationError.
    server = server_factory()
    client = make_client(make_endpoint(server), cache=cache)
    first = asyncio.run(ask(client))
    (key,) = _cache_keys(cache)
    entry = json.loads(cache.get(key))
    if model == "missing":
        del entry["model"]
    else:
        entry["model"] = model
    cache.put(key, json.dumps(entry))
    server.reset()

    again = asyncio.run(ask(client))

    assert not again.cached and again.output == first.output
    assert server.request_count == 1
    assert json.loads(cache.get(key))["model"] == first.model


def _cache_keys(cache: ResponseCache) -> list[str]:
    with cache._lock:
        return [key for (key,) in cache._connection().execute("SELECT key FROM responses")]


def test_different_prompt_or_namespace_misses_the_cache(server_factory, cache):
    server = server_factory()
    client = make_client(make_endpoint(server), cache=cache)
    asyncio.run(ask(client, "one"))
    asyncio.run(ask(client, "two"))
    asyncio.run(
        client.run(
            system_prompt="Classify the request.",
            user_prompt="one",
            output_type=Verdict,
            cache_namespace="other",
        )
    )
    assert server.request_count == 3


def test_usage_tokens_come_from_the_server(server_factory):
    server = server_factory()
    usage = UsageMeter(input_price_per_1k=1.0, output_price_per_1k=2.0)
    client = make_client(make_endpoint(server), usage=usage)

    reply = asyncio.run(ask(client))

    sent = server.responses[0]["usage"]
    assert reply.usage.input_tokens == sent["prompt_tokens"]
    assert reply.usage.output_tokens == sent["completion_tokens"]
    assert usage.input_tokens == sent["prompt_tokens"]
    assert usage.cost == pytest.approx(
        (sent["prompt_tokens"] * 1.0 + sent["completion_tokens"] * 2.0) / 1000
    )


def test_request_budget_stops_before_the_request(server_factory):
    server = server_factory()
    client = make_client(make_endpoint(server), usage=UsageMeter(max_requests=1))

    asyncio.run(ask(client, "first"))
    with pytest.raises(BudgetExhausted):
        asyncio.run(ask(client, "second"))

    assert server.request_count == 1


def test_token_budget_stops_before_the_request(server_factory):
    server = server_factory()
    client = make_client(make_endpoint(server), usage=UsageMeter(max_tokens=5))

    asyncio.run(ask(client, "first"))
    with pytest.raises(BudgetExhausted, match="token budget"):
        asyncio.run(ask(client, "second"))

    assert server.request_count == 1


def test_budget_does_not_block_cache_hits(server_factory, cache):
    server = server_factory()
    client = make_client(make_endpoint(server), cache=cache, usage=UsageMeter(max_requests=1))
    asyncio.run(ask(client))
    assert asyncio.run(ask(client)).cached


def test_test_model_override_needs_no_server():
    endpoint = LLMEndpoint(model="gpt-4o-mini", output_mode="tool")
    client = LLMClient(endpoint, model_override=TestModel())

    reply = asyncio.run(ask(client))

    assert isinstance(reply.output, Verdict)
    assert reply.model == "gpt-4o-mini"


def test_function_model_override_decides_the_answer():
    def answer(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        tool = info.output_tools[0]
        return ModelResponse(
            parts=[ToolCallPart(tool.name, {"domain": "payments", "confidence": 0.4})]
        )

    endpoint = LLMEndpoint(model="gpt-4o-mini", output_mode="tool")
    client = LLMClient(endpoint, model_override=FunctionModel(answer))

    reply = asyncio.run(ask(client))

    assert reply.output == Verdict(domain="payments", confidence=0.4)


@pytest.mark.filterwarnings("error::ResourceWarning")
def test_client_is_reusable_across_event_loops_and_concurrent_tasks(server_factory):
    server = server_factory()
    client = make_client(make_endpoint(server), concurrency=3)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        for _ in range(3):
            asyncio.run(_ask_many(client, 4))
        del client
        gc.collect()  # unclosed sockets and transports warn when they are collected
    assert server.request_count == 12
    assert [str(w.message) for w in caught if w.category is ResourceWarning] == []


def test_aclose_from_the_loop_that_used_the_client_closes_its_connections(server_factory):
    server = server_factory()
    client = make_client(make_endpoint(server))

    async def ask_then_close(client: LLMClient) -> None:
        await ask(client)
        await client.aclose()
        await ask(client)  # still usable: reconnects
        await client.aclose()
        await asyncio.sleep(0.01)
        # Nothing is left waiting for the loop's end: a long-lived loop does not pile tasks up.
        assert asyncio.all_tasks() == {asyncio.current_task()}

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        asyncio.run(ask_then_close(client))
        del client
        gc.collect()
    assert server.request_count == 2
    assert [str(w.message) for w in caught if w.category is ResourceWarning] == []


def test_invalid_output_failure_says_what_was_invalid(server_factory):
    server = server_factory(responder=lambda request: {"domain": "x", "confidence": 5})
    client = make_client(make_endpoint(server, mode="json_object"), max_retries=1)

    with pytest.raises(LLMCallFailed, match="confidence") as failure:
        asyncio.run(ask(client))

    assert failure.value.attempts == 2
    assert server.request_count == 2
    assert failure.value.invalid_output


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_transport_and_http_failures_are_not_invalid_output(server_factory):
    dead = LLMEndpoint(model="m", api_base=f"http://127.0.0.1:{_closed_port()}/v1")
    with pytest.raises(LLMCallFailed) as unreachable:
        asyncio.run(ask(make_client(dead, max_retries=1)))
    server = server_factory(fault_rate=1.0, fault_kinds=["500"])
    with pytest.raises(LLMCallFailed) as overloaded:
        asyncio.run(ask(make_client(make_endpoint(server), max_retries=0)))

    assert unreachable.value.attempts == 2 and unreachable.value.status_code is None
    assert not unreachable.value.invalid_output
    assert overloaded.value.status_code == 500 and not overloaded.value.invalid_output


def _echoing_failure(key: str, body_error: str) -> str:
    """The message of a 401 whose body echoes `body_error`, from a client configured with `key`."""

    def echo(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        raise ModelHTTPError(status_code=401, model_name="m", body={"error": body_error})

    endpoint = LLMEndpoint(model="m", api_key=SecretStr(key))
    with pytest.raises(LLMCallFailed) as failure:
        asyncio.run(ask(LLMClient(endpoint, model_override=FunctionModel(echo))))
    return str(failure.value)


def test_a_key_echoed_across_the_length_cut_is_redacted_before_truncating():
    key = "sk-proj-Zq8Lw3Xv9Np2Rt7Ks4Hd6Fj1Mb5Cg0Ye"
    # The reason is "ModelHTTPError: status_code: 401, model_name: m, body: {'error': '" (66
    # characters) + the body, cut at 600: the key starts at 589, across the cut.
    message = _echoing_failure(key, "x" * 510 + f" invalid key {key}")
    assert "invalid key" in message and message.endswith("...")
    assert key[:6] not in message


def test_any_openai_style_key_in_a_reason_is_redacted():
    echoed = "sk-other-Pw4Jx8Qn2Vz6Lt0Ub3Ro"  # not the configured key: the pattern catches it
    message = _echoing_failure(API_KEY, f"invalid key {echoed}")
    assert "invalid key" in message and echoed[:6] not in message
