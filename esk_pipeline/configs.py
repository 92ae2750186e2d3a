"""The one place `Settings` become library configs.

Library configs (`esk_pipeline.pipeline`) have literal defaults and never read the environment.
Everything that runs with the project's settings (the Dagster resources built in
`definitions.py`, the API, the CLI) builds its configs here, so a new setting is added in
`settings.py` and, when its name differs from the config field, mapped once below.

A field takes the value of the same-named setting in the groups given for its config, first
group first; names that differ are mapped explicitly; `overrides` win over both. Each function
imports its config where it is called, so a CLI command pays only for the component it uses.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from pydantic import BaseModel

from esk_pipeline.settings import Settings

if TYPE_CHECKING:
    from esk_pipeline.pipeline import (
        AugmenterConfig,
        DataStorageConfig,
        DataWriterConfig,
        ETLConfig,
        LabelerConfig,
        ReviewDatasetConfig,
    )
    from esk_pipeline.pipeline.llm.usage import UsageMeter
    from esk_pipeline.pipeline.trust import TrustConfig

ConfigT = TypeVar("ConfigT", bound=BaseModel)
_MIB = 1024 * 1024


def first_values(names: Iterable[str], *sources: BaseModel) -> dict[str, Any]:
    """For each name some source has as a field, the first such source's value."""
    values: dict[str, Any] = {}
    for name in names:
        source = next((s for s in sources if name in type(s).model_fields), None)
        if source is not None:
            values[name] = getattr(source, name)
    return values


def config_from(config_cls: type[ConfigT], *groups: BaseModel, **overrides: Any) -> ConfigT:
    """Build `config_cls` from settings groups: each field takes the first group's value.

    Fields no group has keep the config's own default; `overrides` win over everything.
    """
    return config_cls(**(first_values(config_cls.model_fields, *groups) | overrides))


def _endpoint(settings: Settings, agent: Literal["labeler", "augmenter"]) -> dict[str, Any]:
    return settings.llm.endpoint_for(agent).model_dump()


def etl_config(settings: Settings, **overrides: Any) -> ETLConfig:
    """ETL_*; an XLSX/Parquet file may unpack to ETL_MAX_UNPACKED_RATIO x APP_MAX_UPLOAD_MB."""
    from esk_pipeline.pipeline import ETLConfig

    unpacked = settings.etl.max_unpacked_ratio * settings.app.max_upload_mb * _MIB
    return config_from(ETLConfig, settings.etl, **({"max_unpacked_bytes": unpacked} | overrides))


def labeler_config(settings: Settings, **overrides: Any) -> LabelerConfig:
    """LABELER_*, the labeler's endpoint (LLM_LABELER_*, else LLM_*) and the CACHE_* settings."""
    from esk_pipeline.pipeline import LabelerConfig

    mapped = _endpoint(settings, "labeler") | {
        "use_cache": settings.labeler.use_cache and settings.cache.enabled,
        "cache_dir": settings.cache.dir,
        "cache_ttl_hours": settings.cache.ttl_hours,
    }
    return config_from(LabelerConfig, settings.labeler, **(mapped | overrides))


def augmenter_config(settings: Settings, **overrides: Any) -> AugmenterConfig:
    """AUGMENTER_*, the augmenter's endpoint (LLM_AUGMENTER_*, else LLM_*), CACHE_* and the
    ETL's text length bounds."""
    from esk_pipeline.pipeline import AugmenterConfig

    mapped = _endpoint(settings, "augmenter") | {
        "use_cache": settings.cache.enabled,
        "cache_dir": settings.cache.dir,
        "cache_ttl_hours": settings.cache.ttl_hours,
        # No sample may be a text the ETL would have dropped.
        "min_text_length": settings.etl.min_text_length,
        "max_text_length": settings.etl.max_text_length,
    }
    return config_from(AugmenterConfig, settings.augmenter, **(mapped | overrides))


def usage_meter(settings: Settings) -> UsageMeter:
    """A fresh meter for one run, with LLM_*_PRICE_PER_1K and the LLM_MAX_*_PER_RUN budget."""
    from esk_pipeline.pipeline.llm.usage import UsageMeter

    llm = settings.llm
    return UsageMeter(
        input_price_per_1k=llm.input_price_per_1k,
        output_price_per_1k=llm.output_price_per_1k,
        max_tokens=llm.max_tokens_per_run,
        max_requests=llm.max_requests_per_run,
    )


def review_config(settings: Settings, **overrides: Any) -> ReviewDatasetConfig:
    """REVIEW_*; the default SQLite store lives under APP_DATA_DIR."""
    from esk_pipeline.pipeline import ReviewDatasetConfig

    mapped = {"data_dir": settings.app.data_dir} | overrides
    return config_from(ReviewDatasetConfig, settings.review, **mapped)


def writer_config(settings: Settings, **overrides: Any) -> DataWriterConfig:
    """DATA_WRITER_*, and TRUST_PRECISION_TARGET for what machine labels may enter train."""
    from esk_pipeline.pipeline import DataWriterConfig

    return config_from(DataWriterConfig, settings.data_writer, settings.trust, **overrides)


def storage_config(settings: Settings, **overrides: Any) -> DataStorageConfig:
    """DATA_STORAGE_*; imports may unpack to DATA_STORAGE_MAX_IMPORT_MB."""
    from esk_pipeline.pipeline import DataStorageConfig

    mapped = {"max_import_bytes": settings.data_storage.max_import_mb * _MIB} | overrides
    return config_from(DataStorageConfig, settings.data_storage, **mapped)


def trust_config(settings: Settings, **overrides: Any) -> TrustConfig:
    """TRUST_*: what a label must show before it enters a dataset."""
    from esk_pipeline.pipeline.trust import TrustConfig

    return config_from(TrustConfig, settings.trust, **overrides)
