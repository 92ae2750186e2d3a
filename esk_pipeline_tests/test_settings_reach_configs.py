"""Every setting reaches what it configures.

Each variable is set alone to a valid value other than its default; the config, resource or
service built from the settings must then carry that value. A settings group's fields that it
inherits from a library options class must arrive unchanged in the config it builds; every
other field needs an entry in `WIRED`, so a setting added without wiring fails here.
"""

import inspect
import logging
import os
import typing
from pathlib import Path
from typing import Any, Literal

import annotated_types
import pytest
from pydantic import SecretStr
from pydantic.fields import FieldInfo

from esk_pipeline import configs
from esk_pipeline.settings import Settings

MIB = 1024 * 1024


def _labeler(settings: Settings) -> Any:
    return configs.labeler_config(settings)


def _augmenter(settings: Settings) -> Any:
    return configs.augmenter_config(settings)


def _clickhouse(settings: Settings) -> Any:
    from esk_pipeline.resources.clickhouse import ClickHouseResource

    return ClickHouseResource.from_settings(settings).process_config_and_initialize().config()


def _services(settings: Settings) -> Any:
    from esk_pipeline.api.deps import Services

    return Services(settings)


def _defs(settings: Settings) -> Any:
    from esk_pipeline.definitions import build_defs

    return build_defs(settings)


# The config each group's inherited fields must reach.
BUILDS = {
    "llm": _labeler,
    "labeler": _labeler,
    "augmenter": _augmenter,
    "etl": configs.etl_config,
    "review": configs.review_config,
    "trust": configs.trust_config,
    "data_writer": configs.writer_config,
    "data_storage": configs.storage_config,
    "clickhouse": _clickhouse,
}

# Settings that are not a library field as such: what each one decides, given the settings
# and the value set.
WIRED = {
    ("app", "data_dir"): lambda s, v: configs.review_config(s).data_dir == v,
    ("app", "assets_url"): lambda s, v: _io_manager(s).base_dir == v,
    ("app", "log_level"): lambda s, v: _log_level(s) == logging.getLevelName(v),
    ("app", "taxonomy_path"): lambda s, v: _taxonomy(s).path == str(v),
    ("app", "partitions_start_date"): lambda s, v: _first_day(s) == v,
    ("app", "automation"): lambda s, v: _automated(s) == v,
    ("app", "api_tokens"): lambda s, v: _services(s).api_tokens["alice"][0] == v,
    ("app", "max_upload_mb"): lambda s, v: _services(s).max_upload_bytes == v * MIB,
    ("app", "upload_cpu_seconds"): lambda s, v: _limits(s).cpu_seconds == v,
    ("app", "upload_memory_mb"): lambda s, v: _limits(s).memory_bytes == v * MIB,
    ("app", "upload_wall_seconds"): lambda s, v: _limits(s).wall_seconds == v,
    ("llm", "input_price_per_1k"): lambda s, v: configs.usage_meter(s).input_price_per_1k == v,
    ("llm", "output_price_per_1k"): lambda s, v: configs.usage_meter(s).output_price_per_1k == v,
    ("llm", "max_tokens_per_run"): lambda s, v: configs.usage_meter(s).max_tokens == v,
    ("llm", "max_requests_per_run"): lambda s, v: configs.usage_meter(s).max_requests == v,
    ("llm", "labeler_api_key"): lambda s, v: _labeler(s).api_key.get_secret_value() == v,
    ("llm", "labeler_api_base"): lambda s, v: _labeler(s).api_base == v,
    ("llm", "labeler_model"): lambda s, v: _labeler(s).model == v,
    ("llm", "augmenter_api_key"): lambda s, v: _augmenter(s).api_key.get_secret_value() == v,
    ("llm", "augmenter_api_base"): lambda s, v: _augmenter(s).api_base == v,
    ("llm", "augmenter_model"): lambda s, v: _augmenter(s).model == v,
    ("etl", "max_unpacked_ratio"): lambda s, v: (
        configs.etl_config(s).max_unpacked_bytes == v * s.app.max_upload_mb * MIB
    ),
    ("review", "sensor_min_new_reviews"): lambda s, v: _review_store(s).sensor_min_new_reviews == v,
    ("data_storage", "max_import_mb"): lambda s, v: (
        configs.storage_config(s).max_import_bytes == v * MIB
    ),
    ("cache", "enabled"): lambda s, v: _labeler(s).use_cache is v and _augmenter(s).use_cache is v,
    ("cache", "ttl_hours"): lambda s, v: _labeler(s).cache_ttl_hours == v,
    ("cache", "unread_days"): lambda s, v: (
        _labeler(s).cache_unread_days == v == _augmenter(s).cache_unread_days
    ),
    ("cache", "dir"): lambda s, v: _labeler(s).cache_dir == v == _augmenter(s).cache_dir,
}

# Values the generic choice below cannot make valid.
VALUES = {
    ("app", "partitions_start_date"): "2026-10-05",
    ("app", "api_tokens"): '{"alice": "tok-7f3k9QzLm2Xw8RbN4vYc1aHd"}',
    ("llm", "model"): "qwen2.5-test",
    ("clickhouse", "table"): "other_logs",
    ("clickhouse", "database"): "other_db",
}


