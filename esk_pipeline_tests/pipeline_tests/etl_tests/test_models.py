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


def test_the_config_has_literal_defaults_and_the_mapping_reads_the_settings(monkeypatch) -> None:
    from esk_pipeline import configs
    from esk_pipeline.settings import Settings

    monkeypatch.setenv("ETL_MAX_ROWS", "7")
    monkeypatch.setenv("ETL_TEXT_COLUMN", "Жалоба")
    monkeypatch.setenv("ETL_MAX_UNPACKED_RATIO", "3")
    monkeypatch.setenv("APP_MAX_UPLOAD_MB", "2")
    assert (ETLConfig().max_rows, ETLConfig().text_column) == (None, None)
    config = configs.etl_config(Settings.load())
    assert (config.max_rows, config.text_column) == (7, "Жалоба")
    assert config.max_unpacked_bytes == 3 * 2 * 1024 * 1024
    assert (config.mask_pii, config.unicode_form, config.max_file_bytes) == (True, "NFKC", None)


def test_the_cleaning_fingerprint_follows_what_shapes_a_cleaned_row_and_nothing_else() -> None:
    base = ETLConfig().cleaning_fingerprint()
    assert ETLConfig().cleaning_fingerprint() == base
    for shaping in ({"mask_pii": False}, {"min_text_length": 4}, {"max_rows": 10}):
        assert ETLConfig(**shaping).cleaning_fingerprint() != base, shaping
    # Bounds on reading a file refuse files; a day from ClickHouse is cleaned the same.
    for bound in ({"max_columns": 5}, {"max_file_bytes": 10}, {"max_unpacked_bytes": 10}):
        assert ETLConfig(**bound).cleaning_fingerprint() == base, bound
