"""AugmenterAgent: quality control paths, balancing arithmetic, the LLM path (test models, the
fault-injecting server, the cache) and the offline path with the real local labeler."""

from __future__ import annotations

import asyncio
import json
import random
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import pandas as pd
import pytest
from pydantic import SecretStr
from pydantic_ai.messages import ModelMessage, ModelRequest, ModelResponse, ToolCallPart
from pydantic_ai.models.function import AgentInfo, FunctionModel
from pydantic_ai.models.test import TestModel

from esk_pipeline.pipeline.augmenter_agent import (
    AugmentationReport,
    AugmentedSample,
    AugmenterAgent,
    AugmenterConfig,
    NearDuplicateIndex,
    plan_balance,
)
from esk_pipeline.pipeline.ids import row_id
from esk_pipeline.pipeline.labeler import LabelerAgent, LabelerConfig
from esk_pipeline.pipeline.llm import ResponseCache, UsageMeter
from esk_pipeline.pipeline.taxonomy import Domain, Taxonomy
from esk_pipeline.pipeline.text import identity_key
from esk_pipeline_tests.fakes.openai_server import FakeOpenAIServer, request_text

TAXONOMY_PATH = Path(__file__).resolve().parents[2] / "data" / "taxonomy.yaml"
SYNTHETIC_ROW_COLUMNS = [
    "row_id",
    "text",
    "domain",
    "source_text",
    "source_row_id",
    "method",
    "model",
    "is_synthetic",
    "is_hard_negative",
    "label_origin",
]


@pytest.fixture(scope="module")
def taxonomy() -> Taxonomy:
    return Taxonomy.load(TAXONOMY_PATH)


@dataclass
class _Label:
    domain: str | None
    status: str = "labeled"
    error: str | None = None


class KeywordLabeler:
    """A labeler double: the first domain whose keyword the text contains, else "other".
    Records every batch it is given."""

    KEYWORDS: ClassVar[dict[str, str]] = {
        "шум": "public_order",
        "показан": "meter_readings",
        "лифт": "housing_utilities",
        "подъёмник": "housing_utilities",
        "автобус": "transport",
        "квитанц": "payments",
    }

    def __init__(self, constant: str | None = None) -> None:
        self.constant = constant
        self.batches: list[list[str]] = []

    async def classify_dataframe(self, df: pd.DataFrame) -> list[_Label]:
        texts = [str(t) for t in df["text"]]
        self.batches.append(texts)
        return [_Label(self.constant or self._domain(t)) for t in texts]

    def _domain(self, text: str) -> str:
        lowered = text.lower()
        return next((d for k, d in self.KEYWORDS.items() if k in lowered), "other")


def _llm_config(**overrides: Any) -> AugmenterConfig:
    fields: dict[str, Any] = {
        "model": "gpt-4o-mini",
        "api_base": None,
        "api_key": None,
        "output_mode": "tool",
        "use_cache": False,
        "rate_limit": 0,
        "concurrency": 4,
        "max_retries": 3,
        "backoff_seconds": 0.01,
        "variants_per_sample": 3,
        "include_hard_negatives": False,
        "seed": 42,
        "near_duplicate_threshold": 0.9,
    }
    return AugmenterConfig(**{**fields, **overrides})


def _source_of(messages: list[ModelMessage]) -> str:
    """The source text from the augmenter's user prompt (a JSON task)."""
    request = next(m for m in reversed(messages) if isinstance(m, ModelRequest))
    prompt = next(p.content for p in request.parts if p.part_kind == "user-prompt")
    return json.loads(prompt)["request"]


