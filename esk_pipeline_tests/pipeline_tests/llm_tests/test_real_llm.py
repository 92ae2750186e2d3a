"""Opt-in: every output mode against a real OpenAI-compatible server (llama.cpp here).

Skipped unless ESK_REAL_LLM_BASE is set, e.g.::

    ../shared/tools/llm-server.sh start   (from the project folder)
    ESK_REAL_LLM_BASE=http://127.0.0.1:8091/v1 ESK_REAL_LLM_MODEL=qwen2.5-coder-0.5b \\
        .venv/bin/pytest esk_pipeline_tests/pipeline_tests/llm_tests/test_real_llm.py -v

On llama.cpp, ``forced_tool``, ``json_object`` and ``auto`` (= json_object) are expected to
work; ``json_schema`` is rejected with HTTP 500 and ``tool`` comes back as plain text, so those
two are expected to raise `LLMCallFailed`.
"""

from __future__ import annotations

import asyncio
import os
from typing import Literal

import pytest
from pydantic import BaseModel, Field

from esk_pipeline.pipeline.connections import LLMEndpoint
from esk_pipeline.pipeline.llm import LLMCallFailed, LLMClient

BASE = os.environ.get("ESK_REAL_LLM_BASE")
MODEL = os.environ.get("ESK_REAL_LLM_MODEL", "qwen2.5-coder-0.5b")
IS_LLAMACPP = os.environ.get("ESK_REAL_LLM_KIND", "llamacpp") == "llamacpp"

pytestmark = pytest.mark.skipif(not BASE, reason="set ESK_REAL_LLM_BASE to run against a real LLM")


class Topic(BaseModel):
    """The topic of a citizen's request."""

    domain: Literal["meter_readings", "payments", "other"]
    confidence: float = Field(description="between 0 and 1")


SYSTEM = (
    "Classify the citizen's request into one domain: meter_readings (submitting meter "
    "readings), payments (bills and payments), other. Answer with the domain and a confidence."
)


def _ask(mode: str) -> Topic:
    endpoint = LLMEndpoint(model=MODEL, api_base=BASE, output_mode=mode, timeout_seconds=120)
    client = LLMClient(endpoint, max_retries=1, concurrency=1, backoff_initial=0.2)
    reply = asyncio.run(
        client.run(
            system_prompt=SYSTEM,
            user_prompt="не могу передать показания счетчика воды",
            output_type=Topic,
            cache_namespace="real-llm-test",
        )
    )
    return reply.output


@pytest.mark.parametrize("mode", ["auto", "forced_tool", "json_object", "prompted"])
def test_mode_returns_valid_output(mode):
    assert isinstance(_ask(mode), Topic)


@pytest.mark.skipif(not IS_LLAMACPP, reason="llama.cpp quirks only")
@pytest.mark.parametrize("mode", ["tool", "json_schema"])
def test_mode_unsupported_by_llamacpp_fails_cleanly(mode):
    with pytest.raises(LLMCallFailed):
        _ask(mode)
