"""What makes a day be cleaned again: its rows' content, not their count, and the cleaning.

`esk-data build` (`run_pipeline`) and the partition sensor clean a day again when a correction
kept its row count (a text fixed, a row swapped for another) or a cleaning setting changed, and
leave an unchanged day as it is. The dataset refresh that follows the ETL is left out here.
"""

from __future__ import annotations

import json

import pandas as pd
import pytest
from dagster import (
    AssetMaterialization,
    DagsterInstance,
    DagsterRun,
    DagsterRunStatus,
    build_sensor_context,
)

from esk_pipeline import runner
from esk_pipeline.definitions import build_defs
from esk_pipeline.pipeline.log_source import LogSource
from esk_pipeline.runs import DAILY_JOB, ETL_JOB, PARTITION_TAG, range_tags
from esk_pipeline.sensors import new_log_days_sensor
from esk_pipeline.settings import Settings

DAYS = ["2026-11-01", "2026-11-02", "2026-11-03"]
PHONE = "+7 (916) 123-45-67"


@pytest.fixture
def source(project_env) -> LogSource:
    source = LogSource(Settings.load().clickhouse)
    texts = {
        DAYS[0]: ["Нет горячей воды с утра", "Яма на дороге у дома 5"],
        DAYS[1]: ["Мусор не вывозят неделю", "Автобус опять опоздал на час"],
        DAYS[2]: [f"Позвоните {PHONE}, течёт крыша", "Не работает лифт в подъезде"],
    }
    source.insert_logs(
        pd.DataFrame(
            {
                "ts": [pd.Timestamp(f"{day} 09:0{i}", tz="UTC") for day in DAYS for i in (0, 1)],
                "text": [text for day in DAYS for text in texts[day]],
                "user_id": [f"u{i}" for i in range(6)],
            }
        )
    )
    return source


@pytest.fixture
def cleanings(monkeypatch) -> list[tuple[str, str]]:
    """The (first, last) day of each ETL run a build makes; the dataset refresh is skipped."""
    ranges: list[tuple[str, str]] = []
    execute = runner._execute

    def etl_only(defs, job_name, instance, tags):
        if job_name == ETL_JOB:
            ranges.append(
                (
                    tags["dagster/asset_partition_range_start"],
                    tags["dagster/asset_partition_range_end"],
                )
            )
            execute(defs, job_name, instance, tags)

    monkeypatch.setattr(runner, "_execute", etl_only)
    return ranges


def _build(instance: DagsterInstance, settings: Settings | None = None) -> None:
    runner.run_pipeline(instance, settings=settings or Settings.load(), log=lambda _: None)


def _cleaned(project_env, day: str) -> list[str]:
    return pd.read_parquet(project_env / "assets" / "cleaned_texts" / f"{day}.parquet")[
        "text"
    ].tolist()


def _fix_text(source: LogSource, old: str, new: str) -> None:
    """A correction in place: the day keeps its row count."""
    source._call(
        "command",
        "ALTER TABLE esk_logs UPDATE text = {new:String} WHERE text = {old:String}",
        parameters={"new": new, "old": old},
        settings={"mutations_sync": 2},
    )


def _unmasked(monkeypatch) -> Settings:
    monkeypatch.setenv("ETL_MASK_PII", "false")
    return Settings.load()


def _sensor(instance, settings: Settings, cursor: str | None = None):
    defs = build_defs(settings)
    resources = {"clickhouse": defs.resources["clickhouse"], "etl": defs.resources["etl"]}
    context = build_sensor_context(
        instance=instance, cursor=cursor, resources=resources, definitions=defs
    )
    return new_log_days_sensor(context)


def _requested(result) -> list[str]:
    return sorted(r.partition_key for r in result.run_requests or [])


def test_same_count_corrections_are_cleaned_again_and_only_those_days(
    source, cleanings, project_env
):
    with DagsterInstance.ephemeral() as instance:
        _build(instance)
        assert cleanings == [(DAYS[0], DAYS[2])]
        _build(instance)
        assert cleanings == [(DAYS[0], DAYS[2])]  # nothing changed: nothing cleaned

        _fix_text(source, "Нет горячей воды с утра", "Нет горячей воды с вечера")
        _fix_text(source, "Не работает лифт в подъезде", "Не работает лифт во втором подъезде")
        assert set(source.day_counts().values()) == {2}
        _build(instance)
        # The day between the two corrected ones is neither read nor cleaned again.
        assert cleanings[1:] == [(DAYS[0], DAYS[0]), (DAYS[2], DAYS[2])]
        assert "Нет горячей воды с вечера" in _cleaned(project_env, DAYS[0])
        assert "Не работает лифт во втором подъезде" in _cleaned(project_env, DAYS[2])


