"""The taxonomy file as a resource: every labelling stage reads the same one."""

from __future__ import annotations

from dagster import ConfigurableResource

from esk_pipeline.pipeline.taxonomy import DEFAULT_TAXONOMY_PATH, Taxonomy
from esk_pipeline.settings import Settings


class TaxonomyResource(ConfigurableResource):
    path: str = str(DEFAULT_TAXONOMY_PATH)

    @classmethod
    def from_settings(cls, settings: Settings) -> TaxonomyResource:
        return cls(path=str(settings.app.taxonomy_path))

    def load(self) -> Taxonomy:
        return Taxonomy.load(self.path)
