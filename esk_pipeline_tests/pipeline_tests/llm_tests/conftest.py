"""Shared helpers for the LLM layer's tests: an output type, endpoints and a client factory."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from pydantic import BaseModel, Field, SecretStr

from esk_pipeline.pipeline.connections import LLMEndpoint, OutputMode
from esk_pipeline.pipeline.llm import LLMClient, ResponseCache
from esk_pipeline_tests.fakes.openai_server import FakeOpenAIServer

API_KEY = "sk-test-very-secret-key-123"


class Verdict(BaseModel):
    """A classification answer."""

    domain: str
    confidence: float = Field(ge=0, le=1)


def verdict_responder(request: dict[str, Any]) -> dict[str, Any]:
    return {"domain": "meter_readings", "confidence": 0.9}


def make_endpoint(
    server: FakeOpenAIServer,
    *,
    mode: OutputMode = "auto",
    model: str = "fake-model",
    fallback_model: str | None = None,
    timeout_seconds: float = 5.0,
) -> LLMEndpoint:
    return LLMEndpoint(
        model=model,
        api_base=server.base_url,
        api_key=SecretStr(API_KEY),
        output_mode=mode,
        fallback_model=fallback_model,
        timeout_seconds=timeout_seconds,
    )


def make_client(endpoint: LLMEndpoint, **kwargs: Any) -> LLMClient:
    """A client with fast backoff, so retry tests take milliseconds."""
    kwargs.setdefault("backoff_initial", 0.01)
    kwargs.setdefault("backoff_max", 0.05)
    return LLMClient(endpoint, **kwargs)


async def ask(client: LLMClient, text: str = "не могу передать показания") -> Any:
    return await client.run(
        system_prompt="Classify the request.",
        user_prompt=text,
        output_type=Verdict,
        cache_namespace="test",
    )


@pytest.fixture
def server_factory() -> Iterator[Callable[..., FakeOpenAIServer]]:
    """Start fake servers with the given options; all are stopped after the test."""
    started: list[FakeOpenAIServer] = []

    def start(**options: Any) -> FakeOpenAIServer:
        options.setdefault("responder", verdict_responder)
        server = FakeOpenAIServer(**options).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def cache(tmp_path: Any) -> Iterator[ResponseCache]:
    with ResponseCache(tmp_path / "cache.sqlite", ttl_hours=24) as response_cache:
        yield response_cache
