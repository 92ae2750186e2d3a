"""The audit stream is a uniform, stable sample: `trust._audit`."""

import numpy as np
import pandas as pd

from esk_pipeline.pipeline.ids import row_ids
from esk_pipeline.pipeline.parts import MemoryPartStore, PartRecord, row_hashes
from esk_pipeline.pipeline.trust._audit import audit_mask
from esk_pipeline.pipeline.trust._days import DAY_SUMMARY, index_day, known_day, open_audit_labels


def test_the_audit_share_is_met_and_membership_is_stable() -> None:
    ids = row_ids(f"обращение номер {i}" for i in range(20_000))
    mask = audit_mask(ids, 0.05)
    assert 0.045 < mask.mean() < 0.055
    assert (audit_mask(list(reversed(ids)), 0.05)[::-1] == mask).all()  # order-free
    assert audit_mask(ids, 0.10)[mask].all()  # a larger share keeps every member


def test_membership_ignores_what_the_model_thinks() -> None:
    """Uniform means independent of confidence: audited texts have the population's mix."""
    rng = np.random.default_rng(0)
    ids = row_ids(f"текст {i}" for i in range(20_000))
    confidence = rng.random(len(ids))
    mask = audit_mask(ids, 0.1)
    assert abs(confidence[mask].mean() - confidence.mean()) < 0.02
    assert not audit_mask(ids, 0.0).any()


def test_a_days_index_keeps_its_audit_labels_and_is_reused_for_the_same_share_only() -> None:
    ids = row_ids(f"обращение номер {i}" for i in range(400))
    frame = pd.DataFrame(
        {
            "row_id": ids,
            "domain": ["roads", "housing_utilities"] * 200,
            "confidence": np.linspace(0.1, 0.99, 400),
            "status": ["labeled"] * 399 + ["failed"],
            "label_origin": "local_model",
        }
    )
    members = audit_mask(ids, 0.2) & (frame["status"] == "labeled").to_numpy()
    day = index_day(frame, "f1", 0.2)
    assert len(day.audit_labels) == members.sum() > 50
    assert (day.audit_labels["confidence"].to_numpy() == frame.loc[members, "confidence"]).all()
    store, last = MemoryPartStore(), PartRecord("a", inputs={"day": "f1"})
    store.write(f"a.{DAY_SUMMARY}", day.summary())
    kept = known_day(store, last, "f1", 0.2)
    pd.testing.assert_frame_equal(kept.audit_labels, day.audit_labels, check_dtype=False)
    assert (kept.rows == day.rows).all() and (kept.labelled == day.labelled).all()
    assert kept.tiers == day.tiers == {"local_model"}
    assert known_day(store, last, "f1", 0.3) is None  # another audit: index the day again
    # A text decided leaves the open audit; one seen again on a later day counts once.
    decided = np.asarray(ids, dtype=object)[members][:10]
    again = index_day(frame.iloc[:100], "f2", 0.2)
    open_labels = open_audit_labels({"d1": day, "d2": again}, row_hashes(pd.Series(decided)))
    assert len(open_labels) == members.sum() - 10
    assert not np.isin(open_labels["row"], row_hashes(pd.Series(decided))).any()
