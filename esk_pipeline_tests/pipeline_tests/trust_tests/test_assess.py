"""The assessment end to end on hand-made labels and decisions."""

from pathlib import Path

import pandas as pd

from esk_pipeline.pipeline.splits._files import records
from esk_pipeline.pipeline.taxonomy import Taxonomy
from esk_pipeline.pipeline.trust import TrustConfig, assess_label_days, assess_labels

TAXONOMY = Taxonomy.load(Path(__file__).resolve().parents[3] / "data" / "taxonomy.yaml")


def _model(i: int, text: str, domain: str) -> dict:
    return {
        "row_id": f"m{i}",
        "text": text,
        "domain": domain,
        "confidence": 0.99,
        "label_source": "local",
        "label_origin": "local_model",
        "status": "labeled",
    }


def _decision(row_id: str, text: str, domain: str) -> dict:
    return {
        "row_id": row_id,
        "text": text,
        "domain": domain,
        "predicted_domain": domain,  # an approval: corroborated
        "confidence": 0.99,
        "reviewer_id": "alice",
        "reviewed_at": pd.Timestamp("2026-11-02", tz="UTC"),
        "review_status": "approved",
        "label_source": "reviewer:alice",
        "label_origin": "human_verified",
        "votes": 1,
        "review_reason": "audit",
        "predicted_source": "local",
    }


def _votes(decisions: list[dict]) -> pd.DataFrame:
    return pd.DataFrame(
        [(d["row_id"], "alice", d["domain"]) for d in decisions],
        columns=["item_id", "reviewer_id", "domain"],
    )


def test_without_an_audit_only_human_labels_are_trusted() -> None:
    model = pd.DataFrame(
        [_model(i, f"нет горячей воды в доме номер {i}", "housing_utilities") for i in range(5)]
    )
    decision = _decision("d0", "лифт не работает уже неделю в подъезде", "housing_utilities")
    result = assess_labels(
        model,
        pd.DataFrame([decision]),
        _votes([decision]),
        TAXONOMY,
        TrustConfig(audit_share=0.0),
        temperature=1.0,
    )
    trusted = result.labels.set_index("row_id")["trusted"]
    assert trusted["d0"] and not trusted.drop("d0").any()
    assert result.audited == 0 and result.calibration.tiers == {}


def test_propagation_is_trusted_only_as_far_as_the_audit_says_it_is_right() -> None:
    """Every text is audited here. Half of the pairs of near duplicates were decided
    differently (each right for its own conversation) while the model gave each the other's
    label, so propagation from one to the other would be wrong half of the time: the audit
    shows it, and no propagated label is trusted."""
    decisions, model = [], []
    for i in range(40):
        text = f"когда наконец придёт ответ по заявке {i}"
        a, b = ("transport", "roads") if i % 2 else ("transport", "transport")
        decisions += [_decision(f"a{i}", text + "?", a), _decision(f"b{i}", text + "!", b)]
        model += [
            {**_model(i, text + "?", b), "row_id": f"a{i}"},
            {**_model(i, text + "!", a), "row_id": f"b{i}"},
            _model(i, text, "transport"),  # a third, unreviewed near duplicate
        ]
    result = assess_labels(
        pd.DataFrame(model),
        pd.DataFrame(decisions),
        _votes(decisions),
        TAXONOMY,
        TrustConfig(audit_share=1.0, detect_label_errors=False),
        temperature=1.0,
    )
    tier = result.calibration.tiers["propagated"]
    assert (tier.audited, tier.audited_correct) == (80, 40)
    assert tier.threshold is None
    labels = result.labels.set_index("row_id")
    propagated = labels[labels["label_origin"] == "propagated"]
    assert len(propagated) == 20  # the third text of each unanimous pair
    assert not propagated["trusted"].any()
    assert (propagated["p_correct"] < 0.6).all()


class _ReadCounting(dict):
    """Label days that count how often each day is read."""

    def __init__(self, days: dict[str, pd.DataFrame]):
        super().__init__(days)
        self.reads: dict[str, int] = {}

    def __getitem__(self, key: str) -> pd.DataFrame:
        self.reads[key] = self.reads.get(key, 0) + 1
        return super().__getitem__(key)


