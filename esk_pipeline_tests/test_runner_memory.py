"""A job run in this process (`esk-data demo`/`build`) gives freed memory back after every
step, the failed one included, so a step does not start from what the one before left."""

import pytest
from dagster import DagsterInstance, Definitions, asset, define_asset_job, mem_io_manager

from esk_pipeline import runner


@asset
def first() -> int:
    return 1


@asset
def second(first: int) -> int:
    return first + 1


@asset
def broken(first: int) -> int:
    raise ValueError("no second")


def _defs(*assets) -> Definitions:
    return Definitions(
        assets=list(assets),
        jobs=[define_asset_job("job", selection=list(assets))],
        resources={"io_manager": mem_io_manager},
    )


def test_every_step_of_an_in_process_run_releases_memory(monkeypatch) -> None:
    steps = []
    monkeypatch.setattr(runner, "release_freed_memory", lambda: steps.append("released"))
    with DagsterInstance.ephemeral() as instance:
        runner._execute(_defs(first, second), "job", instance, {})
    assert steps == ["released", "released"]


def test_a_failed_step_releases_memory_too(monkeypatch) -> None:
    steps = []
    monkeypatch.setattr(runner, "release_freed_memory", lambda: steps.append("released"))
    with DagsterInstance.ephemeral() as instance, pytest.raises(runner.PipelineRunError):
        runner._execute(_defs(first, broken), "job", instance, {})
    assert steps == ["released", "released"]
