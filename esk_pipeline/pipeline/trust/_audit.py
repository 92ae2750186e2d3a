"""The audit stream: a uniform random sample of labelled texts that people review.

Low-confidence items are chosen *because* the model is unsure, so their review outcomes say
little about the labels nobody looks at. Audit items are drawn uniformly from every labelled
text, whatever its confidence: their outcomes are unbiased estimates of each tier's precision
and of a version's accuracy. Membership is a pure function of the row id and the share (a
seeded hash), so it is stable across runs and needs no stored state.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

import numpy as np

_SALT = b"esk-audit-v1:"


def audit_mask(row_ids: Iterable[str], share: float) -> np.ndarray:
    """True for the row ids in the audit sample (each with probability `share`)."""
    row_ids = list(row_ids)
    if share <= 0:
        return np.zeros(len(row_ids), dtype=bool)
    limit = share * 2**64
    return np.array(
        [
            int.from_bytes(hashlib.blake2b(_SALT + r.encode(), digest_size=8).digest(), "big")
            < limit
            for r in row_ids
        ],
        dtype=bool,
    )
