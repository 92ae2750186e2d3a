"""The label-row frame."""

from __future__ import annotations

import json
from pathlib import Path

from esk_pipeline.pipeline.labeler import LabelerAgent, results_to_frame
from esk_pipeline.pipeline.labeler.frames import LABEL_COLUMNS
from esk_pipeline.pipeline.taxonomy import Taxonomy

from .conftest import label_texts, make_config
from .scripted import TEXTS


def test_results_to_frame_has_the_label_row_shape(taxonomy: Taxonomy, tmp_path: Path) -> None:
    agent = LabelerAgent(make_config(tmp_path, model="local"), taxonomy)
    results = label_texts(agent, TEXTS[:3])
    frame = results_to_frame(results)
    assert list(frame.columns) == list(LABEL_COLUMNS)
    record = {"row_id", "text", "domain", "confidence", "top_candidates", "label_source", "status"}
    assert record | {"label_origin", "tier"} <= set(frame.columns)  # records.md, and the audit's
    assert list(frame["row_id"]) == [r.row_id for r in results]
    assert list(frame["domain"]) == [r.domain for r in results]
    # Every column is filled from the results: a local label leaves only these empty.
    empty = frame.columns[frame.isna().all()]
    assert set(empty) == {"error", "llm_self_confidence", "llm_token_confidence"}
    assert set(frame["label_origin"]) == {"local_model"}
    candidates = json.loads(frame["top_candidates"][0])
    assert candidates[0][0] == frame["domain"][0]
    assert frame["confidence"].dtype == "float64"
    # Local labels have no LLM confidences: NaN, in float columns a calibration can read.
    assert frame["llm_token_confidence"].dtype == "float64"
    assert frame["llm_self_confidence"].isna().all()
