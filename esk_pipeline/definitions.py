"""The Dagster code location: wires assets, checks, resources, sensors and jobs; nothing else.

Every resource is built here from the settings, so the launchpad shows the values a run will
use; secrets appear as the names of the environment variables they are read from.
"""

from typing import Any

from dagster import Definitions, load_asset_checks_from_modules, load_assets_from_modules

from esk_pipeline.assets import augmentation, checks, datasets, ingest, labeling, review, trust
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
    daily_labels_job,
    dataset_refresh_job,
    enough_new_reviews_sensor,
    log_etl_job,
    new_log_days_sensor,
    taxonomy_changed_sensor,
    taxonomy_observation_job,
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
    settings.apply_log_level()
    return Definitions(
        # esk_logs is an AssetSpec (an external asset), which module loading does not collect.
        assets=[
            ingest.esk_logs,
            *load_assets_from_modules([ingest, labeling, review, trust, augmentation, datasets]),
        ],
        asset_checks=load_asset_checks_from_modules([checks]),
        jobs=[daily_labels_job, log_etl_job, taxonomy_observation_job, dataset_refresh_job],
        sensors=[new_log_days_sensor, taxonomy_changed_sensor, enough_new_reviews_sensor],
        resources=build_resources(settings),
    )


defs = build_defs(get_settings())
