"""The Dagster code location: wires assets, checks, resources, sensors and jobs; nothing else.

Every resource is built here from the settings, so the launchpad shows the values a run will
use; secrets appear as the names of the environment variables they are read from.
"""

from typing import Any

from dagster import (
    Definitions,
    definitions,
    load_asset_checks_from_modules,
    load_assets_from_modules,
)

from esk_pipeline.assets import augmentation, checks, datasets, labeling, review, trust
from esk_pipeline.assets.automation import without_automation
from esk_pipeline.assets.ingest import build_ingest_assets
from esk_pipeline.assets.labeling import build_labels_asset
from esk_pipeline.assets.partitions import daily_partitions
from esk_pipeline.jobs import build_jobs
from esk_pipeline.resources.clickhouse import ClickHouseResource
from esk_pipeline.resources.etl import ETLResource
from esk_pipeline.resources.io_manager import AssetFilesIOManager
from esk_pipeline.resources.llm import AugmenterResource, LabelerResource
from esk_pipeline.resources.stores import (
    DatasetStoreResource,
    ReviewDecisionsIOManager,
    ReviewStoreResource,
)
from esk_pipeline.resources.taxonomy import TaxonomyResource
from esk_pipeline.resources.trust import TrustPolicyResource
from esk_pipeline.sensors import (
    enough_new_reviews_sensor,
    new_log_days_sensor,
    taxonomy_changed_sensor,
)
from esk_pipeline.settings import Settings, get_settings


def build_resources(settings: Settings) -> dict[str, Any]:
    taxonomy_file = TaxonomyResource.from_settings(settings)
    review_store = ReviewStoreResource.from_settings(settings)
    return {
        "io_manager": AssetFilesIOManager.from_settings(settings),
        "clickhouse": ClickHouseResource.from_settings(settings),
        "etl": ETLResource.from_settings(settings),
        "taxonomy_file": taxonomy_file,
        "labeler": LabelerResource.from_settings(settings),
        "augmenter": AugmenterResource.from_settings(settings),
        "review_store": review_store,
        "review_decisions_io_manager": ReviewDecisionsIOManager(
            review_store=review_store, taxonomy_file=taxonomy_file
        ),
        "trust_policy": TrustPolicyResource.from_settings(settings),
        "dataset_store": DatasetStoreResource.from_settings(settings),
    }


def build_defs(settings: Settings) -> Definitions:
    """Everything the code location holds, for these settings (and nothing read elsewhere)."""
    settings.apply_log_level()
    partitions = daily_partitions(settings.app.partitions_start_date)
    assets = [
        *build_ingest_assets(partitions),
        build_labels_asset(partitions),
        *load_assets_from_modules([labeling, review, trust, augmentation, datasets]),
    ]
    return Definitions(
        assets=assets if settings.app.automation else without_automation(assets),
        asset_checks=load_asset_checks_from_modules([checks]),
        jobs=build_jobs(settings),
        sensors=[new_log_days_sensor, taxonomy_changed_sensor, enough_new_reviews_sensor],
        resources=build_resources(settings),
    )


@definitions
def defs() -> Definitions:
    """The code location Dagster loads (`-m esk_pipeline`, workspace.yaml), built from the
    process's settings when it is loaded, not when this module is imported."""
    return build_defs(get_settings())
