"""Label origin and precedence: `pipeline.labels`."""

import pandas as pd

from esk_pipeline.pipeline.labels import (
    LabelOrigin,
    resolve_labels,
    strongest_per_row,
)


def _model(row_id: str, text: str, domain: str, confidence: float = 0.6, **extra) -> dict:
    return {
        "row_id": row_id,
        "text": text,
        "domain": domain,
        "confidence": confidence,
        "label_source": "local",
        "label_origin": LabelOrigin.LOCAL_MODEL.value,
        "status": "labeled",
        "p_correct": 0.5,
        **extra,
    }


def _decision(row_id: str, text: str, domain: str, **extra) -> dict:
    """A decision that approved the model's label (so it is corroborated)."""
    return {
        "row_id": row_id,
        "text": text,
        "domain": domain,
        "label_source": "reviewer:alice",
        "label_origin": LabelOrigin.HUMAN_VERIFIED.value,
        "reviewed_at": pd.Timestamp("2026-11-02", tz="UTC"),
        "p_correct": 0.99,
        "predicted_domain": domain,
        "votes": 1,
        **extra,
    }


def test_a_decision_beats_the_model_and_the_first_day_that_labelled_a_text_wins() -> None:
    model = pd.DataFrame(
        [
            _model("a", "сломался лифт в подъезде", "roads"),
            _model("b", "нет воды", "roads"),
            _model("c", "нет света", None, status="failed"),
            _model("b", "нет воды", "housing"),  # a later day's label of the same text
            _model("c", "нет света", "housing"),  # a later day labels what failed before
            _model("c", "нет света", "roads"),
        ]
    )
    decisions = pd.DataFrame([_decision("a", "сломался лифт в подъезде", "housing")])
    resolved = resolve_labels(model, decisions).set_index("row_id")
    assert resolved.loc["a", "domain"] == "housing"
    assert resolved.loc["a", "label_origin"] == "human_verified"
    assert resolved.loc["b", "domain"] == "roads"
    assert resolved.loc["c", "domain"] == "housing"
    assert len(resolved) == 3


def test_a_decision_settles_agreeing_near_duplicates_and_no_others() -> None:
    model = pd.DataFrame(
        [
            _model("a", "Сломался лифт в подъезде!", "roads"),
            _model(
                "b", "сломался лифт в подъезде", "housing"
            ),  # same key, agrees with the decision
            _model(
                "c", "СЛОМАЛСЯ ЛИФТ В ПОДЪЕЗДЕ?", "roads"
            ),  # same key, disagrees: keeps its label
            _model("d", "сломался лифт во втором подъезде", "housing"),  # another key
        ]
    )
    decisions = pd.DataFrame([_decision("a", "Сломался лифт в подъезде!", "housing")])
    resolved = resolve_labels(model, decisions).set_index("row_id")
    assert resolved.loc["b", "label_origin"] == "propagated"
    assert resolved.loc["b", "propagated_from"] == "a"
    assert resolved.loc["b", "label_source"] == "local"  # still the model that made it
    assert resolved.loc["b", "p_correct"] == 0.99
    assert (resolved.loc["c", "label_origin"], resolved.loc["c", "domain"]) == (
        "local_model",
        "roads",
    )
    assert resolved.loc["d", "label_origin"] == "local_model"


def test_undoing_the_decision_undoes_its_propagation() -> None:
    model = pd.DataFrame(
        [
            _model("a", "Сломался лифт в подъезде!", "housing"),
            _model("b", "сломался лифт в подъезде", "housing"),
        ]
    )
    with_decision = resolve_labels(
        model, pd.DataFrame([_decision("a", "Сломался лифт в подъезде!", "housing")])
    )
    assert set(with_decision["label_origin"]) == {"human_verified", "propagated"}
    undone = resolve_labels(model, pd.DataFrame(columns=list(_decision("x", "x", "x"))))
    assert set(undone["label_origin"]) == {"local_model"}


def test_short_replies_and_lone_corrections_propagate_nothing() -> None:
    model = pd.DataFrame(
        [
            _model("b", "сколько ждать ответа", "transport"),
            _model("d", "в подъезде опять не горит свет", "housing"),
        ]
    )
    decisions = pd.DataFrame(
        [
            _decision("a", "Сколько ждать ответа?", "transport"),  # three words: too short
            # One reviewer against the model: not corroborated.
            _decision("c", "В подъезде опять не горит свет!", "housing", predicted_domain="roads"),
        ]
    )
    resolved = resolve_labels(model, decisions).set_index("row_id")
    assert resolved.loc[["b", "d"], "label_origin"].tolist() == ["local_model", "local_model"]
    confirmed = decisions.assign(votes=[1, 2])  # a second reviewer agreed on "c"
    again = resolve_labels(model, confirmed).set_index("row_id")
    assert again.loc["d", "label_origin"] == "propagated"


def test_disagreeing_decisions_on_one_key_propagate_nothing() -> None:
    model = pd.DataFrame([_model("c", "когда же придёт ответ на обращение", "other")])
    decisions = pd.DataFrame(
        [
            _decision("a", "Когда же придёт ответ на обращение?", "other"),
            _decision("b", "когда же придёт ответ на обращение!", "transport"),
        ]
    )
    resolved = resolve_labels(model, decisions).set_index("row_id")
    assert resolved.loc["c", "label_origin"] == "local_model"


def test_strongest_per_row_prefers_usable_then_origin_then_latest_review() -> None:
    rows = pd.DataFrame(
        [
            _model("a", "t", None, status="failed"),
            _model("a", "t", "roads", label_origin="llm"),
            _decision("a", "t", "housing", reviewed_at=pd.Timestamp("2026-11-01", tz="UTC")),
            _decision("a", "t", "waste", reviewed_at=pd.Timestamp("2026-11-03", tz="UTC")),
        ]
    )
    winners, lost = strongest_per_row(rows)
    assert winners["domain"].tolist() == ["waste"] and lost == 3
