"""The one place `Settings` become library configs.

Library configs (`esk_pipeline.pipeline`) never read the environment. Each settings group
inherits the library's options class for its component (`esk_pipeline.pipeline.options`), so a
config takes those fields as they are, plus the values the project wires in from other groups
(paths, the endpoint, bounds derived from other settings), named below. Everything that runs with
the project's settings (the Dagster resources built in `definitions.py`, the API, the CLI)
builds its configs here. Each function imports its config where it is called, so a CLI command
pays only for the component it uses.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel

from esk_pipeline.pipeline.options import (
    AugmenterOptions,
    DataStorageOptions,
    DataWriterOptions,
    ETLOptions,
    LabelerOptions,
    ReviewOptions,
    TrustOptions,
)
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

_MIB = 1024 * 1024


def options(group: BaseModel, options_cls: type[BaseModel]) -> dict[str, Any]:
    """The values of a settings group's `options_cls` fields (the group inherits that class)."""
    assert isinstance(group, options_cls), f"{type(group).__name__} is no {options_cls.__name__}"
    return group.model_dump(include=set(options_cls.model_fields))


def _endpoint(settings: Settings, agent: Literal["labeler", "augmenter"]) -> dict[str, Any]:
    return settings.llm.endpoint_for(agent).model_dump()


def etl_config(settings: Settings, **overrides: Any) -> ETLConfig:
    """ETL_*; an XLSX/Parquet file may unpack to ETL_MAX_UNPACKED_RATIO x APP_MAX_UPLOAD_MB."""
    from esk_pipeline.pipeline import ETLConfig

    unpacked = settings.etl.max_unpacked_ratio * settings.app.max_upload_mb * _MIB
    wired = {"max_unpacked_bytes": unpacked}
    return ETLConfig(**(options(settings.etl, ETLOptions) | wired | overrides))


def labeler_config(settings: Settings, **overrides: Any) -> LabelerConfig:
    """LABELER_*, the labeler's endpoint (LLM_LABELER_*, else LLM_*) and the CACHE_* settings."""
    from esk_pipeline.pipeline import LabelerConfig

    wired = _endpoint(settings, "labeler") | {
        "use_cache": settings.labeler.use_cache and settings.cache.enabled,
        "cache_dir": settings.cache.dir,
        "cache_ttl_hours": settings.cache.ttl_hours,
        "cache_unread_days": settings.cache.unread_days,
    }
    return LabelerConfig(**(options(settings.labeler, LabelerOptions) | wired | overrides))


def augmenter_config(settings: Settings, **overrides: Any) -> AugmenterConfig:
    """AUGMENTER_*, the augmenter's endpoint (LLM_AUGMENTER_*, else LLM_*), CACHE_* and the
    ETL's text length bounds."""
    from esk_pipeline.pipeline import AugmenterConfig

    wired = _endpoint(settings, "augmenter") | {
        "use_cache": settings.cache.enabled,
        "cache_dir": settings.cache.dir,
        "cache_ttl_hours": settings.cache.ttl_hours,
        "cache_unread_days": settings.cache.unread_days,
        # No sample may be a text the ETL would have dropped.
        "min_text_length": settings.etl.min_text_length,
        "max_text_length": settings.etl.max_text_length,
    }
    return AugmenterConfig(**(options(settings.augmenter, AugmenterOptions) | wired | overrides))


def usage_meter(settings: Settings) -> UsageMeter:
    """A fresh meter for one run, with LLM_*_PRICE_PER_1K and the LLM_MAX_*_PER_RUN budget."""
    from esk_pipeline.pipeline.llm.usage import UsageMeter

    return UsageMeter.for_budget(settings.llm)


def review_config(settings: Settings, **overrides: Any) -> ReviewDatasetConfig:
    """REVIEW_*; the default SQLite store lives under APP_DATA_DIR."""
    from esk_pipeline.pipeline import ReviewDatasetConfig

    wired = {"data_dir": settings.app.data_dir}
    return ReviewDatasetConfig(**(options(settings.review, ReviewOptions) | wired | overrides))


def writer_config(settings: Settings, **overrides: Any) -> DataWriterConfig:
    """DATA_WRITER_*, and TRUST_PRECISION_TARGET for what machine labels may enter train."""
    from esk_pipeline.pipeline import DataWriterConfig

    wired = {"precision_target": settings.trust.precision_target}
    return DataWriterConfig(
        **(options(settings.data_writer, DataWriterOptions) | wired | overrides)
    )


def storage_config(settings: Settings, **overrides: Any) -> DataStorageConfig:
    """DATA_STORAGE_*; imports may unpack to DATA_STORAGE_MAX_IMPORT_MB."""
    from esk_pipeline.pipeline import DataStorageConfig

    wired = {"max_import_bytes": settings.data_storage.max_import_mb * _MIB}
    values = options(settings.data_storage, DataStorageOptions) | wired | overrides
    return DataStorageConfig(**values)


def trust_config(settings: Settings, **overrides: Any) -> TrustConfig:
    """TRUST_*: what a label must show before it enters a dataset."""
    from esk_pipeline.pipeline.trust import TrustConfig

    return TrustConfig(**(options(settings.trust, TrustOptions) | overrides))
