"""Declarative automation, opt-in with APP_AUTOMATION=true (off by default: it spends LLM calls).

Every asset declares how it follows its parents; `definitions.build_defs` keeps these conditions
only when automation is on. Then Dagster's automation sensor keeps the graph current by itself:
the latest day's cleaned texts and labels follow new raw logs, a newly observed taxonomy or set
of human decisions, or a new labeler code version; the review queue, synthetic samples, splits
and the dataset version follow their parents (`eager()`). Older days are not re-labelled on
their own: the UI shows them stale, and a backfill of the stale partitions brings them up to
date.
"""

from collections.abc import Sequence

from dagster import AssetsDefinition, AssetSpec, AutomationCondition, SourceAsset

Asset = AssetSpec | AssetsDefinition | SourceAsset

EAGER = AutomationCondition.eager()
LABELS_CONDITION = EAGER | (
    AutomationCondition.code_version_changed() & AutomationCondition.in_latest_time_window()
)


def without_automation(assets: Sequence[Asset]) -> list[Asset]:
    """`assets` with their automation conditions removed: they run only when asked."""
    return [_without_condition(asset) for asset in assets]


def _without_condition(asset: Asset) -> Asset:
    if isinstance(asset, AssetSpec):
        return asset.replace_attributes(automation_condition=None)
    if isinstance(asset, AssetsDefinition):
        return asset.map_asset_specs(
            lambda spec: spec.replace_attributes(automation_condition=None)
        )
    return asset  # an observable source asset: observed, never automated
