"""Stages 6-7: train/eval splits people can trust, and immutable dataset versions."""

import pandas as pd
from dagster import (
    AssetCheckResult,
    AssetCheckSpec,
    AssetExecutionContext,
    MetadataValue,
    Output,
    TableColumn,
    TableRecord,
    TableSchema,
    asset,
)

from esk_pipeline.assets.automation import eager_when_enabled
from esk_pipeline.assets.metadata import bar_chart, counts_table
from esk_pipeline.assets.sources import labelled_and_verified
from esk_pipeline.pipeline.data_storage import VersionStatus
from esk_pipeline.resources.stores import DatasetStoreResource
from esk_pipeline.resources.taxonomy import TaxonomyResource

DATASET_NAME = "dataset"


@asset(
    group_name="datasets",
    kinds={"json", "parquet"},
    automation_condition=eager_when_enabled(),
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
    ],
)
def train_eval_splits(
    context: AssetExecutionContext,
    labels: dict[str, pd.DataFrame],
    verified_labels: pd.DataFrame,
    synthetic_samples: pd.DataFrame,
    taxonomy_file: TaxonomyResource,
    dataset_store: DatasetStoreResource,
):
    """Stratified, group-aware, reproducible splits as JSONL + Parquet with a dataset card."""
    items = pd.concat(
        [labelled_and_verified(labels, verified_labels), synthetic_samples],
        ignore_index=True,
    )
    writer = dataset_store.writer(taxonomy_file.load())
    train_path, eval_path, stats = writer.write_datasets(items, dataset_name=DATASET_NAME)
    dataset_dir = train_path.parent
    yield Output(
        {
            "dataset_dir": str(dataset_dir),
            "train_path": str(train_path),
            "eval_path": str(eval_path),
            "stats": stats.model_dump(mode="json"),
        },
        metadata={
            "dataset_dir": MetadataValue.path(str(dataset_dir)),
            "train_samples": stats.train_samples,
            "eval_samples": stats.eval_samples,
            "synthetic_samples": stats.synthetic_samples,
            "per_domain": _split_table(stats.train_distribution, stats.eval_distribution),
            "train_chart": bar_chart(stats.train_distribution),
            "eval_chart": bar_chart(stats.eval_distribution),
            "label_sources": counts_table(stats.label_sources, "origin"),
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


@asset(group_name="datasets", kinds={"json"}, automation_condition=eager_when_enabled())
def dataset_versions(
    context: AssetExecutionContext,
    train_eval_splits: dict,
    dataset_store: DatasetStoreResource,
) -> Output:
    """Commits each new split as an immutable, checksummed version, diffed against the last."""
    storage = dataset_store.storage()
    known = {v.version for v in storage.list_versions()}
    version = storage.commit_dataset(
        train_eval_splits["dataset_dir"],
        description=f"dagster run {context.run_id}",
        status=VersionStatus.STABLE,
        created_by="dagster",
        only_if_changed=True,
    )
    is_new = version.version not in known
    metadata: dict = {
        "version": version.version,
        "new_version": is_new,
        "version_path": MetadataValue.path(str(version.path)),
        "train_samples": version.train_samples,
        "eval_samples": version.eval_samples,
        "total_versions": len(known) + is_new,
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
