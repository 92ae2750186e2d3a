"""The writer's first pass: what the split needs from all parts, kept small.

Each part (a day of labels) is read once and let go. What stays is small: the trusted human
labels (the decisions), counts per domain, the few source records synthetic samples point
at, and, only with a per-domain cap, a hash rank per machine label. From these `plan` decides
everything that needs all parts at once: small domains, the cap's thresholds, eval (human
groups drawn by a stable hash, `_grouping.eval_mask`) and what eval is known by, so that
the second pass can write each part on its own.
"""

from __future__ import annotations

import pickle
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from esk_pipeline.pipeline.splits._balance import (
    DomainCounts,
    add_counts,
    cap_thresholds,
    counts,
    keep_rank,
    small_domain_handling,
    small_domains,
    within_cap,
)
from esk_pipeline.pipeline.splits._files import records
from esk_pipeline.pipeline.splits._grouping import (
    eval_eligible,
    eval_mask,
    group_keys,
    group_names,
    key_hashes,
)
from esk_pipeline.pipeline.splits._policy import prepare, trusted
from esk_pipeline.pipeline.splits.models import DataWriterConfig

# The part synthetic samples are written under; a labels part may not take its name.
SYNTHETIC_PART = "synthetic"
# Part names become file names (`train-<part>.jsonl`): one safe shape, checked in full.
_PART_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")
_SYNTHETIC_OFFSET = np.uint64(2**63)  # caps remove synthetic samples before machine labels


@dataclass
class Plan:
    """What pass one decided; the second pass applies it to each part."""

    input_items: int = 0
    superseded: int = 0
    rejected: dict[str, int] = field(default_factory=dict)
    small: dict[str, int] = field(default_factory=dict)
    dropped: list[str] = field(default_factory=list)
    train_only: list[str] = field(default_factory=list)
    thresholds: dict[str, int] = field(default_factory=dict)  # the cap's, per domain
    capped: dict[str, int] = field(default_factory=dict)
    domains: DomainCounts = field(default_factory=DomainCounts)  # for the eval shortfall
    eval_: pd.DataFrame = field(default_factory=pd.DataFrame)  # eval's records
    eval_ids: set[str] = field(default_factory=set)
    eval_keys: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.uint64))
    eval_users: set[str] = field(default_factory=set)
    synthetic_train: pd.DataFrame = field(default_factory=pd.DataFrame)
    synthetic_unverified: pd.DataFrame = field(default_factory=pd.DataFrame)

    def shares_eval_group(self, frame: pd.DataFrame, keys: np.ndarray) -> pd.Series:
        """Records that share an identity key (or, by user, a user) with an eval record."""
        shared = pd.Series(np.isin(keys, self.eval_keys), index=frame.index)
        if self.eval_users:
            shared |= frame["user_id"].isin(self.eval_users)
        return shared

    def within_cap(self, frame: pd.DataFrame, seed: int) -> pd.Series:
        """Machine labels the per-domain cap keeps."""
        if not self.thresholds:
            return pd.Series(True, index=frame.index)
        capped = frame["domain"].isin(list(self.thresholds))
        ranks = np.zeros(len(frame), dtype=np.uint64)
        ranks[capped.to_numpy()] = keep_rank(frame[capped], seed).to_numpy().astype(np.uint64)
        return within_cap(frame["domain"], ranks, self.thresholds)


def check_part_names(names: list[str]) -> None:
    """Refuses a part name that would not make a safe, distinct file name."""
    for name in names:
        if name and (not _PART_NAME.fullmatch(name) or name == SYNTHETIC_PART):
            raise ValueError(f"part name {name!r}: letters, digits and _.- only, not 'synthetic'")


