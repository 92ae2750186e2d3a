"""Labels, from the local model first and an LLM for the rest (when configured).

The labelling model learns from the human decisions through a training snapshot
(`pipeline.labeler.snapshot`), kept beside the labels (`labels/labelling_model.json`) and taken
again only when the refit rule says so. Each labels day records in its file what it was made
with (the labelling model's fingerprint and its cleaned texts' file): a day whose cleaned texts
and labelling model are unchanged is kept as stored (a `KeptDay`, no classify call), so its
file, and what trust and the splits made from it, stay as they are. Each day's metadata says
which (`labelled`: "reused (model ...)" or "relabelled: <why>"); a run
tagged `esk/relabel` refits and labels every day again.

After labelling, a run prunes the LLM answer cache (`LabelerAgent.prune_cache`) and reports
how many entries went in an observation (`llm_cache_pruned`).
"""

import asyncio
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetIn,
    AssetObservation,
    AssetsDefinition,
    BackfillPolicy,
    DailyPartitionsDefinition,
    DataVersion,
    IOManager,
    MetadataValue,
    Output,
    ResourceParam,
    asset,
    observable_source_asset,
)

from esk_pipeline.assets.automation import LABELS_CONDITION
from esk_pipeline.assets.frame_types import DailyLabelFrames
from esk_pipeline.assets.labelling_model import (
    LEFT_TO_LABEL,
    MADE_FROM,
    StoredDays,
    snapshot_refit,
)
from esk_pipeline.assets.metadata import (
    bar_chart,
    counts_table,
    preview,
    setting,
    table_metadata,
)
from esk_pipeline.assets.progress import step_progress
from esk_pipeline.pipeline.label_contract import LabelOrigin
from esk_pipeline.pipeline.labeler import PROMPT_VERSION, CascadeReport, results_to_frame
from esk_pipeline.pipeline.labeler.snapshot import TrainingSnapshot, labelling_fingerprint
from esk_pipeline.pipeline.local_model import MODEL_VERSION
from esk_pipeline.pipeline.parts import digest
from esk_pipeline.pipeline.progress import Progress
from esk_pipeline.resources.day_stream import DayStream, KeptDay
from esk_pipeline.resources.io_manager import READ_ON_ACCESS, DayFrames, ParquetJsonIOManager
from esk_pipeline.resources.llm import LabelerResource
from esk_pipeline.resources.taxonomy import TaxonomyResource

# Rows of a day labelled at a time (one classify call): bounds the per-text results in memory.
LABEL_SLICE_ROWS = 50_000
# Above this share of failed rows (endpoint down, budget hit) the labels check warns.
MAX_FAILED_SHARE = 0.2
# A run with this tag ("true") refits the labelling model and labels every day again, whatever
# the refit rule and the stored days say (`esk-data build --relabel`).
RELABEL_TAG = "esk/relabel"


@observable_source_asset(
    group_name="labeling",
    description="data/taxonomy.yaml: the domains labels can take. Observed by every daily "
    "labelling run and, when the file changes, by taxonomy_changed_sensor.",
)
def taxonomy(taxonomy_file: TaxonomyResource) -> DataVersion:
    """The taxonomy's content hash: editing the file makes every labels partition stale."""
    return DataVersion(taxonomy_file.load().fingerprint)


def labels(
    context: AssetExecutionContext,
    cleaned_texts: DayFrames,
    verified_labels: pd.DataFrame,
    taxonomy_file: TaxonomyResource,
    labeler: LabelerResource,
    io_manager: ResourceParam[IOManager],
) -> Iterator[Output | AssetObservation | AssetCheckResult]:
    """A domain, the labeler's confidence (a claim: `trusted_labels` measures how far each
    tier's can be trusted) and the runners-up for every cleaned text: each day of a range is
    read, labelled and written before the next, or kept as stored when neither its cleaned
    texts nor the labelling model changed."""
    taxonomy = taxonomy_file.load()
    # Stored days and the snapshot live where the IO manager keeps labels; elsewhere the model
    # learns from every decision and every day is labelled.
    files = io_manager if isinstance(io_manager, ParquetJsonIOManager) else None
    relabel = context.run.tags.get(RELABEL_TAG, "").lower() == "true"
    pairs = zip(verified_labels["text"], verified_labels["domain"], strict=True)
    snapshot, refit = snapshot_refit(
        TrainingSnapshot.of(taxonomy, pairs), files, labeler.refit_rule(), relabel
    )
    agent = labeler.build(taxonomy, verified=snapshot.verified)
    model = labelling_fingerprint(agent)
    tally = LabelTally()
    progress = step_progress(context, sum(map(cleaned_texts.row_count, cleaned_texts)), "labels")
    made_from = {
        day: {"labelling_model": model, "cleaned_texts": cleaned_texts.fingerprint(day) or ""}
        for day in context.partition_keys
    }
    # One event loop for every day: the agent's clients live in it.
    with asyncio.Runner() as loop:
        try:
            day_labeler = _DayLabeler(context, agent, cleaned_texts, loop, progress, tally)
            day_labeler.reuse = StoredDays(files, made_from, refit) if files else None
            yield Output(
                DayStream("labels", context.partition_keys, day_labeler),
                # What the days are made from, not the decisions: a refresh that refits nothing
                # keeps the labels' data version, and what downstream made from them.
                data_version=DataVersion(
                    digest(*(json.dumps(made_from[d], sort_keys=True) for d in made_from))[:16]
                ),
                metadata={
                    "labelling_model": model,
                    "model_refit": refit.reason or "no",
                    "model_verified_labels": len(snapshot.verified),
                    "model_new_verified_labels": refit.waiting,
                },
            )
            # After labelling, so the reads this run recorded keep the answers it used.
            pruned = agent.prune_cache()
        finally:
            loop.run(agent.aclose())
    progress.close()
    context.log.info(f"LLM answer cache: {pruned} entries pruned")
    yield AssetObservation(asset_key=context.asset_key, metadata={"llm_cache_pruned": pruned})
    yield from _label_checks(tally, set(taxonomy.ids))


