"""Every text's label with its origin, its estimated probability of being right and its trust
verdict; plus the evidence (calibration per tier, reviewer reliability, audit) as a report.

The labels are stored as parts, one per labels day (`pipeline.parts`): a part whose inputs did
not change since the last run is taken as it was, so a new day costs about that day."""

from collections import Counter
from typing import Any

import pandas as pd
from dagster import (
    AssetExecutionContext,
    AssetIn,
    AssetKey,
    AssetOut,
    IOManager,
    MetadataValue,
    Output,
    ResourceParam,
    multi_asset,
)

from esk_pipeline.assets.frame_types import TrustedLabelParts
from esk_pipeline.assets.metadata import counts_table, preview, table_metadata
from esk_pipeline.assets.progress import step_progress
from esk_pipeline.pipeline.local_model import LocalModel
from esk_pipeline.pipeline.parts import FrameParts, changes_since, derived, digest
from esk_pipeline.pipeline.trust import Calibration, TrustReport, assess_label_days
from esk_pipeline.resources.io_manager import READ_ON_ACCESS, DayFrames, ParquetJsonIOManager
from esk_pipeline.resources.stores import ReviewStoreResource
from esk_pipeline.resources.taxonomy import TaxonomyResource
from esk_pipeline.resources.trust import TrustPolicyResource


@multi_asset(
    group_name="review",
    # Every day's labels, read one day at a time (`assess_label_days`).
    ins={"labels": AssetIn(metadata={READ_ON_ACCESS: True})},
    outs={
        "trusted_labels": AssetOut(
            kinds={"parquet"},
            dagster_type=TrustedLabelParts,
            description="One label per text: origin, p_correct and the trust verdict "
            "(trusted, queued or excluded, with its reason); a part per labels day",
        ),
        "label_trust": AssetOut(
            kinds={"json"},
            dagster_type=TrustReport,
            description="Calibration per tier, reviewer reliability, audit progress, doubts",
        ),
    },
)
def trusted_labels(
    context: AssetExecutionContext,
    labels: DayFrames,
    verified_labels: pd.DataFrame,
    taxonomy_file: TaxonomyResource,
    review_store: ReviewStoreResource,
    trust_policy: TrustPolicyResource,
    io_manager: ResourceParam[IOManager],
):
    """Resolve every text's label, measure how far each can be trusted on the audit, and
    give each its one verdict (`pipeline.trust.verdict`)."""
    taxonomy = taxonomy_file.load()
    with review_store.open(taxonomy) as store:
        votes = store.decision_votes()
    # Whole passes over the days (resolution, calibration, verdicts): an opening and a
    # closing line.
    progress = step_progress(context, len(labels), "trusted_labels", unit="days")
    # A model of the labels' recipe on every decision: its temperature sets the scale of the
    # out-of-fold scores the calibration is fitted on. (The labels' own model is fitted on a
    # snapshot of the decisions, refitted as they grow, so its temperature is close to this.)
    temperature = (
        LocalModel()
        .fit(taxonomy, zip(verified_labels["text"], verified_labels["domain"], strict=True))
        .temperature
    )
    config = trust_policy.config()
    # Parts go straight to where the IO manager keeps them; last run's are reused from there.
    store = (
        io_manager.part_store(AssetKey("trusted_labels"))
        if isinstance(io_manager, ParquetJsonIOManager)
        else None
    )
    previous = (store.manifest() or {}) if store is not None else {}
    assessment = assess_label_days(
        labels,
        verified_labels,
        votes,
        taxonomy,
        config,
        temperature=temperature,
        store=store,
        previous=previous,
    )
    changes = changes_since(previous, assessment.parts.records)
    progress.advance(len(labels))
    progress.close()
    report = TrustReport.of(assessment, config)
    by_verdict = {
        f"{verdict}: {reason}": n
        for verdict, reasons in report.verdicts.items()
        for reason, n in reasons.items()
    }
    yield Output(
        assessment.parts,
        output_name="trusted_labels",
        metadata={
            **_parts_metadata(assessment.parts),
            "by_verdict": counts_table(by_verdict, "verdict: reason"),
            # The lineage of this value: which parts were made again, and from which changed
            # input (day, decisions, settled keys, rules = the calibration and policy).
            "parts": counts_table(Counter(c.split(":")[0] for c in changes.values()), "part"),
            "parts_changed": MetadataValue.json(
                {name: change for name, change in changes.items() if change != "unchanged"}
            ),
        },
    )
    yield Output(
        report,
        output_name="label_trust",
        metadata={
            "audited": report.audit.audited,
            "audit_progress": MetadataValue.text(str(report.audit)),
            "audit_pending": report.audit_pending,
            "tiers": MetadataValue.json(
                {name: t.model_dump() for name, t in report.tiers().items()}
            ),
            # A tier the audit does not vouch for sends all its labels to review.
            "gated_tiers": MetadataValue.json(
                sorted(_gated_tiers(assessment.model_tiers, report.calibration))
            ),
            "reviewer_accuracy": MetadataValue.json(
                {r: round(a, 4) for r, a in report.reliability.accuracy.items()}
            ),
            "overlap_items": report.reliability.overlap_items,
            "possible_label_errors": len(report.suspected_errors),
            "doubted_decisions": len(report.doubted),
        },
    )


