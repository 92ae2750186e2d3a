"""Deduplication of the cleaned texts: the first row of each group is kept, then `max_rows`.

Exact duplicates are rows whose cleaned texts are equal. Near duplicates share an
`identity_key` (`pipeline/text.py`: case, ё/е, punctuation and spacing aside), the same key
the dataset writer groups by, so a duplicate the ETL let through can never straddle train and
eval. A duplicate's rejection detail is the row id of the row that was kept in its place.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from esk_pipeline.pipeline.etl.models import REASON_CODES, ETLConfig
from esk_pipeline.pipeline.ids import row_ids
from esk_pipeline.pipeline.text import identity_keys


@dataclass
class SeenKeys:
    """What a file's earlier batches kept, for deduplicating the next batch against them.

    Each kept row's identity key as a 64-bit hash (sorted) with the kept row's id as an
    integer: 16 bytes a kept row, whatever the texts' length. Two different keys sharing a
    hash (about 3e-8 for a million keys) would make the later row a near duplicate.
    """

    hashes: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.uint64))
    row_ids: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.uint64))
    kept: int = 0  # rows kept so far, for max_rows

    def find(self, hashes: np.ndarray) -> np.ndarray:
        """Where each hash is (-1: not kept before)."""
        at = np.searchsorted(self.hashes, hashes)
        found = at < len(self.hashes)
        found[found] = self.hashes[at[found]] == hashes[found]
        return np.where(found, at, -1)

    def add(self, hashes: np.ndarray, row_ids: np.ndarray) -> None:
        merged = np.concatenate([self.hashes, hashes])
        order = np.argsort(merged, kind="stable")  # two sorted runs: a linear merge
        self.hashes = merged[order]
        self.row_ids = np.concatenate([self.row_ids, row_ids])[order]


def deduplicate(
    text: pa.ChunkedArray,
    reasons: np.ndarray,
    detail: np.ndarray,
    config: ETLConfig,
    seen: SeenKeys | None = None,
) -> tuple[np.ndarray, list[str], list[str]]:
    """Keep the first row of each (near-)duplicate group, then apply max_rows.

    `reasons` holds each row's rejection code so far (0: kept). Updates `reasons` and `detail`
    in place (a duplicate's detail is the kept row's id) and returns the kept input positions,
    their texts and their row ids. With `seen`, the rows are a later batch of one file: a row
    whose key an earlier batch kept is its duplicate, and `seen` gets this batch's kept rows.
    """
    track = seen is not None  # only a file read in batches needs its keys hashed
    seen = seen if seen is not None else SeenKeys()
    candidates = np.flatnonzero(reasons == 0)
    positions = np.arange(len(candidates))
    earlier = np.full(len(candidates), -1, dtype=np.int64)  # the row kept before, in `seen`
    key_hashes = None
    if config.deduplicate and len(candidates):
        codes, keys = _group_codes(text, reasons == 0, config.near_duplicates)
        first_of_code = np.full(len(keys), len(candidates), dtype=np.int64)
        np.minimum.at(first_of_code, codes, positions)
        representative = first_of_code[codes]
        if track:
            key_hashes = pd.util.hash_array(keys.to_numpy(zero_copy_only=False))
            earlier = seen.find(key_hashes)[codes]
    else:
        representative = positions
    from_earlier = earlier >= 0
    is_first = (representative == positions) & ~from_earlier
    within_cap = np.ones(len(candidates), dtype=bool)
    if config.max_rows is not None:
        # A row over the cap, or a duplicate of one, is rejected as over_max_rows, so a
        # duplicate's detail always names a row that was kept.
        rank = seen.kept + np.cumsum(is_first) - 1
        within_cap = from_earlier | (rank[representative] < config.max_rows)
        reasons[candidates[~within_cap]] = REASON_CODES["over_max_rows"]
        detail[candidates[~within_cap]] = f"max_rows={config.max_rows} reached"
    kept_positions = np.flatnonzero(is_first & within_cap)
    kept_mask = np.zeros(len(reasons), dtype=bool)
    kept_mask[candidates[kept_positions]] = True
    kept_texts = list(
        itertools.chain.from_iterable(c.to_pylist() for c in _filtered_chunks(text, kept_mask))
    )
    kept_ids = row_ids(kept_texts)

    duplicates = np.flatnonzero(~is_first & within_cap & ~from_earlier)
    their_first = representative[duplicates]
    same_text = pc.equal(
        text.take(pa.array(candidates[duplicates])),
        text.take(pa.array(candidates[their_first])),
    ).to_numpy(zero_copy_only=False)
    reasons[candidates[duplicates]] = np.where(
        same_text, REASON_CODES["duplicate"], REASON_CODES["near_duplicate"]
    )
    id_at = np.full(len(candidates), None, dtype=object)
    id_at[kept_positions] = kept_ids
    detail[candidates[duplicates]] = id_at[their_first]
    _mark_earlier_duplicates(text, candidates, earlier, seen, reasons, detail)
    seen.kept += len(kept_positions)
    if key_hashes is not None:
        seen.add(key_hashes[codes[kept_positions]], _id_numbers(kept_ids))
    return candidates[kept_positions], kept_texts, kept_ids


def _mark_earlier_duplicates(
    text: pa.ChunkedArray,
    candidates: np.ndarray,
    earlier: np.ndarray,
    seen: SeenKeys,
    reasons: np.ndarray,
    detail: np.ndarray,
) -> None:
    """Reject the rows whose key an earlier batch kept: a duplicate when the text is the kept
    row's (the same row id), else a near duplicate; the detail is the kept row's id."""
    at = np.flatnonzero(earlier >= 0)
    if not len(at):
        return
    kept_ids = seen.row_ids[earlier[at]]
    own_ids = _id_numbers(row_ids(text.take(pa.array(candidates[at])).to_pylist()))
    reasons[candidates[at]] = np.where(
        own_ids == kept_ids, REASON_CODES["duplicate"], REASON_CODES["near_duplicate"]
    )
    detail[candidates[at]] = [f"{number:016x}" for number in kept_ids]


def _id_numbers(ids: list[str]) -> np.ndarray:
    return np.array([int(i, 16) for i in ids], dtype=np.uint64)


def _group_codes(
    text: pa.ChunkedArray, candidate: np.ndarray, near: bool
) -> tuple[np.ndarray, pa.Array]:
    """A group number per candidate row (equal numbers are (near-)duplicates), and each
    group's key.

    Keys are built chunk by chunk; afterwards the pool's freed scratch (a few times the
    text size) is returned to the OS, since the Python objects built next cannot reuse it.
    """
    make_key = identity_keys if near else _unchanged
    key = pa.chunked_array(
        [make_key(chunk) for chunk in _filtered_chunks(text, candidate)], type=pa.large_string()
    )
    encoded = key.dictionary_encode()
    codes = np.concatenate([chunk.indices.to_numpy() for chunk in encoded.chunks])
    keys = encoded.chunks[-1].dictionary
    del key, encoded
    pa.default_memory_pool().release_unused()
    return codes, keys


def _filtered_chunks(array: pa.ChunkedArray, mask: np.ndarray) -> Iterator[pa.Array]:
    """The array's chunks filtered by `mask`, one at a time (never a whole filtered copy)."""
    offset = 0
    for chunk in array.chunks:
        yield chunk.filter(pa.array(mask[offset : offset + len(chunk)]))
        offset += len(chunk)


def _unchanged(text: pa.Array) -> pa.Array:
    return text
