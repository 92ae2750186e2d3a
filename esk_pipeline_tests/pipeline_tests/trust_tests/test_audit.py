"""The audit stream is a uniform, stable sample: `trust._audit`."""

import numpy as np

from esk_pipeline.pipeline.ids import row_ids
from esk_pipeline.pipeline.trust._audit import audit_mask


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
