"""The Dagster code location: wires assets, checks, resources, sensors and jobs; nothing else."""

from dagster import Definitions, load_asset_checks_from_modules, load_assets_from_modules

from esk_pipeline.assets import augmentation, checks, datasets, ingest, labeling, review, trust
from esk_pipeline.resources.clickhouse import ClickHouseResource
from esk_pipeline.resources.io_manager import AssetFilesIOManager
from esk_pipeline.resources.llm import AugmenterResource, LabelerResource
from esk_pipeline.resources.stores import (
    DatasetStoreResource,
    ReviewDecisionsIOManager,
    ReviewStoreResource,
)
from esk_pipeline.resources.taxonomy import TaxonomyResource
from esk_pipeline.sensors import (
    daily_labels_job,
    dataset_refresh_job,
    enough_new_reviews_sensor,
    new_log_days_sensor,
    taxonomy_changed_sensor,
    taxonomy_observation_job,
)

defs = Definitions(
    assets=load_assets_from_modules([ingest, labeling, review, trust, augmentation, datasets]),
    asset_checks=load_asset_checks_from_modules([checks]),
    jobs=[daily_labels_job, taxonomy_observation_job, dataset_refresh_job],
    sensors=[new_log_days_sensor, taxonomy_changed_sensor, enough_new_reviews_sensor],
    resources={
        "io_manager": AssetFilesIOManager(),
        "clickhouse": ClickHouseResource(),
        "taxonomy_file": TaxonomyResource(),
        "labeler": LabelerResource(),
        "augmenter": AugmenterResource(),
        "review_store": ReviewStoreResource(),
        "review_decisions_io_manager": ReviewDecisionsIOManager(
            review_store=ReviewStoreResource(), taxonomy_file=TaxonomyResource()
        ),
        "dataset_store": DatasetStoreResource(),
    },
)
