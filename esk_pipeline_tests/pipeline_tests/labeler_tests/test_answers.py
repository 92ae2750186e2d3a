"""Reading answers back: id matching, re-asking, clamping, hints, token-logprob confidence."""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

from pydantic_ai.models.test import TestModel

from esk_pipeline.pipeline.labeler import ClassificationResult, LabelerAgent, results_to_frame
from esk_pipeline.pipeline.labeler._answers import LLMAnswer, llm_outcome, token_confidences
from esk_pipeline.pipeline.labeler.models import Outcome
from esk_pipeline.pipeline.labels import tier_of
from esk_pipeline.pipeline.taxonomy import Taxonomy
from esk_pipeline_tests.fakes.openai_server import FakeOpenAIServer

from .conftest import http_config, label_texts, make_config, server_answers
from .scripted import TEXTS, TRUTH, Scripted, truthful


def test_llm_confidence_is_clamped(taxonomy: Taxonomy, tmp_path: Path) -> None:
    def wild(texts: dict[str, str], call: int) -> list[dict[str, Any]]:
        return [
            {"id": "t1", "domain": "roads", "confidence": 7.5},
            {"id": "t2", "domain": "roads", "confidence": -2},
        ]

    agent = LabelerAgent(make_config(tmp_path), taxonomy, model_override=Scripted(wild).model)
    first, second = label_texts(agent, TEXTS[:2])
    assert (first.confidence, second.confidence) == (1.0, 0.0)


def test_testmodel_answer_is_typed_and_checked(taxonomy: Taxonomy, tmp_path: Path) -> None:
    answer = {"items": [{"id": "t1", "domain": "waste", "confidence": 0.7}]}
    agent = LabelerAgent(
        make_config(tmp_path), taxonomy, model_override=TestModel(custom_output_args=answer)
    )
    [result] = label_texts(agent, TEXTS[:1])
    assert (result.domain, result.confidence, result.status) == ("waste", 0.7, "labeled")
    assert (result.llm_self_confidence, result.llm_token_confidence) == (0.7, None)
    # The LLM's choice first, then the local model's other candidates as hints for review.
    local_top = agent.local_model.predict(TEXTS[:1])[0][2]
    hints = [pair for pair in local_top if pair[0] != "waste"]
    assert result.top_candidates == [("waste", 0.7), *hints][:3]


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
    agent = LabelerAgent(make_config(tmp_path), taxonomy, model_override=scripted.model)
    results = label_texts(agent, TEXTS[:4])
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
    agent = LabelerAgent(
        make_config(tmp_path, max_retries=2), taxonomy, model_override=scripted.model
    )
    results = label_texts(agent, TEXTS[:4])
    assert len(results) == 4
    failed = [r for r in results if r.status == "failed"]
    assert [r.text for r in failed] == [ignored]
    assert "skipped" in (failed[0].error or "")
    assert len(scripted.calls) == 3  # the first request and two follow-ups
    assert [list(call.values()) for call in scripted.calls[1:]] == [[ignored], [ignored]]
    assert failed[0].top_candidates, "failed items keep the local model's candidates for review"
    assert failed[0] in agent.get_low_confidence_items(results)


def test_token_confidence_comes_from_the_domain_tokens_logprobs(
    taxonomy: Taxonomy, tmp_path: Path
) -> None:
    def probability(token: str) -> float:  # a domain id's token (with the quote after it)
        return 0.6 if re.sub(r"\W", "", token) in taxonomy.ids else 0.99

    with FakeOpenAIServer(server_answers, token_probability=probability) as server:
        config = http_config(tmp_path, server, output_mode="json_object")
        results = label_texts(LabelerAgent(config, taxonomy), TEXTS[:3])
        asked = server.requests[0]
    assert asked["logprobs"] is True
    assert [r.llm_token_confidence for r in results] == [0.6] * 3
    assert [r.llm_self_confidence for r in results] == [0.9] * 3
    frame = results_to_frame(results)
    assert list(frame["llm_token_confidence"]) == [0.6] * 3

    with FakeOpenAIServer(server_answers) as server:  # tool calls carry no logprobs
        config = http_config(tmp_path, server, output_mode="forced_tool")
        results = label_texts(LabelerAgent(config, taxonomy), TEXTS[:1])
    assert results[0].llm_token_confidence is None and results[0].llm_self_confidence == 0.9


def test_a_server_refusing_logprobs_is_asked_again_without_them(
    taxonomy: Taxonomy, tmp_path: Path
) -> None:
    with FakeOpenAIServer(server_answers, quirks="llamacpp") as server:
        agent = LabelerAgent(http_config(tmp_path, server, batch_size=4, max_retries=0), taxonomy)
        results = label_texts(agent, TEXTS[:4]) + label_texts(agent, TEXTS[4:8])
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
    assert token_confidences(logprobs, ["public_order"], ids) == [0.25]
    assert token_confidences(logprobs, ["roads"], ids) == [None]  # does not line up
    assert token_confidences(None, ["public_order"], ids) == [None]


def test_an_llm_label_the_local_model_agrees_with_is_a_tier_of_its_own() -> None:
    """Agreement needs the token probability and the local model's top domain; its confidence
    is the geometric mean of the two probabilities, and the label row records the tier."""
    prediction = ("waste", 0.64, [("waste", 0.64), ("roads", 0.2)])

    def outcome(domain: str, token_confidence: float | None) -> Outcome:
        answer = LLMAnswer(
            domain=domain,
            self_confidence=0.5,
            token_confidence=token_confidence,
            model="fake-model",
        )
        return llm_outcome(answer, prediction, cached=False)

    agreeing = outcome("waste", 0.81)
    other = outcome("roads", 0.81)
    untold = outcome("waste", None)
    assert agreeing.agrees_with_local and math.isclose(agreeing.confidence, 0.72)
    assert agreeing.llm_token_confidence == 0.81  # the LLM's own reading is kept
    assert not other.agrees_with_local and other.confidence == 0.81
    assert not untold.agrees_with_local and untold.confidence == 0.5
    results = [
        ClassificationResult(row_id=f"r{i}", text="t", **outcome.model_dump())
        for i, outcome in enumerate([agreeing, other, untold])
    ]
    frame = results_to_frame(results)
    assert list(frame["tier"]) == ["llm_agrees_with_local", "llm", "llm"]
    assert set(frame["label_origin"]) == {"llm"}  # the same maker: only the tier differs
    assert list(tier_of(frame)) == ["llm_agrees_with_local", "llm", "llm"]
    # Once a decision or a propagation replaces the label, the agreement tier no longer applies.
    decided = frame.assign(label_origin=["human_verified", "propagated", "llm"])
    assert list(tier_of(decided).fillna("none")) == ["none", "propagated", "llm"]
