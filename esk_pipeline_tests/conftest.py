"""Shared fixtures: every test gets its own data folder and settings that point into it."""

import pytest

from esk_pipeline.settings import get_settings


@pytest.fixture
def project_env(tmp_path, monkeypatch):
    """Point every APP/CLICKHOUSE/... path at tmp_path, with no LLM configured."""
    for name, value in {
        "APP_DATA_DIR": tmp_path,
        "CLICKHOUSE_EMBEDDED_PATH": tmp_path / "clickhouse",
        "CACHE_DIR": tmp_path / "cache",
        "DATA_WRITER_OUTPUT_DIR": tmp_path / "artifacts",
        "DATA_STORAGE_STORAGE_DIR": tmp_path / "storage",
        "DAGSTER_HOME": tmp_path / "dagster_home",
    }.items():
        monkeypatch.setenv(name, str(value))
    for name in ("LLM_API_KEY", "LLM_API_BASE", "LLM_MODEL", "CLICKHOUSE_HOST", "CLICKHOUSE_URL"):
        monkeypatch.delenv(name, raising=False)
    get_settings.cache_clear()
    yield tmp_path
    get_settings.cache_clear()
