"""Few-shot examples and feedback: similar examples within the budget, learning."""

from __future__ import annotations

import json
from pathlib import Path

from esk_pipeline.pipeline.labeler import LabelerAgent
from esk_pipeline.pipeline.taxonomy import Taxonomy

from .conftest import label_texts, make_config
from .scripted import TEXTS, Scripted


def test_dynamic_fewshot_picks_similar_examples_within_budget(
    taxonomy: Taxonomy, tmp_path: Path
) -> None:
    scripted = Scripted()
    budget = 120
    agent = LabelerAgent(
        make_config(tmp_path, fewshot_token_budget=budget), taxonomy, model_override=scripted.model
    )
    label_texts(agent, ["течёт крыша в квартире, заливает уже неделю"])
    examples = [line for line in scripted.prompts[0].splitlines() if line.startswith("- ")]
    assert any("течёт крыша" in line for line in examples)
    assert sum(len(line) // 3 + 1 for line in examples) <= budget

    none = Scripted()
    agent = LabelerAgent(
        make_config(tmp_path, fewshot_token_budget=0), taxonomy, model_override=none.model
    )
    label_texts(agent, TEXTS[:1])
    assert "Labelled examples" not in none.prompts[0]


def test_learn_retrains_and_feeds_fewshot(taxonomy: Taxonomy, tmp_path: Path) -> None:
    scripted = Scripted()
    agent = LabelerAgent(make_config(tmp_path), taxonomy, model_override=scripted.model)
    taught = "по поводу вчерашнего звонка про снос гаражей"
    agent.learn([(taught, "roads")] * 3)
    assert agent.local_model.predict([taught])[0][0] == "roads"
    label_texts(agent, ["снос гаражей во дворе когда"])
    assert json.dumps(taught, ensure_ascii=False) in scripted.prompts[0]
