"""The Dagster assets, one module per stage.

The code location uses some Dagster features on purpose that Dagster still labels beta
(single-run backfill policies, observable source assets, an output's own data version) or
preview (declarative automation conditions). Their warnings are silenced here, before any
asset module runs its decorators, so the people using the UI and the CLI see none; any other
warning still shows.
"""

import warnings

from dagster import BetaWarning, PreviewWarning

for _feature in (
    "observable_source_asset",
    "backfill_policy",
    "automation_condition",
    "data_version",
):
    warnings.filterwarnings("ignore", message=f".*`{_feature}`", category=BetaWarning)
    warnings.filterwarnings("ignore", message=f".*`{_feature}`", category=PreviewWarning)
