"""Synthetic samples that balance rare domains (train only, quality-controlled)."""

import asyncio
from collections import Counter
from collections.abc import Iterator, Mapping

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
from esk_pipeline.pipeline.augment import BalancePlan, SourceTally
from esk_pipeline.pipeline.parts import digest
from esk_pipeline.pipeline.splits import drawn_for_eval
from esk_pipeline.resources.llm import AugmenterResource, LabelerResource
from esk_pipeline.resources.stores import DatasetStoreResource
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
    dataset_store: DatasetStoreResource,
) -> Output:
    """Paraphrases of trusted texts for the domains that need them most: what train will hold
    is balanced, so the human labels the splits will draw for eval are neither counted nor
    paraphrased (such samples could only be dropped beside their eval source)."""
    taxonomy = taxonomy_file.load()
    judge = labeler.build(
        taxonomy, verified=zip(verified_labels["text"], verified_labels["domain"], strict=False)
    )
    agent = augmenter.build(taxonomy, judge, progress_callback=context.log.info)
    # A part at a time, twice: the plan's counts and best sources, then every trusted text
    # for the duplicate checks. The history's rows are never held together.
    tally = SourceTally(taxonomy, agent.config)
    real: Counter[str] = Counter()
    drawn_rows = []  # audited human labels only: small beside the history
    for name in sorted(trusted_labels):
        rows = _trusted_rows(trusted_labels, name)
        real.update(rows["domain"].dropna())
        drawn = drawn_for_eval(
            rows, seed=dataset_store.seed, eval_fraction=dataset_store.eval_fraction
        )
        tally.add(rows[~drawn])
        drawn_rows.append(rows[drawn])
    # A small domain puts no record in eval (`small_domain_policy` train_only, or it is
    # dropped whole): its drawn rows stay sources.
    small = {d for d, n in real.items() if n < dataset_store.min_samples_per_domain}
    for rows in drawn_rows:
        tally.add(rows[rows["domain"].isin(small)])
    texts = (
        text
        for name in sorted(trusted_labels)
        for text in _trusted_rows(trusted_labels, name)["text"].astype(str)
    )
    report = asyncio.run(_balance(agent, judge, tally.plan(), texts))
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
    "review_reason",
    "verdict_reason",
)


# Named by the columns it keeps: a summary kept with other columns is made again.
_SOURCES = f"augment-sources-{digest(*_SOURCE_COLUMNS)[:8]}"


def _trusted_rows(trusted_labels: Mapping[str, pd.DataFrame], name: str) -> pd.DataFrame:
    """One part's trusted rows, in the columns the augmenter reads. Parts stored by the IO
    manager keep them as a summary beside the part (`FrameParts.derived`, a row per row: it
    follows the part's overlay, which never makes a row trusted), so an unchanged part is not
    read again."""
    derived = getattr(trusted_labels, "derived", None)
    if derived is not None:
        return derived(name, _SOURCES, [*_SOURCE_COLUMNS, "trusted"], _sources, per_row=True)
    return _sources(trusted_labels[name])[_SOURCES]


def _sources(part: pd.DataFrame) -> dict[str, pd.DataFrame]:
    trusted = part[part["trusted"].astype(bool)]
    return {_SOURCES: trusted[[c for c in _SOURCE_COLUMNS if c in trusted]]}


async def _balance(agent, judge, plan: BalancePlan, texts: Iterator[str]):
    try:
        return await agent.balance_planned(plan, texts)
    finally:
        await agent.aclose()
        await judge.aclose()
