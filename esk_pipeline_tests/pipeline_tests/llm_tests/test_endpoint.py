"""Output-mode resolution and model construction from an LLMEndpoint."""

from __future__ import annotations

import pytest
from pydantic import BaseModel
from pydantic_ai import NativeOutput, PromptedOutput, ToolOutput

from esk_pipeline.pipeline.connections import LLMEndpoint
from esk_pipeline.pipeline.llm.endpoint import (
    build_http_client,
    build_model,
    endpoint_kind,
    output_recipe,
    resolve_output_mode,
)


class Answer(BaseModel):
    value: int


@pytest.mark.parametrize(
    ("api_base", "kind", "mode"),
    [
        (None, "openai", "tool"),
        ("https://api.openai.com/v1", "openai", "tool"),
        ("http://127.0.0.1:8091/v1", "compatible", "json_object"),
        ("http://localhost:11434/v1", "compatible", "json_object"),
        ("https://llm.internal.example/v1", "compatible", "json_object"),
    ],
)
def test_auto_mode_follows_endpoint_kind(api_base, kind, mode):
    endpoint = LLMEndpoint(model="m", api_base=api_base)
    assert endpoint_kind(endpoint) == kind
    assert resolve_output_mode(endpoint) == mode


def test_explicit_mode_is_kept():
    endpoint = LLMEndpoint(model="m", api_base="http://127.0.0.1:1/v1", output_mode="json_schema")
    assert resolve_output_mode(endpoint) == "json_schema"


@pytest.mark.parametrize(
    ("mode", "spec_type"),
    [
        ("tool", ToolOutput),
        ("forced_tool", ToolOutput),
        ("json_schema", NativeOutput),
        ("json_object", PromptedOutput),
        ("prompted", PromptedOutput),
    ],
)
def test_recipe_per_mode(mode, spec_type):
    recipe = output_recipe(Answer, mode)
    assert isinstance(recipe.output_spec, spec_type)
    assert recipe.model_settings["max_retries"] == 0  # the client owns retries
    response_format = (recipe.model_settings.get("extra_body") or {}).get("response_format")
    if mode == "json_object":
        assert response_format == {"type": "json_object", "schema": Answer.model_json_schema()}
    else:
        assert response_format is None


def test_built_model_has_sdk_retries_off_and_endpoint_timeout():
    endpoint = LLMEndpoint(model="m", api_base="http://127.0.0.1:1/v1", timeout_seconds=7)
    http_client = build_http_client(endpoint, max_connections=3)
    model = build_model(endpoint, http_client=http_client)
    assert model.model_name == "m"
    assert model.client.max_retries == 0
    # Connecting, sending and reading time out; waiting for a pooled connection is queueing.
    timeouts = (model.client.timeout, http_client.timeout)
    assert {(t.connect, t.read, t.write, t.pool) for t in timeouts} == {(7, 7, 7, None)}
    other = build_model(endpoint, http_client=http_client, model_name="other")
    assert other.model_name == "other"
    assert other.client._client is http_client  # one pool, one bound on requests in flight
