"""Train/eval splits people can trust, and immutable dataset versions."""

from collections.abc import Mapping

import pandas as pd
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetIn,
    MetadataValue,
    Output,
    TableColumn,
    TableRecord,
    TableSchema,
    asset,
)

from esk_pipeline.assets.automation import EAGER
from esk_pipeline.assets.frame_types import TrustedLabelParts
from esk_pipeline.assets.metadata import bar_chart, counts_table, setting
from esk_pipeline.assets.progress import step_progress
from esk_pipeline.pipeline.labels import HUMAN_ORIGINS
from esk_pipeline.pipeline.splits import (
    DatasetStats,
    WrittenSplits,
    trust_summary,
    waiting_for_review,
)
from esk_pipeline.pipeline.trust import TrustReport
from esk_pipeline.pipeline.versions import VersionStatus
from esk_pipeline.resources.stores import DatasetStoreResource
from esk_pipeline.resources.taxonomy import TaxonomyResource
from esk_pipeline.resources.trust import TrustPolicyResource

DATASET_NAME = "dataset"


@asset(
    ins={"trusted_labels": AssetIn(dagster_type=TrustedLabelParts)},
    group_name="datasets",
    kinds={"json", "parquet"},
    automation_condition=EAGER,
    check_specs=[
        AssetCheckSpec(
            "quality_rules",
            asset="train_eval_splits",
            blocking=True,
            description="no empty text, no label outside the taxonomy, eval big enough, "
            "every domain in eval",
        ),
        AssetCheckSpec(
            "no_leakage",
            asset="train_eval_splits",
            blocking=True,
            description="no duplicate group or synthetic sample (or its source) on both sides",
        ),
        AssetCheckSpec(
            "eval_human_only",
            asset="train_eval_splits",
            blocking=True,
            description="every eval record carries a human label (human-verified or adjudicated)",
        ),
        AssetCheckSpec(
            "accuracy_meets_target",
            asset="train_eval_splits",
            description="the estimated label accuracy reaches TRUST_PRECISION_TARGET (a warning "
            "while the audit is smaller than TRUST_MIN_AUDIT_FOR_ESTIMATE)",
        ),
    ],
)
def train_eval_splits(
    context: AssetExecutionContext,
    trusted_labels: Mapping[str, pd.DataFrame],
    label_trust: TrustReport,
    synthetic_samples: pd.DataFrame,
    taxonomy_file: TaxonomyResource,
    dataset_store: DatasetStoreResource,
    trust_policy: TrustPolicyResource,
):
    """Stratified, group-aware, reproducible splits as JSONL + Parquet with a dataset card.

    Only trusted labels enter (the verdict in `trusted_labels`): eval holds settled human
    labels alone, train adds labels whose audited precision reaches the target; the rest is
    the separate `unverified` split."""
    # One part per day of labels (every text in one part): each is read when it is written.
    progress = step_progress(context, len(trusted_labels), "train_eval_splits", unit="parts")
    writer = dataset_store.writer(
        taxonomy_file.load(), precision_target=trust_policy.precision_target
    )
    train_path, eval_path, stats = writer.write_parts(
        trusted_labels,
        synthetic_samples,
        dataset_name=DATASET_NAME,
        accuracy=label_trust.estimate_accuracy,
        audit=label_trust.audit,
        progress=progress,
    )
    progress.close()
    dataset_dir = train_path.parent
    # Into the version store now, so `dataset_versions` may run on any worker.
    staged = dataset_store.storage().stage_dataset(dataset_dir)
    summary = trust_summary(stats)
    for line in summary:
        context.log.info(line)
    reliability = label_trust.reliability
    yield Output(
        WrittenSplits(
            dataset_dir=str(dataset_dir),
            train_path=str(train_path),
            eval_path=str(eval_path),
            stats=stats,
            reliability=reliability,
            staged=staged,
        ),
        metadata={
            "dataset_dir": MetadataValue.path(str(dataset_dir)),
            "train_samples": stats.train_samples,
            "train_real_samples": stats.train_samples - stats.synthetic_samples,
            "eval_samples": stats.eval_samples,
            "synthetic_samples": stats.synthetic_samples,
            "per_domain": _split_table(stats.train_distribution, stats.eval_distribution),
            "train_chart": bar_chart(stats.train_distribution),
            "eval_chart": bar_chart(stats.eval_distribution),
            "label_sources": counts_table(stats.label_sources, "origin"),
            **_accuracy_metadata(stats),
            "audit_progress": MetadataValue.text(str(label_trust.audit)),
            "overlap_items": reliability.overlap_items,
            "human_share": round(_human_share(stats), 4),
            "waiting_for_review": waiting_for_review(stats),
            "not_trusted": counts_table(stats.not_trusted, "reason"),
            "unverified_samples": stats.unverified_samples,
            "eval_shortfall": MetadataValue.json(stats.eval_shortfall),
            "trust_summary": MetadataValue.md("\n".join(f"- {line}" for line in summary)),
            "not_written": counts_table(stats.rejected, "reason"),
            "small_domains": counts_table(stats.small_domains, "domain", "real_samples"),
            "shards": MetadataValue.json(stats.shards),
        },
    )
    yield AssetCheckResult(
        check_name="quality_rules",
        passed=not stats.quality_problems,
        metadata={"problems": MetadataValue.json(stats.quality_problems)},
    )
    yield AssetCheckResult(
        check_name="no_leakage",
        passed=stats.leakage.passed,
        metadata={k: v for k, v in stats.leakage.model_dump().items() if k != "passed"},
    )
    yield AssetCheckResult(
        check_name="eval_human_only",
        passed=stats.leakage.unverified_in_eval == 0,
        metadata={"eval_origins": MetadataValue.json(stats.eval_origins)},
    )
    yield _accuracy_check(stats)