def _io_manager(settings: Settings) -> Any:
    from esk_pipeline.resources.io_manager import AssetFilesIOManager

    return AssetFilesIOManager.from_settings(settings)


def _log_level(settings: Settings) -> int:
    settings.apply_log_level()
    return logging.getLogger("esk_pipeline").level


def _taxonomy(settings: Settings) -> Any:
    from esk_pipeline.resources.taxonomy import TaxonomyResource

    return TaxonomyResource.from_settings(settings)


def _review_store(settings: Settings) -> Any:
    from esk_pipeline.resources.stores import ReviewStoreResource

    return ReviewStoreResource.from_settings(settings)


def _first_day(settings: Settings) -> str:
    partitions = _defs(settings).resolve_job_def("daily_labels_job").partitions_def
    return partitions.get_first_partition_key()


def _automated(settings: Settings) -> bool:
    return any(spec.automation_condition for spec in _defs(settings).resolve_all_asset_specs())


def _limits(settings: Settings) -> Any:
    return _services(settings).etl_workers.limits


def _fields() -> list[tuple[str, str, FieldInfo, str]]:
    """(group, field, its FieldInfo, its environment variable) for every setting."""
    found = []
    for group, group_field in Settings.model_fields.items():
        group_cls = group_field.annotation
        prefix = group_cls.model_config["env_prefix"]
        for name, field in group_cls.model_fields.items():
            found.append((group, name, field, f"{prefix}{name}".upper()))
    return found


def _inherited(group: str, name: str) -> bool:
    """Whether the group has `name` from a library class (options or connection config)."""
    group_cls = Settings.model_fields[group].annotation
    return any(
        name in inspect.get_annotations(base)
        for base in group_cls.__mro__[1:]
        if base.__module__.startswith("esk_pipeline.pipeline")
    )


def _other_value(group: str, name: str, field: FieldInfo) -> tuple[str, Any]:
    """A valid value other than the default: its text for the environment, and the value."""
    if (group, name) in VALUES:
        text = VALUES[group, name]
        return text, text if not text.startswith("{") else "tok-7f3k9QzLm2Xw8RbN4vYc1aHd"
    kind = _base_type(field.annotation)
    default = field.default
    if kind is bool:
        return str(not default).lower(), not default
    if kind in (int, float):
        low, high = _bounds(field)
        value = low + (high - low) * 0.37
        if kind is int:
            value = int(value) if int(value) != default else int(value) + 1
        elif value == default:
            value = low + (high - low) * 0.61
        return str(value), value
    if typing.get_origin(kind) is Literal:
        other = next(choice for choice in typing.get_args(kind) if choice != default)
        return other, other
    if kind is SecretStr:
        return f"secret-{name}-0123456789abcdef", f"secret-{name}-0123456789abcdef"
    if kind is Path:
        return f"settings-test/{name}", Path(f"settings-test/{name}")
    return f"value_{name}", f"value_{name}"


def _base_type(annotation: Any) -> Any:
    args = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
    if typing.get_origin(annotation) is Literal or not args:
        return annotation
    return Path if Path in args else args[0]


def _bounds(field: FieldInfo) -> tuple[float, float]:
    low, high = 0.0, None
    for bound in field.metadata:
        if isinstance(bound, annotated_types.Ge | annotated_types.Gt):
            low = float(getattr(bound, "ge", getattr(bound, "gt", 0)))
        if isinstance(bound, annotated_types.Le | annotated_types.Lt):
            high = float(getattr(bound, "le", getattr(bound, "lt", 0)))
    return low, high if high is not None else low + 100


def _same(actual: Any, expected: Any) -> bool:
    if isinstance(actual, SecretStr):
        actual = actual.get_secret_value()
    if isinstance(actual, Path) or isinstance(expected, Path):
        return str(actual) == str(expected)
    return actual == expected


@pytest.fixture
def clean_environment(monkeypatch, tmp_path):
    prefixes = {
        group_field.annotation.model_config["env_prefix"]
        for group_field in Settings.model_fields.values()
    }
    for variable in list(os.environ):
        if variable.startswith(tuple(prefixes)):
            monkeypatch.delenv(variable)
    monkeypatch.chdir(tmp_path)  # no .env
    return monkeypatch


@pytest.mark.parametrize(
    ("group", "name", "field", "variable"), _fields(), ids=[f[3] for f in _fields()]
)
def test_every_setting_reaches_what_it_configures(clean_environment, group, name, field, variable):
    text, expected = _other_value(group, name, field)
    clean_environment.setenv(variable, text)
    settings = Settings.load()
    if (group, name) in WIRED:
        assert WIRED[group, name](settings, expected), f"{variable}={text} did not arrive"
    else:
        assert _inherited(group, name), f"{variable} is neither a library field nor in WIRED"
        built = BUILDS[group](settings)
        assert _same(getattr(built, name), expected), f"{variable}={text} did not arrive"
    logging.getLogger("esk_pipeline").setLevel(logging.NOTSET)
