"""The writer's first pass: what the split needs from all parts, kept small.

Each part (a day of labels) is read once and let go. What stays is small: the trusted human
labels (the decisions), counts per domain, the few source records synthetic samples point
at, and, only with a per-domain cap, a hash rank per machine label. From these `plan` decides
everything that needs all parts at once: small domains, the cap's thresholds, eval (human
groups drawn by a stable hash, `_grouping.eval_mask`) and what eval is known by, so that
the second pass can write each part on its own.
"""

from __future__ import annotations

import contextlib
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
from esk_pipeline.pipeline.splits._cache import (
    PartCache,
    entry_key,
    from_parquet,
    part_address,
    to_parquet,
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
    eval_row_hashes: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.uint64))
    eval_user_hashes: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.uint64))
    synthetic_train: pd.DataFrame = field(default_factory=pd.DataFrame)
    synthetic_unverified: pd.DataFrame = field(default_factory=pd.DataFrame)
    summary_keys: dict[str, str | None] = field(default_factory=dict)  # part -> its summary

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


@dataclass
class PartSummary:
    """What pass one takes from one part: a function of its records alone (and of the
    precision target, seed and whether a cap is set), so it is cached by the part's address."""

    input_items: int
    superseded: int
    rejected: dict[str, int]
    labelled: dict[str, int]  # real records per domain
    trusted: dict[str, int]  # trusted real records per domain
    humans: bytes  # the trusted human labels (Parquet: freed parts' strings are not pinned)
    ranks: pd.DataFrame | None  # (domain, rank) of the trusted machine labels, with a cap
    row_hashes: np.ndarray  # sorted hashes of the trusted real row ids (cached parts only)
    key_hashes: np.ndarray  # sorted distinct hashes of their identity keys
    user_hashes: np.ndarray  # sorted distinct hashes of their users

    def save(self, cache: PartCache, key: str) -> None:
        meta = {
            "counts": [self.input_items, self.superseded],
            "rejected": self.rejected,
            "labelled": self.labelled,
            "trusted": self.trusted,
        }
        arrays = {
            "humans": np.frombuffer(self.humans, dtype=np.uint8),
            "row_hashes": self.row_hashes,
            "key_hashes": self.key_hashes,
            "user_hashes": self.user_hashes,
        }
        cache.save(key, meta, arrays, self.ranks)

    @classmethod
    def load(cls, cache: PartCache, key: str) -> PartSummary:
        meta, arrays, ranks = cache.load(key)
        return cls(
            *meta["counts"],
            rejected=meta["rejected"],
            labelled=meta["labelled"],
            trusted=meta["trusted"],
            humans=arrays["humans"].tobytes(),
            ranks=ranks,
            row_hashes=arrays["row_hashes"],
            key_hashes=arrays["key_hashes"],
            user_hashes=arrays["user_hashes"],
        )


def summary_key(address: str | None, cfg: DataWriterConfig) -> str | None:
    if address is None:
        return None
    capped = cfg.max_samples_per_domain is not None
    return entry_key("plan", address, cfg.precision_target, cfg.seed, capped)


def plan(
    parts: Mapping[str, pd.DataFrame],
    names: list[str],
    synthetic: pd.DataFrame,
    config: DataWriterConfig,
    cache: PartCache,
) -> Plan:
    """Summarise the parts `names` in turn (each read once and let go, or found in `cache`)
    and decide what needs all of them (see the module docstring)."""
    cfg = config
    result = Plan()
    sources = set(synthetic["source_row_id"].dropna()) if "source_row_id" in synthetic else set()
    humans, ranks, found = [], [], []
    real_counts: dict[str, int] = {}
    for name in names:
        address = part_address(parts, name)
        key = summary_key(address, cfg)
        summary = None
        with contextlib.suppress(KeyError):
            summary = PartSummary.load(cache, key) if key else None
        if summary is None:
            summary, wanted = _summarise(parts[name], cfg, sources, hashes=key is not None)
            if key:
                summary.save(cache, key)
                _remember_sources(cache, address, wanted)
        else:
            wanted = _look_up_sources(parts, name, summary.row_hashes, sources, cache, cfg)
        result.summary_keys[name] = key
        found.append(wanted)
        result.input_items += summary.input_items
        result.superseded += summary.superseded
        add_counts(result.rejected, summary.rejected)
        add_counts(result.domains.labelled, summary.labelled)
        add_counts(real_counts, summary.trusted)
        humans.append(summary.humans)
        if summary.ranks is not None:
            ranks.append(summary.ranks)
        del summary  # its hashes are read again in pass two, a part at a time
    domains = {d for d, n in real_counts.items() if n}

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
    human = pd.concat(map(from_parquet, humans), ignore_index=True) if humans else syn.iloc[:0]
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