def test_a_cleaning_setting_change_cleans_every_day_again_once(
    source, cleanings, project_env, monkeypatch
):
    with DagsterInstance.ephemeral() as instance:
        _build(instance)
        assert not any(PHONE in text for text in _cleaned(project_env, DAYS[2]))
        unmasked = _unmasked(monkeypatch)
        _build(instance, unmasked)
        assert cleanings == [(DAYS[0], DAYS[2]), (DAYS[0], DAYS[2])]
        assert any(PHONE in text for text in _cleaned(project_env, DAYS[2]))
        _build(instance, unmasked)
        assert len(cleanings) == 2


def test_a_day_cleaned_before_days_recorded_their_making_is_cleaned_once_more(source, cleanings):
    """A materialization of an earlier release holds a row count and no `made_from`."""
    with DagsterInstance.ephemeral() as instance:
        for day in DAYS:
            instance.report_runless_asset_event(
                AssetMaterialization("cleaned_texts", partition=day, metadata={"rows_out": 2})
            )
        _build(instance)
        _build(instance)
    assert cleanings == [(DAYS[0], DAYS[2])]


def test_the_sensor_sees_a_same_count_correction_and_a_cleaning_change(
    source, cleanings, monkeypatch
):
    settings = Settings.load()
    with DagsterInstance.ephemeral() as instance:
        _build(instance, settings)
        quiet = _sensor(instance, settings)
        assert _requested(quiet) == []

        # Two rows of a day swapped for two others: the same row count.
        source._call(
            "command",
            "DELETE FROM esk_logs WHERE toDate(ts) = {day:Date}",
            parameters={"day": DAYS[1]},
        )
        source.insert_logs(
            pd.DataFrame(
                {
                    "ts": pd.to_datetime([f"{DAYS[1]} 10:00", f"{DAYS[1]} 10:01"], utc=True),
                    "text": ["Мусор не вывозят две недели", "Автобус опять опоздал"],
                    "user_id": ["u2", "u3"],
                }
            )
        )
        corrected = _sensor(instance, settings, quiet.cursor)
        assert _requested(corrected) == [DAYS[1]]
        observed = {e.partition: e.metadata for e in corrected.asset_events}
        assert list(observed) == [DAYS[1]]
        assert observed[DAYS[1]]["dagster/row_count"].value == 2

        unmasked = _unmasked(monkeypatch)
        assert _requested(_sensor(instance, unmasked, corrected.cursor)) == DAYS
        # A day with a run in flight waits; it is requested once that run is over.
        instance.add_run(
            DagsterRun(
                job_name=DAILY_JOB,
                run_id="day-run",
                status=DagsterRunStatus.STARTED,
                tags={PARTITION_TAG: DAYS[0]},
            )
        )
        waiting = _sensor(instance, unmasked, corrected.cursor)
        assert _requested(waiting) == DAYS[1:]
        assert not waiting.asset_events  # esk_logs did not change: nothing observed again
        instance.delete_run("day-run")
        assert _requested(_sensor(instance, unmasked, waiting.cursor)) == [DAYS[0]]
        # A cursor of an earlier release (row counts by day) is read without failing.
        old_cursor = json.dumps(dict.fromkeys(DAYS, 2))
        assert _requested(_sensor(instance, settings, old_cursor)) == [DAYS[1]]


@pytest.mark.parametrize("gone", ["TRUNCATE TABLE esk_logs", "DROP TABLE esk_logs"])
def test_the_sensor_runs_nothing_while_esk_logs_holds_no_rows_at_all(source, cleanings, gone):
    """An emptied or missing table (a reload in progress, a wrong table name) is what the
    runner refuses to build from; the sensor does not take it for every day deleted."""
    settings = Settings.load()
    with DagsterInstance.ephemeral() as instance:
        _build(instance, settings)
        seen = _sensor(instance, settings)
        source._call("command", gone)
        empty = _sensor(instance, settings, seen.cursor)
        assert _requested(empty) == []
        assert not empty.asset_events


def test_the_sensor_leaves_the_days_of_a_range_run_in_flight_to_it(source, cleanings, monkeypatch):
    """`esk-data build` cleans a stretch of days in one run (no single-day tag): while it runs,
    the sensor asks for none of them, then for those the run left unclean."""
    settings = Settings.load()
    with DagsterInstance.ephemeral() as instance:
        _build(instance, settings)
        seen = _sensor(instance, settings)
        instance.add_run(
            DagsterRun(
                job_name=ETL_JOB,
                run_id="build-run",
                status=DagsterRunStatus.STARTED,
                tags=range_tags(DAYS[:2]),
            )
        )
        unmasked = _unmasked(monkeypatch)
        waiting = _sensor(instance, unmasked, seen.cursor)
        assert _requested(waiting) == DAYS[2:]
        # Ticks while it runs observe nothing again: esk_logs did not change.
        still = _sensor(instance, unmasked, waiting.cursor)
        assert _requested(still) == [] and not still.asset_events
        instance.delete_run("build-run")
        assert _requested(_sensor(instance, unmasked, still.cursor)) == DAYS[:2]