def test_days_assessed_one_at_a_time_give_what_one_frame_gives() -> None:
    """Three days, with texts seen again on later days (the later label is the current one),
    near duplicates across days (propagated, or queued once per identity key), decisions on
    texts of one day, of two days and of none: day by day, the labels, their verdicts and the
    evidence are those of the same rows in one frame, and each day is read twice at most."""
    days: dict[str, pd.DataFrame] = {}
    for d in range(3):
        rows = []
        for i in range(d * 10, d * 10 + 25):
            text = f"жалоба номер {i % 30} на шум соседей по ночам"
            domain = "housing_utilities" if (i + d) % 3 else "transport"
            confidence = 0.3 + 0.02 * ((i * 7 + d) % 30)
            rows.append({**_model(i % 30, text, domain), "confidence": confidence})
        rows.append({**_model(100 + d, "когда придёт ответ по моей заявке", "transport")})
        days[f"2026-11-0{d + 1}"] = pd.DataFrame(rows)
    decisions = [
        _decision("m3", "жалоба номер 3 на шум соседей по ночам", "housing_utilities"),
        _decision("m12", "жалоба номер 12 на шум соседей по ночам", "transport"),
        _decision("x1", "когда придёт ответ по моей заявке?", "transport"),
        _decision("x2", "никто не отвечает на звонки вторые сутки", "housing_utilities"),
    ]
    decision_frame = pd.DataFrame(decisions)
    config = TrustConfig(audit_share=0.3, detect_label_errors=False)
    one_frame = assess_labels(
        pd.concat(list(days.values()), ignore_index=True),
        decision_frame,
        _votes(decisions),
        TAXONOMY,
        config,
        temperature=1.0,
    )
    counting = _ReadCounting(days)
    by_day = assess_label_days(
        counting, decision_frame, _votes(decisions), TAXONOMY, config, temperature=1.0
    )
    pd.testing.assert_frame_equal(by_day.labels, one_frame.labels, check_like=True)
    assert by_day.calibration == one_frame.calibration
    assert by_day.model_tiers == one_frame.model_tiers == ["local_model"]
    assert set(by_day.labels["verdict_reason"]) >= {"human", "audit", "same_text_queued"}
    assert by_day.labels["row_id"].is_unique and "m12" in set(by_day.labels["row_id"])
    assert max(counting.reads.values()) <= 2


def _llm_label(row_id: str, text: str, domain: str, tier: str) -> dict:
    return {
        **_model(0, text, domain),
        "row_id": row_id,
        "confidence": 0.9,
        "label_source": "fake-model",
        "label_origin": "llm",
        "tier": tier,
    }


def test_llm_labels_agreeing_with_the_local_model_are_calibrated_as_their_own_tier() -> None:
    """Every text is audited. The LLM's labels the local model agreed with were right on all 70
    audited texts, the others on half of 70: pooled in one LLM tier (about 75% right) nothing
    would pass 95%; apart, the agreeing tier gets a threshold and its unreviewed labels are
    trusted, the disagreeing ones wait for review."""
    domains = ["housing_utilities", "roads"]
    labels, decisions = [], []
    for i in range(140):
        tier = "llm_agrees_with_local" if i < 70 else "llm"
        text = f"обращение {i} жителя"  # short: no propagation between texts
        given = domains[i % 2]
        wrong = tier == "llm" and i % 2 == 0
        truth = domains[(i + wrong) % 2]
        labels.append(_llm_label(f"d{i}", text, given, tier))
        decisions.append(
            {
                **_decision(f"d{i}", text, truth),
                "predicted_domain": given,
                "predicted_source": "fake-model",
                "confidence": 0.9,
            }
        )
    fresh = [("n0", "llm_agrees_with_local"), ("n1", "llm")]
    labels += [_llm_label(r, f"новое обращение {r}", "roads", tier) for r, tier in fresh]
    result = assess_labels(
        pd.DataFrame(labels),
        pd.DataFrame(decisions),
        _votes(decisions),
        TAXONOMY,
        TrustConfig(audit_share=1.0),
        temperature=1.0,
    )
    tiers = result.calibration.tiers
    agreeing, alone = tiers["llm_agrees_with_local"], tiers["llm"]
    assert (agreeing.audited, alone.audited) == (70, 70)
    assert agreeing.threshold is not None and alone.threshold is None
    assert agreeing.accuracy > alone.accuracy
    rows = result.labels.set_index("row_id")
    assert rows.loc["n0", "tier"] == "llm_agrees_with_local" and rows.loc["n0", "trusted"]
    assert rows.loc["n1", "tier"] == "llm" and not rows.loc["n1", "trusted"]
    # Still a claim: trusted by its tier's audit, never a human label.
    assert rows.loc["n0", "label_origin"] == "llm"
    assert rows.loc["n0", "verdict_reason"] == "audit_accepted"
    # The version's accuracy estimate counts the record in its own tier's stratum (the written
    # records keep `tier` in memory for it), not in the LLM tier that has no threshold. Its
    # evidence: the 70 audited labels and n0, in the audit and undecided, counted as wrong.
    trusted = result.labels[result.labels["trusted"]].assign(is_synthetic=False)
    estimate = result.estimate_accuracy(records(trusted.assign(source_row_id=None, group_id=None)))
    machine = [s for s in estimate.strata if s.name != "human"]
    assert [(s.name, s.records, s.evidence) for s in machine] == [("llm_agrees_with_local", 1, 71)]
