"""Resource fields declared by the library: one Dagster field per field of a config class.

Each setting is declared once, in `esk_pipeline.pipeline.options` or a library config, with its
type, default, bounds and meaning. A resource that runs a component takes its fields from that
class (`fields_of`), so the launchpad shows every value a run uses, with its description, and
`config_of` turns the resource back into the config. In the launchpad paths are strings, and a
secret is the `dagster.EnvVar` it is read from, so only the variable's name is ever stored.
"""

from __future__ import annotations

import functools
import operator
import types
import typing
from collections.abc import Collection
from pathlib import Path
from typing import Any, TypeVar

from dagster import ConfigurableResource, EnvVar
from pydantic import BaseModel, Field, SecretStr, create_model
from pydantic_core import PydanticUndefined

ConfigT = TypeVar("ConfigT", bound=BaseModel)


def fields_of(
    *models: type[BaseModel], exclude: Collection[str] = ()
) -> type[ConfigurableResource]:
    """A `ConfigurableResource` base class with a field for every field of `models` (the first
    model to declare a name wins) except `exclude`: the same default and description."""
    fields: dict[str, Any] = {}
    for model in models:
        for name, field in model.model_fields.items():
            if name in fields or name in exclude:
                continue
            default = None if _is_secret(field.annotation) else _plain_value(field.default)
            if default is PydanticUndefined:
                default = ...
            fields[name] = (
                _plain_type(field.annotation),
                Field(default=default, description=field.description),
            )
    name = "".join(model.__name__ for model in models) + "Fields"
    return create_model(name, __base__=ConfigurableResource, **fields)


def values_of(resource_cls: type[ConfigurableResource], *sources: BaseModel) -> dict[str, Any]:
    """The resource's field values from configs or settings groups whose classes it was made
    from (first source first), made plain; secrets are left out (give them as `secret_env`)."""
    values: dict[str, Any] = {}
    for source in sources:
        for name, field in type(source).model_fields.items():
            if name in resource_cls.model_fields and not _is_secret(field.annotation):
                values.setdefault(name, _plain_value(getattr(source, name)))
    return values


def secret_env(value: SecretStr | None, env_name: str) -> EnvVar | None:
    """`EnvVar(env_name)` when the secret is set: Dagster reads it when a run starts."""
    return EnvVar(env_name) if value is not None and value.get_secret_value() else None


def config_of(resource: ConfigurableResource, config_cls: type[ConfigT], **values: Any) -> ConfigT:
    """The library config from the resource's fields (the resource was made from it), plus
    `values` for the fields it was made without."""
    shown = type(resource).model_fields
    fields = {name: getattr(resource, name) for name in config_cls.model_fields if name in shown}
    return config_cls(**(fields | values))


def _is_secret(annotation: Any) -> bool:
    return annotation is SecretStr or SecretStr in typing.get_args(annotation)


def _plain_type(annotation: Any) -> Any:
    """Paths as strings and secrets as optional strings (an EnvVar's value), in unions too."""
    if annotation in (Path, SecretStr):
        return str if annotation is Path else str | None
    args = typing.get_args(annotation)
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        return functools.reduce(operator.or_, dict.fromkeys(_plain_type(arg) for arg in args))
    return annotation


def _plain_value(value: Any) -> Any:
    return str(value) if isinstance(value, Path) else value
