"""The writer's config: literal defaults equal to the settings', env vars only via the mapping."""

from __future__ import annotations

from esk_pipeline import configs
from esk_pipeline.pipeline.splits import DataWriterConfig
from esk_pipeline.settings import Settings


def test_literal_defaults_equal_the_settings_defaults(monkeypatch):
    for name in ("DATA_WRITER_SEED", "DATA_WRITER_EVAL_FRACTION", "TRUST_PRECISION_TARGET"):
        monkeypatch.delenv(name, raising=False)
    mapped = configs.writer_config(Settings.load())
    assert DataWriterConfig() == mapped


def test_environment_reaches_the_config_only_through_the_settings_mapping(monkeypatch):
    monkeypatch.setenv("DATA_WRITER_SEED", "1234")
    monkeypatch.setenv("DATA_WRITER_EVAL_FRACTION", "0.25")
    monkeypatch.setenv("TRUST_PRECISION_TARGET", "0.8")
    assert DataWriterConfig().seed == 42
    mapped = configs.writer_config(Settings.load())
    assert (mapped.seed, mapped.eval_fraction, mapped.precision_target) == (1234, 0.25, 0.8)
