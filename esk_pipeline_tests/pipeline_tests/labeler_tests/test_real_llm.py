"""Opt-in: the labeler's LLM tier against a real OpenAI-compatible server (llama.cpp here).

Skipped unless ESK_REAL_LLM_BASE is set, e.g.::

    ../shared/tools/llm-server.sh start   (from the project folder)
    ESK_REAL_LLM_BASE=http://127.0.0.1:8091/v1 ESK_REAL_LLM_MODEL=qwen2.5-coder-0.5b \\
        .venv/bin/pytest esk_pipeline_tests/pipeline_tests/labeler_tests/test_real_llm.py -v

A few minutes on 2 CPU cores with the 0.5B model. What the model answers is its own (a 0.5B
model is weak at Russian), so the tests check what must hold whatever it answers: only the
batch's ids and taxonomy domains come back, every text gets a label, and a follow-up reaches
the server as a new question.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest

from esk_pipeline.pipeline.labeler import (
    ClassificationResult,
    LabelerAgent,
    LabelerConfig,
    results_to_frame,
)
from esk_pipeline.pipeline.taxonomy import Taxonomy
from esk_pipeline_tests.fakes.openai_server import FakeOpenAIServer, batch_texts, request_text

BASE = os.environ.get("ESK_REAL_LLM_BASE")
MODEL = os.environ.get("ESK_REAL_LLM_MODEL", "qwen2.5-coder-0.5b")
TAXONOMY_PATH = Path(__file__).resolve().parents[3] / "data" / "taxonomy.yaml"

pytestmark = pytest.mark.skipif(not BASE, reason="set ESK_REAL_LLM_BASE to run against a real LLM")

CLEAR = [
    "не могу передать показания счетчика воды",
    "пришла квитанция с огромной суммой за отопление",
    "на дороге огромная яма у остановки",
    "нет горячей воды уже третий день",
]


def _config(tmp_path: Path, api_base: str, **overrides: Any) -> LabelerConfig:
    values: dict[str, Any] = {
        "model": MODEL,
        "api_base": api_base,
        "api_key": "not-needed",
        "batch_size": 4,
        "local_accept_threshold": 1.0,  # every text goes to the LLM
        "use_cache": True,
        "cache_dir": tmp_path / "cache",
        "concurrency": 1,
        "rate_limit": 0,
        "max_retries": 2,
        "timeout_seconds": 600,
        "backoff_seconds": 0.2,
        # Static few-shot: the whole system prompt is a prefix the server evaluates once.
        "use_dynamic_fewshot": False,
    }
    return LabelerConfig(**{**values, **overrides})


def _label(config: LabelerConfig, texts: list[str]) -> tuple[list[ClassificationResult], int]:
    agent = LabelerAgent(config, Taxonomy.load(TAXONOMY_PATH))

    async def run() -> list[ClassificationResult]:
        try:
            return await agent.classify_dataframe(pd.DataFrame({"text": texts}))
        finally:
            await agent.aclose()

    results = asyncio.run(run())
    return results, agent.usage.requests


def test_real_model_answers_only_the_batchs_ids_and_taxonomy_domains(tmp_path: Path) -> None:
    assert BASE is not None
    taxonomy = Taxonomy.load(TAXONOMY_PATH)
    results, requests = _label(_config(tmp_path, BASE), CLEAR)
    assert [r.status for r in results] == ["labeled"] * len(CLEAR), [r.error for r in results]
    assert {r.tier for r in results} == {"llm"}
    assert all(r.domain in taxonomy for r in results)
    assert requests >= 1
    again, requests_again = _label(_config(tmp_path, BASE), CLEAR)  # the per-text cache
    assert requests_again == 0
    assert [r.domain for r in again] == [r.domain for r in results]


def test_a_follow_up_reaches_the_real_server_as_a_new_question(tmp_path: Path) -> None:
    """A proxy in front of the real server drops one text from the first answer; the labeler
    must ask for that text again, and the real model must answer it."""
    assert BASE is not None
    dropped = CLEAR[2]

    def forward(request: dict[str, Any]) -> dict[str, Any]:
        response = httpx.post(f"{BASE}/chat/completions", json=request, timeout=600)
        response.raise_for_status()
        answer = json.loads(response.json()["choices"][0]["message"]["content"])
        if len(proxy.requests) == 1:
            texts = batch_texts(request_text(request))
            answer["items"] = [i for i in answer["items"] if texts.get(i["id"]) != dropped]
        return answer

    with FakeOpenAIServer(forward, model_ids=[MODEL]) as proxy:
        results, _ = _label(_config(tmp_path, proxy.base_url, output_mode="json_object"), CLEAR)
        prompts = [request_text(r) for r in proxy.requests]
    assert [r.status for r in results] == ["labeled"] * len(CLEAR), [r.error for r in results]
    assert len(prompts) == 2
    assert list(batch_texts(prompts[1]).values()) == [dropped]  # only the unsettled text
    assert prompts[1] != prompts[0]


def test_real_llm_labels_agreeing_with_the_local_model_get_the_agreement_tier(
    tmp_path: Path,
) -> None:
    """Whatever the model answers: a label with a token probability is of the agreement tier
    exactly when its domain is the local model's top one, with the geometric mean of the two
    probabilities as its confidence; every other LLM label stays "llm"."""
    assert BASE is not None
    agent = LabelerAgent(
        _config(tmp_path, BASE, output_mode="json_object"), Taxonomy.load(TAXONOMY_PATH)
    )
    local = dict(zip(CLEAR, agent.local_model.predict(CLEAR), strict=True))

    async def run() -> list[ClassificationResult]:
        try:
            return await agent.classify_dataframe(pd.DataFrame({"text": CLEAR}))
        finally:
            await agent.aclose()

    results = asyncio.run(run())
    frame = results_to_frame(results).set_index("text")
    assert [r.status for r in results] == ["labeled"] * len(CLEAR), [r.error for r in results]
    for text, row in frame.iterrows():
        top_domain, top_probability, _ = local[text]
        agrees = pd.notna(row["llm_token_confidence"]) and row["domain"] == top_domain
        assert row["tier"] == ("llm_agrees_with_local" if agrees else "llm"), text
        if agrees:
            expected = math.sqrt(row["llm_token_confidence"] * top_probability)
            assert row["confidence"] == pytest.approx(expected, abs=1e-6)
