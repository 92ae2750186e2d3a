"""Stable content ids (the join and cache key every stage shares) and seeded hash orders."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

import numpy as np

__all__ = ["row_id", "row_ids", "stable_rank"]


def row_id(text: str) -> str:
    """16 hex characters of BLAKE2b over the UTF-8 text: the same text, the same id, anywhere."""
    return hashlib.blake2b(text.encode("utf-8"), digest_size=8).hexdigest()


def row_ids(texts: Iterable[str]) -> list[str]:
    """`row_id` for many texts."""
    blake2b = hashlib.blake2b
    return [blake2b(t.encode("utf-8"), digest_size=8).hexdigest() for t in texts]


def stable_rank(keys: Iterable[object], seed: int) -> np.ndarray:
    """A seeded pseudo-random order that depends only on each key, never on input order."""
    blake2b = hashlib.blake2b
    return np.array(
        [
            int.from_bytes(blake2b(f"{seed}:{k}".encode(), digest_size=8).digest(), "big") >> 1
            for k in keys
        ],
        dtype=np.int64,
    )
