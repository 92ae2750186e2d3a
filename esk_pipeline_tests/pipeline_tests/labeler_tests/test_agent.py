"""The agent's API: config, the local model alone, one result per row, progress, reports."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pandas as pd
import pytest

from esk_pipeline import configs
from esk_pipeline.pipeline.ids import row_id
from esk_pipeline.pipeline.labeler import (
    CascadeReport,
    LabelerAgent,
    LabelerConfig,
    results_to_frame,
)
from esk_pipeline.pipeline.taxonomy import Taxonomy
from esk_pipeline.settings import Settings

from .conftest import label_texts, make_config
from .scripted import TEXTS, TRUTH, Scripted


def test_config_is_local_without_an_endpoint(project_env: Path, monkeypatch) -> None:
    assert LabelerConfig().model == "local"
    assert LabelerConfig().is_local
    monkeypatch.setenv("LLM_API_BASE", "http://127.0.0.1:9/v1")
    monkeypatch.setenv("LLM_LABELER_MODEL", "qwen2.5")
    assert LabelerConfig().is_local  # the library alone never reads the environment
    config = configs.labeler_config(Settings.load())
    assert (config.model, config.api_base) == ("qwen2.5", "http://127.0.0.1:9/v1")
    assert not config.is_local


def test_local_model_alone_labels_everything(taxonomy: Taxonomy, tmp_path: Path) -> None:
    agent = LabelerAgent(make_config(tmp_path, model="local"), taxonomy)
    results = label_texts(agent, [*TEXTS, "нет горячей воды"])
    assert [r.status for r in results] == ["labeled"] * (len(TEXTS) + 1)
    assert {(r.tier, r.label_source, r.model) for r in results} == {("local", "local", "local")}
    assert results[-1].domain == "housing_utilities"
    report = agent.cascade_report(results)
    assert report.cascade_accepted_local + report.cascade_kept_local_below_threshold == len(results)
    assert report.llm == report.failed == report.deferred == 0
    assert sum(report.shares.values()) == pytest.approx(1.0)
    # Without an LLM, only what the local model is unsure of goes to review.
    low = agent.get_low_confidence_items(results)
    assert all(r.confidence < agent.config.low_conf_threshold for r in low)


def test_one_result_per_row_and_row_ids_kept(taxonomy: Taxonomy, tmp_path: Path) -> None:
    scripted = Scripted()
    agent = LabelerAgent(make_config(tmp_path), taxonomy, model_override=scripted.model)
    frame = pd.DataFrame({"row_id": ["a", "b", "c"], "text": [TEXTS[0], TEXTS[0], TEXTS[1]]})
    results = asyncio.run(agent.classify_dataframe(frame))
    assert [r.row_id for r in results] == ["a", "b", "c"]
    assert sum(len(call) for call in scripted.calls) == 2  # the repeated text asked once
    [one] = label_texts(agent, [TEXTS[2]])
    assert one.row_id == row_id(TEXTS[2])
    single = asyncio.run(agent.classify_one(TEXTS[3]))
    assert (single.domain, single.row_id) == (TRUTH[TEXTS[3]], row_id(TEXTS[3]))


def test_progress_is_reported_to_the_callback(taxonomy: Taxonomy, tmp_path: Path) -> None:
    lines: list[str] = []
    agent = LabelerAgent(
        make_config(tmp_path),
        taxonomy,
        model_override=Scripted().model,
        progress_callback=lines.append,
    )
    label_texts(agent, TEXTS)
    assert lines[0] == f"labeling: started on {len(TEXTS)} texts"
    assert lines[-1].startswith(f"labeling: {len(TEXTS)} texts in ")


def test_an_empty_frame_gives_no_results(taxonomy: Taxonomy, tmp_path: Path) -> None:
    scripted = Scripted()
    agent = LabelerAgent(make_config(tmp_path), taxonomy, model_override=scripted.model)
    assert label_texts(agent, pd.DataFrame(columns=["row_id", "text"])) == []
    assert scripted.calls == []
    assert results_to_frame([]).empty


def test_cost_and_tokens_per_label_come_from_the_usage_snapshot() -> None:
    usage = {"input_tokens": 900, "output_tokens": 300, "cost": 0.06}
    report = CascadeReport(
        total=12,
        cascade_accepted_local=6,
        cascade_kept_local_below_threshold=0,
        llm=4,
        llm_cached=1,
        failed=1,
        deferred=1,
        for_review=2,
        usage=usage,
    )
    assert report.tokens_per_llm_label == 300.0  # 1200 tokens over 4 LLM labels
    assert report.cost_per_label == pytest.approx(0.006)  # over all 10 labelled items
    nothing = report.model_copy(update={"cascade_accepted_local": 0, "llm": 0, "llm_cached": 0})
    assert nothing.tokens_per_llm_label == nothing.cost_per_label == 0.0


def test_cascade_report_figures_per_label_for_a_run(taxonomy: Taxonomy, tmp_path: Path) -> None:
    agent = LabelerAgent(make_config(tmp_path), taxonomy, model_override=Scripted().model)
    report = agent.cascade_report(label_texts(agent, TEXTS))
    tokens = report.usage["input_tokens"] + report.usage["output_tokens"]
    assert report.llm == len(TEXTS) and tokens > 0
    assert report.tokens_per_llm_label == tokens / len(TEXTS)
