"""Moving values between settings, resources and library configs.

A resource's fields are what a run will use, shown in the launchpad: plain values, with
secrets as `dagster.EnvVar` so only the variable's name is ever stored or shown.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

from dagster import ConfigurableResource, EnvVar
from pydantic import BaseModel, SecretStr

from esk_pipeline.configs import first_values

ConfigT = TypeVar("ConfigT", bound=BaseModel)


def resource_values(
    resource_cls: type[ConfigurableResource], *sources: BaseModel, **values: Any
) -> dict[str, Any]:
    """The resource's fields taken from library configs (first source first), made plain:
    paths as strings, secrets left out (pass them as `secret_env`)."""
    found = first_values(resource_cls.model_fields, *sources)
    plain = {
        name: str(value) if isinstance(value, Path) else value
        for name, value in found.items()
        if not isinstance(value, SecretStr)
    }
    return plain | values


def secret_env(value: SecretStr | None, env_name: str) -> EnvVar | None:
    """`EnvVar(env_name)` when the secret is set: Dagster reads it when a run starts."""
    return EnvVar(env_name) if value is not None and value.get_secret_value() else None


def to_config(resource: ConfigurableResource, config_cls: type[ConfigT], **values: Any) -> ConfigT:
    """A library config from the resource's fields that the config has (plus `values`)."""
    fields = {
        n: getattr(resource, n) for n in config_cls.model_fields if n in type(resource).model_fields
    }
    return config_cls(**(fields | values))
