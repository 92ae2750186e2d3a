"""`label_dataframe_batched`: the contract's one-call labelling of a frame, over `LabelerAgent`."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pandas as pd

from esk_pipeline.pipeline.labeler.agent import LabelerAgent
from esk_pipeline.pipeline.labeler.frames import results_to_frame
from esk_pipeline.pipeline.labeler.models import LabelerConfig
from esk_pipeline.pipeline.llm import LLMClient
from esk_pipeline.pipeline.taxonomy import DEFAULT_TAXONOMY_PATH, Taxonomy

__all__ = ["label_dataframe_batched"]


async def label_dataframe_batched(
    df: pd.DataFrame,
    llm_client: LLMClient | None = None,
    system_prompt: str | None = None,
    fewshot: Iterable[tuple[str, str] | dict[str, str]] | None = None,
    **kw: Any,
) -> pd.DataFrame:
    """The old API on top of `LabelerAgent`: `df` (column `text`) with the label columns added.

    Legacy arguments:
        llm_client: an `LLMClient` to send requests through (its endpoint, limits, cache and
            usage meter); None builds one from the config (or none at all for model "local").
        system_prompt: extra instructions placed before the taxonomy-built prompt; the domain
            list and answer rules are always included, since only taxonomy ids can come out.
        fewshot: labelled examples, (text, domain) pairs or {"text", "domain"} dicts; they are
            used like verified labels (local-model training data and few-shot candidates).
    Keyword arguments: `taxonomy` (a `Taxonomy` or a path; default `DEFAULT_TAXONOMY_PATH`,
    relative to the working folder), `model_override`, `usage`, `progress_callback`, and any
    `LabelerConfig` field.

    Returns a copy of `df` with `row_id` (added when missing) and the label columns `domain`,
    `confidence`, `top_candidates`, `label_source`, `status`, `error`, `tier` (they replace
    input columns of the same names).
    """
    taxonomy = kw.pop("taxonomy", None) or DEFAULT_TAXONOMY_PATH
    if not isinstance(taxonomy, Taxonomy):
        taxonomy = Taxonomy.load(taxonomy)
    agent_args = {
        name: kw.pop(name)
        for name in ("model_override", "usage", "progress_callback")
        if name in kw
    }
    if llm_client is not None:
        kw.setdefault("model", llm_client.endpoint.model)
    examples = [
        (item["text"], item["domain"]) if isinstance(item, dict) else tuple(item)
        for item in fewshot or ()
    ]
    agent = LabelerAgent(
        LabelerConfig(**kw), taxonomy, verified=examples, llm_client=llm_client, **agent_args
    )
    agent.extra_instructions = system_prompt or ""
    try:
        results = await agent.classify_dataframe(df)
    finally:
        await agent.aclose()
    labels = results_to_frame(results).drop(columns=["text"])
    out = df.drop(columns=[c for c in labels.columns if c in df.columns]).reset_index(drop=True)
    return pd.concat([out, labels], axis=1)
