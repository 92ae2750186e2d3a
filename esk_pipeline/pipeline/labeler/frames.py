"""Results as the label-row frame that the labels asset stores and the trust audit reads."""

from __future__ import annotations

import json
from collections.abc import Iterable

import pandas as pd

from esk_pipeline.pipeline.label_contract import LABEL_ROW, TIER_OF_ORIGIN, LabelOrigin, LabelTier
from esk_pipeline.pipeline.labeler.models import ClassificationResult

__all__ = ["LABEL_COLUMNS", "results_to_frame"]

# The label row's columns, in order: the contract's, plus the LLM's two confidence readings.
LABEL_COLUMNS = (*LABEL_ROW, "llm_self_confidence", "llm_token_confidence")
_FLOAT_COLUMNS = ("confidence", "llm_self_confidence", "llm_token_confidence")


def results_to_frame(results: Iterable[ClassificationResult]) -> pd.DataFrame:
    """The label-row frame (records.md): row_id, text, domain, confidence, top_candidates (JSON
    string of [[domain, score], ...]), label_source, label_origin, status, error, tier, and for
    LLM labels llm_self_confidence and llm_token_confidence (NaN elsewhere). An LLM label that
    agrees with the local model is of the tier "llm_agrees_with_local" (see `_answers`)."""
    rows = [
        {
            "row_id": r.row_id,
            "text": r.text,
            "domain": r.domain,
            "confidence": r.confidence,
            "top_candidates": json.dumps([list(c) for c in r.top_candidates], ensure_ascii=False),
            "label_source": r.label_source,
            "label_origin": (origin := _origin(r.tier)).value,
            "status": r.status,
            "error": r.error,
            "tier": _tier(r, origin).value,
            "llm_self_confidence": r.llm_self_confidence,
            "llm_token_confidence": r.llm_token_confidence,
        }
        for r in results
    ]
    floats = dict.fromkeys(_FLOAT_COLUMNS, "float64")
    return pd.DataFrame(rows, columns=list(LABEL_COLUMNS)).astype(floats)


def _origin(cascade_tier: str) -> LabelOrigin:
    """Who made a labeler result, by the cascade tier that produced it."""
    return LabelOrigin.LLM if cascade_tier == "llm" else LabelOrigin.LOCAL_MODEL


def _tier(result: ClassificationResult, origin: LabelOrigin) -> LabelTier:
    """The calibration tier of a labeler result (the label contract's `LabelTier`)."""
    if origin is LabelOrigin.LLM and result.agrees_with_local:
        return LabelTier.LLM_AGREES_WITH_LOCAL
    return TIER_OF_ORIGIN[origin]
