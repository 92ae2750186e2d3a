"""Leakage control: identity groups, and which human groups go to eval (a stable hash).

Every real record belongs to the group of its `text.identity_key` (the ETL's own dedup key:
exact and near duplicates); `group_id`, written with each record, names that key, so it never
depends on which other records arrived. A synthetic sample carries its source's group.

Eval is decided on the human records alone (small: the decisions): they are joined into
components over identity key, row_id <-> source_row_id and optionally `user_id`; a component
goes to eval when every human label in it is settled, it holds an audited text (where the
input says why texts were reviewed), no domain of it is train-only, and a seeded hash of its
identity key falls below `eval_fraction`. The draw depends on the component alone, so a
record's split never moves when records of other groups arrive. Machine labels never go to
eval; one sharing an identity key (or a user, with `group_by_user`) with an eval record is
kept out of train, which a membership test against the small eval set decides per part.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from esk_pipeline.pipeline.ids import row_ids, stable_rank
from esk_pipeline.pipeline.label_contract import VerdictReason
from esk_pipeline.pipeline.labels import is_human
from esk_pipeline.pipeline.text import identity_key_series

_AUDIT_REASON = "audit"  # review.ReviewReason.AUDIT (splits read rows, not the review store)
_HASH_SPACE = float(2**63)  # stable_rank's values lie in [0, 2**63)


def group_keys(frame: pd.DataFrame) -> pd.Series:
    """Each record's identity key; an empty key (a text without words) groups nothing, so such
    a record is its own group, keyed by its row_id."""
    if "identity_key" in frame:  # trusted labels carry the key their resolution used
        keys = frame["identity_key"].astype(object)
        missing = keys.isna()
        if missing.any():
            keys[missing] = identity_key_series(frame.loc[missing, "text"])
    else:
        keys = identity_key_series(frame["text"])
    return keys.where(keys != "", "\0" + frame["row_id"])


def group_names(keys: pd.Series) -> pd.Series:
    """The written `group_id` of each key: 16 hex characters of its hash (a lone record keeps
    its row_id)."""
    keys = keys.astype(object)
    lone = keys.str.startswith("\0").fillna(False).astype(bool)
    names = pd.Series(row_ids(keys), index=keys.index, dtype=object)
    return names.where(~lone, keys.str[1:])


def key_hashes(keys: pd.Series) -> np.ndarray:
    """uint64 hashes of keys, for membership tests against the eval set."""
    return pd.util.hash_array(keys.to_numpy(dtype=object))


def _drawn(keys: pd.Series, seed: int, eval_fraction: float) -> np.ndarray:
    """Whether each key's seeded hash falls below `eval_fraction` (the eval draw)."""
    return stable_rank(keys, seed) < eval_fraction * _HASH_SPACE


def _audited(frame: pd.DataFrame) -> pd.Series:
    """Rows reviewed for the audit (review reason "audit"), where the rows say why texts were
    reviewed; every row where none does."""
    reasons = frame.get("review_reason")
    if reasons is None or not reasons.notna().any():
        return pd.Series(True, index=frame.index)
    return reasons == _AUDIT_REASON


def drawn_for_eval(labels: pd.DataFrame, *, seed: int, eval_fraction: float) -> pd.Series:
    """Label rows (`row_id`, `text`, `label_origin`; optional `identity_key`, `review_reason`,
    `verdict_reason`) that go to eval with their group when the splits are written: settled
    human labels (not doubted), audited where the rows say why texts were reviewed, whose own
    identity key is drawn. Known before the splits: what is paraphrased from these only ever
    reaches eval's group, so it is dropped. (A record not drawn itself can still go to eval
    with a drawn member of its group.)"""
    chosen = is_human(labels["label_origin"])
    if "verdict_reason" in labels:
        chosen &= labels["verdict_reason"] != VerdictReason.DOUBTED_HUMAN.value
    return chosen & _audited(labels) & _drawn(group_keys(labels), seed, eval_fraction)


def eval_eligible(frame: pd.DataFrame) -> pd.Series:
    """Records that may go to eval on their own: settled human labels (`_human`), real, and
    audited where the input says why texts were reviewed (`eval_mask` adds the group rules)."""
    return frame["_human"] & ~frame["is_synthetic"] & _audited(frame)


def components(frame: pd.DataFrame, keys: pd.Series, group_by_user: bool) -> np.ndarray:
    """Connected components over shared key, row_id<->source_row_id and (opt.) user_id."""
    n = len(frame)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    ids = pd.concat([frame["row_id"], frame["source_row_id"]], ignore_index=True)
    id_codes, _ = pd.factorize(ids)
    # Each key space links rows to key nodes; row_id and source_row_id share one space.
    spaces = [[pd.factorize(keys)[0]], [id_codes[:n], id_codes[n:]]]
    if group_by_user:
        spaces.append([pd.factorize(frame["user_id"])[0]])
    rows, cols, offset = [], [], n
    for space in spaces:
        for codes in space:
            present = codes >= 0
            rows.append(np.nonzero(present)[0])
            cols.append(codes[present] + offset)
        offset += max(int(codes.max()) for codes in space) + 1
    r, c = np.concatenate(rows), np.concatenate(cols)
    graph = coo_matrix((np.ones(len(r), dtype=np.int8), (r, c)), shape=(offset, offset))
    _, labels = connected_components(graph, directed=False)
    return labels[:n]


def eval_mask(
    frame: pd.DataFrame,
    keys: pd.Series,
    *,
    group_by_user: bool,
    eval_fraction: float,
    seed: int,
    train_only: set[str],
) -> pd.Series:
    """Which records of `frame` (trusted human labels and synthetic samples) are in eval-drawn
    components (see the module docstring). Synthetic samples are marked too: they are never
    written to eval, and the caller leaves out those of an eval component."""
    if frame.empty:
        return pd.Series(False, index=frame.index)
    comp = pd.Series(components(frame, keys, group_by_user), index=frame.index)
    real = ~frame["is_synthetic"]
    blocked = (real & ~frame["_human"]) | frame["domain"].isin(train_only)
    ok = ~blocked.groupby(comp).transform("any")
    # A component holds a real audited record (any real one where no reason is known).
    ok &= (real & _audited(frame)).groupby(comp).transform("any")
    drawn = pd.Series(_drawn(keys, seed, eval_fraction), index=frame.index) & real
    return ok & drawn.groupby(comp).transform("any")