def _function_model(answers: dict[str, dict[str, Any]]) -> FunctionModel:
    """Answers each source text with the given LLMAugmentation dict; raises for unknown ones."""

    def answer(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        source = _source_of(messages)
        if source not in answers:
            raise RuntimeError(f"the model is down for {source!r}")
        return ModelResponse(parts=[ToolCallPart(info.output_tools[0].name, answers[source])])

    return FunctionModel(answer)


def _run(coro: Any) -> Any:
    return asyncio.run(coro)


# -- quality control ---------------------------------------------------------------------------

LIFT = "в подъезде не работает лифт, жильцы ходят пешком"
GOOD = "у нас в доме сломался лифт, все ходят по лестнице"


def test_every_quality_control_rejection_path_is_taken_and_counted(taxonomy: Taxonomy) -> None:
    answers = {
        LIFT: {
            "paraphrases": [
                "В подъезде не работает ЛИФТ, жильцы ходят пешком!",  # duplicate
                "лифт",  # too_short
                "лифт сломан " * 25,  # too_long
                "the lift in our entrance is broken again",  # wrong_language
                "в подъезде не работает лифт, жильцы ходят пешкомм",  # near dup of the source
                "шумят соседи сверху, лифт тут ни при чём",  # label_mismatch
                GOOD,  # accepted
                "у нас в доме сломался лифт, все хоодят по лестнице",  # near dup of GOOD
            ],
            "hard_negatives": [
                {"text": "соседи шумят ночью, а лифт гудит до утра", "domain": "public_order"},
                {"text": "как передать показания счётчика в лифте", "domain": "not_a_domain"},
                {"text": "лифт не работает вторую неделю подряд", "domain": "housing_utilities"},
                {"text": "в лифте сломался счётчик этажей", "domain": "meter_readings"},
            ],
        }
    }
    labeler = KeywordLabeler()
    agent = AugmenterAgent(
        _llm_config(
            variants_per_sample=8, include_hard_negatives=True, hard_negatives_per_sample=4
        ),
        taxonomy,
        labeler=labeler,
        model_override=_function_model(answers),
    )

    report = _run(agent.augment([{"text": LIFT, "domain_id": "housing_utilities"}]))

    assert report.rejections == {
        "duplicate": 1,
        "too_short": 1,
        "too_long": 1,
        "wrong_language": 1,
        "near_duplicate": 2,
        "label_mismatch": 2,
        "invalid_domain": 2,
    }
    assert [(s.text, s.domain, s.is_hard_negative, s.method) for s in report.samples] == [
        (GOOD, "housing_utilities", False, "llm_paraphrase"),
        ("соседи шумят ночью, а лифт гудит до утра", "public_order", True, "llm_hard_negative"),
    ]
    assert report.n_candidates == 12
    assert report.acceptance_rate == pytest.approx(2 / 12)
    # The labeler saw every candidate that passed the cheap checks, in one batch.
    assert len(labeler.batches) == 1 and len(labeler.batches[0]) == 5
    near = [r.detail for r in report.rejected if r.reason == "near_duplicate"]
    assert near[0].startswith("real text") and near[1].startswith("synthetic sample")


def test_a_sample_duplicating_any_real_text_is_rejected(taxonomy: Taxonomy) -> None:
    real = "в доме сломался лифт, ходим по лестнице"
    answers = {LIFT: {"paraphrases": [real.upper(), GOOD]}}
    agent = AugmenterAgent(
        _llm_config(),
        taxonomy,
        labeler=KeywordLabeler(),
        model_override=_function_model(answers),
    )
    report = _run(
        agent.augment([{"text": LIFT, "domain_id": "housing_utilities"}], real_texts=[real])
    )
    assert [s.text for s in report.samples] == [GOOD]
    assert report.rejections == {"duplicate": 1}


class UnavailableLabeler:
    """A labeler double whose every item came back unlabelled with `status`."""

    def __init__(self, status: str) -> None:
        self.status = status

    async def classify_dataframe(self, df: pd.DataFrame) -> list[_Label]:
        return [_Label(None, self.status, "endpoint down") for _ in range(len(df))]


@pytest.mark.parametrize(
    ("status", "reason"), [("failed", "judge_failed"), ("deferred", "deferred")]
)
def test_a_candidate_the_labeler_could_not_judge_is_not_a_label_mismatch(
    taxonomy: Taxonomy, status: str, reason: str
) -> None:
    answers = {LIFT: {"paraphrases": [GOOD, "лифт в нашем подъезде стоит, ходим пешком"]}}
    agent = AugmenterAgent(
        _llm_config(),
        taxonomy,
        labeler=UnavailableLabeler(status),
        model_override=_function_model(answers),
    )
    report = _run(agent.augment([{"text": LIFT, "domain_id": "housing_utilities"}]))
    assert report.samples == []
    assert report.rejections == {reason: 2}
    assert {(r.detail, r.text is not None) for r in report.rejected} == {("endpoint down", True)}


# -- the LLM path ----------------------------------------------------------------------------


def test_llm_path_with_test_model_produces_typed_samples(taxonomy: Taxonomy) -> None:
    paraphrase = "у нас в подъезде опять не ходит лифт, жильцы поднимаются пешком"
    model = TestModel(custom_output_args={"paraphrases": [paraphrase], "hard_negatives": []})
    agent = AugmenterAgent(_llm_config(), taxonomy, labeler=KeywordLabeler(), model_override=model)

    samples = _run(agent.augment_batch([{"text": LIFT, "domain_id": "housing_utilities"}]))

    assert samples == [
        AugmentedSample(
            row_id=row_id(paraphrase),
            text=paraphrase,
            domain="housing_utilities",
            source_text=LIFT,
            source_row_id=row_id(LIFT),
            method="llm_paraphrase",
            model="gpt-4o-mini",
        )
    ]


def test_a_failed_llm_call_leaves_an_explicit_record(taxonomy: Taxonomy) -> None:
    answers = {LIFT: {"paraphrases": [GOOD]}}
    agent = AugmenterAgent(
        _llm_config(), taxonomy, labeler=KeywordLabeler(), model_override=_function_model(answers)
    )
    items = [
        {"text": LIFT, "domain_id": "housing_utilities"},
        {"text": "сбой: автобус не пришёл", "domain_id": "transport", "row_id": "src-7"},
    ]

    report = _run(agent.augment(items))

    assert [s.text for s in report.samples] == [GOOD]
    [failed] = report.rejected
    assert (failed.reason, failed.text, failed.source_row_id) == ("llm_failed", None, "src-7")
    assert "the model is down" in failed.detail


def test_a_spent_budget_defers_the_remaining_sources(taxonomy: Taxonomy) -> None:
    sources = [f"не работает лифт в доме номер {n}, ходим пешком" for n in range(3)]
    answers = {
        s: {"paraphrases": [f"лифт в доме {i} стоит, на этаж приходится идти пешком"]}
        for i, s in enumerate(sources)
    }
    agent = AugmenterAgent(
        _llm_config(concurrency=1),
        taxonomy,
        labeler=KeywordLabeler(),
        model_override=_function_model(answers),
        usage=UsageMeter(max_requests=1),
    )
    report = _run(agent.augment([{"text": s, "domain_id": "housing_utilities"} for s in sources]))
    assert len(report.samples) == 1
    assert report.rejections == {"deferred": 2}


HOUSING_SOURCES = [
    "не работает лифт в подъезде второй день",
    "лифт застрял между этажами, внутри ребёнок",
    "в лифте сломана кнопка вызова на первом этаже",
    "лифт страшно скрипит и дёргается при остановке",
    "после ремонта лифт ходит только до пятого этажа",
    "в лифте нет света и воняет",
]
TRANSPORT_SOURCES = [
    "автобус 42 опять не пришёл на остановку",
    "водитель автобуса не остановился по требованию",
    "в автобусе не работает валидатор карт",
    "автобус ходит раз в час вместо пятнадцати минут",
    "в ночном автобусе холодно, печка не работает",
    "автобус изменил маршрут без объявления",
]
SERVER_SOURCES = [(t, "housing_utilities") for t in HOUSING_SOURCES] + [
    (t, "transport") for t in TRANSPORT_SOURCES
]
SUFFIXES = ("когда это починят?", "прошу разобраться как можно быстрее", "сколько можно ждать")


def _paraphrasing_responder(request: dict[str, Any]) -> dict[str, Any]:
    task = json.loads(request_text(request))
    return {
        "paraphrases": [
            f"здравствуйте, у меня проблема: {task['request']}, {suffix}"
            for suffix in SUFFIXES[: task["paraphrases_wanted"]]
        ],
        "hard_negatives": [],
    }


def _server_config(server: FakeOpenAIServer, **overrides: Any) -> AugmenterConfig:
    return _llm_config(
        model="fake-model",
        api_base=server.base_url,
        api_key=SecretStr("sk-test-secret"),
        output_mode="auto",
        **overrides,
    )


def test_against_the_fault_injecting_server_nothing_is_lost_or_duplicated(
    taxonomy: Taxonomy,
) -> None:
    items = [{"text": t, "domain_id": d} for t, d in SERVER_SOURCES]
    with FakeOpenAIServer(
        _paraphrasing_responder,
        fault_rate=0.3,
        fault_kinds=("500", "502", "503", "429", "malformed_body", "malformed_output"),
        retry_after_seconds=0,
        seed=3,
    ) as server:
        agent = AugmenterAgent(_server_config(server), taxonomy, labeler=KeywordLabeler())
        report = _run(agent.augment(items))
        sent = server.request_count

    assert sent > len(items)  # faults were retried
    by_source: dict[str, list[str]] = {row_id(t): [] for t, _ in SERVER_SOURCES}
    for sample in report.samples:
        by_source[sample.source_row_id].append("accepted")
    for rejected in report.rejected:
        by_source[rejected.source_row_id].append(rejected.reason if rejected.text else "failed")
    for source, outcomes in by_source.items():
        # Each source yields its three paraphrases' outcomes, or one explicit failure record.
        assert outcomes == ["failed"] or len(outcomes) == 3, (source, outcomes)
    assert len({s.row_id for s in report.samples}) == len(report.samples)
    assert len(report.samples) >= 3 * (len(items) - 2)
    assert report.counts_after == dict(Counter(s.domain for s in report.samples))


def test_aclose_closes_only_the_labeler_and_cache_the_agent_built(
    project_env: Path, taxonomy: Taxonomy
) -> None:
    answers = {LIFT: {"paraphrases": [GOOD]}}
    items = [{"text": LIFT, "domain_id": "housing_utilities"}]
    given_cache = ResponseCache(project_env / "given.sqlite")
    given_labeler = LabelerAgent(
        LabelerConfig(model="local", use_cache=True, cache_dir=project_env / "given"), taxonomy
    )
    given = AugmenterAgent(
        _llm_config(use_cache=True),
        taxonomy,
        labeler=given_labeler,
        cache=given_cache,
        model_override=_function_model(answers),
    )
    built = AugmenterAgent(
        _llm_config(use_cache=True), taxonomy, model_override=_function_model(answers)
    )

    async def run_and_close(agent: AugmenterAgent) -> AugmentationReport:
        try:
            return await agent.augment(items)
        finally:
            await agent.aclose()

    _run(run_and_close(given))
    report = _run(run_and_close(built))

    assert given_cache.is_open and given_labeler._cache is not None
    assert given_labeler._cache.is_open
    default_labeler = built.labeler
    assert isinstance(default_labeler, LabelerAgent) and default_labeler._cache is not None
    assert not default_labeler._cache.is_open
    assert built._client is not None and built._client.cache is not None
    assert not built._client.cache.is_open
    assert [s.text for s in report.samples] == [GOOD]  # the default labeler judged it
    given_cache.close()
    given_labeler._cache.close()


def test_a_rerun_is_served_from_the_cache_without_requests(
    taxonomy: Taxonomy, tmp_path: Path
) -> None:
    items = [{"text": t, "domain_id": d} for t, d in SERVER_SOURCES[:4]]
    with FakeOpenAIServer(_paraphrasing_responder) as server:
        first = AugmenterAgent(
            _server_config(server),
            taxonomy,
            labeler=KeywordLabeler(),
            cache=ResponseCache(tmp_path / "cache.sqlite"),
        )
        first_report = _run(first.augment(items))
        assert server.request_count == 4

        second = AugmenterAgent(
            _server_config(server),
            taxonomy,
            labeler=KeywordLabeler(),
            cache=ResponseCache(tmp_path / "cache.sqlite"),
        )
        second_report = _run(second.augment(items))

        assert server.request_count == 4
    assert second.usage.snapshot()["requests"] == 0
    assert second.usage.snapshot()["cached_hits"] == 4
    assert second_report.samples == first_report.samples


# -- balancing ---------------------------------------------------------------------------------


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
    config = _llm_config(model="local", target_per_domain=None, oversample=1.0)
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
    config = _llm_config(
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
    config = _llm_config(
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
    config = _llm_config(model="local", target_per_domain=2, oversample=1.0)
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
    config = _llm_config(model="local", target_per_domain=9, oversample=2.0)
    agent = AugmenterAgent(config, taxonomy, labeler=KeywordLabeler(constant="b"))

    report = _run(agent.balance(labelled))

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
    n = _source_of(messages).split()[-1]
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
    config = _llm_config(
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

    report = _run(agent.balance(labelled))

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


def test_report_frame_has_the_synthetic_sample_row_shape() -> None:
    report = AugmentationReport(
        samples=[],
        rejected=[],
        counts_before={},
        counts_after={},
        needed={},
        n_sources=0,
        n_candidates=0,
    )
    assert list(report.to_frame().columns) == SYNTHETIC_ROW_COLUMNS
    assert report.acceptance_rate == 0.0


# -- the offline path with the real local labeler ------------------------------------------------


def test_offline_augment_batch_with_the_local_labeler(taxonomy: Taxonomy) -> None:
    labeler = LabelerAgent(LabelerConfig(model="local", use_cache=False), taxonomy)
    agent = AugmenterAgent(_llm_config(model="local"), taxonomy, labeler=labeler)
    items = [
        {
            "text": "не могу внести показания счетчика воды в личном кабинете",
            "domain_id": "meter_readings",
        },
        {"text": "автобус 42 не ходит по расписанию", "domain": "transport", "row_id": "r-bus"},
    ]

    report = _run(agent.augment(items))

    assert report.n_candidates == 6
    assert len(report.samples) + len(report.rejected) == 6
    assert report.samples, "the local model keeps most meaning-preserving variants"
    sources = {items[0]["text"]: row_id(items[0]["text"]), items[1]["text"]: "r-bus"}
    domains = {items[0]["text"]: "meter_readings", items[1]["text"]: "transport"}
    for sample in report.samples:
        assert sample.model == "offline" and sample.method.startswith("offline:")
        assert sample.is_synthetic and not sample.is_hard_negative
        assert sample.row_id == row_id(sample.text)
        assert sample.source_row_id == sources[sample.source_text]
        assert sample.domain == domains[sample.source_text]
    assert report.usage["requests"] == 0


def test_items_with_a_domain_outside_the_taxonomy_are_refused(taxonomy: Taxonomy) -> None:
    agent = AugmenterAgent(_llm_config(model="local"), taxonomy, labeler=KeywordLabeler())
    with pytest.raises(ValueError, match="not in the taxonomy"):
        _run(agent.augment_batch([{"text": "передать показания", "domain_id": "house"}]))


# -- near-duplicate index ----------------------------------------------------------------------


def _jaccard(a: str, b: str) -> float:
    def grams(text: str) -> set[str]:
        padded = f" {identity_key(text)} "
        return {padded[i : i + 3] for i in range(len(padded) - 2)}

    ga, gb = grams(a), grams(b)
    return len(ga & gb) / len(ga | gb)


def test_near_duplicate_index_finds_planted_pairs_with_exact_similarity() -> None:
    rng = random.Random(0)
    alphabet = "абвгдежзийклмнопрстуфхцчшщыэюя"
    texts = [
        " ".join("".join(rng.choices(alphabet, k=rng.randint(3, 9))) for _ in range(7))
        for _ in range(2000)
    ]
    index = NearDuplicateIndex(0.8, seed=1)
    index.add_texts(texts)
    planted = [t[:-1] + "ё" for t in texts[:50]]  # one letter changed at the end
    unrelated = [t[::-1] for t in texts[:50]]
    sketches = index.sketch(planted + unrelated)
    similarities = [index.similarity(sketches, i) for i in range(len(sketches))]

    for text, planted_text, similarity in zip(texts, planted, similarities[:50], strict=False):
        assert similarity == pytest.approx(_jaccard(text, planted_text))
        assert similarity >= 0.8
    assert max(similarities[50:]) < 0.5
