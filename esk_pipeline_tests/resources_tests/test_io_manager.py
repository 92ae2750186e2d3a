"""The IO manager on a local folder and on an S3-compatible server (moto's, over real HTTP),
and Dagster's PostgreSQL instance storage: the small form of deploy/cluster-smoke.sh."""

from __future__ import annotations

import json
import os
import time
import weakref

import pandas as pd
import pytest
from dagster import (
    AssetIn,
    AssetKey,
    BackfillPolicy,
    DagsterInstance,
    DailyPartitionsDefinition,
    Output,
    asset,
    materialize,
)

from esk_pipeline.pipeline import fsutil
from esk_pipeline.pipeline.parts import FolderPartStore, FrameParts, MemoryPartStore, PartRecord
from esk_pipeline.resources import io_manager as io_manager_module
from esk_pipeline.resources.day_stream import DayStream
from esk_pipeline.resources.io_manager import READ_ON_ACCESS, AssetFilesIOManager, DayFrames
from esk_pipeline.settings import Settings

# The review store's throwaway PostgreSQL cluster (skips itself when the binaries are missing).
from esk_pipeline_tests.postgres import (
    fresh_postgres_database as _fresh_postgres_database,
)
from esk_pipeline_tests.postgres import postgres_server  # noqa: F401
from esk_pipeline_tests.s3 import fresh_bucket, s3_server  # noqa: F401

DAYS = DailyPartitionsDefinition(start_date="2026-11-01", end_date="2026-11-04", timezone="UTC")


@asset(partitions_def=DAYS, backfill_policy=BackfillPolicy.single_run())
def day_rows(context) -> Output:
    """Day i of the run holds i + 1 rows, so each day's count differs from the range's total."""
    return Output(
        {
            key: pd.DataFrame({"day": [key] * (i + 1), "n": range(i + 1)})
            for i, key in enumerate(context.partition_keys)
        }
    )


@asset
def all_rows(day_rows: dict[str, pd.DataFrame]) -> pd.DataFrame:
    return pd.concat(day_rows.values(), ignore_index=True)


@asset
def report(all_rows: pd.DataFrame) -> dict:
    return {"rows": len(all_rows), "days": sorted(all_rows["day"]), "text": "ёлка"}


@asset
def report_reader(report: dict) -> int:
    return report["rows"]


GRAPH = [day_rows, all_rows, report, report_reader]


def test_an_input_read_on_access_reads_each_day_when_asked_for(project_env):
    """The days come as a mapping over the files: a day is read when asked for (again at each
    access, so nothing is held), a day never made is not in it."""
    seen: dict[str, object] = {}

    @asset(ins={"day_rows": AssetIn(metadata={READ_ON_ACCESS: True})})
    def day_sizes(day_rows: DayFrames) -> dict:
        seen["type"] = type(day_rows)
        seen["first"] = day_rows["2026-11-01"] is day_rows["2026-11-01"]
        return {day: len(day_rows[day]) for day in day_rows}

    io_manager = AssetFilesIOManager(base_dir=str(project_env / "values"))
    tags = {
        "dagster/asset_partition_range_start": "2026-11-01",
        "dagster/asset_partition_range_end": "2026-11-02",
    }
    assert materialize([day_rows], tags=tags, resources={"io_manager": io_manager}).success
    result = materialize(
        [day_rows, day_sizes], selection=["day_sizes"], resources={"io_manager": io_manager}
    )
    assert result.output_for_node("day_sizes") == {"2026-11-01": 1, "2026-11-02": 2}
    assert seen == {"type": DayFrames, "first": False}


def test_a_day_stream_is_written_one_day_at_a_time(project_env, monkeypatch):
    """Each day of a range is made only once the day before is in its file, no longer held by
    anyone, and what making it freed is released; the days' metadata are their own."""
    base = project_env / "values"
    made: list[tuple[str, list[str], bool, int]] = []
    previous: list[weakref.ref] = []
    releases: list[str] = []
    monkeypatch.setattr(
        io_manager_module, "release_freed_memory", lambda: releases.append("released")
    )

    @asset(partitions_def=DAYS, backfill_policy=BackfillPolicy.single_run())
    def streamed(context) -> Output:
        def make(day: str) -> pd.DataFrame:
            on_disk = sorted(p.stem for p in (base / "streamed").glob("*.parquet"))
            made.append((day, on_disk, all(ref() is None for ref in previous), len(releases)))
            frame = pd.DataFrame({"n": range(int(day[-1]))})
            previous.append(weakref.ref(frame))
            return frame

        return Output(DayStream("streamed", context.partition_keys, make))

    result = materialize([streamed], tags=_range("2026-11-01", "2026-11-03"), resources=_io(base))
    assert result.success
    assert made == [
        ("2026-11-01", [], True, 0),
        ("2026-11-02", ["2026-11-01"], True, 1),
        ("2026-11-03", ["2026-11-01", "2026-11-02"], True, 2),
    ]
    rows = {
        m.partition: m.metadata["rows_written"].value
        for m in result.asset_materializations_for_node("streamed")
    }
    assert rows == {"2026-11-01": 1, "2026-11-02": 2, "2026-11-03": 3}


