"""Results as the label-row frame that the labels asset stores and the trust audit reads."""

from __future__ import annotations

import json
from collections.abc import Iterable

import pandas as pd

from esk_pipeline.pipeline.labeler.models import ClassificationResult
from esk_pipeline.pipeline.labels import origin_of_tier

# The label row's columns, in order (records.md).
LABEL_COLUMNS = (
    "row_id",
    "text",
    "domain",
    "confidence",
    "top_candidates",
    "label_source",
    "label_origin",
    "status",
    "error",
    "tier",
    "llm_self_confidence",
    "llm_token_confidence",
)
_FLOAT_COLUMNS = ("confidence", "llm_self_confidence", "llm_token_confidence")


def results_to_frame(results: Iterable[ClassificationResult]) -> pd.DataFrame:
    """The label-row frame (records.md): row_id, text, domain, confidence, top_candidates (JSON
    string of [[domain, score], ...]), label_source, label_origin, status, error, tier, and for
    LLM labels llm_self_confidence and llm_token_confidence (NaN elsewhere)."""
    rows = [
        {
            "row_id": r.row_id,
            "text": r.text,
            "domain": r.domain,
            "confidence": r.confidence,
            "top_candidates": json.dumps([list(c) for c in r.top_candidates], ensure_ascii=False),
            "label_source": r.label_source,
            "label_origin": origin_of_tier(r.tier),
            "status": r.status,
            "error": r.error,
            "tier": r.tier,
            "llm_self_confidence": r.llm_self_confidence,
            "llm_token_confidence": r.llm_token_confidence,
        }
        for r in results
    ]
    floats = dict.fromkeys(_FLOAT_COLUMNS, "float64")
    return pd.DataFrame(rows, columns=list(LABEL_COLUMNS)).astype(floats)