@dataclass
class LabelTally:
    """What the label checks need of every day, counted as the days are labelled."""

    rows: int = 0
    failed: int = 0
    confidence_outside: int = 0
    domains: set[str] = field(default_factory=set)

    def add(self, frame: pd.DataFrame) -> "LabelTally":
        labelled = frame[frame["status"] == "labeled"]
        confidence = pd.to_numeric(labelled["confidence"], errors="coerce")
        self.rows += len(frame)
        self.failed += int((frame["status"] == "failed").sum())
        self.confidence_outside += int((~confidence.between(0.0, 1.0)).sum())  # NaN is outside
        self.domains.update(labelled["domain"].dropna().unique())
        return self


def _label_checks(tally: LabelTally, domain_ids: set[str]) -> Iterator[AssetCheckResult]:
    unknown = sorted(tally.domains - domain_ids)
    yield AssetCheckResult(
        check_name="domains_in_taxonomy",
        passed=not unknown,
        severity=AssetCheckSeverity.ERROR,
        metadata={"unknown_domains": ", ".join(unknown[:20]) or "none"},
    )
    yield AssetCheckResult(
        check_name="confidence_in_unit_range",
        passed=tally.confidence_outside == 0,
        severity=AssetCheckSeverity.ERROR,
        metadata={"outside_0_1": tally.confidence_outside},
    )
    share = tally.failed / tally.rows if tally.rows else 0.0
    yield AssetCheckResult(
        check_name="failed_share_under_bound",
        passed=share <= MAX_FAILED_SHARE,
        metadata={
            "failed": tally.failed,
            "failed_share": round(share, 4),
            "bound": setting(MAX_FAILED_SHARE),
        },
    )


@dataclass
class _DayLabeler:
    """Labels one day when called; each partition records its own numbers, a range included."""

    context: AssetExecutionContext
    agent: Any
    cleaned_texts: DayFrames
    loop: asyncio.Runner
    progress: Progress
    tally: LabelTally
    usage_before: dict = field(default_factory=dict)
    reuse: StoredDays | None = None

    def __call__(self, key: str) -> pd.DataFrame | KeptDay:
        started = time.perf_counter()
        kept, why = self.reuse.kept(key) if self.reuse else (None, "labelled")
        if kept is not None:
            self.progress.advance(self.cleaned_texts.row_count(key))
            self.context.add_asset_metadata(
                {"labelled": why, "rows": kept.rows, "dagster/row_count": kept.rows},
                partition_key=key,
            )
            return kept
        agent = self.agent
        # A day of a range no log reached has no cleaned texts: it is labelled as no rows.
        cleaned = self.cleaned_texts.get(key)
        if cleaned is None:
            cleaned = _no_cleaned_texts()
        # A slice at a time: the per-text results are Python objects, several times the size
        # of the rows they become, so only one slice's are alive at once.
        frames, reports = [], []
        for start in range(0, max(len(cleaned), 1), LABEL_SLICE_ROWS):
            piece = cleaned.iloc[start : start + LABEL_SLICE_ROWS]
            results = self.loop.run(agent.classify_dataframe(piece, progress=self.progress))
            reports.append(agent.cascade_report(results))
            frames.append(results_to_frame(results))
            del results
        # Carry who and when along: the dataset writer can group by user.
        frame = (frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)).merge(
            cleaned[["row_id", "ts", "user_id"]].drop_duplicates("row_id"),
            on="row_id",
            how="left",
        )
        del frames
        report = _summed(reports)
        # The usage meter counts since the agent was built: this day's share is the change.
        usage = _numbers(report.usage)
        report.usage = {k: v - self.usage_before.get(k, 0) for k, v in usage.items()}
        self.usage_before = usage
        self.tally.add(frame)
        # Only a day with nothing left to label can be kept by a later run: no failed or
        # deferred row, and no fallback model's answer standing in while the model was down.
        stand_ins = (frame["label_origin"] == LabelOrigin.LLM.value) & (
            frame["label_source"] != agent.config.model
        )
        if self.reuse is not None:
            left = report.failed or report.deferred or stand_ins.any()
            frame.attrs[MADE_FROM] = LEFT_TO_LABEL if left else self.reuse.made_from[key]
        self.context.add_asset_metadata(
            _day_metadata(agent, frame, report)
            | {"labelled": why, "seconds": round(time.perf_counter() - started, 3)},
            partition_key=key,
        )
        return frame


