"""Where human decisions and datasets live: the review store and the dataset store."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from dagster import ConfigurableIOManager, ConfigurableResource, InputContext, OutputContext
from pydantic import Field

from esk_pipeline.pipeline.data_storage import DataStorage, DataStorageConfig
from esk_pipeline.pipeline.data_writer import DataWriter, DataWriterConfig
from esk_pipeline.pipeline.review import ReviewDataset, ReviewDatasetConfig
from esk_pipeline.pipeline.taxonomy import Taxonomy
from esk_pipeline.resources.taxonomy import TaxonomyResource


class ReviewStoreResource(ConfigurableResource):
    """The review queue's database (REVIEW_DATABASE_URL, else SQLite under APP_DATA_DIR)."""

    data_dir: str | None = Field(default=None, description="Overrides APP_DATA_DIR.")

    def open(self, taxonomy: Taxonomy) -> ReviewDataset:
        config = ReviewDatasetConfig(**({"data_dir": Path(self.data_dir)} if self.data_dir else {}))
        return ReviewDataset(config, taxonomy)


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
    """Where splits are written (DATA_WRITER_OUTPUT_DIR) and versions kept (DATA_STORAGE_*)."""

    output_dir: str | None = Field(default=None, description="Overrides DATA_WRITER_OUTPUT_DIR.")
    storage_dir: str | None = Field(default=None, description="Overrides DATA_STORAGE_STORAGE_DIR.")

    def writer(self, taxonomy: Taxonomy) -> DataWriter:
        overrides = {"output_dir": Path(self.output_dir)} if self.output_dir else {}
        # Quality rules are reported by the split asset's blocking checks instead of raising,
        # so a bad split is visible in the UI and is never versioned.
        return DataWriter(DataWriterConfig(validate_quality=False, **overrides), taxonomy)

    def storage(self) -> DataStorage:
        overrides = {"storage_dir": Path(self.storage_dir)} if self.storage_dir else {}
        return DataStorage(DataStorageConfig(**overrides))
