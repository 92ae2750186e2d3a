"""The one trust verdict: `trust.verdict.assign_verdicts`."""

import pandas as pd
import pytest

from esk_pipeline.pipeline.label_contract import TRUSTED_LABEL_ROW as ROW
from esk_pipeline.pipeline.label_contract import LabelContractError, Verdict, validate_frame
from esk_pipeline.pipeline.trust._audit import audit_mask
from esk_pipeline.pipeline.trust.verdict import (
    DOUBTED_P_CORRECT,
    assign_verdicts,
    in_review_queue,
)


def _row(row_id: str, text: str, domain: str | None, origin: str = "local_model", **extra):
    return {
        "row_id": row_id,
        "text": text,
        "domain": domain,
        "confidence": 0.6,
        "label_source": "local",
        "label_origin": origin,
        "status": "labeled",
        "p_correct": 0.5,
        **extra,
    }


def _labels() -> pd.DataFrame:
    return pd.DataFrame(
        [
            _row("a", "вывоз мусора не приехал", "waste", p_correct=0.97),
            _row("b", "свет не горит в подъезде", "housing", p_correct=0.90),
            _row("c", "когда ответ будет готов", "roads", p_correct=None),
            _row("d", "x", None, status="failed"),
            _row("e", "y", "roads", status="deferred"),
            _row("f", "подача показаний счётчика", "meters", "human_verified", p_correct=0.99),
            _row("g", "подача показаний счётчика", "meters", "human_verified", p_correct=0.9),
            # Two texts with the same identity key, both unsure: one decision settles both.
            _row("h", "Как записаться к врачу?", "health", p_correct=0.3),
            _row("i", "как записаться к врачу", "health", p_correct=0.2),
        ]
    )


def test_every_text_gets_exactly_one_verdict_with_its_reason() -> None:
    judged = assign_verdicts(_labels(), None, audit_share=0.0, precision_target=0.95, doubted={"g"})
    verdicts = judged.set_index("row_id")[["verdict", "verdict_reason"]].apply(tuple, axis=1)
    assert verdicts.to_dict() == {
        "a": ("trusted", "accepted"),
        "b": ("queued", "needs_review"),
        "c": ("queued", "needs_review"),
        "d": ("queued", "labeler_failed"),
        "e": ("excluded", "deferred"),
        "f": ("trusted", "human"),
        "g": ("trusted", "doubted_human"),
        "h": ("excluded", "same_text_queued"),
        "i": ("queued", "needs_review"),  # the less sure of the two waits for the decision
    }
    assert judged["trusted"].tolist() == (judged["verdict"] == Verdict.TRUSTED).tolist()
    assert judged.set_index("row_id").loc["g", "p_correct"] == DOUBTED_P_CORRECT


def test_the_first_seen_of_a_key_stays_queued_however_sure_the_others_are() -> None:
    at = pd.Timestamp("2026-11-01 09:00", tz="UTC")
    labels = pd.DataFrame(
        [
            _row("h", "Как записаться к врачу?", "health", p_correct=0.3, ts=at),
            _row(
                "i", "как записаться к врачу", "health", p_correct=0.2, ts=at + pd.Timedelta("1D")
            ),
            _row("j", "как записаться к врачу!", "health", p_correct=0.1, ts=None),
        ]
    )
    judged = assign_verdicts(labels, None, audit_share=0.0, precision_target=0.95)
    assert judged.set_index("row_id")["verdict_reason"].to_dict() == {
        "h": "needs_review",  # the earliest; a text without a time comes last
        "i": "same_text_queued",
        "j": "same_text_queued",
    }


def test_without_a_calibration_or_a_target_no_machine_label_is_trusted() -> None:
    judged = assign_verdicts(_labels(), None, audit_share=0.0)
    machine = judged[judged["label_origin"] == "local_model"]
    assert not machine["trusted"].any()


def test_audit_texts_wait_for_review_whatever_their_confidence() -> None:
    # Sure labels in the audit are trusted meanwhile, unsure ones queued; both wait for review.
    labels = pd.DataFrame(
        [
            _row(f"r{i}", f"текст номер {i}", "roads", p_correct=0.99 if i % 2 else 0.5)
            for i in range(400)
        ]
    )
    judged = assign_verdicts(labels, None, audit_share=0.2, precision_target=0.95)
    audited = audit_mask(labels["row_id"], 0.2)
    sure = (labels["p_correct"] == 0.99).to_numpy()
    assert (judged.loc[audited & sure, "verdict_reason"] == "audit_accepted").all()
    assert judged.loc[audited & sure, "trusted"].all()
    assert (judged.loc[audited & ~sure, "verdict_reason"] == "audit").all()
    assert in_review_queue(judged)[audited].all()
    assert not in_review_queue(judged)[~audited & sure].any()
    assert (judged.loc[~audited & sure, "verdict"] == "trusted").all()
    assert 40 < audited.sum() < 120


def test_the_contract_names_the_column_a_frame_breaks() -> None:
    judged = assign_verdicts(_labels(), None, audit_share=0.0).assign(
        tier="local_model", top_candidates=None, error=None, review_reason=None
    )
    validate_frame(judged, ROW, "trusted_labels")
    with pytest.raises(LabelContractError, match="'verdict' is missing"):
        validate_frame(judged.drop(columns=["verdict"]), ROW, "trusted_labels")
    with pytest.raises(LabelContractError, match="'label_origin' has unknown value"):
        validate_frame(judged.assign(label_origin="oracle"), ROW, "trusted_labels")


def test_a_decision_on_an_audit_text_is_audited_whatever_reason_the_store_gives_now() -> None:
    """A review store from before `waiting_for` overwrote an item's reason when a correction
    waited for a second opinion or a decision was doubted; the audit sample is the row id's
    draw, so the splits' eval (audited decisions only) keeps the corrected audit texts, not
    just the approved."""
    share = 0.5
    rows = [
        _row(f"r{i}", f"текст {i}", "waste", "human_verified", review_reason=reason)
        for i, reason in enumerate(["second_opinion", "needs_review", "audit"] * 10)
    ]
    frame = pd.DataFrame(rows)
    drawn = audit_mask(frame["row_id"], share)
    judged = assign_verdicts(frame, None, audit_share=share, precision_target=0.95)
    audited = judged.set_index("row_id")["review_reason"] == "audit"
    expected = pd.Series(drawn | (frame["review_reason"] == "audit").to_numpy())
    assert audited.to_list() == expected.to_list()
    assert (drawn & (frame["review_reason"] != "audit").to_numpy()).any()  # the case at issue
