"""Where human decisions and datasets live: the review store and the dataset store."""

from __future__ import annotations

import pandas as pd
from dagster import ConfigurableIOManager, InputContext, OutputContext

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
from esk_pipeline.resources._fields import config_of, fields_of, secret_env, values_of
from esk_pipeline.resources.taxonomy import TaxonomyResource
from esk_pipeline.settings import ReviewSettings, Settings


class ReviewStoreResource(fields_of(ReviewDatasetConfig, ReviewSettings)):
    """The review queue's database: REVIEW_DATABASE_URL, else SQLite under `data_dir`."""

    @classmethod
    def from_settings(cls, settings: Settings) -> ReviewStoreResource:
        return cls(
            **values_of(cls, configs.review_config(settings), settings.review),
            database_url=secret_env(settings.review.database_url, "REVIEW_DATABASE_URL"),
        )

    def open(self, taxonomy: Taxonomy) -> ReviewDataset:
        return ReviewDataset(config_of(self, ReviewDatasetConfig), taxonomy)


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


class DatasetStoreResource(
    fields_of(
        DataWriterConfig,
        DataStorageConfig,
        # Given per run: the trust policy's target, and checks instead of raising (below).
        exclude={"precision_target", "validate_quality"},
    )
):
    """Where splits are written (DATA_WRITER_*) and versions kept (DATA_STORAGE_*)."""

    @classmethod
    def from_settings(cls, settings: Settings) -> DatasetStoreResource:
        writer, storage = configs.writer_config(settings), configs.storage_config(settings)
        return cls(**values_of(cls, writer, storage))

    def writer(self, taxonomy: Taxonomy, *, precision_target: float) -> DataWriter:
        """The writer for a run; machine labels enter train at `precision_target` (the trust
        policy's). Quality rules are reported by the split asset's blocking checks instead of
        raising, so a bad split is visible in the UI and is never versioned."""
        config = config_of(
            self, DataWriterConfig, validate_quality=False, precision_target=precision_target
        )
        return DataWriter(config, taxonomy)

    def storage(self) -> DataStorage:
        return DataStorage(config_of(self, DataStorageConfig))
