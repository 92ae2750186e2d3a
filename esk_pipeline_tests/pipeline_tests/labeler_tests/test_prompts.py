"""The question: the answer's output type, the static prompt part, follow-ups, output modes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from esk_pipeline.pipeline.labeler import LabelerAgent
from esk_pipeline.pipeline.taxonomy import Taxonomy
from esk_pipeline_tests.fakes.openai_server import FakeOpenAIServer, batch_texts, request_text

from .conftest import http_config, label_texts, make_config, server_answers
from .scripted import TEXTS, TRUTH, Scripted


def test_answer_schema_restricts_domains_to_the_taxonomy(
    taxonomy: Taxonomy, tmp_path: Path
) -> None:
    scripted = Scripted()
    agent = LabelerAgent(make_config(tmp_path), taxonomy, model_override=scripted.model)
    label_texts(agent, TEXTS[:2])
    schema = json.dumps(scripted.schemas[0])
    assert json.dumps(taxonomy.ids) in schema  # the enum of allowed domain ids


def test_answer_ids_are_the_batchs_short_ids_one_type_per_size(
    taxonomy: Taxonomy, tmp_path: Path
) -> None:
    scripted = Scripted()
    agent = LabelerAgent(
        make_config(tmp_path, batch_size=4), taxonomy, model_override=scripted.model
    )
    label_texts(agent, TEXTS[:6])  # a batch of 4 and one of 2
    calls = zip(scripted.calls, scripted.schemas, strict=True)
    by_size = {len(call): schema for call, schema in calls}
    for size, schema in by_size.items():
        item = schema["$defs"]["LabeledText"]["properties"]["id"]
        assert item["enum"] == [f"t{i}" for i in range(1, size + 1)]
    assert agent._answer_type(4) is agent._answer_type(4)  # built once per size
    foreign = {"items": [{"id": "meter_readings", "domain": "roads", "confidence": 0.9}]}
    with pytest.raises(ValueError, match="t1"):
        agent._answer_type(4).model_validate(foreign)


def test_static_prompt_part_comes_first_and_says_the_format_once(
    taxonomy: Taxonomy, tmp_path: Path
) -> None:
    with FakeOpenAIServer(server_answers) as server:
        config = http_config(tmp_path, server, batch_size=2, use_dynamic_fewshot=False)
        label_texts(LabelerAgent(config, taxonomy), TEXTS[:4])
        requests = list(server.requests)
    systems = [r["messages"][0] for r in requests]
    assert {m["role"] for m in systems} == {"system"}
    assert systems[0] == systems[1]  # identical static prefix: a server can reuse it
    system = systems[0]["content"]
    assert "Labelled examples" in system  # static few-shot lives in the static part
    assert "Labelled examples" not in request_text(requests[0])
    assert system.count('"items"') == 1 and "$defs" not in system  # no schema dump besides
    assert all(r["cache_prompt"] is True and r["temperature"] == 0 for r in requests)


def test_a_follow_up_is_a_new_question_and_reaches_the_server(
    taxonomy: Taxonomy, tmp_path: Path
) -> None:
    def skips_everything_at_first(request: dict[str, Any]) -> dict[str, Any]:
        first = len(server.requests) == 1
        return {"items": []} if first else server_answers(request)

    with FakeOpenAIServer(skips_everything_at_first) as server:
        config = http_config(tmp_path, server, batch_size=4, max_retries=2, use_cache=True)
        results = label_texts(LabelerAgent(config, taxonomy), TEXTS[:4])
        prompts = [request_text(r) for r in server.requests]
    assert [r.domain for r in results] == [TRUTH[t] for t in TEXTS[:4]]
    assert len(prompts) == 2
    assert prompts[1] != prompts[0]  # the same texts, asked as a new question
    assert sorted(batch_texts(prompts[1]).values()) == sorted(TEXTS[:4])


@pytest.mark.parametrize("mode", ["tool", "forced_tool", "json_schema", "json_object", "prompted"])
def test_every_output_mode_over_http(taxonomy: Taxonomy, tmp_path: Path, mode: str) -> None:
    with FakeOpenAIServer(server_answers) as server:
        agent = LabelerAgent(http_config(tmp_path, server, output_mode=mode), taxonomy)
        results = label_texts(agent, TEXTS[:3])
    assert [r.domain for r in results] == [TRUTH[t] for t in TEXTS[:3]]
    assert {r.tier for r in results} == {"llm"}
