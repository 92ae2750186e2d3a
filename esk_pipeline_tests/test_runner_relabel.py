"""`esk-data build --relabel`: the dataset refresh it runs carries the relabel tag (the labels
asset then refits its model and labels every day again); a plain build's does not."""

from __future__ import annotations

import datetime as dt

import pytest
from click.testing import CliRunner
from dagster import DagsterInstance

from esk_pipeline import runner
from esk_pipeline.assets.labeling import RELABEL_TAG
from esk_pipeline.cli import main
from esk_pipeline.pipeline.log_source import DayPrint, LogSource
from esk_pipeline.runs import DATASET_JOB


@pytest.mark.parametrize("relabel", [False, True])
def test_a_build_with_relabel_tags_its_dataset_refresh(project_env, monkeypatch, relabel):
    executed: dict[str, dict[str, str]] = {}
    monkeypatch.setattr(
        LogSource, "day_prints", lambda self, *bounds: {dt.date(2026, 11, 3): DayPrint(5, "ab")}
    )
    monkeypatch.setattr(
        runner, "_execute", lambda defs, job, instance, tags: executed.setdefault(job, tags)
    )
    with DagsterInstance.ephemeral() as instance:
        result = runner.run_pipeline(instance, log=lambda _: None, relabel=relabel)
    assert result["days"] == ["2026-11-03"]
    assert (executed[DATASET_JOB].get(RELABEL_TAG) == "true") is relabel


def test_the_build_command_passes_relabel_on(monkeypatch):
    seen = {}

    def build(settings, lines, *, relabel=False):
        seen["relabel"] = relabel

    monkeypatch.setattr("esk_pipeline.cli._build", build)
    assert CliRunner().invoke(main, ["build", "--relabel"]).exit_code == 0
    assert seen == {"relabel": True}
