"""What pass two made of one part: its files and everything the stats and checks count of it.

A part's outcome is all the writer needs of that part once its files are written: their names
and records fingerprints, its counts (train by domain and origin, unverified by reason, what
balancing and eval's groups removed), its `PartChecks`, and a compact form of its train
records for the accuracy estimate (each human label's row; one row per kind of machine label,
with a count). Cached by `outcome_key` and with the part's files still in the previous folder,
it stands in for reading and writing the part again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import pandas as pd

from esk_pipeline.pipeline.dataset_layout import UNVERIFIED
from esk_pipeline.pipeline.labels import is_human
from esk_pipeline.pipeline.splits._balance import counts
from esk_pipeline.pipeline.splits._cache import PartCache, entry_key, hashes_digest
from esk_pipeline.pipeline.splits._files import FILE_FORMAT, ShardWriter
from esk_pipeline.pipeline.splits._plan import PartSummary, Plan
from esk_pipeline.pipeline.splits._quality import PartChecks, SplitChecks
from esk_pipeline.pipeline.splits.models import DataWriterConfig


class Sink(Protocol):
    """Where a part's records go (`ShardWriter`, or the writer's in-memory sink)."""

    fingerprints: dict[str, str]

    def write(self, split: str, part: str, frame: pd.DataFrame) -> list[str]: ...


# The columns of train records the accuracy estimate reads (`trust.assess.estimate_accuracy`).
ACCURACY_COLUMNS = ("is_synthetic", "label_origin", "p_correct", "tier")
_COUNT = "_n"


@dataclass
class PartOutcome:
    """One part's written files and counts (see the module docstring)."""

    files: dict[str, tuple[list[str], str, int]]  # split -> (JSONL names, fingerprint, records)
    train: dict[str, int]
    sources: dict[str, int]
    synthetic: int
    unverified: int
    not_trusted: dict[str, int]
    checks: PartChecks
    accuracy: pd.DataFrame  # compact train records (`compact_accuracy`)
    balanced: dict[str, int] = field(default_factory=dict)
    same_group: int = 0  # machine labels left out for sharing a group with eval

    def save(self, cache: PartCache, key: str) -> None:
        meta = {
            "files": {s: list(f) for s, f in self.files.items()},
            "train": self.train,
            "sources": self.sources,
            "counts": [self.synthetic, self.unverified, self.same_group],
            "not_trusted": self.not_trusted,
            "balanced": self.balanced,
            "checks": self.checks.meta(),
        }
        cache.save(key, meta, self.checks.arrays(), self.accuracy)

    @classmethod
    def load(cls, cache: PartCache, key: str) -> PartOutcome:
        meta, arrays, accuracy = cache.load(key)
        synthetic, unverified, same_group = meta["counts"]
        return cls(
            files={s: (list(n), str(f), int(r)) for s, (n, f, r) in meta["files"].items()},
            train=meta["train"],
            sources=meta["sources"],
            synthetic=synthetic,
            unverified=unverified,
            not_trusted=meta["not_trusted"],
            checks=PartChecks.of(meta["checks"], arrays),
            accuracy=accuracy if accuracy is not None else pd.DataFrame(),
            balanced=meta["balanced"],
            same_group=same_group,
        )


def compact_accuracy(train: pd.DataFrame) -> pd.DataFrame:
    """Train records in the accuracy estimate's columns: every human label's row (in order),
    then one row per kind of other record with how many there are (`_n`)."""
    columns = [c for c in ACCURACY_COLUMNS if c in train]
    frame = train[columns]
    human = is_human(frame["label_origin"]).to_numpy()
    others = frame.loc[~human, [c for c in columns if c != "p_correct"]]
    kinds = others.value_counts(dropna=False, sort=False).rename(_COUNT).reset_index()
    kinds = kinds.sort_values([c for c in kinds.columns if c != _COUNT], kind="stable")
    return pd.concat([frame[human].assign(**{_COUNT: 1}), kinds], ignore_index=True)


def expand_accuracy(compact: pd.DataFrame) -> pd.DataFrame:
    """The records `compact_accuracy` stands for, as many as there were (other records without
    their p_correct, which the estimate does not read)."""
    if compact.empty:
        return compact
    frame = compact.loc[compact.index.repeat(compact[_COUNT])].drop(columns=_COUNT)
    return frame.reset_index(drop=True).astype({"is_synthetic": bool})


def outcome_key(
    name: str, decided: Plan, checks_keys: np.ndarray, cache: PartCache, cfg: DataWriterConfig
) -> str | None:
    """The cache key of a part's outcome: its name, its summary (so its address) and what of
    the plan, the checks (`checks_keys`: the eval keys they test train against) and the config
    its records' fate and files depend on; None for a part without an address."""
    key = decided.summary_keys.get(name)
    if key is None:
        return None
    try:
        part = PartSummary.load(cache, key)
    except KeyError:
        return None
    domains = set(part.labelled)
    users = decided.eval_user_hashes if cfg.group_by_user else np.zeros(0, dtype=np.uint64)
    return entry_key(
        "write",
        name,
        key,
        FILE_FORMAT,
        [cfg.seed, cfg.precision_target, cfg.balance_domains, cfg.balance_ratio],
        [cfg.shard_size, cfg.group_by_user],
        sorted(domains & set(decided.dropped)),
        {d: t for d, t in sorted(decided.thresholds.items()) if d in domains},
        hashes_digest(_among(decided.eval_row_hashes, part.row_hashes)),
        hashes_digest(_among(decided.eval_keys, part.key_hashes)),
        hashes_digest(_among(checks_keys, part.key_hashes)),
        hashes_digest(_among(users, part.user_hashes)),
    )


def _among(wanted: np.ndarray, present: np.ndarray) -> np.ndarray:
    return np.sort(wanted[np.isin(wanted, present)])


def cached_outcome(cache: PartCache, key: str | None, sink: Sink) -> PartOutcome | None:
    """A part's outcome from the cache when its files can be taken from the previous folder
    (they are then linked into the new one), else None."""
    if key is None or not isinstance(sink, ShardWriter):
        return None
    try:
        outcome = PartOutcome.load(cache, key)
    except KeyError:
        return None
    if not all(sink.can_link(names, fp) for names, fp, _ in outcome.files.values()):
        return None
    for split, (names, fingerprint, n) in outcome.files.items():
        sink.link(split, names, fingerprint, n)
    return outcome


def write_part(
    sink: Sink,
    name: str,
    train: pd.DataFrame,
    unverified: pd.DataFrame,
    why: dict[str, int],
    checks: SplitChecks,
    keys: Any = None,
) -> PartOutcome:
    """Write a part's train and unverified records; what the stats and checks count of them.
    `keys`: train's key hashes where known."""
    files = {}
    for split, frame in (("train", train), (UNVERIFIED, unverified)):
        names = sink.write(split, name, frame)
        files[split] = (names, sink.fingerprints.get(names[0], "") if names else "", len(frame))
    return PartOutcome(
        files=files,
        train=counts(train["domain"]),
        sources=counts(train["label_origin"]),
        synthetic=int(train["is_synthetic"].sum()),
        unverified=len(unverified),
        not_trusted=why,
        checks=checks.of_train(train, keys),
        accuracy=compact_accuracy(train),
    )
