"""A scripted LLM for the labeler's tests: texts the local model is unsure of, and their truth.

`Scripted` is a pydantic-ai FunctionModel answering each request through
`answer(texts_by_short_id, call_number)` (by default `truthful`) and recording what it was sent.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic_ai.messages import ModelMessage, ModelResponse, ToolCallPart, UserPromptPart
from pydantic_ai.models.function import AgentInfo, FunctionModel

from esk_pipeline_tests.fakes.openai_server import batch_texts

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
