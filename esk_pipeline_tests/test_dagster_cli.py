"""The code location through Dagster's own CLI, as a user runs it (separate processes)."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd

from esk_pipeline.pipeline.log_source import LogSource
from esk_pipeline.settings import get_settings

PROJECT = Path(__file__).resolve().parents[1]


def test_dagster_asset_materialize_a_partition_range(project_env):
    LogSource(get_settings().clickhouse).insert_logs(
        pd.DataFrame(
            {
                "ts": pd.to_datetime(["2026-11-01 10:00", "2026-11-02 11:00"], utc=True),
                "text": ["Нет горячей воды третий день", "Автобус 42 не пришёл"],
                "user_id": ["u1", "u2"],
            }
        )
    )
    home = project_env / "dagster_home"
    home.mkdir()
    shutil.copyfile(PROJECT / "deploy" / "local" / "dagster.yaml", home / "dagster.yaml")
    dagster = Path(sys.executable).with_name("dagster")
    result = subprocess.run(
        [
            str(dagster),
            "asset",
            "materialize",
            "-m",
            "esk_pipeline",
            "--select",
            "raw_logs,cleaned_texts,rejected_texts",
            "--partition-range",
            "2026-11-01...2026-11-02",
        ],
        env={**os.environ, "DAGSTER_HOME": str(home)},
        cwd=PROJECT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assets = project_env / "assets" / "cleaned_texts"
    day1 = pd.read_parquet(assets / "2026-11-01.parquet")
    day2 = pd.read_parquet(assets / "2026-11-02.parquet")
    assert day1["text"].tolist() == ["Нет горячей воды третий день"]
    assert day2["text"].tolist() == ["Автобус 42 не пришёл"]
