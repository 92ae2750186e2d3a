"""Balancing: the plan's arithmetic (target, caps, budget, sources) and what `balance` keeps."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pandas as pd
import pytest
from pydantic_ai.messages import ModelMessage, ModelResponse, ToolCallPart
from pydantic_ai.models.function import AgentInfo, FunctionModel

from esk_pipeline.pipeline.augment import AugmenterAgent, SourceTally, plan_balance
from esk_pipeline.pipeline.ids import row_id
from esk_pipeline.pipeline.taxonomy import Domain, Taxonomy
from esk_pipeline_tests.pipeline_tests.augment_tests.conftest import (
    KeywordLabeler,
    llm_config,
    run,
    source_of,
)


def _small_taxonomy() -> Taxonomy:
    return Taxonomy(domains=[Domain(id=d, name=d.upper()) for d in ("a", "b", "c", "d", "e")])


def _labelled() -> pd.DataFrame:
    """a: 10 rows, b: 4 (one verified at low confidence, one unconfident), c: 2 sources and
    one unconfident row not counted... (c counts 3), d: 6, e: 0; plus rows that never count."""
    rows: list[dict[str, Any]] = []

    def add(domain: str | None, text: str, confidence: float, **extra: Any) -> None:
        rows.append(
            {
                "row_id": f"id-{len(rows)}",
                "text": text,
                "domain": domain,
                "confidence": confidence,
                "label_source": "local",
                "status": "labeled",
                **extra,
            }
        )

    for n in range(10):
        add("a", f"текст домена а номер {n}", 0.9)
    add("b", "обращение б один", 0.9)
    add("b", "обращение б два", 0.8)
    add("b", "обращение б три", 0.5)  # below min_source_confidence: counted, never a source
    add(
        "b",
        "обращение б проверено",
        0.2,
        label_source="reviewer:alice",
        label_origin="human_verified",
    )
    add("c", "обращение в раз", 0.75)
    add("c", "обращение в два", 0.95)
    for n in range(6):
        add("d", f"обращение г {n}", 0.9)
    add(None, "не размечено", 0.0, status="failed")
    add("retired", "домен удалён", 0.9)
    return pd.DataFrame(rows)


def test_default_target_is_the_median_and_sources_are_confident_or_verified() -> None:
    config = llm_config(model="local", target_per_domain=None, oversample=1.0)
    plan = plan_balance(_labelled(), _small_taxonomy(), config)

    # counts a=10, b=4, c=2, d=6 (e has none): median of the present domains = 5.
    assert plan.target_per_domain == 5
    assert plan.counts_before == {"a": 10, "b": 4, "c": 2, "d": 6, "e": 0}
    assert plan.needed == {"a": 0, "b": 1, "c": 3, "d": 0, "e": 0}
    assert plan.domains["c"].per_source_cap == 2  # ceil(3 / 2 sources)
    assert plan.domains["b"].n_sources == 3  # the 0.5-confidence row is not a source
    # Rarest domain first; within a domain verified first, then by confidence.
    assert [(r.text, r.n_variants) for r in plan.requests] == [
        ("обращение в два", 2),
        ("обращение в раз", 1),
        ("обращение б проверено", 1),
    ]


def test_caps_and_a_small_budget_go_to_the_rarest_domains_first() -> None:
    config = llm_config(
        model="local",
        target_per_domain=10,
        max_samples_per_domain=5,
        max_total_samples=7,
        oversample=1.0,
    )
    plan = plan_balance(_labelled(), _small_taxonomy(), config)
    # e: 10 wanted, no source; c: min(8, cap 5, 2 sources * 3 variants) = 5 of the budget 7;
    # b: min(6, 5, 9) but only 2 left; d and a: nothing left / nothing needed.
    assert plan.needed == {"a": 0, "b": 2, "c": 5, "d": 0, "e": 0}
    assert plan.domains["b"].per_source_cap == 1
    assert sum(r.n_variants for r in plan.requests if r.domain == "c") == 5


def test_oversampling_spreads_over_sources_and_hard_negatives_are_requested() -> None:
    config = llm_config(
        model="local", target_per_domain=5, oversample=1.5, include_hard_negatives=True
    )
    plan = plan_balance(_labelled(), _small_taxonomy(), config)
    c_requests = [r for r in plan.requests if r.domain == "c"]
    # needed 3 -> ceil(4.5) = 5 candidates over 2 sources: 3 and 2.
    assert [r.n_variants for r in c_requests] == [3, 2]
    assert all(r.n_hard_negatives == 1 for r in plan.requests)


def test_a_reviewed_row_counts_once_with_the_reviewers_domain() -> None:
    labelled = pd.DataFrame(
        {
            "row_id": ["r1", "r1", "r2"],
            "text": ["обращение один", "обращение один", "обращение два"],
            "domain": ["a", "b", "a"],
            "label_source": ["local", "reviewer:bob", "local"],
            "label_origin": ["local_model", "human_verified", "local_model"],
        }
    )  # no confidence column: only the verified row can be a source
    config = llm_config(model="local", target_per_domain=2, oversample=1.0)
    plan = plan_balance(labelled, _small_taxonomy(), config)
    assert plan.counts_before == {"a": 1, "b": 1, "c": 0, "d": 0, "e": 0}
    assert [(r.row_id, r.domain) for r in plan.requests] == [("r1", "b")]


LIFT_SOURCES = [
    "нет горячей воды уже третий день, когда дадут",
    "в подъезде не работает лифт, управляющая компания молчит",
    "течёт крыша, заливает квартиру на последнем этаже",
]


def test_balance_keeps_each_source_to_its_fair_share() -> None:
    taxonomy = Taxonomy(domains=[Domain(id="a", name="A"), Domain(id="b", name="B")])
    labelled = pd.DataFrame(
        {
            "text": [f"обращение про а номер {n}" for n in range(10)] + LIFT_SOURCES,
            "domain": ["a"] * 10 + ["b"] * 3,
            "confidence": [0.9] * 13,
        }
    )
    config = llm_config(model="local", target_per_domain=9, oversample=2.0)
    agent = AugmenterAgent(config, taxonomy, labeler=KeywordLabeler(constant="b"))

    report = run(agent.balance(labelled))

    # b needs 6 from 3 sources: 2 each, though 4 candidates per source were generated.
    assert report.needed == {"a": 0, "b": 6}
    assert Counter(s.source_row_id for s in report.samples) == {row_id(t): 2 for t in LIFT_SOURCES}
    assert report.counts_before == {"a": 10, "b": 3}
    assert report.counts_after == {"a": 10, "b": 9}
    assert report.n_candidates == 12
    accepted = report.n_candidates - len(report.rejected)
    assert report.n_surplus == accepted - 6
    assert all(s.model == "offline" and s.method.startswith("offline:") for s in report.samples)


def _hard_negative_answers(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
    """A transport paraphrase and two public-order hard negatives per source."""
    n = source_of(messages).split()[-1]
    answer = {
        "paraphrases": [f"опять автобус {n} не пришёл вовремя сегодня утром"],
        "hard_negatives": [
            {
                "text": f"соседи шумят ночью в квартире номер {n} уже неделю",
                "domain": "public_order",
            },
            {"text": f"сосед с {n} этажа всю ночь шумит и не даёт спать", "domain": "public_order"},
        ],
    }
    return ModelResponse(parts=[ToolCallPart(info.output_tools[0].name, answer)])


@pytest.mark.parametrize(
    ("max_total", "per_domain", "hard_negatives", "after"),
    [
        (10, 10, 1, {"transport": 20, "public_order": 30}),  # the run budget is spent first
        (14, 10, 1, {"transport": 20, "public_order": 34}),  # what the budget leaves
        (None, 6, 2, {"transport": 16, "public_order": 36}),  # the hard negatives' domain cap
    ],
)
def test_hard_negatives_stay_within_the_run_budget_and_domain_caps(
    max_total: int | None, per_domain: int, hard_negatives: int, after: dict[str, int]
) -> None:
    taxonomy = Taxonomy(
        domains=[Domain(id=d, name=d) for d in ("transport", "public_order", "other")]
    )
    labelled = pd.DataFrame(
        {
            "text": [f"шум соседей ночью дом {i}" for i in range(30)]
            + [f"автобус не пришёл маршрут {i}" for i in range(10)],
            "domain": ["public_order"] * 30 + ["transport"] * 10,
            "confidence": [0.95] * 40,
        }
    )
    config = llm_config(
        target_per_domain=30,
        max_samples_per_domain=per_domain,
        max_total_samples=max_total,
        include_hard_negatives=True,
        hard_negatives_per_sample=hard_negatives,
        variants_per_sample=1,
        oversample=1.0,
    )
    agent = AugmenterAgent(
        config,
        taxonomy,
        labeler=KeywordLabeler(),
        model_override=FunctionModel(_hard_negative_answers),
    )

    report = run(agent.balance(labelled))

    assert report.needed == {
        "transport": 10 if per_domain == 10 else 6,
        "public_order": 0,
        "other": 0,
    }
    assert {d: report.counts_after[d] for d in after} == after
    accepted = report.n_candidates - len(report.rejected)
    assert report.n_surplus == accepted - len(report.samples)
    assert report.n_surplus > 0  # generated hard negatives beyond the caps
    if max_total is not None:
        assert len(report.samples) <= max_total


@pytest.mark.parametrize("max_per_domain", [2, 50])
def test_a_plan_from_rows_given_a_part_at_a_time_is_the_plan_from_all_of_them(
    max_per_domain: int,
) -> None:
    """`SourceTally` sees the label rows one part at a time (a day of a long history) and
    keeps only counts, source-form hashes and each domain's best sources, yet plans exactly
    what `plan_balance` plans from every row at once: the same texts repeat across parts,
    and the best source of a domain may come late."""
    taxonomy = _small_taxonomy()
    rows = []
    domains = ["a"] * 20 + ["b"] * 15 + ["c"] * 12 + ["d"] * 8 + ["e"] * 5
    for i, domain in enumerate(domains[::-1]):  # the rare domains' rows come first
        rows.append(
            {
                "row_id": f"r{i:03}",
                "text": f"обращение {i % 23} по теме {domain}",  # forms repeat across parts
                "domain": domain,
                "confidence": 0.5 + (i * 37 % 50) / 100,
                "label_source": "local",
                "label_origin": "human_verified" if i % 11 == 0 else "local_model",
                "status": "labeled" if i % 13 else "failed",
            }
        )
    labelled = pd.DataFrame(rows)
    config = llm_config(max_samples_per_domain=max_per_domain, variants_per_sample=2)
    tally = SourceTally(taxonomy, config)
    for start in range(0, len(labelled), 8):
        tally.add(labelled.iloc[start : start + 8])
    assert tally.plan() == plan_balance(labelled, taxonomy, config)
    assert tally.plan().requests  # something to compare
    assert len(tally.best) <= 5 * tally.keep
