"""Leakage control: duplicate groups, and the group-aware stratified train/eval split.

Records are grouped by `text.identity_key` (the ETL's own dedup key), by row_id <->
source_row_id (a synthetic sample joins its source) and optionally by `user_id`. A group
never straddles train and eval; only groups of human labels (from the audit, when the input
says why texts were reviewed) may go to eval. Every order comes from a seeded hash of a key,
so the same input in any order gives the same split.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from esk_pipeline.pipeline.ids import stable_rank
from esk_pipeline.pipeline.text import identity_key_series


def group_ids(frame: pd.DataFrame, group_by_user: bool) -> pd.Series:
    """Connected components over shared fingerprint, row_id<->source_row_id and (opt.) user_id.

    Each group is named by its smallest row_id, so the name does not depend on input order.
    """
    n = len(frame)
    if n == 0:
        return pd.Series([], dtype=object)
    fp = identity_key_series(frame["text"])
    fp = fp.where(fp != "", "\0" + frame["row_id"])  # an empty fingerprint groups nothing
    ids = pd.concat([frame["row_id"], frame["source_row_id"]], ignore_index=True)
    id_codes, _ = pd.factorize(ids)
    # Each key space links rows to key nodes; row_id and source_row_id share one space.
    spaces = [[pd.factorize(fp)[0]], [id_codes[:n], id_codes[n:]]]
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
    return frame["row_id"].groupby(labels[:n]).transform("min")


def eval_eligible(frame: pd.DataFrame) -> pd.Series:
    """Records that may go to eval on their own: settled human labels (`_human`), real, and
    audited where the input says why texts were reviewed (`assign_splits` adds the group rules)."""
    eligible = frame["_human"] & ~frame["is_synthetic"]
    if frame["review_reason"].notna().any():
        eligible &= frame["review_reason"] == "audit"
    return eligible


def assign_splits(
    frame: pd.DataFrame, eval_fraction: float, seed: int, train_only: set[str]
) -> pd.Series:
    """Group-aware stratified split: per domain, seeded-hash-ordered groups fill eval to target.

    Only groups of human labels alone may go to eval, and of those, where the input says why
    texts were reviewed, only groups holding an audit text (a uniform sample of the logs). A
    group holding a synthetic sample, a machine label or a train-only domain stays in train.
    Each group counts for its most common domain; a domain's eval target is `eval_fraction` of
    all its records, filled as far as eligible groups allow. A domain keeps at least one train
    record when it has two eligible groups or more.
    """
    split = pd.Series("train", index=frame.index, dtype=object)
    if frame.empty:
        return split
    by_group = frame.groupby("group_id")
    forced = (
        by_group["is_synthetic"].transform("any")
        | ~by_group["_human"].transform("all")
        | frame["domain"].isin(train_only)
    )
    if frame["review_reason"].notna().any():
        audited = frame["review_reason"] == "audit"
        forced |= ~audited.groupby(frame["group_id"]).transform("any")
    groups = frame.loc[~forced].groupby(["group_id", "domain"]).size().rename("n").reset_index()
    if groups.empty:
        return split
    groups = groups.sort_values(["group_id", "n", "domain"], ascending=[True, False, True])
    group_domain = groups.drop_duplicates("group_id").set_index("group_id")["domain"]
    sizes = frame.loc[~forced, "group_id"].value_counts()
    table = pd.DataFrame({"domain": group_domain, "size": sizes.reindex(group_domain.index)})
    table["rank"] = stable_rank(pd.Series(table.index), seed)
    eval_groups: list[str] = []
    domain_totals = frame["domain"].value_counts()
    for domain, domain_groups in table.sort_values("rank").groupby("domain", sort=True):
        total = int(domain_totals[domain])
        eligible = int(domain_groups["size"].sum())
        if total < 2:
            continue
        target = min(max(1, round(eval_fraction * total)), total - 1, eligible)
        taken = 0
        chosen: list[str] = []
        for group_id, size in domain_groups["size"].items():
            if taken + size <= target:
                chosen.append(group_id)
                taken += size
            if taken >= target:
                break
        if not chosen:
            smallest = domain_groups.sort_values(["size", "rank"]).index[0]
            chosen = [smallest]
        eval_groups.extend(chosen)
    split[frame["group_id"].isin(eval_groups) & ~forced] = "eval"
    return split