def test_a_day_that_fails_names_itself_and_the_days_before_it_are_written(project_env):
    base = project_env / "values"

    @asset(partitions_def=DAYS, backfill_policy=BackfillPolicy.single_run())
    def streamed(context) -> Output:
        def make(day: str) -> pd.DataFrame:
            if day == "2026-11-02":
                raise ValueError("no such table")
            return pd.DataFrame({"n": [1]})

        return Output(DayStream("streamed", context.partition_keys, make))

    result = materialize(
        [streamed],
        tags=_range("2026-11-01", "2026-11-03"),
        resources=_io(base),
        raise_on_error=False,
    )
    assert not result.success
    failure = result.get_step_failure_events()[0].step_failure_data.error
    assert "streamed: day 2026-11-02 failed: no such table" in failure.to_string()
    assert sorted(p.name for p in (base / "streamed").glob("*.parquet")) == ["2026-11-01.parquet"]


def _range(start: str, end: str) -> dict[str, str]:
    return {
        "dagster/asset_partition_range_start": start,
        "dagster/asset_partition_range_end": end,
    }


def _io(base) -> dict:
    return {"io_manager": AssetFilesIOManager(base_dir=str(base))}


@pytest.fixture(params=["folder", "s3"])
def base(request, project_env, monkeypatch):
    """Where values go: a local folder, or a prefix in a bucket on the S3 server."""
    if request.param == "folder":
        return str(project_env / "values")
    return fresh_bucket(request.getfixturevalue("s3_server"), monkeypatch) + "/values"


def _files(base: str) -> dict[str, bytes]:
    from upath import UPath

    root = UPath(base)
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_a_range_run_writes_one_file_per_day_and_values_round_trip(base):
    io_manager = AssetFilesIOManager(base_dir=base)
    first = materialize(
        GRAPH,
        selection=["day_rows"],
        tags={
            "dagster/asset_partition_range_start": "2026-11-01",
            "dagster/asset_partition_range_end": "2026-11-02",
        },
        resources={"io_manager": io_manager},
    )
    assert first.success
    # Day 3 was never made: the downstream read takes the days that exist.
    rest = materialize(
        GRAPH,
        selection=["all_rows", "report", "report_reader"],
        resources={"io_manager": io_manager},
    )
    assert rest.success
    assert rest.output_for_node("report_reader") == 3

    files = _files(base)
    assert sorted(files) == [
        "all_rows.parquet",
        "day_rows/2026-11-01.parquet",
        "day_rows/2026-11-02.parquet",
        "report.json",
        "report_reader.json",
    ]
    assert json.loads(files["report.json"]) == {
        "rows": 3,
        "days": ["2026-11-01", "2026-11-02", "2026-11-02"],
        "text": "ёлка",
    }
    # Each day of the range run records its own file and row count, not the range's.
    written = {
        m.partition: (m.metadata["rows_written"].value, m.metadata["path"].value)
        for m in first.asset_materializations_for_node("day_rows")
    }
    assert written == {
        "2026-11-01": (1, f"{base}/day_rows/2026-11-01.parquet"),
        "2026-11-02": (2, f"{base}/day_rows/2026-11-02.parquet"),
    }
    report_metadata = rest.asset_materializations_for_node("report")[0].metadata
    assert report_metadata["path"].value == f"{base}/report.json"


def test_the_base_is_the_assets_url_setting_else_the_data_folder(project_env, monkeypatch):
    assert _run_day(AssetFilesIOManager.from_settings(Settings.load())).success
    assert (project_env / "assets" / "day_rows" / "2026-11-03.parquet").is_file()

    monkeypatch.setenv("APP_ASSETS_URL", str(project_env / "elsewhere"))
    assert _run_day(AssetFilesIOManager.from_settings(Settings.load())).success
    assert (project_env / "elsewhere" / "day_rows" / "2026-11-03.parquet").is_file()


def test_a_local_write_leaves_no_temp_file_and_replaces_the_old_value(project_env):
    io_manager = AssetFilesIOManager(base_dir=str(project_env / "values"))
    assert _run_day(io_manager).success
    assert _run_day(io_manager).success
    folder = project_env / "values" / "day_rows"
    assert [p.name for p in folder.iterdir()] == ["2026-11-03.parquet"]


