"""The checks run after the split: the leakage report and the quality rules.

Eval is small (human labels only) and held whole; train comes a part at a time. A
`SplitChecks` holds what eval is known by (row ids, identity keys, users) and tests each
train part against it, so no check needs all of train at once. `check_leakage` counts what
eval shares with train; `quality_problems` lists every broken rule as a readable sentence. A
short eval is not a broken rule (see `balance.eval_shortfall`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from esk_pipeline.pipeline.labels import is_human
from esk_pipeline.pipeline.splits._grouping import group_keys, key_hashes
from esk_pipeline.pipeline.splits.models import LeakageReport
from esk_pipeline.pipeline.taxonomy import Taxonomy

_SAMPLE = 5


def _sample(values: Iterable[str], total: int | None = None) -> str:
    values = list(values)
    total = len(values) if total is None else total
    more = f" and {total - _SAMPLE} more" if total > _SAMPLE else ""
    return ", ".join(values[:_SAMPLE]) + more


@dataclass
class PartChecks:
    """What the checks take from one part of train (kept with the part's cached outcome)."""

    empty: list[str]  # up to _SAMPLE row ids of empty texts
    empty_n: int
    domains: list[str]
    overlap: list[str]  # up to _SAMPLE row ids also in eval
    overlap_n: int
    users: list[str]  # eval's users among the part's
    sources: list[str]  # sources of the part's synthetic samples
    shared_keys: np.ndarray  # identity-key hashes also in eval
    groups: np.ndarray  # distinct group_id hashes
    group_sizes: np.ndarray  # records of each

    def meta(self) -> dict:
        return {
            "empty": self.empty,
            "empty_n": self.empty_n,
            "domains": self.domains,
            "overlap": self.overlap,
            "overlap_n": self.overlap_n,
            "users": self.users,
            "sources": self.sources,
        }

    def arrays(self) -> dict[str, np.ndarray]:
        return {"shared_keys": self.shared_keys, "groups": self.groups, "sizes": self.group_sizes}

    @classmethod
    def of(cls, meta: dict, arrays: dict[str, np.ndarray]) -> PartChecks:
        return cls(
            **meta,
            shared_keys=arrays["shared_keys"],
            groups=arrays["groups"],
            group_sizes=arrays["sizes"],
        )


class SplitChecks:
    """Leakage and quality, from eval at once and train a part at a time."""

    def __init__(self, eval_: pd.DataFrame, taxonomy: Taxonomy | None, group_by_user: bool):
        self.eval_ = eval_
        self.taxonomy = taxonomy
        self.group_by_user = group_by_user
        self._eval_ids = set(eval_["row_id"])
        self.eval_keys = np.unique(key_hashes(group_keys(eval_)))
        self._eval_users = set(eval_["user_id"].dropna()) if "user_id" in eval_ else set()
        self._empty = {"train": [], "eval": []}
        self._empty_n = {"train": 0, "eval": 0}
        self._unknown: dict[str, set[str]] = {"train": set(), "eval": set()}
        self._overlap: list[str] = []
        self._overlap_n = 0
        self._shared_keys: list[np.ndarray] = []
        self._users: set[str] = set()
        self._sources: set[str] = set()
        self._groups: list[np.ndarray] = []
        self._group_sizes: list[np.ndarray] = []
        self._look("eval", eval_)
        self._add_groups(eval_["group_id"])

    def _look(self, name: str, split: pd.DataFrame) -> None:
        empty = split.loc[split["text"].fillna("").str.strip() == "", "row_id"]
        self._empty[name].extend(empty.iloc[: _SAMPLE - len(self._empty[name])])
        self._empty_n[name] += len(empty)
        if self.taxonomy is not None:
            self._unknown[name] |= set(split["domain"].dropna()) - set(self.taxonomy.ids)

    def _add_groups(self, group_ids: pd.Series) -> None:
        groups, sizes = np.unique(_hashes(group_ids), return_counts=True)
        self._groups.append(groups)
        self._group_sizes.append(sizes)

    def of_train(self, train: pd.DataFrame, keys: np.ndarray | None = None) -> PartChecks:
        """What the checks need of one part of train (records with `user_id` where known);
        `keys`: its records' `key_hashes(group_keys(train))` when the caller has them."""
        empty = train.loc[train["text"].fillna("").str.strip() == "", "row_id"]
        overlap = train.loc[train["row_id"].isin(self._eval_ids), "row_id"]
        keys = key_hashes(group_keys(train)) if keys is None else keys
        users: set[str] = set()
        if self.group_by_user and "user_id" in train:
            users = set(train["user_id"].dropna()) & self._eval_users
        groups, sizes = np.unique(_hashes(train["group_id"]), return_counts=True)
        return PartChecks(
            empty=list(empty.iloc[:_SAMPLE]),
            empty_n=len(empty),
            domains=sorted(set(train["domain"].dropna())),
            overlap=list(overlap.iloc[:_SAMPLE]),
            overlap_n=len(overlap),
            users=sorted(users),
            sources=sorted(set(train.loc[train["is_synthetic"], "source_row_id"].dropna())),
            shared_keys=np.unique(keys[np.isin(keys, self.eval_keys)]),
            groups=groups,
            group_sizes=sizes,
        )

    def add_train(self, train: pd.DataFrame, keys: np.ndarray | None = None) -> None:
        """Check one part of train (`of_train`)."""
        self.add(self.of_train(train, keys))

    def add(self, part: PartChecks) -> None:
        """Add what one part of train showed."""
        self._empty["train"].extend(part.empty[: _SAMPLE - len(self._empty["train"])])
        self._empty_n["train"] += part.empty_n
        if self.taxonomy is not None:
            self._unknown["train"] |= set(part.domains) - set(self.taxonomy.ids)
        self._overlap.extend(part.overlap[: _SAMPLE - len(self._overlap)])
        self._overlap_n += part.overlap_n
        self._shared_keys.append(part.shared_keys)
        self._users |= set(part.users)
        self._sources |= set(part.sources)
        self._groups.append(part.groups)
        self._group_sizes.append(part.group_sizes)

    def leakage(self) -> LeakageReport:
        """What eval shares with the train parts seen so far."""
        _, where = np.unique(np.concatenate(self._groups), return_inverse=True)
        sizes = np.bincount(where.ravel(), weights=np.concatenate(self._group_sizes))
        eval_ = self.eval_
        report = LeakageReport(
            passed=True,
            row_id_overlap=self._overlap_n,
            text_overlap=self._text_overlap(),
            user_overlap=len(self._users),
            synthetic_in_eval=int(eval_["is_synthetic"].sum()),
            synthetic_source_in_eval=int(eval_["row_id"].isin(self._sources).sum()),
            unverified_in_eval=int((~is_human(eval_["label_origin"])).sum()),
            groups=len(sizes),
            multi_record_groups=int((sizes > 1).sum()),
        )
        report.passed = not (
            report.row_id_overlap
            or report.text_overlap
            or report.user_overlap
            or report.synthetic_in_eval
            or report.synthetic_source_in_eval
            or report.unverified_in_eval
        )
        return report

    def _text_overlap(self) -> int:
        return len(np.unique(np.concatenate(self._shared_keys))) if self._shared_keys else 0

    def problems(self) -> list[str]:
        """Every quality rule broken so far, as readable sentences (empty when it is fine)."""
        problems: list[str] = []
        for name in ("train", "eval"):
            if self._empty_n[name]:
                problems.append(
                    f"{self._empty_n[name]} empty text(s) in {name}: "
                    f"{_sample(self._empty[name], self._empty_n[name])}"
                )
            if self._unknown[name]:
                unknown = ", ".join(sorted(self._unknown[name]))
                problems.append(f"labels outside the taxonomy in {name}: {unknown}")
        if self._overlap_n:
            problems.append(
                f"{self._overlap_n} row_id(s) in both train and eval: "
                f"{_sample(sorted(self._overlap), self._overlap_n)}"
            )
        if self._text_overlap():
            problems.append(f"{self._text_overlap()} text(s) (identity key) in both train and eval")
        eval_ = self.eval_
        if int(eval_["is_synthetic"].sum()):
            problems.append(f"{int(eval_['is_synthetic'].sum())} synthetic sample(s) in eval")
        not_human = eval_.loc[~is_human(eval_["label_origin"]), "row_id"]
        if len(not_human):
            problems.append(
                f"{len(not_human)} eval record(s) without a human label: {_sample(not_human)}"
            )
        leaked_sources = sorted(self._sources & self._eval_ids)
        if leaked_sources:
            problems.append(
                f"{len(leaked_sources)} source(s) of synthetic train samples in eval: "
                f"{_sample(leaked_sources)}"
            )
        return problems


def _hashes(values: pd.Series) -> np.ndarray:
    return pd.util.hash_array(values.astype(str).to_numpy(dtype=object))


def check_leakage(train: pd.DataFrame, eval_: pd.DataFrame, group_by_user: bool) -> LeakageReport:
    """Re-check after the split that nothing of eval is known to train."""
    checks = SplitChecks(eval_, None, group_by_user)
    checks.add_train(train)
    return checks.leakage()


def quality_problems(
    train: pd.DataFrame, eval_: pd.DataFrame, taxonomy: Taxonomy | None
) -> list[str]:
    """Every quality rule the split breaks, as readable sentences (empty when it is fine)."""
    checks = SplitChecks(eval_, taxonomy, group_by_user=False)
    checks.add_train(train)
    return checks.problems()
