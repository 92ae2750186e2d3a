"""DataWriter: turns labelled, reviewed and synthetic items into a train/eval dataset people trust.

`build_splits` does everything but writing, in this order: normalise the input and keep one
label per row_id (`policy`), set untrusted labels apart, handle small domains and caps
(`balance`), group and split (`grouping`), balance train, then check the result (`quality`).
`write_datasets` writes it as one folder (`files`) with a card and metadata.json (`card`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from esk_pipeline.pipeline.dataset_layout import PARQUET_DIR, UNVERIFIED
from esk_pipeline.pipeline.ids import stable_rank
from esk_pipeline.pipeline.label_contract import VerdictReason
from esk_pipeline.pipeline.labels import is_human, strongest_per_row
from esk_pipeline.pipeline.progress import SILENT, ProgressReporter
from esk_pipeline.pipeline.splits._balance import (
    balance_train,
    class_weights,
    counts,
    downsample,
    eval_shortfall,
    small_domains,
)
from esk_pipeline.pipeline.splits._files import (
    records,
    shard_names,
    split_sizes,
    write_dataset_folder,
)
from esk_pipeline.pipeline.splits._grouping import assign_splits, group_ids
from esk_pipeline.pipeline.splits._policy import normalise, partition_by_trust, reject_unlabelled
from esk_pipeline.pipeline.splits._quality import check_leakage, quality_problems
from esk_pipeline.pipeline.splits.card import write_card_and_metadata
from esk_pipeline.pipeline.splits.models import (
    DatasetQualityError,
    DatasetStats,
    DataWriterConfig,
    LeakageReport,
)
from esk_pipeline.pipeline.taxonomy import Taxonomy
from esk_pipeline.pipeline.trust.estimate import AccuracyEstimate, AuditProgress

__all__ = ["DataWriter"]


class DataWriter:
    """Writes reproducible, leakage-free train/eval datasets (see the package docstring)."""

    def __init__(self, config: DataWriterConfig | None = None, taxonomy: Taxonomy | None = None):
        self.config = config or DataWriterConfig()
        self.taxonomy = taxonomy

    def write_datasets(
        self,
        items: Iterable[Mapping[str, Any]] | pd.DataFrame,
        dataset_name: str = "dataset",
        *,
        accuracy: Callable[[pd.DataFrame], AccuracyEstimate] | None = None,
        audit: AuditProgress | None = None,
        progress: ProgressReporter = SILENT,
    ) -> tuple[Path, Path, DatasetStats]:
        """Split, check and write the dataset; returns (train path, eval path, stats).

        With sharding the paths are the first shards; `stats.shards` lists them all.
        `accuracy` estimates a split's label accuracy (`trust.assess`); its results go into
        the stats, the card and metadata.json, with `audit`, the audit they rest on.
        `progress` gets a "writing" phase counting the records written.
        Raises DatasetQualityError (writing nothing)
        when validate_quality and a rule is broken.
        """
        cfg = self.config
        train, eval_, unverified, stats = self.build_splits(items)
        if accuracy is not None:
            stats.accuracy = {"train": accuracy(train), "eval": accuracy(eval_)}
        stats.audit = audit
        if cfg.validate_quality and stats.quality_problems:
            raise DatasetQualityError(stats.quality_problems)
        dataset_dir = cfg.output_dir / dataset_name
        splits = {"train": train, "eval": eval_, UNVERIFIED: unverified}

        def describe(folder: Path) -> None:
            write_card_and_metadata(folder, dataset_name, stats, cfg, self.taxonomy)

        write_dataset_folder(
            dataset_dir,
            splits,
            stats,
            cfg.shard_size,
            describe if cfg.include_metadata else None,
            progress,
        )
        return dataset_dir / stats.shards["train"][0], dataset_dir / stats.shards["eval"][0], stats

    def build_splits(
        self, items: Iterable[Mapping[str, Any]] | pd.DataFrame
    ) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, DatasetStats]:
        """Everything but writing: train, eval and unverified frames (RECORD_COLUMNS), stats."""
        cfg = self.config
        frame = normalise(items, cfg.precision_target)
        input_items = len(frame)
        frame, superseded = strongest_per_row(frame)
        frame, rejected = reject_unlabelled(frame)
        frame = frame.sort_values("row_id", kind="stable").reset_index(drop=True)
        # Eval holds settled human labels only: a doubted decision waits for its second opinion.
        frame["_human"] = is_human(frame["label_origin"]) & (
            frame["verdict_reason"] != VerdictReason.DOUBTED_HUMAN.value
        )
        frame, unverified, not_trusted = partition_by_trust(frame)

        policy = cfg.small_domain_policy
        frame, small, dropped, train_only, n_dropped = small_domains(
            frame, cfg.min_samples_per_domain, policy
        )
        if n_dropped:
            rejected["small_domain"] = n_dropped

        frame["_keep_rank"] = stable_rank(frame["row_id"], cfg.seed)
        capped: dict[str, int] = {}
        if cfg.max_samples_per_domain is not None:
            frame, capped = downsample(frame, cfg.max_samples_per_domain)

        frame["group_id"] = group_ids(frame, cfg.group_by_user)
        frame["split"] = assign_splits(frame, cfg.eval_fraction, cfg.seed, set(train_only))

        balanced: dict[str, int] = {}
        if cfg.balance_domains:
            frame, balanced = balance_train(frame, cfg.balance_ratio)

        train = records(frame[frame["split"] == "train"])
        eval_ = records(frame[frame["split"] == "eval"])
        unverified_records = records(unverified.assign(group_id=None))
        sizes = split_sizes(train, eval_, unverified_records)
        shards = {s: shard_names(s, n, cfg.shard_size, "jsonl") for s, n in sizes}
        parquet = {
            s: [f"{PARQUET_DIR}/{name}" for name in shard_names(s, n, cfg.shard_size, "parquet")]
            for s, n in sizes
        }
        written = pd.concat([train, eval_])
        stats = DatasetStats(
            train_samples=len(train),
            eval_samples=len(eval_),
            domain_distribution=counts(written["domain"]),
            train_distribution=counts(train["domain"]),
            eval_distribution=counts(eval_["domain"]),
            input_items=input_items,
            superseded_labels=superseded,
            rejected=dict(sorted(rejected.items())),
            label_sources=counts(written["label_origin"]),
            eval_origins=counts(eval_["label_origin"]),
            unverified_samples=len(unverified_records),
            not_trusted=not_trusted,
            eval_shortfall=eval_shortfall(
                frame, cfg.min_eval_samples, cfg.eval_fraction, train_only
            ),
            class_weights=class_weights(train),
            synthetic_samples=int(written["is_synthetic"].sum()),
            small_domains=small,
            small_domain_policy=policy,
            dropped_domains=dropped,
            train_only_domains=train_only,
            capped=capped,
            balanced=balanced,
            leakage=self.check_leakage(train, eval_),
            shards=shards,
            parquet_files=parquet,
            quality_problems=self.validate(train, eval_),
            precision_target=cfg.precision_target,
        )
        return train, eval_, unverified_records, stats

    def check_leakage(self, train: pd.DataFrame, eval_: pd.DataFrame) -> LeakageReport:
        """Re-check after the split that nothing of eval is known to train."""
        return check_leakage(train, eval_, self.config.group_by_user)

    def validate(self, train: pd.DataFrame, eval_: pd.DataFrame) -> list[str]:
        """Every quality rule the split breaks, as readable sentences (empty when it is fine).

        A short eval is not a broken rule: it is reported in `DatasetStats.eval_shortfall`.
        Asset checks call this to report without raising; write_datasets raises on a non-empty list.
        """
        return quality_problems(train, eval_, self.taxonomy)
