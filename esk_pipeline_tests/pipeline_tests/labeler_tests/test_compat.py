"""The seed's `label_dataframe_batched` shim."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pandas as pd

from esk_pipeline.pipeline.connections import LLMEndpoint
from esk_pipeline.pipeline.labeler import label_dataframe_batched
from esk_pipeline.pipeline.llm import LLMClient
from esk_pipeline.pipeline.taxonomy import Taxonomy

from .conftest import TAXONOMY_PATH, make_config
from .scripted import TEXTS, TRUTH, Scripted


def test_legacy_label_dataframe_batched(taxonomy: Taxonomy, tmp_path: Path, monkeypatch) -> None:
    frame = pd.DataFrame({"text": TEXTS[:3], "user_id": ["u1", "u2", "u3"]})
    scripted = Scripted()
    out = asyncio.run(
        label_dataframe_batched(
            frame,
            system_prompt="Legacy instructions.",
            fewshot=[{"text": "где мой автобус", "domain": "transport"}],
            taxonomy=taxonomy,
            model_override=scripted.model,
            **make_config(tmp_path).model_dump(exclude={"api_key"}),
        )
    )
    assert list(out["user_id"]) == ["u1", "u2", "u3"]
    assert list(out["domain"]) == [TRUTH[t] for t in TEXTS[:3]]
    assert {"row_id", "confidence", "top_candidates", "label_source", "status"} <= set(out)
    assert scripted.instructions[0].startswith("Legacy instructions.")

    # Without a taxonomy, the project's file (relative to the working folder) is used.
    monkeypatch.chdir(TAXONOMY_PATH.parents[1])
    local = asyncio.run(label_dataframe_batched(frame, model="local", use_cache=False))
    assert set(local["tier"]) == {"local_model"}
    assert set(local["domain"]) <= set(taxonomy.ids)


def test_legacy_shim_sends_through_a_given_llm_client(taxonomy: Taxonomy, tmp_path: Path) -> None:
    scripted = Scripted()
    client = LLMClient(
        LLMEndpoint(model="legacy-model"), rate_limit=0, model_override=scripted.model
    )
    frame = pd.DataFrame({"text": TEXTS[:2]})
    out = asyncio.run(
        label_dataframe_batched(
            frame,
            client,
            None,
            [("где мой автобус", "transport")],
            taxonomy=taxonomy,
            use_cache=False,
            local_accept_threshold=1.0,
        )
    )
    assert list(out["label_source"]) == ["legacy-model", "legacy-model"]
    assert client.usage.requests == len(scripted.calls) == 1
