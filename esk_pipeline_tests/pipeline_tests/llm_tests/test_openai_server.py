"""The fake OpenAI server's own helpers: schema examples, batch faults, models listing."""

from __future__ import annotations

import json
import urllib.request

from esk_pipeline_tests.fakes.openai_server import (
    FakeOpenAIServer,
    request_schema,
    request_text,
    schema_example,
    with_batch_faults,
)
from esk_pipeline_tests.pipeline_tests.llm_tests.conftest import Verdict


def test_schema_example_is_valid_for_nested_models():
    schema = {
        "type": "object",
        "properties": {
            "items": {"type": "array", "items": {"$ref": "#/$defs/Item"}},
            "kind": {"enum": ["a", "b"]},
        },
        "$defs": {
            "Item": {
                "type": "object",
                "properties": {"id": {"type": "string"}, "score": {"type": "number"}},
            }
        },
    }
    assert schema_example(schema) == {"items": [{"id": "example", "score": 0.0}], "kind": "a"}


def test_request_schema_and_text_per_mode():
    schema = Verdict.model_json_schema()
    messages = [
        {"role": "system", "content": f"Answer as JSON matching {json.dumps(schema)}"},
        {"role": "user", "content": "текст"},
    ]
    tool = {"type": "function", "function": {"name": "final_result", "parameters": schema}}
    assert request_schema({"messages": messages, "tools": [tool]}) == schema
    assert request_schema({"messages": messages}) == schema  # prompted: found in the text
    assert request_text({"messages": messages}) == "текст"


def test_batch_faults_drop_duplicate_and_mislabel_items():
    def answer(request: dict) -> dict:
        return {"items": [{"id": str(i), "domain": "payments"} for i in range(3)]}

    request: dict = {"messages": []}
    missing = with_batch_faults(answer, rate=1.0, kinds=["missing_id"])(request)
    duplicated = with_batch_faults(answer, rate=1.0, kinds=["duplicate_id"])(request)
    mislabeled = with_batch_faults(answer, rate=1.0, kinds=["unknown_label"])(request)
    untouched = with_batch_faults(answer, rate=0.0)(request)

    assert missing["items"] == []
    assert [item["id"] for item in duplicated["items"]] == ["0", "0", "1", "1", "2", "2"]
    assert {item["domain"] for item in mislabeled["items"]} == {"not_a_domain"}
    assert untouched == answer(request)


def test_models_listing():
    with FakeOpenAIServer(model_ids=["a", "b"]) as server:
        listing = json.load(urllib.request.urlopen(f"{server.base_url}/models", timeout=5))
    assert [model["id"] for model in listing["data"]] == ["a", "b"]