@asset(group_name="datasets", kinds={"json"}, automation_condition=EAGER)
def dataset_versions(
    context: AssetExecutionContext,
    train_eval_splits: WrittenSplits,
    dataset_store: DatasetStoreResource,
) -> Output:
    """Commits each new split as an immutable, checksummed version, diffed against the last."""
    storage = dataset_store.storage()
    known = {v.version for v in storage.list_versions()}
    how = dict(
        description=f"dagster run {context.run.run_id}",
        status=VersionStatus.STABLE,
        created_by="dagster",
        only_if_changed=True,
    )
    staged = train_eval_splits.staged
    version = (
        storage.commit_staged(staged, **how)
        if staged is not None  # else a value written before splits were staged
        else storage.commit_dataset(train_eval_splits.dataset_dir, **how)
    )
    is_new = version.version not in known
    metadata: dict = {
        "version": version.version,
        "new_version": is_new,
        "version_path": MetadataValue.path(str(version.path)),
        "train_samples": version.train_samples,
        "eval_samples": version.eval_samples,
        "total_versions": len(known) + is_new,
        **_version_trust(train_eval_splits),
    }
    record = {"version": version.version, "path": str(version.path), "diff": None}
    if not is_new:
        context.log.info(f"the split is identical to {version.version}: no new version")
    elif version.parent:
        diff = storage.compare_versions(version.parent, version.version)
        metadata |= {
            "previous_version": diff.from_version,
            "added": diff.added,
            "removed": diff.removed,
            "relabelled": diff.relabelled,
            "moved_between_splits": diff.moved,
            "diff_summary": MetadataValue.md(diff.summary),
        }
        record["diff"] = diff.model_dump(mode="json")
    return Output(record, metadata=metadata)


def _version_trust(splits: WrittenSplits) -> dict:
    """What the version's card says about trust, for the UI: accuracy with its interval,
    coverage, what waits for review, the audit's progress and how reliable the reviewers are."""
    stats = splits.stats
    written = stats.train_samples + stats.eval_samples
    kept_out = stats.unverified_samples
    return {
        **_accuracy_metadata(stats),
        "coverage": round(written / (written + kept_out), 4) if written + kept_out else 0.0,
        "waiting_for_review": waiting_for_review(stats),
        "audit_progress": MetadataValue.text(str(stats.audit) if stats.audit else "none"),
        "overlap_items": splits.reliability.overlap_items,
        "reviewer_accuracy": MetadataValue.json(
            {r: round(a, 4) for r, a in splits.reliability.accuracy.items()}
        ),
    }


def _accuracy_metadata(stats: DatasetStats) -> dict:
    out: dict = {}
    for split, estimate in stats.accuracy.items():
        if estimate.estimate is not None:
            out[f"{split}_estimated_accuracy"] = round(estimate.estimate, 4)
            out[f"{split}_accuracy_interval"] = f"{estimate.low:.3f}-{estimate.high:.3f}"
    return out


def _human_share(stats: DatasetStats) -> float:
    total = stats.train_samples + stats.eval_samples
    human = sum(n for origin, n in stats.label_sources.items() if origin in HUMAN_ORIGINS)
    return human / total if total else 0.0


def _accuracy_check(stats: DatasetStats) -> AssetCheckResult:
    """Passes when every non-empty split's estimate reaches the target; a warning (not an
    error) while the audit is too small to say."""
    target = stats.precision_target
    enough = stats.audit is None or stats.audit.enough
    estimates = {s: e for s, e in stats.accuracy.items() if e.records}
    below = {
        s: e.estimate for s, e in estimates.items() if e.estimate is None or e.estimate < target
    }
    return AssetCheckResult(
        check_name="accuracy_meets_target",
        passed=not below and enough,
        severity=AssetCheckSeverity.ERROR if enough else AssetCheckSeverity.WARN,
        metadata={
            "target": setting(target),
            "audited": stats.audit.audited if stats.audit else 0,
            "audit_needed": setting(stats.audit.needed if stats.audit else 0),
            "estimates": MetadataValue.json({s: e.estimate for s, e in estimates.items()}),
        },
    )


def _split_table(train: dict[str, int], eval_: dict[str, int]) -> MetadataValue:
    domains = sorted(set(train) | set(eval_), key=lambda d: (-train.get(d, 0), d))
    return MetadataValue.table(
        records=[
            TableRecord({"domain": d, "train": train.get(d, 0), "eval": eval_.get(d, 0)})
            for d in domains
        ],
        schema=TableSchema(
            columns=[
                TableColumn("domain", "string"),
                TableColumn("train", "int"),
                TableColumn("eval", "int"),
            ]
        ),
    )
