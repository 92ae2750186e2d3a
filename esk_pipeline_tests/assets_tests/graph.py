"""The whole graph on seeded sample data in a folder of its own, for the graph tests."""

from pathlib import Path

import pytest
from dagster import DagsterInstance

from esk_pipeline import configs
from esk_pipeline.definitions import build_defs
from esk_pipeline.pipeline.review import ReviewDataset
from esk_pipeline.pipeline.taxonomy import Taxonomy
from esk_pipeline.pipeline.versions import DataStorage
from esk_pipeline.runner import run_pipeline, seed_sample_logs
from esk_pipeline.settings import Settings


def run_graph(root: Path, n_rows: int, **overrides: str) -> dict:
    """Seed `n_rows` sample logs under `root` and run the whole graph on them (`overrides`
    are more settings, by environment variable name)."""
    env = {
        "APP_DATA_DIR": root,
        "CLICKHOUSE_EMBEDDED_PATH": root / "clickhouse",
        "CACHE_DIR": root / "cache",
        "DATA_WRITER_OUTPUT_DIR": root / "artifacts",
        "DATA_STORAGE_STORAGE_DIR": root / "storage",
        "REVIEW_SENSOR_MIN_NEW_REVIEWS": "5",
        **overrides,
    }
    with pytest.MonkeyPatch.context() as mp:
        for name, value in env.items():
            mp.setenv(name, str(value))
        for name in ("LLM_API_KEY", "LLM_API_BASE", "LLM_MODEL"):
            mp.delenv(name, raising=False)
        settings = Settings.load()
    seeded = seed_sample_logs(settings, n_rows=n_rows, seed=7)
    instance = DagsterInstance.ephemeral()
    summary = run_pipeline(instance, settings=settings, log=lambda _: None)
    return {
        "root": root,
        "instance": instance,
        "summary": summary,
        "seeded": seeded,
        "defs": build_defs(settings),
        "settings": settings,
    }


def review_store(run: dict) -> ReviewDataset:
    config = configs.review_config(run["settings"])
    return ReviewDataset(config, Taxonomy.load("data/taxonomy.yaml"))


def storage(run: dict) -> DataStorage:
    return DataStorage(configs.storage_config(run["settings"]))


def rebuild(run: dict) -> dict:
    """One more build with what is there now (`esk-data build`): its version's metadata."""
    return run_pipeline(run["instance"], settings=run["settings"], log=lambda _: None)
