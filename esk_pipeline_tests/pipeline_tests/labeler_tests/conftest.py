"""Shared helpers for the labeler's tests: scripted LLM answers, configs, a labelling runner.

Unit tests drive the LLM tier with pydantic-ai's FunctionModel/TestModel through
`model_override`; the HTTP tests go over real HTTP to the fault-injecting OpenAI-compatible
server in `esk_pipeline_tests/fakes` (`http_config`, `server_answers`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from pydantic_ai.messages import ModelMessage, ModelResponse, ToolCallPart, UserPromptPart
from pydantic_ai.models.function import AgentInfo, FunctionModel

from esk_pipeline.pipeline.labeler import ClassificationResult, LabelerAgent, LabelerConfig
from esk_pipeline.pipeline.taxonomy import Taxonomy
from esk_pipeline_tests.fakes.openai_server import FakeOpenAIServer, batch_texts, request_text

TAXONOMY_PATH = Path(__file__).resolve().parents[3] / "data" / "taxonomy.yaml"

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


def make_config(tmp_path: Path, **overrides: Any) -> LabelerConfig:
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


def label_texts(agent: LabelerAgent, texts: list[str] | pd.DataFrame) -> list[ClassificationResult]:
    """Label in one event loop and close the agent's connections in the same loop."""
    frame = texts if isinstance(texts, pd.DataFrame) else pd.DataFrame({"text": texts})

    async def run() -> list[ClassificationResult]:
        try:
            return await agent.classify_dataframe(frame)
        finally:
            await agent.aclose()

    return asyncio.run(run())


def server_answers(request: dict[str, Any]) -> dict[str, Any]:
    texts = batch_texts(request_text(request))
    return {"items": truthful(texts, 0)}


def http_config(tmp_path: Path, server: FakeOpenAIServer, **overrides: Any) -> LabelerConfig:
    return make_config(
        tmp_path,
        model="fake-model",
        api_base=server.base_url,
        api_key="sk-test",
        timeout_seconds=0.5,
        **overrides,
    )
