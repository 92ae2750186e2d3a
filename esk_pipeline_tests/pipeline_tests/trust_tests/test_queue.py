"""The review plan: expected gain, one text per identity key, the interleaved audit."""

import numpy as np
import pandas as pd

from esk_pipeline.pipeline.ids import row_id
from esk_pipeline.pipeline.options import TrustOptions
from esk_pipeline.pipeline.review.planning import AuditShare, audit_hand_out_share
from esk_pipeline.pipeline.review.planning import plan_review as plan_verdicts
from esk_pipeline.pipeline.text import identity_key_series
from esk_pipeline.pipeline.trust._audit import audit_mask
from esk_pipeline.pipeline.trust.calibration import Calibration, TierCalibration
from esk_pipeline.pipeline.trust.verdict import assign_verdicts


def plan_review(
    labels: pd.DataFrame,
    *,
    precision_target: float,
    audit_share: float,
    audit_review_share: float | AuditShare,
) -> pd.DataFrame:
    """The queue planned from the one verdict, as the graph does (no calibration: a machine
    label is accepted where its `p_correct` reaches the target)."""
    judged = assign_verdicts(
        labels, None, audit_share=audit_share, precision_target=precision_target
    )
    return plan_verdicts(
        judged, precision_target=precision_target, audit_review_share=audit_review_share
    ).rows


def _labels(n: int = 4000) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    texts = [f"обращение про тему номер {i}" for i in range(n)]
    domains = np.where(rng.random(n) < 0.05, "rare", "common")
    frame = pd.DataFrame(
        {
            "row_id": [row_id(t) for t in texts],
            "text": texts,
            "domain": domains,
            "confidence": rng.random(n),
            "p_correct": np.nan,
            "status": "labeled",
            "label_origin": "local_model",
            "top_candidates": "[]",
        }
    )
    return frame.assign(identity_key=identity_key_series(frame["text"]))


def _order(plan: pd.DataFrame) -> pd.DataFrame:
    return plan.sort_values("review_gain", ascending=False, kind="stable").reset_index(drop=True)


def test_every_untrusted_text_is_planned_once_with_the_audit_interleaved() -> None:
    labels = _labels()
    plan = plan_review(labels, precision_target=0.95, audit_share=0.05, audit_review_share=0.2)
    assert plan["row_id"].is_unique and len(plan) == len(labels)
    audit = plan["review_reason"] == "audit"
    assert set(plan.loc[audit, "row_id"]) == set(
        labels.loc[audit_mask(labels["row_id"], 0.05), "row_id"]
    )
    first = _order(plan).head(100)
    assert 15 <= (first["review_reason"] == "audit").sum() <= 25


def test_audit_texts_trusted_meanwhile_are_still_planned_for_review() -> None:
    labels = _labels(1000).assign(p_correct=0.99)
    plan = plan_review(labels, precision_target=0.95, audit_share=0.05, audit_review_share=0.2)
    assert set(plan["row_id"]) == set(labels.loc[audit_mask(labels["row_id"], 0.05), "row_id"])
    assert (plan["review_reason"] == "audit").all()


def test_unsure_and_rare_texts_come_first() -> None:
    plan = _order(
        plan_review(_labels(), precision_target=0.95, audit_share=0.0, audit_review_share=0.2)
    )
    head, tail = plan.head(300), plan.tail(300)
    assert head["confidence"].mean() < tail["confidence"].mean()
    assert (head["domain"] == "rare").mean() > (tail["domain"] == "rare").mean()


def test_a_key_is_planned_once_and_trusted_or_human_texts_not_at_all() -> None:
    labels = _labels(50)
    twin = labels.iloc[[0]].assign(row_id="twin", text=labels.loc[0, "text"].upper() + "!")
    labels = pd.concat([labels, twin], ignore_index=True)
    labels.loc[1, ["label_origin", "p_correct"]] = ["human_verified", 0.99]
    labels.loc[2, "p_correct"] = 0.99  # trusted by the policy
    plan = plan_review(labels, precision_target=0.95, audit_share=0.0, audit_review_share=0.2)
    assert len(plan) == len(labels) - 3
    assert plan["identity_key"].is_unique
    assert not {labels.loc[1, "row_id"], labels.loc[2, "row_id"]} & set(plan["row_id"])


def _calibration(accepted: int, right: int) -> Calibration:
    local = TierCalibration(
        tier="local_model",
        audited=2 * accepted,
        audited_correct=2 * right,
        threshold=0.9 if accepted else None,
        accepted_audited=accepted,
        accepted_correct=right,
    )
    thin = TierCalibration(tier="propagated", audited=30, audited_correct=30, threshold=1.0)
    return Calibration(precision_target=0.95, tiers={"local_model": local, "propagated": thin})


def test_the_audit_gets_most_hand_outs_until_the_accepted_precision_is_known() -> None:
    def share(calibration: Calibration) -> AuditShare:
        return audit_hand_out_share(calibration, prioritised=0.7, settled=0.15)

    # Nothing audited yet: no label has a measured p_correct to order the rest by.
    assert share(Calibration(precision_target=0.95)) == AuditShare(1.0, None, 1.0)
    assert share(_calibration(0, 0)) == AuditShare(0.7, None, 0.15)  # no threshold: no end
    # 98% right, but +- 3 points: about 75 more accepted audited labels, at one in two audited
    assert 100 <= share(_calibration(60, 59)).items <= 200
    assert share(_calibration(400, 392)).items == 0  # 98% right, +- 1.4 points


def test_the_audit_share_drops_after_the_items_the_calibration_still_needs() -> None:
    labels = _labels()
    plan = _order(
        plan_review(
            labels,
            precision_target=0.95,
            audit_share=0.05,
            audit_review_share=AuditShare(first=0.5, items=20, then=0.1),
        )
    )
    audit = (plan["review_reason"] == "audit").to_numpy()
    assert audit[:40].sum() == 20  # one in two while the calibration needs them
    assert 8 <= audit[40:140].sum() <= 12  # then one in ten


def test_by_default_the_audit_gets_every_hand_out_until_a_tier_accepts() -> None:
    """Until a tier accepts, no other decision is multiplied by accepted labels, and an audit
    decision trains the model on a uniform sample while it measures it."""
    labels = _labels()
    share = audit_hand_out_share(
        _calibration(0, 0), prioritised=TrustOptions().audit_review_share, settled=0.1
    )
    plan = _order(
        plan_review(labels, precision_target=0.95, audit_share=0.05, audit_review_share=share)
    )
    audit = (plan["review_reason"] == "audit").to_numpy()
    assert 100 < audit.sum() < len(plan)
    assert audit[: audit.sum()].all()


def test_before_any_audit_decision_every_audit_item_comes_first() -> None:
    labels = _labels()
    share = audit_hand_out_share(Calibration(precision_target=0.95), prioritised=0.7, settled=0.1)
    plan = _order(
        plan_review(labels, precision_target=0.95, audit_share=0.05, audit_review_share=share)
    )
    audit = (plan["review_reason"] == "audit").to_numpy()
    assert 100 < audit.sum() < len(plan)
    assert audit[: audit.sum()].all()  # every audit item before the first other text
