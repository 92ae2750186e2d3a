"""DataWriter: turns labelled, reviewed and synthetic items into a train/eval dataset people trust.

Two passes over the parts (days of labels), each part read and let go in turn. Pass one
(`_plan.plan`) keeps what needs every part, all small: the human labels, counts per domain,
and decides small domains, the cap and eval. Pass two takes each part alone: its untrusted
labels go to `unverified`, its trusted ones to train unless eval holds their group, the cap
or the part's balancing removes them; it writes the part's files (`_files.ShardWriter`) and
adds to the checks (`_quality.SplitChecks`) and the counts (`_outcome.PartOutcome`). Eval and
the synthetic samples are written from pass one's results; then the card and metadata.json
(`card`). A part with an address (`trusted_labels`' parts) has what each pass took from it
cached (`_cache`): unchanged, it is not read to plan, and not read nor written to split when
what of the plan touches it is unchanged too (its files are linked from the previous folder).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from esk_pipeline.pipeline.dataset_layout import SPLITS, UNVERIFIED
from esk_pipeline.pipeline.progress import SILENT, ProgressReporter
from esk_pipeline.pipeline.splits._balance import (
    add_counts,
    balance_part,
    class_weights,
    counts,
    eval_shortfall,
)
from esk_pipeline.pipeline.splits._cache import PartCache
from esk_pipeline.pipeline.splits._files import (
    ShardWriter,
    dataset_folder,
    records,
    shard_names,
)
from esk_pipeline.pipeline.splits._grouping import group_keys, group_names, key_hashes
from esk_pipeline.pipeline.splits._outcome import (
    PartOutcome,
    cached_outcome,
    expand_accuracy,
    outcome_key,
    write_part,
)
from esk_pipeline.pipeline.splits._plan import SYNTHETIC_PART, Plan, check_part_names, plan
from esk_pipeline.pipeline.splits._policy import normalise, not_trusted_counts, prepare, trusted
from esk_pipeline.pipeline.splits._quality import SplitChecks, check_leakage, quality_problems
from esk_pipeline.pipeline.splits.card import write_card_and_metadata
from esk_pipeline.pipeline.splits.models import (
    DatasetQualityError,
    DatasetStats,
    DataWriterConfig,
    LeakageReport,
)
from esk_pipeline.pipeline.taxonomy import Taxonomy
from esk_pipeline.pipeline.trust.estimate import AccuracyEstimate, AuditProgress, pooled

__all__ = ["DataWriter"]

Accuracy = Callable[[pd.DataFrame], AccuracyEstimate]


class _Frames:
    """A sink like `ShardWriter` that keeps the records instead (`build_splits`)."""

    def __init__(self, shard_size: int | None):
        self.shard_size = shard_size
        self.frames: dict[str, list[pd.DataFrame]] = {}
        self.shards: dict[str, list[str]] = {}
        self.parquet_files: dict[str, list[str]] = {}
        self.fingerprints: dict[str, str] = {}

    def write(self, split: str, part: str, frame: pd.DataFrame) -> list[str]:
        self.frames.setdefault(split, [])
        self.shards.setdefault(split, [])
        self.parquet_files.setdefault(split, [])
        if frame.empty:
            return []
        self.frames[split].append(frame)
        base = split if not part else f"{split}-{part}"
        names = shard_names(base, len(frame), self.shard_size, "jsonl")
        self.shards[split] += names
        self.parquet_files[split] += [f"__parquet__/{Path(n).stem}.parquet" for n in names]
        return names

    def finish(self, splits: tuple[str, ...]) -> None:
        for split in splits:
            if not self.shards.get(split):
                self.shards[split] = [f"{split}.jsonl"]
                self.parquet_files[split] = [f"__parquet__/{split}.parquet"]

    def frame(self, split: str) -> pd.DataFrame:
        parts = self.frames.get(split) or []
        return pd.concat(parts, ignore_index=True) if parts else records(_empty())


def _empty() -> pd.DataFrame:
    return normalise([], 0.95).assign(group_id=None)


class _Tally:
    """What the stats count over every part of pass two."""

    def __init__(self, checks: SplitChecks, decided: Plan, accuracy: Accuracy | None):
        self.checks = checks
        self.decided = decided
        self.accuracy = accuracy
        self.train: dict[str, int] = {}
        self.sources: dict[str, int] = {}
        self.synthetic = 0
        self.unverified = 0
        self.not_trusted: dict[str, int] = {}
        self.balanced: dict[str, int] = {}
        self.estimates: list[AccuracyEstimate] = []

    def add(self, part: PartOutcome) -> None:
        """One part's outcome, written now or found in the cache."""
        add_counts(self.train, part.train)
        add_counts(self.sources, part.sources)
        self.synthetic += part.synthetic
        self.unverified += part.unverified
        add_counts(self.not_trusted, part.not_trusted)
        add_counts(self.balanced, part.balanced)
        if part.same_group:
            add_counts(self.decided.rejected, {"same_group_as_eval": part.same_group})
        self.checks.add(part.checks)
        if self.accuracy is not None and sum(part.train.values()):
            self.estimates.append(self.accuracy(expand_accuracy(part.accuracy)))


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
        accuracy: Accuracy | None = None,
        audit: AuditProgress | None = None,
        progress: ProgressReporter = SILENT,
    ) -> tuple[Path, Path, DatasetStats]:
        """`write_parts` of items in one part (synthetic samples among them are set apart)."""
        real, synthetic = _set_synthetic_apart(items, self.config.precision_target)
        return self.write_parts(
            {"": real}, synthetic, dataset_name, accuracy=accuracy, audit=audit, progress=progress
        )

    def write_parts(
        self,
        parts: Mapping[str, pd.DataFrame],
        synthetic: pd.DataFrame | None = None,
        dataset_name: str = "dataset",
        *,
        accuracy: Accuracy | None = None,
        audit: AuditProgress | None = None,
        progress: ProgressReporter = SILENT,
    ) -> tuple[Path, Path, DatasetStats]:
        """Split, check and write the dataset; returns (train path, eval path, stats).

        `parts`: labelled records by part name (a day; every row_id in one part), read twice
        each, one at a time; `synthetic`: the synthetic samples. Each part's records are
        written as `train-<part>.jsonl` / `unverified-<part>.jsonl` (a part named "" gives
        `train.jsonl`), eval as `eval.jsonl`; the paths returned are the first files.
        `accuracy` estimates a split's label accuracy (`trust.assess`; pooled over the parts);
        its results go into the stats, the card and metadata.json, with `audit`, the audit
        they rest on. `progress` gets a "writing" phase counting the records written.
        Raises DatasetQualityError (writing nothing) when validate_quality and a rule is broken.
        """
        cfg = self.config
        dataset_dir = cfg.output_dir / dataset_name
        cache = PartCache.beside(cfg.output_dir, dataset_name)
        with dataset_folder(dataset_dir) as staging:
            sink = ShardWriter(staging, dataset_dir, cfg.shard_size, progress)
            stats = self._split(parts, synthetic, sink, accuracy, progress, cache)
            stats.audit = audit
            if cfg.validate_quality and stats.quality_problems:
                raise DatasetQualityError(stats.quality_problems)
            if cfg.include_metadata:
                write_card_and_metadata(
                    staging,
                    dataset_name,
                    stats,
                    cfg,
                    self.taxonomy,
                    sink.digests,
                    sink.fingerprints,
                )
        cache.sweep()
        return dataset_dir / stats.shards["train"][0], dataset_dir / stats.shards["eval"][0], stats

    def build_splits(
        self, items: Iterable[Mapping[str, Any]] | pd.DataFrame
    ) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, DatasetStats]:
        """Everything but writing, in memory: train, eval and unverified frames
        (RECORD_COLUMNS), stats."""
        real, synthetic = _set_synthetic_apart(items, self.config.precision_target)
        sink = _Frames(self.config.shard_size)
        cache = PartCache.beside(self.config.output_dir, "")  # unused: one part, no address
        stats = self._split({"": real}, synthetic, sink, None, SILENT, cache)
        return sink.frame("train"), sink.frame("eval"), sink.frame(UNVERIFIED), stats

    def _split(
        self,
        parts: Mapping[str, pd.DataFrame],
        synthetic: pd.DataFrame | None,
        sink: ShardWriter | _Frames,
        accuracy: Accuracy | None,
        progress: ProgressReporter,
        cache: PartCache,
    ) -> DatasetStats:
        cfg = self.config
        names = sorted(parts)
        check_part_names(names)
        synthetic = synthetic if synthetic is not None else pd.DataFrame()
        decided = plan(parts, names, synthetic, cfg, cache)
        progress.phase("writing", decided.input_items, "records")
        checks = SplitChecks(decided.eval_, self.taxonomy, cfg.group_by_user)
        tally = _Tally(checks, decided, accuracy)
        for name in names:
            key = None
            if isinstance(sink, ShardWriter):
                key = outcome_key(name, decided, checks.eval_keys, cache, cfg)
            outcome = cached_outcome(cache, key, sink)
            if outcome is None:
                outcome = self._part(parts[name], name, decided, sink, checks)
                if key is not None:
                    outcome.save(cache, key)
            tally.add(outcome)
            del outcome  # before the next part is read
        syn_train = records(decided.synthetic_train)
        syn_unverified = records(decided.synthetic_unverified.assign(group_id=None))
        why = not_trusted_counts(decided.synthetic_unverified)
        tally.add(write_part(sink, SYNTHETIC_PART, syn_train, syn_unverified, why, checks))
        eval_ = decided.eval_
        sink.write("eval", "", eval_)
        sink.finish(("train", "eval", UNVERIFIED))
        return self._stats(decided, tally, eval_, sink, accuracy)

    def _part(
        self,
        items: pd.DataFrame,
        name: str,
        decided: Plan,
        sink: ShardWriter | _Frames,
        checks: SplitChecks,
    ) -> PartOutcome:
        """Split and write one part."""
        cfg = self.config
        frame, *_ = prepare(items, cfg.precision_target)
        frame = frame[~frame["is_synthetic"]]  # set apart in pass one
        ok = trusted(frame, set())
        unverified = records(frame[~ok].assign(group_id=None))
        why = not_trusted_counts(frame[~ok])
        kept = frame[ok & ~frame["domain"].isin(decided.dropped)]
        kept = kept[~kept["row_id"].isin(decided.eval_ids)]
        keys = group_keys(kept)
        hashes = key_hashes(keys)
        machine = ~kept["_human_origin"]
        shared = machine & decided.shares_eval_group(kept, hashes)
        capped = machine & ~decided.within_cap(kept, cfg.seed)
        keep = (~shared & ~capped).to_numpy()
        kept, keys, hashes = kept[keep], keys[keep], hashes[keep]
        removed: dict[str, int] = {}
        if cfg.balance_domains:
            balanced, removed = balance_part(kept, cfg.balance_ratio, cfg.seed)
            if removed:
                survivors = kept["row_id"].isin(balanced["row_id"]).to_numpy()
                kept, keys, hashes = kept[survivors], keys[survivors], hashes[survivors]
        train = records(kept.assign(group_id=group_names(keys)))
        order = kept["row_id"].argsort(kind="stable").to_numpy()
        del frame, kept
        outcome = write_part(sink, name, train, unverified, why, checks, hashes[order])
        outcome.balanced = removed
        outcome.same_group = int(shared.sum())
        return outcome

    def _stats(
        self,
        decided: Plan,
        tally: _Tally,
        eval_: pd.DataFrame,
        sink: ShardWriter | _Frames,
        accuracy: Accuracy | None,
    ) -> DatasetStats:
        cfg = self.config
        eval_counts = counts(eval_["domain"])
        domain_counts = dict(tally.train)
        add_counts(domain_counts, eval_counts)
        sources = dict(tally.sources)
        add_counts(sources, counts(eval_["label_origin"]))
        missing = set(d for d, n in tally.train.items() if n) - set(eval_counts)
        missing -= set(decided.train_only)
        stats = DatasetStats(
            train_samples=sum(tally.train.values()),
            eval_samples=len(eval_),
            domain_distribution=dict(sorted(domain_counts.items())),
            train_distribution=dict(sorted((d, n) for d, n in tally.train.items() if n)),
            eval_distribution=eval_counts,
            input_items=decided.input_items,
            superseded_labels=decided.superseded,
            rejected=dict(sorted(decided.rejected.items())),
            label_sources=dict(sorted(sources.items())),
            eval_origins=counts(eval_["label_origin"]),
            unverified_samples=tally.unverified,
            not_trusted=dict(sorted(tally.not_trusted.items())),
            eval_shortfall=eval_shortfall(
                len(eval_),
                cfg.min_eval_samples,
                cfg.eval_fraction,
                cfg.min_samples_per_domain,
                decided.domains,
                missing,
            ),
            class_weights=class_weights(tally.train),
            synthetic_samples=tally.synthetic + int(eval_["is_synthetic"].sum()),
            small_domains=decided.small,
            small_domain_policy=cfg.small_domain_policy,
            dropped_domains=decided.dropped,
            train_only_domains=decided.train_only,
            capped=decided.capped,
            balanced=dict(sorted(tally.balanced.items())),
            leakage=tally.checks.leakage(),
            shards={s: sink.shards[s] for s in (*SPLITS, UNVERIFIED)},
            parquet_files={s: sink.parquet_files[s] for s in (*SPLITS, UNVERIFIED)},
            quality_problems=tally.checks.problems(),
            precision_target=cfg.precision_target,
        )
        if accuracy is not None:
            stats.accuracy = {"train": pooled(tally.estimates), "eval": accuracy(eval_)}
        return stats

    def check_leakage(self, train: pd.DataFrame, eval_: pd.DataFrame) -> LeakageReport:
        """Re-check after the split that nothing of eval is known to train."""
        return check_leakage(train, eval_, self.config.group_by_user)

    def validate(self, train: pd.DataFrame, eval_: pd.DataFrame) -> list[str]:
        """Every quality rule the split breaks, as readable sentences (empty when it is fine).

        A short eval is not a broken rule: it is reported in `DatasetStats.eval_shortfall`.
        Asset checks call this to report without raising; write_datasets raises on a non-empty list.
        """
        return quality_problems(train, eval_, self.taxonomy)


def _set_synthetic_apart(
    items: Iterable[Mapping[str, Any]] | pd.DataFrame, precision_target: float
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(real records, synthetic samples) of one collection of items."""
    frame = normalise(items, precision_target)
    synthetic = frame["is_synthetic"]
    return frame[~synthetic].reset_index(drop=True), frame[synthetic].reset_index(drop=True)
