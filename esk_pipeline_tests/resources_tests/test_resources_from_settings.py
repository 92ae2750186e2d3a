"""Resources hold the values a run uses, built from the settings; secrets stay env var names."""

import pytest
from dagster import EnvVar, build_init_resource_context

from esk_pipeline import configs
from esk_pipeline.definitions import build_defs, build_resources
from esk_pipeline.resources.clickhouse import ClickHouseResource
from esk_pipeline.resources.etl import ETLResource
from esk_pipeline.resources.llm import AugmenterResource, LabelerResource
from esk_pipeline.resources.stores import DatasetStoreResource, ReviewStoreResource
from esk_pipeline.resources.trust import TrustPolicyResource
from esk_pipeline.settings import Settings

# One non-default value per group, so a field the resource forgets shows as a difference.
CHANGED = {
    "LABELER_BATCH_SIZE": "7",
    "LABELER_LOCAL_ACCEPT_THRESHOLD": "0.8",
    "CACHE_TTL_HOURS": "5",
    "CACHE_UNREAD_DAYS": "30",
    "CACHE_ENABLED": "false",
    "AUGMENTER_VARIANTS_PER_SAMPLE": "2",
    "AUGMENTER_NEAR_DUPLICATE_THRESHOLD": "0.8",
    "ETL_MIN_TEXT_LENGTH": "9",
    "ETL_NEAR_DUPLICATES": "false",
    "REVIEW_LEASE_SECONDS": "77",
    "REVIEW_SECOND_OPINION_CONFIDENCE": "0.6",
    "DATA_WRITER_EVAL_FRACTION": "0.2",
    "DATA_WRITER_SMALL_DOMAIN_POLICY": "drop",
    "DATA_STORAGE_MAX_VERSIONS": "3",
    "DATA_STORAGE_MAX_IMPORT_MB": "7",
    "TRUST_PRECISION_TARGET": "0.9",
    "TRUST_AUDIT_SHARE": "0.2",
    "CLICKHOUSE_TABLE": "other_logs",
}


@pytest.fixture
def settings(project_env, monkeypatch):
    for name, value in CHANGED.items():
        monkeypatch.setenv(name, value)
    return Settings.load()


def test_each_resource_builds_the_same_config_as_the_settings_mapping(settings):
    assert LabelerResource.from_settings(settings).config() == configs.labeler_config(settings)
    assert AugmenterResource.from_settings(settings).config() == configs.augmenter_config(settings)
    assert TrustPolicyResource.from_settings(settings).config() == configs.trust_config(settings)
    etl = ETLResource.from_settings(settings).processor().config
    assert etl == configs.etl_config(settings, max_unpacked_bytes=etl.max_unpacked_bytes)
    assert ClickHouseResource.from_settings(settings).config().table == "other_logs"
    store = DatasetStoreResource.from_settings(settings)
    assert store.storage().config == configs.storage_config(settings)
    writer = store.writer(None, precision_target=settings.trust.precision_target).config
    assert writer == configs.writer_config(settings, validate_quality=False)
    review = ReviewStoreResource.from_settings(settings)
    assert review.open(None).config == configs.review_config(settings)


def test_the_definitions_carry_the_values_a_run_will_use(settings):
    resources = build_defs(settings).resources
    assert resources["labeler"].batch_size == 7
    assert resources["labeler"].use_cache is False  # CACHE_ENABLED=false wins
    assert resources["review_store"].lease_seconds == 77
    assert resources["trust_policy"].precision_target == 0.9
    assert resources["dataset_store"].max_import_bytes == 7 * 1024 * 1024


def test_a_resource_shows_each_field_as_the_library_declares_it():
    from esk_pipeline.pipeline import LabelerConfig
    from esk_pipeline.pipeline.options import LLMBudget

    fields = LabelerResource.model_fields
    assert set(fields) == set(LabelerConfig.model_fields) | set(LLMBudget.model_fields)
    assert fields["batch_size"].description == LabelerConfig.model_fields["batch_size"].description
    assert LabelerResource().config() == LabelerConfig()  # the same defaults


def test_secrets_are_env_vars_resolved_only_when_a_run_starts(project_env, monkeypatch):
    monkeypatch.setenv("LLM_API_BASE", "http://llm.internal:8080/v1")
    monkeypatch.setenv("LLM_API_KEY", "sk-main-not-real")
    monkeypatch.setenv("LLM_AUGMENTER_API_BASE", "http://other.internal/v1")
    monkeypatch.setenv("LLM_AUGMENTER_API_KEY", "sk-augmenter-not-real")
    monkeypatch.setenv("CLICKHOUSE_HOST", "ch.internal")
    monkeypatch.setenv("CLICKHOUSE_PASSWORD", "pw-not-real")
    monkeypatch.setenv("REVIEW_DATABASE_URL", "postgresql://u:pw@db/esk")
    resources = build_resources(Settings.load())

    assert resources["labeler"].api_key == EnvVar("LLM_API_KEY")
    assert resources["augmenter"].api_key == EnvVar("LLM_AUGMENTER_API_KEY")
    assert resources["clickhouse"].password == EnvVar("CLICKHOUSE_PASSWORD")
    assert resources["review_store"].database_url == EnvVar("REVIEW_DATABASE_URL")
    shown = repr({name: r for name, r in resources.items()})
    for secret in ("sk-main-not-real", "sk-augmenter-not-real", "pw-not-real", "u:pw@db"):
        assert secret not in shown

    labeler = resources["labeler"].process_config_and_initialize()
    assert labeler.config().api_key.get_secret_value() == "sk-main-not-real"
    clickhouse = resources["clickhouse"].process_config_and_initialize()
    assert clickhouse.config().password.get_secret_value() == "pw-not-real"


def test_offline_settings_carry_no_secret_at_all(project_env):
    resources = build_resources(Settings.load())
    assert resources["labeler"].api_key is None and resources["labeler"].model == "local"
    assert resources["clickhouse"].password is None and resources["clickhouse"].host is None


def test_the_io_manager_writes_under_the_data_folder_by_default(project_env):
    io_manager = build_resources(Settings.load())["io_manager"]
    manager = io_manager.create_io_manager(build_init_resource_context())
    assert str(manager._base_path) == str(project_env / "assets")
