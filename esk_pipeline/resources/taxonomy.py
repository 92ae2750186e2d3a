"""The taxonomy file as a resource: every labelling stage reads the same one."""

from __future__ import annotations

from dagster import ConfigurableResource
from pydantic import Field

from esk_pipeline.pipeline.taxonomy import Taxonomy
from esk_pipeline.settings import get_settings


class TaxonomyResource(ConfigurableResource):
    path: str | None = Field(default=None, description="Overrides APP_TAXONOMY_PATH.")

    def load(self) -> Taxonomy:
        return Taxonomy.load(self.path or get_settings().app.taxonomy_path)
