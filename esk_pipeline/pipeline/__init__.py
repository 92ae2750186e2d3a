"""The library: the pipeline's components as plain Python (no Dagster, no HTTP).

    from esk_pipeline.pipeline import ETLProcessor, ETLConfig, LabelerAgent, LabelerConfig, ...

Names resolve lazily (PEP 562), so importing one component does not import the others'
dependencies (pydantic-ai, scikit-learn, SQLAlchemy, ...).
"""

import importlib
from typing import Any

_EXPORTS: dict[str, tuple[str, ...]] = {
    "etl": ("ETLConfig", "ETLProcessor", "ETLResult", "ETLError"),
    "labeler": (
        "LabelerConfig",
        "LabelerAgent",
        "ClassificationResult",
        "label_dataframe_batched",
        "results_to_frame",
    ),
    "augment": ("AugmenterConfig", "AugmenterAgent", "AugmentedSample"),
    "review": (
        "ReviewDatasetConfig",
        "ReviewDataset",
        "ReviewItem",
        "ReviewStatus",
        "ReviewPriority",
    ),
    "splits": ("DataWriterConfig", "DataWriter", "DatasetStats"),
    "versions": ("DataStorageConfig", "DataStorage", "VersionStatus", "DatasetVersion"),
    "taxonomy": ("Taxonomy", "Domain"),
    "local_model": ("LocalModel",),
    "log_source": ("LogSource",),
}
_MODULE_OF = {name: module for module, names in _EXPORTS.items() for name in names}
__all__ = sorted(_MODULE_OF)


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value  # resolve once
    return value


def __dir__() -> list[str]:
    return __all__
