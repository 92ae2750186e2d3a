"""Quality control: every rejection path, duplicates of real texts, and candidates the labeler
could not judge."""

from __future__ import annotations

import itertools

import pandas as pd
import pytest

from esk_pipeline.pipeline.augment import AugmenterAgent, NearDuplicateIndex
from esk_pipeline.pipeline.taxonomy import Taxonomy
from esk_pipeline_tests.pipeline_tests.augment_tests.conftest import (
    GOOD,
    LIFT,
    KeywordLabeler,
    Label,
    function_model,
    llm_config,
    run,
)


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
        llm_config(variants_per_sample=8, include_hard_negatives=True, hard_negatives_per_sample=4),
        taxonomy,
        labeler=labeler,
        model_override=function_model(answers),
    )

    report = run(agent.augment([{"text": LIFT, "domain_id": "housing_utilities"}]))

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
        llm_config(),
        taxonomy,
        labeler=KeywordLabeler(),
        model_override=function_model(answers),
    )
    report = run(
        agent.augment([{"text": LIFT, "domain_id": "housing_utilities"}], real_texts=[real])
    )
    assert [s.text for s in report.samples] == [GOOD]
    assert report.rejections == {"duplicate": 1}


class UnavailableLabeler:
    """A labeler double whose every item came back unlabelled with `status`."""

    def __init__(self, status: str) -> None:
        self.status = status

    async def classify_dataframe(self, df: pd.DataFrame) -> list[Label]:
        return [Label(None, self.status, "endpoint down") for _ in range(len(df))]


@pytest.mark.parametrize(
    ("status", "reason"), [("failed", "judge_failed"), ("deferred", "deferred")]
)
def test_a_candidate_the_labeler_could_not_judge_is_not_a_label_mismatch(
    taxonomy: Taxonomy, status: str, reason: str
) -> None:
    answers = {LIFT: {"paraphrases": [GOOD, "лифт в нашем подъезде стоит, ходим пешком"]}}
    agent = AugmenterAgent(
        llm_config(),
        taxonomy,
        labeler=UnavailableLabeler(status),
        model_override=function_model(answers),
    )
    report = run(agent.augment([{"text": LIFT, "domain_id": "housing_utilities"}]))
    assert report.samples == []
    assert report.rejections == {reason: 2}
    assert {(r.detail, r.text is not None) for r in report.rejected} == {("endpoint down", True)}


def test_the_configured_text_length_bounds_reject_what_the_etl_would_drop(
    taxonomy: Taxonomy,
) -> None:
    short = "лифт стоит, ходим пешком"  # 24 characters: within the source's own bounds
    answers = {LIFT: {"paraphrases": [short, GOOD]}}

    def report_with(**bounds: int) -> dict[str, str]:
        agent = AugmenterAgent(
            llm_config(**bounds),
            taxonomy,
            labeler=KeywordLabeler(),
            model_override=function_model(answers),
        )
        report = run(agent.augment([{"text": LIFT, "domain_id": "housing_utilities"}]))
        outcomes = {s.text: "accepted" for s in report.samples}
        return outcomes | {r.text: r.reason for r in report.rejected if r.text is not None}

    assert report_with() == {short: "accepted", GOOD: "accepted"}
    assert report_with(min_text_length=30) == {short: "too_short", GOOD: "accepted"}
    assert report_with(max_text_length=40) == {short: "accepted", GOOD: "too_long"}


def test_real_texts_are_read_once_and_never_indexed(taxonomy: Taxonomy, monkeypatch) -> None:
    """Real texts (every trusted text of the history) may be a one-shot stream: each is read
    once and compared with the candidates; only the candidates are indexed, so the memory of
    the check does not grow with the history."""
    near_real = "у нас в доме сломался лифт, все ходят по лестницее"  # a near copy of GOOD
    duplicate = "В доме сломался лифт ходим по лестнице"
    answers = {LIFT: {"paraphrases": [GOOD, duplicate.lower(), "лифт в подъезде стоит, ходим"]}}
    indexed = []
    add = NearDuplicateIndex.add
    monkeypatch.setattr(
        NearDuplicateIndex, "add", lambda self, s, i: indexed.append(i) or add(self, s, i)
    )
    agent = AugmenterAgent(
        llm_config(), taxonomy, labeler=KeywordLabeler(), model_override=function_model(answers)
    )
    others = (f"обращение номер {n} про отопление в квартире" for n in range(3000))
    real = itertools.chain(others, [near_real, duplicate])
    report = run(agent.augment([{"text": LIFT, "domain_id": "housing_utilities"}], real_texts=real))
    assert report.rejections["duplicate"] == 1 and report.rejections["near_duplicate"] == 1
    assert GOOD not in [s.text for s in report.samples]
    assert len(indexed) <= 2 * report.n_candidates
