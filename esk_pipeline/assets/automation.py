"""Declarative automation, opt-in with APP_AUTOMATION=true (off by default: it spends LLM calls).

When on, Dagster's automation sensor keeps the graph current by itself: the latest day's
cleaned texts and labels follow new raw logs, a newly observed taxonomy or set of human
decisions, or a new labeler code version; the review queue, synthetic samples, splits and the
dataset version follow their parents (`eager()`). Older days are not re-labelled on their own:
the UI shows them stale, and a backfill of the stale partitions brings them up to date.
"""

from dagster import AutomationCondition

from esk_pipeline.settings import get_settings

LABELS_CONDITION = AutomationCondition.eager() | (
    AutomationCondition.code_version_changed() & AutomationCondition.in_latest_time_window()
)


def when_enabled(condition: AutomationCondition) -> AutomationCondition | None:
    """`condition` when APP_AUTOMATION is on, else None (the asset is only run when asked)."""
    return condition if get_settings().app.automation else None


def eager_when_enabled() -> AutomationCondition | None:
    return when_enabled(AutomationCondition.eager())
