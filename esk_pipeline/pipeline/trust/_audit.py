"""The audit stream: a uniform random sample of labelled texts that people review.

Low-confidence items are chosen *because* the model is unsure, so their review outcomes say
little about the labels nobody looks at. Audit items are drawn uniformly from every labelled
text, whatever its confidence: their outcomes are unbiased estimates of each tier's precision
and of a version's accuracy. Membership is a pure function of the row id and the share (a
seeded hash), so it is stable across runs and needs no stored state.

People work the audit in two ways. While no tier accepts anything, highest confidence
first: a uniform audit accepts nothing until it is large (a threshold at 95% needs some 60
audited labels above it, all but one or two right), while its top gives a threshold after a
few dozen decisions. Then by row id hash (`parts.row_hashes`), which grows a complete uniform
part of it. The calibration stays honest either way (`calibration.fit_calibration`): on the
whole audit it counts an undecided label as wrong wherever a threshold would accept it, and on
the audit texts below the smallest undecided row hash (every one decided: a uniform sample
whatever order decided them) it needs no such guess.
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
