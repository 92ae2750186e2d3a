"""Synthetic samples that balance rare domains (train only, quality-controlled)."""

import asyncio
from collections.abc import Mapping

import pandas as pd
from dagster import AssetExecutionContext, AssetIn, Output, asset

from esk_pipeline.assets.automation import EAGER
from esk_pipeline.assets.frame_types import SyntheticFrame, TrustedLabelParts
from esk_pipeline.assets.metadata import (
    bar_chart,
    comparison_table,
    counts_table,
    preview,
    table_metadata,
)
from esk_pipeline.resources.llm import AugmenterResource, LabelerResource
from esk_pipeline.resources.taxonomy import TaxonomyResource


@asset(
    ins={"trusted_labels": AssetIn(dagster_type=TrustedLabelParts)},
    group_name="augmentation",
    kinds={"pydantic", "parquet"},
    automation_condition=EAGER,
    dagster_type=SyntheticFrame,
)
def synthetic_samples(
    context: AssetExecutionContext,
    trusted_labels: Mapping[str, pd.DataFrame],
    verified_labels: pd.DataFrame,
    taxonomy_file: TaxonomyResource,
    labeler: LabelerResource,
    augmenter: AugmenterResource,
) -> Output:
    """Paraphrases of trusted texts for the domains that need them most."""
    taxonomy = taxonomy_file.load()
    sources = _trusted_sources(trusted_labels)
    judge = labeler.build(
        taxonomy, verified=zip(verified_labels["text"], verified_labels["domain"], strict=False)
    )
    agent = augmenter.build(taxonomy, judge, progress_callback=context.log.info)
    report = asyncio.run(_balance(agent, judge, sources))
    samples = report.to_frame()
    summary = report.summary()
    after = {d: report.counts_after.get(d, 0) for d in report.counts_before}
    return Output(
        samples,
        metadata={
            **table_metadata(samples),
            "samples": len(samples),
            "candidates_checked": report.n_candidates,
            "qc_acceptance_rate": summary["acceptance_rate"],
            "rejections_by_reason": counts_table(report.rejections, "reason"),
            "counts_before_after": comparison_table(report.counts_before, after, "domain"),
            "added_by_domain": bar_chart(
                samples["domain"].value_counts().to_dict() if len(samples) else {}
            ),
            "examples": preview(
                pd.DataFrame(report.examples), ["domain", "method", "source_text", "text"]
            ),
            "llm_requests": int(report.usage.get("requests", 0)),
            "input_tokens": int(report.usage.get("input_tokens", 0)),
            "output_tokens": int(report.usage.get("output_tokens", 0)),
            "cost": float(report.usage.get("cost", 0.0)),
        },
    )


# What the augmenter plans from and checks new samples against (`augment.plan_balance`).
_SOURCE_COLUMNS = (
    "row_id",
    "text",
    "identity_key",
    "domain",
    "confidence",
    "status",
    "label_source",
    "label_origin",
)


def _trusted_sources(trusted_labels: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """The trusted labels of every part, in the columns the augmenter reads (a part at a
    time: the untrusted rows and the other columns are let go with each part)."""
    kept = []
    # Parts stored by the IO manager read only the columns asked for.
    read_columns = getattr(trusted_labels, "columns", None)
    for name in sorted(trusted_labels):
        if callable(read_columns):
            part = read_columns(name, [*_SOURCE_COLUMNS, "trusted"])
        else:
            part = trusted_labels[name]
        trusted = part[part["trusted"].astype(bool)]
        kept.append(trusted[[c for c in _SOURCE_COLUMNS if c in trusted]])
        del part  # before the next part is read
    return pd.concat(kept, ignore_index=True) if kept else pd.DataFrame(columns=_SOURCE_COLUMNS)


async def _balance(agent, judge, sources: pd.DataFrame):
    try:
        return await agent.balance(sources)
    finally:
        await agent.aclose()
        await judge.aclose()
