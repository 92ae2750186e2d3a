"""The domain taxonomy: data, not code. Loaded from YAML or JSON; any language, any size."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import yaml
from pydantic import BaseModel, Field, ValidationError, field_validator, model_validator

from esk_pipeline.pipeline.plain_yaml import load_plain_yaml

__all__ = ["DEFAULT_TAXONOMY_PATH", "OTHER_DOMAIN_IDS", "Domain", "Taxonomy", "TaxonomyError"]

OTHER_DOMAIN_IDS = ("other", "out_of_scope")
# Where the project keeps its taxonomy (APP_TAXONOMY_PATH), relative to the working folder.
DEFAULT_TAXONOMY_PATH = Path("data/taxonomy.yaml")


class TaxonomyError(ValueError):
    """A taxonomy file that cannot be used; the message names the file and the problem."""


class Domain(BaseModel):
    id: str = Field(pattern=r"^[a-z0-9_]+$")
    name: str
    description: str = ""
    examples: list[str] = Field(default_factory=list)

    @field_validator("examples")
    @classmethod
    def _strip_examples(cls, examples: list[str]) -> list[str]:
        return [e.strip() for e in examples if e and e.strip()]


class Taxonomy(BaseModel):
    domains: list[Domain] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_ids(self) -> Taxonomy:
        seen: set[str] = set()
        for domain in self.domains:
            if domain.id in seen:
                raise ValueError(f"domain id {domain.id!r} appears more than once")
            seen.add(domain.id)
        return self

    @classmethod
    def load(cls, path: str | Path) -> Taxonomy:
        """Read a taxonomy from a `.yaml`/`.yml` or `.json` file with a `domains` list.

        YAML anchors and aliases are refused (`plain_yaml`), so an alias bomb is a
        TaxonomyError before anything is expanded."""
        path = Path(path)
        try:
            raw = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise TaxonomyError(f"{path}: cannot read taxonomy ({exc.strerror})") from exc
        try:
            data = json.loads(raw) if path.suffix == ".json" else load_plain_yaml(raw)
        except (json.JSONDecodeError, yaml.YAMLError) as exc:
            raise TaxonomyError(f"{path}: not valid {path.suffix.lstrip('.')}: {exc}") from exc
        if not isinstance(data, dict) or "domains" not in data:
            raise TaxonomyError(f"{path}: expected a mapping with a 'domains' list")
        try:
            return cls.model_validate({"domains": data["domains"]})
        except ValidationError as exc:
            raise TaxonomyError(f"{path}: invalid taxonomy: {exc}") from exc

    @property
    def ids(self) -> list[str]:
        return [d.id for d in self.domains]

    def get(self, domain_id: str) -> Domain:
        for domain in self.domains:
            if domain.id == domain_id:
                return domain
        raise KeyError(f"unknown domain {domain_id!r}; known: {', '.join(self.ids)}")

    def __contains__(self, domain_id: object) -> bool:
        return domain_id in self.ids

    @property
    def other_id(self) -> str | None:
        """The out-of-scope domain, when the taxonomy has one."""
        return next((d.id for d in self.domains if d.id in OTHER_DOMAIN_IDS), None)

    @property
    def fingerprint(self) -> str:
        """A short hash of the content: changes whenever a label could change."""
        payload = json.dumps(self.model_dump(), ensure_ascii=False, sort_keys=True)
        return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:16]

    def examples(self) -> list[tuple[str, str]]:
        """All (text, domain id) example pairs."""
        return [(text, d.id) for d in self.domains for text in d.examples]
