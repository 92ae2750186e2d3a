"""Shared doubles for the augmenter's tests: the taxonomy, a keyword labeler, LLM configs and
function models that answer per source text."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import pandas as pd
import pytest
from pydantic_ai.messages import ModelMessage, ModelRequest, ModelResponse, ToolCallPart
from pydantic_ai.models.function import AgentInfo, FunctionModel

from esk_pipeline.pipeline.augment import AugmenterConfig
from esk_pipeline.pipeline.taxonomy import Taxonomy

TAXONOMY_PATH = Path(__file__).resolve().parents[3] / "data" / "taxonomy.yaml"
LIFT = "в подъезде не работает лифт, жильцы ходят пешком"
GOOD = "у нас в доме сломался лифт, все ходят по лестнице"


@pytest.fixture(scope="module")
def taxonomy() -> Taxonomy:
    return Taxonomy.load(TAXONOMY_PATH)


@dataclass
class Label:
    domain: str | None
    status: str = "labeled"
    error: str | None = None


class KeywordLabeler:
    """A labeler double: the first domain whose keyword the text contains, else "other".
    Records every batch it is given."""

    KEYWORDS: ClassVar[dict[str, str]] = {
        "шум": "public_order",
        "показан": "meter_readings",
        "лифт": "housing_utilities",
        "подъёмник": "housing_utilities",
        "автобус": "transport",
        "квитанц": "payments",
    }

    def __init__(self, constant: str | None = None) -> None:
        self.constant = constant
        self.batches: list[list[str]] = []

    async def classify_dataframe(self, df: pd.DataFrame) -> list[Label]:
        texts = [str(t) for t in df["text"]]
        self.batches.append(texts)
        return [Label(self.constant or self._domain(t)) for t in texts]

    def _domain(self, text: str) -> str:
        lowered = text.lower()
        return next((d for k, d in self.KEYWORDS.items() if k in lowered), "other")


def llm_config(**overrides: Any) -> AugmenterConfig:
    fields: dict[str, Any] = {
        "model": "gpt-4o-mini",
        "api_base": None,
        "api_key": None,
        "output_mode": "tool",
        "use_cache": False,
        "rate_limit": 0,
        "concurrency": 4,
        "max_retries": 3,
        "backoff_seconds": 0.01,
        "variants_per_sample": 3,
        "include_hard_negatives": False,
        "seed": 42,
        "near_duplicate_threshold": 0.9,
    }
    return AugmenterConfig(**{**fields, **overrides})


def source_of(messages: list[ModelMessage]) -> str:
    """The source text from the augmenter's user prompt (a JSON task)."""
    request = next(m for m in reversed(messages) if isinstance(m, ModelRequest))
    prompt = next(p.content for p in request.parts if p.part_kind == "user-prompt")
    return json.loads(prompt)["request"]


def function_model(answers: dict[str, dict[str, Any]]) -> FunctionModel:
    """Answers each source text with the given LLMAugmentation dict; raises for unknown ones."""

    def answer(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        source = source_of(messages)
        if source not in answers:
            raise RuntimeError(f"the model is down for {source!r}")
        return ModelResponse(parts=[ToolCallPart(info.output_tools[0].name, answers[source])])

    return FunctionModel(answer)


def run(coro: Any) -> Any:
    return asyncio.run(coro)
