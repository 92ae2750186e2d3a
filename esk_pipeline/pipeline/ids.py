"""Stable content ids: the join and cache key every stage shares."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable


def row_id(text: str) -> str:
    """16 hex characters of BLAKE2b over the UTF-8 text: the same text, the same id, anywhere."""
    return hashlib.blake2b(text.encode("utf-8"), digest_size=8).hexdigest()


def row_ids(texts: Iterable[str]) -> list[str]:
    """`row_id` for many texts."""
    blake2b = hashlib.blake2b
    return [blake2b(t.encode("utf-8"), digest_size=8).hexdigest() for t in texts]
