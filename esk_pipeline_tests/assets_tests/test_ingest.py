import datetime as dt
import os
import tempfile

import pandas as pd
import pytest
from dagster import DagsterInstance, build_sensor_context, materialize

from esk_pipeline.assets import ingest
from esk_pipeline.assets.partitions import daily_partitions
from esk_pipeline.pipeline import fsutil
from esk_pipeline.pipeline.etl import ETLProcessor
from esk_pipeline.pipeline.log_source import LogSource
from esk_pipeline.resources.clickhouse import ClickHouseResource
from esk_pipeline.resources.etl import ETLResource
from esk_pipeline.resources.io_manager import AssetFilesIOManager
from esk_pipeline.settings import Settings


@pytest.fixture
def logs(project_env):
    source = LogSource(Settings.load().clickhouse)
    rows = pd.DataFrame(
        {
            "ts": pd.to_datetime(
                [
                    "2026-11-01 09:00",
                    "2026-11-01 09:05",
                    "2026-11-01 09:06",
                    "2026-11-01 10:00",
                    "2026-11-01 11:00",
                    "2026-11-02 12:00",
                ],
                utc=True,
            ),
            "text": [
                "Нет горячей воды с утра",
                "нет  горячей воды с утра!!",
                "",
                "ок",
                "Позвоните +7 (916) 123-45-67, течёт крыша",
                "Яма на дороге у дома 5",
            ],
            "user_id": ["u1", "u1", "u2", "u3", "u4", "u5"],
            "channel": ["web"] * 6,
        }
    )
    source.insert_logs(rows)
    return source


def _materialize(tmp_path, partition_tags):
    settings = Settings.load()
    partitions = daily_partitions(settings.app.partitions_start_date)
    return materialize(
        ingest.build_ingest_assets(partitions),
        resources={
            "clickhouse": ClickHouseResource.from_settings(settings),
            "etl": ETLResource.from_settings(settings),
            "io_manager": AssetFilesIOManager(base_dir=str(tmp_path / "assets")),
        },
        **partition_tags,
    )


def test_raw_logs_to_cleaned_texts_accounts_for_every_row(logs, tmp_path):
    result = _materialize(tmp_path, {"partition_key": "2026-11-01"})
    assert result.success
    cleaned = pd.read_parquet(tmp_path / "assets/cleaned_texts/2026-11-01.parquet")
    rejected = pd.read_parquet(tmp_path / "assets/rejected_texts/2026-11-01.parquet")
    raw = pd.read_parquet(tmp_path / "assets/raw_logs/2026-11-01.parquet")
    assert len(raw) == 5
    assert len(cleaned) + len(rejected) == len(raw)
    assert set(rejected["reason"]) >= {"empty", "too_short", "near_duplicate"}
    assert list(cleaned.columns[:6]) == ["row_id", "text", "ts", "user_id", "source", "metadata"]
    assert "<PHONE>" in " ".join(cleaned["text"]) and "916" not in " ".join(cleaned["text"])
    checks = {c.check_name: c.passed for c in result.get_asset_check_evaluations()}
    assert checks == {"rows_accounted": True, "no_empty_texts": True, "unique_row_ids": True}


def test_a_partition_range_runs_as_one_run(logs, tmp_path):
    result = _materialize(
        tmp_path,
        {
            "tags": {
                "dagster/asset_partition_range_start": "2026-11-01",
                "dagster/asset_partition_range_end": "2026-11-02",
            }
        },
    )
    assert result.success
    partitions = {
        e.materialization.partition
        for e in result.get_asset_materialization_events()
        if e.materialization.asset_key.to_user_string() == "cleaned_texts"
    }
    assert partitions == {"2026-11-01", "2026-11-02"}
    day2 = pd.read_parquet(tmp_path / "assets/cleaned_texts/2026-11-02.parquet")
    assert day2["text"].tolist() == ["Яма на дороге у дома 5"]


def _observed(result) -> dict[str, int]:
    """The esk_logs row counts a sensor evaluation observed, by day."""
    return {
        event.partition: event.metadata["dagster/row_count"].value
        for event in result.asset_events or []
        if event.asset_key.to_user_string() == "esk_logs"
    }


def _keyed(result) -> set[str]:
    """The day and row count each run key of a sensor evaluation starts with (the rest names
    the day's content, the cleaning and the day's last cleaning)."""
    return {":".join(r.run_key.split(":")[:2]) for r in result.run_requests}


def test_lineage_starts_at_the_clickhouse_table():
    from dagster import AssetKey

    from esk_pipeline.definitions import defs

    defs = defs()
    esk_logs = defs.resolve_assets_def(AssetKey("esk_logs"))
    assert esk_logs.is_external and not esk_logs.is_executable
    (spec,) = esk_logs.specs
    assert spec.kinds == {"clickhouse"} and spec.partitions_def is not None
    graph = defs.resolve_asset_graph()
    assert graph.get(AssetKey("raw_logs")).parent_keys == {AssetKey("esk_logs")}


