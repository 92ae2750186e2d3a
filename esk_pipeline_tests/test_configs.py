"""The settings mapping: with nothing configured, every config it builds equals the library's
own literal defaults (so the two homes of a default cannot drift apart)."""

import os

import pytest

from esk_pipeline import configs
from esk_pipeline import pipeline as library
from esk_pipeline.pipeline.llm import UsageMeter
from esk_pipeline.pipeline.trust import TrustConfig
from esk_pipeline.settings import Settings

PREFIXES = (
    "APP_",
    "LLM_",
    "LABELER_",
    "AUGMENTER_",
    "ETL_",
    "REVIEW_",
    "TRUST_",
    "DATA_",
    "CACHE_",
)


@pytest.fixture
def unconfigured(monkeypatch, tmp_path):
    for name in list(os.environ):
        if name.startswith(PREFIXES):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)  # no .env
    return Settings.load()


@pytest.mark.parametrize(
    ("build", "config_cls"),
    [
        (configs.etl_config, library.ETLConfig),
        (configs.labeler_config, library.LabelerConfig),
        (configs.augmenter_config, library.AugmenterConfig),
        (configs.review_config, library.ReviewDatasetConfig),
        (configs.writer_config, library.DataWriterConfig),
        (configs.storage_config, library.DataStorageConfig),
        (configs.trust_config, TrustConfig),
    ],
)
def test_an_unconfigured_mapping_gives_the_literal_defaults(unconfigured, build, config_cls):
    assert build(unconfigured) == config_cls()


def test_an_unconfigured_meter_has_no_prices_and_no_budget(unconfigured):
    meter, default = configs.usage_meter(unconfigured), UsageMeter()
    assert (meter.input_price_per_1k, meter.max_tokens, meter.max_requests) == (
        default.input_price_per_1k,
        default.max_tokens,
        default.max_requests,
    )


def test_overrides_win_over_the_settings(unconfigured):
    assert configs.etl_config(unconfigured, max_rows=5).max_rows == 5
    assert configs.storage_config(unconfigured, max_versions=2).max_versions == 2
