"""Where human decisions and datasets live: the review store and the dataset store."""

from __future__ import annotations

import pandas as pd
from dagster import ConfigurableIOManager, ConfigurableResource, InputContext, OutputContext
from pydantic import Field

from esk_pipeline import configs
from esk_pipeline.pipeline import (
    DataStorage,
    DataStorageConfig,
    DataWriter,
    DataWriterConfig,
    ReviewDataset,
    ReviewDatasetConfig,
)
from esk_pipeline.pipeline.taxonomy import Taxonomy
from esk_pipeline.resources._fields import resource_values, secret_env, to_config
from esk_pipeline.resources.taxonomy import TaxonomyResource
from esk_pipeline.settings import Settings


class ReviewStoreResource(ConfigurableResource):
    """The review queue's database: REVIEW_DATABASE_URL, else SQLite under `data_dir`."""

    data_dir: str
    database_url: str | None = Field(default=None, description="REVIEW_DATABASE_URL (an env var)")
    max_queue_size: int
    lease_seconds: int
    reviews_per_item: int
    second_opinion_confidence: float | None = Field(
        description="a lone correction of a model this sure waits for a second reviewer"
    )
    sensor_min_new_reviews: int = Field(
        description="new decisions the review sensor waits for before a dataset refresh"
    )

    @classmethod
    def from_settings(cls, settings: Settings) -> ReviewStoreResource:
        return cls(
            **resource_values(
                cls,
                configs.review_config(settings),
                settings.review,
                database_url=secret_env(settings.review.database_url, "REVIEW_DATABASE_URL"),
            )
        )

    def open(self, taxonomy: Taxonomy) -> ReviewDataset:
        return ReviewDataset(to_config(self, ReviewDatasetConfig), taxonomy)


class ReviewDecisionsIOManager(ConfigurableIOManager):
    """Loads the `verified_labels` source asset: the review store's current decisions.

    People write decisions through the API, so nothing here is ever stored by a run: every
    asset that takes `verified_labels` as an input reads the store as it is at load time.
    """

    review_store: ReviewStoreResource
    taxonomy_file: TaxonomyResource

    def handle_output(self, context: OutputContext, obj: object) -> None:
        raise NotImplementedError("verified_labels is observed, never materialised")

    def load_input(self, context: InputContext) -> pd.DataFrame:
        with self.review_store.open(self.taxonomy_file.load()) as store:
            return store.verified_labels()


class DatasetStoreResource(ConfigurableResource):
    """Where splits are written (DATA_WRITER_*) and versions kept (DATA_STORAGE_*)."""

    output_dir: str
    eval_fraction: float
    min_eval_samples: int
    min_samples_per_domain: int
    balance_domains: bool
    max_samples_per_domain: int | None
    balance_ratio: float
    small_domain_policy: str = Field(description='"drop" or "train_only"')
    shard_size: int | None
    include_metadata: bool
    seed: int
    group_by_user: bool
    storage_dir: str
    max_versions: int
    auto_archive_old: bool
    max_import_bytes: int

    @classmethod
    def from_settings(cls, settings: Settings) -> DatasetStoreResource:
        writer = configs.writer_config(settings)
        return cls(**resource_values(cls, writer, configs.storage_config(settings)))

    def writer(self, taxonomy: Taxonomy, *, precision_target: float) -> DataWriter:
        """The writer for a run; machine labels enter train at `precision_target` (the trust
        policy's). Quality rules are reported by the split asset's blocking checks instead of
        raising, so a bad split is visible in the UI and is never versioned."""
        config = to_config(
            self, DataWriterConfig, validate_quality=False, precision_target=precision_target
        )
        return DataWriter(config, taxonomy)

    def storage(self) -> DataStorage:
        return DataStorage(to_config(self, DataStorageConfig))
