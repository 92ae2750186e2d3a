"""The checks run after the split: the leakage report and the quality rules.

`check_leakage` counts what eval shares with train; `quality_problems` lists every broken
rule as a readable sentence. A short eval is not a broken rule (see `balance.eval_shortfall`).
"""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd

from esk_pipeline.pipeline.labels import is_human
from esk_pipeline.pipeline.splits.models import LeakageReport
from esk_pipeline.pipeline.taxonomy import Taxonomy
from esk_pipeline.pipeline.text import identity_key_series


def _sample(values: Iterable[str], limit: int = 5) -> str:
    values = list(values)
    more = f" and {len(values) - limit} more" if len(values) > limit else ""
    return ", ".join(values[:limit]) + more


def check_leakage(train: pd.DataFrame, eval_: pd.DataFrame, group_by_user: bool) -> LeakageReport:
    """Re-check after the split that nothing of eval is known to train."""
    train_fp = set(identity_key_series(train["text"]))
    eval_fp = set(identity_key_series(eval_["text"]))
    synthetic_sources = set(train.loc[train["is_synthetic"], "source_row_id"].dropna())
    groups = pd.concat([train["group_id"], eval_["group_id"]]).value_counts()
    report = LeakageReport(
        passed=True,
        row_id_overlap=len(set(train["row_id"]) & set(eval_["row_id"])),
        text_overlap=len(train_fp & eval_fp),
        synthetic_in_eval=int(eval_["is_synthetic"].sum()),
        synthetic_source_in_eval=int(eval_["row_id"].isin(synthetic_sources).sum()),
        unverified_in_eval=int((~is_human(eval_["label_origin"])).sum()),
        groups=len(groups),
        multi_record_groups=int((groups > 1).sum()),
    )
    if group_by_user and "user_id" in train and "user_id" in eval_:
        users = set(train["user_id"].dropna()) & set(eval_["user_id"].dropna())
        report.user_overlap = len(users)
    report.passed = not (
        report.row_id_overlap
        or report.text_overlap
        or report.user_overlap
        or report.synthetic_in_eval
        or report.synthetic_source_in_eval
        or report.unverified_in_eval
    )
    return report


def quality_problems(
    train: pd.DataFrame, eval_: pd.DataFrame, taxonomy: Taxonomy | None
) -> list[str]:
    """Every quality rule the split breaks, as readable sentences (empty when it is fine)."""
    problems: list[str] = []
    for name, split in (("train", train), ("eval", eval_)):
        empty = split.loc[split["text"].fillna("").str.strip() == "", "row_id"]
        if len(empty):
            problems.append(f"{len(empty)} empty text(s) in {name}: {_sample(empty)}")
        if taxonomy is not None:
            unknown = sorted(set(split["domain"].dropna()) - set(taxonomy.ids))
            if unknown:
                problems.append(f"labels outside the taxonomy in {name}: {', '.join(unknown)}")
    overlap = sorted(set(train["row_id"]) & set(eval_["row_id"]))
    if overlap:
        problems.append(f"{len(overlap)} row_id(s) in both train and eval: {_sample(overlap)}")
    text_overlap = set(identity_key_series(train["text"])) & set(identity_key_series(eval_["text"]))
    if text_overlap:
        problems.append(f"{len(text_overlap)} text(s) (identity key) in both train and eval")
    if int(eval_["is_synthetic"].sum()):
        problems.append(f"{int(eval_['is_synthetic'].sum())} synthetic sample(s) in eval")
    not_human = eval_.loc[~is_human(eval_["label_origin"]), "row_id"]
    if len(not_human):
        problems.append(
            f"{len(not_human)} eval record(s) without a human label: {_sample(not_human)}"
        )
    sources = set(train.loc[train["is_synthetic"], "source_row_id"].dropna())
    leaked_sources = sorted(sources & set(eval_["row_id"]))
    if leaked_sources:
        problems.append(
            f"{len(leaked_sources)} source(s) of synthetic train samples in eval: "
            f"{_sample(leaked_sources)}"
        )
    return problems