_SHOWN = ["domain", "label_origin", "confidence", "p_correct", "verdict", "text"]


def _parts_metadata(parts: FrameParts) -> dict[str, Any]:
    """Row count, schema, trusted texts, origins and the least sure texts: from summaries of
    each part kept beside it as read (frame and overlay, `_shown`), so a part unchanged since
    the last run is neither read nor patched again."""
    rows, trusted, origins, least_sure = 0, 0, Counter(), []
    for name in parts:
        counts = _shown(parts, name, _COUNTS)
        rows += int(counts["n"].sum())
        trusted += int(counts["trusted"].sum())
        named = counts[counts["label_origin"].notna()]
        origins.update(dict(zip(named["label_origin"], named["n"].astype(int), strict=True)))
        least_sure.append(_shown(parts, name, _SHOWN_KIND))
    shown = (
        pd.concat(least_sure, ignore_index=True).sort_values("p_correct", kind="stable")
        if least_sure
        else pd.DataFrame(columns=_SHOWN)
    )
    first = next(iter(parts), None)
    schema = table_metadata(
        parts.derived(first, "trust-schema", [], lambda _: {"trust-schema": parts[first].head(0)})
        if first is not None
        else pd.DataFrame()
    )
    return {
        **schema,
        "dagster/row_count": MetadataValue.int(rows),
        "trusted": trusted,
        "by_origin": counts_table(dict(origins), "origin"),
        "preview": preview(shown, _SHOWN),
    }


_SUMMED = ["row_id", *_SHOWN, "trusted"]
# Named by the columns they keep: summaries kept with other columns are made again.
_KEPT = digest(*_SUMMED)[:8]
_TALLY, _LEAST_SURE = f"trust-tally-{_KEPT}", f"trust-least-sure-{_KEPT}"
_COUNTS, _SHOWN_KIND = f"trust-counts-{_KEPT}", f"trust-shown-{_KEPT}"


def _shown(parts: FrameParts, name: str, kind: str) -> pd.DataFrame:
    """What the metadata shows of a part as read: rows and trusted texts per origin
    (`_COUNTS`), its 10 least sure texts (`_SHOWN_KIND`). Made from its per-row summaries
    (`_part_summary`, patched by its overlay) and kept beside it by content."""

    def make() -> dict[str, pd.DataFrame]:
        tally = parts.derived(name, _TALLY, _SUMMED, _part_summary, per_row=True)
        counts = tally.groupby("label_origin", dropna=False, sort=False)["trusted"]
        least = parts.derived(name, _LEAST_SURE, _SUMMED, _part_summary, per_row=True)
        return {
            _COUNTS: counts.agg(n="size", trusted="sum").reset_index(),
            _SHOWN_KIND: least.sort_values("p_correct", kind="stable").head(10)[_SHOWN],
        }

    return derived(parts.store, parts.records[name].content, kind, make)


def _part_summary(part: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Each row's origin and whether it is trusted; the 100 least sure rows (an overlay may
    leave some out) with what the preview shows."""
    return {
        _TALLY: part[["row_id", "label_origin", "trusted"]],
        _LEAST_SURE: part.sort_values("p_correct", kind="stable").head(100)[["row_id", *_SHOWN]],
    }


def _gated_tiers(tiers: list[str], calibration: Calibration) -> set[str]:
    """Tiers that labelled something but whose audit accepts none of it (yet)."""
    return {t for t in tiers if (c := calibration.tiers.get(t)) is None or c.threshold is None}