def test_what_an_interrupted_write_left_beside_a_value_goes_once_old(project_env):
    """A run killed while writing a value leaves its temporary file beside it: the next write
    of that value removes it once older than the grace (a young one may be a write in flight),
    even when the value's bytes are unchanged and the file is not written again."""
    io_manager = AssetFilesIOManager(base_dir=str(project_env / "values"))
    assert _run_day(io_manager).success
    folder = project_env / "values" / "day_rows"
    old = fsutil.temp_path(folder / "2026-11-03.parquet")
    old.write_bytes(b"half a day")
    long_ago = time.time() - 2 * io_manager_module.PART_GRACE_SECONDS
    os.utime(old, (long_ago, long_ago))
    young = fsutil.temp_path(folder / "2026-11-03.parquet")
    young.write_bytes(b"a day in flight")
    assert _run_day(io_manager).success
    assert sorted(p.name for p in folder.iterdir()) == sorted(["2026-11-03.parquet", young.name])


def test_parts_are_a_folder_of_files_read_when_asked_for_and_written_once(base, monkeypatch):
    """A `FrameParts` value is a folder: a Parquet file per part, named by its address, and a
    manifest. Downstream it is a mapping whose parts are read at each access. A part already
    there is not written again; a file goes once neither the current nor the previous
    manifest names it (and its grace period is over)."""
    run = {"n": 0}
    written: list[str] = []
    real_write = FolderPartStore.write

    def counting_write(self, address, frame):
        written.append(address)
        real_write(self, address, frame)

    monkeypatch.setattr(FolderPartStore, "write", counting_write)
    monkeypatch.setattr(io_manager_module, "PART_GRACE_SECONDS", 0)

    @asset
    def parted() -> FrameParts:
        store = MemoryPartStore()
        frames = {"old": pd.DataFrame({"x": [1, 2]}), "new": pd.DataFrame({"x": [run["n"]]})}
        for name, frame in frames.items():
            store.write(f"{name}{frame['x'].sum()}", frame)
        return FrameParts(
            store, {name: PartRecord(f"{name}{f['x'].sum()}") for name, f in frames.items()}
        )

    @asset
    def parted_sum(parted: FrameParts) -> dict:
        assert parted["old"] is not parted["old"]  # read at each access, not kept
        return {name: int(parted[name]["x"].sum()) for name in parted}

    io_manager = AssetFilesIOManager(base_dir=base)
    for n in range(3):
        run["n"] = n
        written.clear()
        result = materialize([parted, parted_sum], resources={"io_manager": io_manager})
        assert result.success
        assert result.output_for_node("parted_sum") == {"old": 3, "new": n}
        assert written == (["old3", "new0"] if n == 0 else [f"new{n}"])
    files = _files(base)
    # The last two generations' files: the run before may still be reading new1.
    assert sorted(files) == [
        "parted/manifest.json",
        "parted/new1.parquet",
        "parted/new2.parquet",
        "parted/old3.parquet",
        "parted_sum.json",
    ]
    assert json.loads(files["parted/manifest.json"])["parts"]["new"]["address"] == "new2"
    path = result.asset_materializations_for_node("parted")[0].metadata["path"].value
    assert path == f"{base}/parted"


def _run_day(io_manager, instance=None):
    return materialize(
        GRAPH,
        selection=["day_rows"],
        partition_key="2026-11-03",
        resources={"io_manager": io_manager},
        instance=instance,
    )


# -- Dagster's instance on PostgreSQL (dagster-postgres), values on S3 ---------------------


@pytest.fixture
def postgres_url(request):
    pytest.importorskip("dagster_postgres", reason="dagster-postgres is not installed (dev extra)")
    server = request.getfixturevalue("postgres_server")
    # dagster-postgres is written for psycopg2 (its NOTIFY takes a client-side parameter).
    return _fresh_postgres_database(server).replace("+psycopg://", "+psycopg2://")


def test_runs_and_materialisations_live_in_postgres(postgres_url, base, tmp_path):
    config = {"storage": {"postgres": {"postgres_url": postgres_url}}}
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text(json.dumps(config), encoding="utf-8")
    with DagsterInstance.from_config(str(home)) as instance:
        result = _run_day(AssetFilesIOManager(base_dir=base), instance=instance)
        assert result.success
    # Another process (here: a second instance object) sees the run and its materialisation.
    with DagsterInstance.from_config(str(home)) as other:
        assert other.get_run_by_id(result.run_id).is_success
        event = other.get_latest_materialization_event(AssetKey("day_rows"))
        assert event.asset_materialization.partition == "2026-11-03"
        assert "PostgresEventLogStorage" in type(other.event_log_storage).__name__
    assert sorted(_files(base)) == ["day_rows/2026-11-03.parquet"]
