"""The ETL's config defaults and the stats' no-silent-loss check."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from esk_pipeline.pipeline.etl import (
    ETLConfig,
    ETLStats,
)


def test_stats_validator_refuses_rows_that_do_not_add_up() -> None:
    base = {"rows_out": 1, "rows_rejected": 1, "seconds": 0, "ts_unparsed": 0}
    with pytest.raises(ValidationError, match="rows_in"):
        ETLStats(rows_in=3, rejected_by_reason={"empty": 1}, **base)
    with pytest.raises(ValidationError, match="rejected_by_reason"):
        ETLStats(rows_in=2, rejected_by_reason={}, **base)


def test_config_defaults_come_from_settings(monkeypatch) -> None:
    from esk_pipeline.settings import get_settings

    monkeypatch.setenv("ETL_MAX_ROWS", "7")
    monkeypatch.setenv("ETL_TEXT_COLUMN", "Жалоба")
    get_settings.cache_clear()
    try:
        config = ETLConfig()
        assert (config.max_rows, config.text_column) == (7, "Жалоба")
        assert (config.mask_pii, config.unicode_form, config.max_file_bytes) == (True, "NFKC", None)
    finally:
        get_settings.cache_clear()