def plan(
    parts: Mapping[str, pd.DataFrame], synthetic: pd.DataFrame, config: DataWriterConfig
) -> Plan:
    """Read every part once and decide what needs all of them (see the module docstring)."""
    cfg = config
    result = Plan()
    sources = set(synthetic["source_row_id"].dropna()) if "source_row_id" in synthetic else set()
    humans, ranks, found = [], [], []
    real_counts: dict[str, int] = {}
    domains: set[str] = set()
    for name in parts:
        frame, items, superseded, rejected = prepare(parts[name], cfg.precision_target)
        result.input_items += items
        result.superseded += superseded
        add_counts(result.rejected, rejected)
        frame = frame[~frame["is_synthetic"]]  # labels parts hold real records only
        add_counts(result.domains.labelled, frame["domain"].value_counts())
        kept = frame[trusted(frame, set())]
        domains |= set(kept["domain"])
        add_counts(real_counts, kept["domain"].value_counts())
        # Kept as one pickled buffer: a few rows' strings left among a freed part's would pin
        # the allocator's arenas, and the process would grow with every part.
        humans.append(pickle.dumps(kept[kept["_human_origin"]]))
        machine = kept[~kept["_human_origin"]]
        if cfg.max_samples_per_domain is not None:
            rank = keep_rank(machine, cfg.seed).to_numpy().astype(np.uint64)
            ranks.append(pd.DataFrame({"domain": machine["domain"].to_numpy(), "rank": rank}))
        wanted = kept[kept["row_id"].isin(sources)]
        found.append(wanted.assign(_key=group_keys(wanted))[["row_id", "_key"]])
        del frame, kept, machine, wanted  # before the next part is read

    syn, items, superseded, rejected = prepare(synthetic, cfg.precision_target)
    result.input_items += items
    result.superseded += superseded
    add_counts(result.rejected, rejected)
    source_keys = pd.concat(found).set_index("row_id")["_key"] if found else pd.Series(dtype=object)
    syn_trusted = trusted(syn, set(source_keys.index))
    result.synthetic_unverified = syn[~syn_trusted]
    syn = syn[syn_trusted].reset_index(drop=True)
    domains |= set(syn["domain"])

    result.domains.trusted = real_counts
    result.small = small_domains(real_counts, domains, cfg.min_samples_per_domain)
    result.dropped, result.train_only = small_domain_handling(result.small, cfg.small_domain_policy)
    human = pd.concat(map(pickle.loads, humans), ignore_index=True) if humans else syn.iloc[:0]
    result.domains.audited = counts(human.loc[eval_eligible(human), "domain"])
    dropped_records = sum(real_counts.get(d, 0) for d in result.dropped)
    dropped_records += int(syn["domain"].isin(result.dropped).sum())
    if dropped_records:
        result.rejected["small_domain"] = int(dropped_records)
    human = human[~human["domain"].isin(result.dropped)]
    syn = syn[~syn["domain"].isin(result.dropped)]

    if cfg.max_samples_per_domain is not None:
        syn_ranks = keep_rank(syn, cfg.seed).to_numpy().astype(np.uint64) + _SYNTHETIC_OFFSET
        ranks.append(pd.DataFrame({"domain": syn["domain"].to_numpy(), "rank": syn_ranks}))
        table = pd.concat(ranks, ignore_index=True)
        table = table[~table["domain"].isin(result.dropped)]
        result.thresholds, result.capped = cap_thresholds(
            table, human["domain"].value_counts().to_dict(), cfg.max_samples_per_domain
        )
        syn = syn[within_cap(syn["domain"], syn_ranks, result.thresholds).to_numpy()]
    _draw_eval(result, human, syn, source_keys, cfg)
    return result


def _draw_eval(
    result: Plan,
    human: pd.DataFrame,
    syn: pd.DataFrame,
    source_keys: pd.Series,
    cfg: DataWriterConfig,
) -> None:
    """Eval from the human labels; what eval is known by; the synthetic samples kept."""
    pool = pd.concat([human, syn], ignore_index=True)
    keys = group_keys(pool)
    in_eval = eval_mask(
        pool,
        keys,
        group_by_user=cfg.group_by_user,
        eval_fraction=cfg.eval_fraction,
        seed=cfg.seed,
        train_only=set(result.train_only),
    )
    real = ~pool["is_synthetic"]
    eval_rows = pool[in_eval & real]
    result.eval_ = records(eval_rows.assign(group_id=group_names(keys[eval_rows.index])))
    result.eval_ids = set(eval_rows["row_id"])
    result.eval_keys = np.unique(key_hashes(keys[eval_rows.index]))
    if cfg.group_by_user:
        result.eval_users = set(eval_rows["user_id"].dropna())
    synthetic = pool[pool["is_synthetic"]]
    source_key = synthetic["source_row_id"].map(source_keys)
    source_hash = key_hashes(source_key.fillna(""))
    leaks = in_eval[synthetic.index] | (source_key.notna() & np.isin(source_hash, result.eval_keys))
    if leaks.any():
        result.rejected["synthetic_of_eval_record"] = int(leaks.sum())
    kept = synthetic[~leaks]
    own = group_names(keys[kept.index])
    names = group_names(source_key[kept.index].fillna(""))
    result.synthetic_train = kept.assign(group_id=names.where(source_key[kept.index].notna(), own))