def _summarise(
    items: pd.DataFrame, cfg: DataWriterConfig, sources: set[str], *, hashes: bool
) -> tuple[PartSummary, pd.DataFrame]:
    """One part's summary, and (row_id, _key) of its trusted records `sources` names."""
    frame, input_items, superseded, rejected = prepare(items, cfg.precision_target)
    frame = frame[~frame["is_synthetic"]]  # labels parts hold real records only
    kept = frame[trusted(frame, set())]
    machine = kept[~kept["_human_origin"]]
    ranks = None
    if cfg.max_samples_per_domain is not None:
        rank = keep_rank(machine, cfg.seed).to_numpy().astype(np.uint64)
        ranks = pd.DataFrame({"domain": machine["domain"].to_numpy(), "rank": rank})
    none = np.zeros(0, dtype=np.uint64)
    row_hashes, keys, users = none, none, none
    if hashes:
        row_hashes = np.sort(key_hashes(kept["row_id"]))
        keys = np.unique(key_hashes(group_keys(kept)))
        users = np.unique(key_hashes(kept["user_id"].dropna()))
    wanted = kept[kept["row_id"].isin(sources)]
    summary = PartSummary(
        input_items=input_items,
        superseded=superseded,
        rejected=rejected,
        labelled=counts(frame["domain"]),
        trusted=counts(kept["domain"]),
        humans=to_parquet(kept[kept["_human_origin"]]),
        ranks=ranks,
        row_hashes=row_hashes,
        key_hashes=keys,
        user_hashes=users,
    )
    return summary, wanted.assign(_key=group_keys(wanted))[["row_id", "_key"]]


def _remember_sources(cache: PartCache, address: str | None, found: pd.DataFrame) -> None:
    """Add the identity keys of a part's trusted records that synthetic samples point at."""
    if address is None or found.empty:
        return
    key = entry_key("sources", address)
    try:
        known, _, _ = cache.load(key)
    except KeyError:
        known = {}
    if not set(found["row_id"]) <= set(known):
        cache.save(key, known | dict(zip(found["row_id"], found["_key"], strict=True)))


def _look_up_sources(
    parts: Mapping[str, pd.DataFrame],
    name: str,
    row_hashes: np.ndarray,
    sources: set[str],
    cache: PartCache,
    cfg: DataWriterConfig,
) -> pd.DataFrame:
    """(row_id, _key) of a summarised part's trusted records `sources` names: from the cache,
    reading the part only for a source not looked up before."""
    none = pd.DataFrame({"row_id": pd.Series(dtype=object), "_key": pd.Series(dtype=object)})
    candidates = sorted(sources)
    hit = np.isin(key_hashes(pd.Series(candidates, dtype=object)), row_hashes)
    wanted = [c for c, h in zip(candidates, hit, strict=True) if h]
    address = part_address(parts, name)
    if not wanted or address is None:
        return none
    key = entry_key("sources", address)
    try:
        known, _, _ = cache.load(key)
    except KeyError:
        known = {}
    missing = [w for w in wanted if w not in known]
    if missing:
        frame = parts[name]
        rows, *_ = prepare(frame[frame["row_id"].astype(str).isin(missing)], cfg.precision_target)
        rows = rows[~rows["is_synthetic"] & trusted(rows, set())]
        known |= dict.fromkeys(missing) | dict(zip(rows["row_id"], group_keys(rows), strict=True))
        cache.save(key, known)
    pairs = [(w, known[w]) for w in wanted if known[w] is not None]
    return pd.DataFrame(pairs, columns=["row_id", "_key"]) if pairs else none


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
    result.eval_row_hashes = np.unique(key_hashes(eval_rows["row_id"]))
    if cfg.group_by_user:
        result.eval_users = set(eval_rows["user_id"].dropna())
        result.eval_user_hashes = np.unique(key_hashes(eval_rows["user_id"].dropna()))
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
