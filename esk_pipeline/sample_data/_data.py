"""The generator's template data, read once from `sample_templates.yaml` beside it.

The file holds every word list, layout, template bank and language decoration the generator
draws from (its header says what each key is). Lists come back as tuples, so the data cannot be
changed by accident after loading; their order is part of what a seed generates.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

from esk_pipeline.pipeline.plain_yaml import load_plain_yaml

SAMPLE_TEMPLATES_PATH = Path(__file__).with_name("sample_templates.yaml")


@cache
def sample_templates() -> dict[str, Any]:
    """The template file's top-level mapping, lists turned into tuples."""
    with SAMPLE_TEMPLATES_PATH.open(encoding="utf-8") as handle:
        return _frozen(load_plain_yaml(handle))


def _frozen(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_frozen(item) for item in value)
    if isinstance(value, dict):
        return {key: _frozen(item) for key, item in value.items()}
    return value