def _no_cleaned_texts() -> pd.DataFrame:
    """A day without cleaned texts, in the columns (and `ts` type) a labels day carries."""
    text = pd.Series(dtype=object)
    return pd.DataFrame(
        {
            "row_id": text,
            "text": text,
            "ts": pd.Series(dtype="datetime64[ns, UTC]"),
            "user_id": text,
        }
    )


def _summed(reports: list[CascadeReport]) -> CascadeReport:
    """One report of a day's slices: the counts added up, the usage meter's last snapshot."""
    counts = {
        name: sum(getattr(report, name) for report in reports)
        for name in CascadeReport.model_fields
        if name != "usage"
    }
    return CascadeReport(**counts, usage=reports[-1].usage)


def _numbers(usage: dict) -> dict[str, float]:
    return {k: v for k, v in usage.items() if isinstance(v, int | float)}


def _day_metadata(agent, frame: pd.DataFrame, report: CascadeReport) -> dict:
    labelled = frame[frame["status"] == "labeled"]
    usage = report.usage
    return {
        "rows": len(frame),
        **table_metadata(frame),
        "model": agent.config.model,
        "labeler_version": agent.version,
        "label_distribution": counts_table(labelled["domain"].value_counts().to_dict(), "domain"),
        "label_chart": bar_chart(labelled["domain"].value_counts().to_dict()),
        "confidence_histogram": _histogram(labelled["confidence"]),
        "mean_confidence": float(labelled["confidence"].mean()) if len(labelled) else 0.0,
        # How the cascade routed the texts (local model, LLM), not how many are trusted: that
        # is the audit's verdict, in trusted_labels.
        "cascade_routing_shares": counts_table(
            {k: round(v, 4) for k, v in report.shares.items()}, "route", "share"
        ),
        "failed": report.failed,
        "deferred": report.deferred,
        "cache_hit_rate": round(report.cache_hit_rate, 4),
        "llm_requests": int(usage.get("requests", 0)),
        "input_tokens": int(usage.get("input_tokens", 0)),
        "output_tokens": int(usage.get("output_tokens", 0)),
        "cost": float(usage.get("cost", 0.0)),
        "tokens_per_llm_label": round(report.tokens_per_llm_label, 1),
        "cost_per_label": report.cost_per_label,
        "preview": preview(
            labelled.sort_values("confidence"), ["domain", "confidence", "label_source", "text"]
        ),
    }


def _histogram(confidence: pd.Series) -> MetadataValue:
    counts, edges = np.histogram(confidence, bins=10, range=(0.0, 1.0))
    bins = {
        f"{lo:.1f}-{hi:.1f}": int(n)
        for lo, hi, n in zip(edges[:-1], edges[1:], counts, strict=False)
    }
    return bar_chart(bins if len(confidence) else {}, largest_first=False)


def build_labels_asset(partitions: DailyPartitionsDefinition) -> AssetsDefinition:
    """`labels` over the given daily partitions."""
    return asset(
        partitions_def=partitions,
        backfill_policy=BackfillPolicy.single_run(),
        group_name="labeling",
        deps=[taxonomy],
        # A range run labels one day at a time: each day's cleaned texts are read when it starts.
        ins={"cleaned_texts": AssetIn(metadata={READ_ON_ACCESS: True})},
        # The prompt and the local model's recipe: a change to either makes labels stale.
        code_version=f"{PROMPT_VERSION}+{MODEL_VERSION}",
        automation_condition=LABELS_CONDITION,
        kinds={"pydantic", "scikitlearn", "parquet"},
        dagster_type=DailyLabelFrames,
        check_specs=[
            AssetCheckSpec(
                "domains_in_taxonomy", asset="labels", description="every domain is a taxonomy id"
            ),
            AssetCheckSpec("confidence_in_unit_range", asset="labels", description="0 <= p <= 1"),
            AssetCheckSpec(
                "failed_share_under_bound",
                asset="labels",
                description=f"at most {MAX_FAILED_SHARE:.0%} of the rows failed to get a label",
            ),
        ],
    )(labels)