def test_sensor_requests_new_and_grown_days_once(logs):
    from esk_pipeline.definitions import defs
    from esk_pipeline.sensors import new_log_days_sensor

    definitions = defs()
    instance = DagsterInstance.ephemeral()
    resources = {
        "clickhouse": ClickHouseResource.from_settings(Settings.load()),
        "etl": ETLResource.from_settings(Settings.load()),
    }
    first = new_log_days_sensor(
        build_sensor_context(instance=instance, resources=resources, definitions=definitions)
    )
    assert sorted(r.partition_key for r in first.run_requests) == ["2026-11-01", "2026-11-02"]
    assert _keyed(first) == {"2026-11-01:5", "2026-11-02:1"}
    assert _observed(first) == {"2026-11-01": 5, "2026-11-02": 1}  # esk_logs, day by day

    again = new_log_days_sensor(
        build_sensor_context(
            instance=instance, cursor=first.cursor, resources=resources, definitions=definitions
        )
    )
    assert not getattr(again, "run_requests", None)  # nothing new: a skip, no duplicate runs
    assert _observed(again) == {}  # nor a repeated observation

    logs.insert_logs(
        pd.DataFrame(
            {
                "ts": [
                    pd.Timestamp("2026-11-02 15:00", tz="UTC"),
                    pd.Timestamp("2026-11-03 08:00", tz="UTC"),
                ],
                "text": ["Мусор не вывозят", "Автобус опять опоздал"],
                "user_id": ["u9", "u9"],
            }
        )
    )
    grown = new_log_days_sensor(
        build_sensor_context(
            instance=instance, cursor=first.cursor, resources=resources, definitions=definitions
        )
    )
    assert _keyed(grown) == {"2026-11-02:2", "2026-11-03:1"}
    assert _observed(grown) == {"2026-11-02": 2, "2026-11-03": 1}
    assert all(r.partition_key != dt.date(2026, 11, 1).isoformat() for r in grown.run_requests)


def test_each_day_of_a_range_run_gets_its_own_metadata(logs, tmp_path):
    logs.insert_logs(
        pd.DataFrame(
            {
                "ts": pd.to_datetime(["2026-11-03 08:00", "2026-11-03 09:00"], utc=True),
                "text": ["Автобус опять опоздал на час", "Мусор не вывозят неделю"],
                "user_id": ["u8", "u9"],
            }
        )
    )
    result = _materialize(
        tmp_path,
        {
            "tags": {
                "dagster/asset_partition_range_start": "2026-11-01",
                "dagster/asset_partition_range_end": "2026-11-03",
            }
        },
    )
    assert result.success
    metadata = {
        (e.materialization.asset_key.to_user_string(), e.materialization.partition): {
            k: v.value for k, v in e.materialization.metadata.items()
        }
        for e in result.get_asset_materialization_events()
    }
    raw = {
        day: metadata["raw_logs", day]["dagster/row_count"]
        for day in ("2026-11-01", "2026-11-02", "2026-11-03")
    }
    assert raw == {"2026-11-01": 5, "2026-11-02": 1, "2026-11-03": 2}
    for day, rows in raw.items():
        cleaned = metadata["cleaned_texts", day]
        rejected = metadata["rejected_texts", day]
        assert cleaned["rows_in"] == rows
        assert cleaned["rows_out"] + rejected["rows"] == rows
        kept = pd.read_parquet(tmp_path / f"assets/cleaned_texts/{day}.parquet")
        assert cleaned["dagster/row_count"] == len(kept) == cleaned["rows_out"]
        schema = [c.name for c in cleaned["dagster/column_schema"].columns]
        assert schema == list(kept.columns)
    assert metadata["rejected_texts", "2026-11-02"]["rows"] == 0
    # Reading a day observes esk_logs too: the day's row count at that moment.
    observations = [
        e.asset_observation_data.asset_observation
        for e in result.all_events
        if e.is_asset_observation
    ]
    observed = {
        o.partition: o.metadata["dagster/row_count"].value
        for o in observations
        if o.asset_key.to_user_string() == "esk_logs"
    }
    assert observed == raw
    assert "Мусор" in metadata["cleaned_texts", "2026-11-03"]["preview"]
    assert "Мусор" not in metadata["cleaned_texts", "2026-11-01"]["preview"]


def test_previews_of_rows_the_etl_has_not_masked_show_no_personal_data(logs, tmp_path):
    """raw_logs and rejected_texts hold texts as they came; what their previews put into the
    event log (another store, with readers of its own) is masked as cleaned texts are."""
    call_me = "Прошу перезвонить по номеру +7 916 123-45-67, мусор не вывозят неделю"
    logs.insert_logs(
        pd.DataFrame(
            {
                "ts": pd.to_datetime(["2026-11-03 08:00", "2026-11-03 09:00"], utc=True),
                "text": [call_me, call_me],  # the second is rejected as a duplicate
                "user_id": ["u8", "u8"],
            }
        )
    )
    result = _materialize(tmp_path, {"partition_key": "2026-11-03"})
    assert result.success
    previews = {
        e.materialization.asset_key.to_user_string(): e.materialization.metadata["preview"].value
        for e in result.get_asset_materialization_events()
    }
    for asset in ("raw_logs", "rejected_texts", "cleaned_texts"):
        assert "123-45-67" not in previews[asset], asset
        assert "<PHONE>" in previews[asset], asset


def test_the_rejected_rows_wait_in_a_scratch_folder_a_restart_can_clean(
    logs, tmp_path, monkeypatch
):
    """A range's rejected rows wait in a scratch folder named as the project's scratch is,
    so `remove_dead_scratch` takes it when the step was killed."""
    scratch_root = tmp_path / "tmp"
    scratch_root.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch_root))
    seen: list[str] = []
    clean = ETLProcessor.clean

    def clean_and_look(self, raw, source):
        seen.extend(path.name for path in scratch_root.iterdir())
        return clean(self, raw, source=source)

    monkeypatch.setattr(ETLProcessor, "clean", clean_and_look)
    assert _materialize(tmp_path, {"partition_key": "2026-11-01"}).success
    ours = f"{fsutil.SCRATCH_MARK}{os.getpid()}-"
    assert seen and all(name.startswith(ours) for name in seen)
