"""Shared helpers for the labeler's tests: the taxonomy, configs, a labelling runner.

Unit tests drive the LLM tier with pydantic-ai's FunctionModel/TestModel through
`model_override` (`scripted.Scripted`); the HTTP tests go over real HTTP to the fault-injecting
OpenAI-compatible server in `esk_pipeline_tests/fakes` (`http_config`, `server_answers`).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from esk_pipeline.pipeline.labeler import ClassificationResult, LabelerAgent, LabelerConfig
from esk_pipeline.pipeline.taxonomy import Taxonomy
from esk_pipeline_tests.fakes.openai_server import FakeOpenAIServer, batch_texts, request_text

from .scripted import truthful

TAXONOMY_PATH = Path(__file__).resolve().parents[3] / "data" / "taxonomy.yaml"


@pytest.fixture(scope="module")
def taxonomy() -> Taxonomy:
    return Taxonomy.load(TAXONOMY_PATH)


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
