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
    # Temporary, until sources are drawn a part at a time: every part's trusted rows.
    sources = pd.concat(
        [part[part["trusted"]] for part in trusted_labels.values()], ignore_index=True
    )
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


async def _balance(agent, judge, sources: pd.DataFrame):
    try:
        return await agent.balance(sources)
    finally:
        await agent.aclose()
        await judge.aclose()
