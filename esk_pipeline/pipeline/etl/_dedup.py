"""Deduplication of the cleaned texts: the first row of each group is kept, then `max_rows`.

Exact duplicates are rows whose cleaned texts are equal. Near duplicates share an
`identity_key` (`pipeline/text.py`: case, ё/е, punctuation and spacing aside), the same key
the dataset writer groups by, so a duplicate the ETL let through can never straddle train and
eval. A duplicate's rejection detail is the row id of the row that was kept in its place.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from esk_pipeline.pipeline.etl.models import REASON_CODES, ETLConfig
from esk_pipeline.pipeline.ids import row_ids
from esk_pipeline.pipeline.text import identity_keys


def deduplicate(
    text: pa.ChunkedArray, reasons: np.ndarray, detail: np.ndarray, config: ETLConfig
) -> tuple[np.ndarray, list[str], list[str]]:
    """Keep the first row of each (near-)duplicate group, then apply max_rows.

    `reasons` holds each row's rejection code so far (0: kept). Updates `reasons` and `detail`
    in place (a duplicate's detail is the kept row's id) and returns the kept input positions,
    their texts and their row ids.
    """
    candidates = np.flatnonzero(reasons == 0)
    positions = np.arange(len(candidates))
    if config.deduplicate and len(candidates):
        codes = _group_codes(text, reasons == 0, config.near_duplicates)
        first_of_code = np.full(codes.max() + 1, len(candidates), dtype=np.int64)
        np.minimum.at(first_of_code, codes, positions)
        representative = first_of_code[codes]
    else:
        representative = positions
    is_first = representative == positions
    within_cap = np.ones(len(candidates), dtype=bool)
    if config.max_rows is not None:
        # A row over the cap, or a duplicate of one, is rejected as over_max_rows, so a
        # duplicate's detail always names a row that was kept.
        rank = np.cumsum(is_first) - 1
        within_cap = rank[representative] < config.max_rows
        reasons[candidates[~within_cap]] = REASON_CODES["over_max_rows"]
        detail[candidates[~within_cap]] = f"max_rows={config.max_rows} reached"
    kept_positions = np.flatnonzero(is_first & within_cap)
    kept_mask = np.zeros(len(reasons), dtype=bool)
    kept_mask[candidates[kept_positions]] = True
    kept_texts = list(
        itertools.chain.from_iterable(c.to_pylist() for c in _filtered_chunks(text, kept_mask))
    )
    kept_ids = row_ids(kept_texts)

    duplicates = np.flatnonzero(~is_first & within_cap)
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
    return candidates[kept_positions], kept_texts, kept_ids


def _group_codes(text: pa.ChunkedArray, candidate: np.ndarray, near: bool) -> np.ndarray:
    """A group number per candidate row: equal numbers are (near-)duplicates.

    Keys are built chunk by chunk; afterwards the pool's freed scratch (a few times the
    text size) is returned to the OS, since the Python objects built next cannot reuse it.
    """
    make_key = identity_keys if near else _unchanged
    key = pa.chunked_array(
        [make_key(chunk) for chunk in _filtered_chunks(text, candidate)], type=pa.large_string()
    )
    encoded = key.dictionary_encode()
    codes = np.concatenate([chunk.indices.to_numpy() for chunk in encoded.chunks])
    del key, encoded
    pa.default_memory_pool().release_unused()
    return codes


def _filtered_chunks(array: pa.ChunkedArray, mask: np.ndarray) -> Iterator[pa.Array]:
    """The array's chunks filtered by `mask`, one at a time (never a whole filtered copy)."""
    offset = 0
    for chunk in array.chunks:
        yield chunk.filter(pa.array(mask[offset : offset + len(chunk)]))
        offset += len(chunk)


def _unchanged(text: pa.Array) -> pa.Array:
    return text
