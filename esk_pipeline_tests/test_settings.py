import pytest
from pydantic import SecretStr

from esk_pipeline.settings import (
    SEED_NAMES_REPLACED,
    LLMSettings,
    Settings,
    get_settings,
    unread_variables,
)


@pytest.fixture(autouse=True)
def _no_llm_environment(monkeypatch):
    """Hermetic: neither the caller's LLM_* variables nor a local .env take part."""
    import os

    for name in [n for n in os.environ if n.startswith("LLM_")]:
        monkeypatch.delenv(name)
    monkeypatch.setitem(LLMSettings.model_config, "env_file", None)


def test_no_endpoint_means_the_offline_model():
    endpoint = LLMSettings().endpoint_for("labeler")
    assert endpoint.model == "local" and endpoint.is_local


def test_agent_settings_fall_back_to_the_main_llm():
    llm = LLMSettings(api_key="sk-main-0123456789abcdef", api_base="https://api.example/v1")
    endpoint = llm.endpoint_for("augmenter")
    assert endpoint.api_base == "https://api.example/v1"
    assert endpoint.api_key.get_secret_value() == "sk-main-0123456789abcdef"
    assert endpoint.model == "gpt-4o-mini"


def test_the_main_key_never_goes_to_an_agents_own_server():
    llm = LLMSettings(
        api_key="sk-main-0123456789abcdef",
        labeler_api_base="http://127.0.0.1:8000/v1",
        labeler_model="llama3.1:8b",
    )
    endpoint = llm.endpoint_for("labeler")
    assert endpoint.api_base == "http://127.0.0.1:8000/v1" and endpoint.api_key is None
    own = LLMSettings(
        api_key="sk-main-0123456789abcdef",
        labeler_api_base="http://127.0.0.1:8000/v1",
        labeler_api_key="local-key",
    ).endpoint_for("labeler")
    assert own.api_key == SecretStr("local-key")


def test_the_contracts_environment_names(monkeypatch):
    monkeypatch.setenv("LLM_LABELER_MODEL", "qwen2.5")
    monkeypatch.setenv("LABELER_BATCH_SIZE", "7")
    monkeypatch.setenv("CLICKHOUSE_PASSWORD", "pw-secret")
    monkeypatch.setenv("APP_API_TOKENS", '{"alice": "tok-1-0123456789abcdefghij"}')
    settings = Settings.load()
    assert settings.llm.labeler_model == "qwen2.5" and settings.labeler.batch_size == 7
    assert "pw-secret" not in repr(settings) and "tok-1-0123456789abcdefghij" not in repr(settings)
    assert settings.clickhouse.password.get_secret_value() == "pw-secret"
    assert settings.app.api_tokens["alice"].token.get_secret_value() == "tok-1-0123456789abcdefghij"


@pytest.mark.parametrize(
    "group",
    [
        "app",
        "llm",
        "labeler",
        "augmenter",
        "etl",
        "review",
        "data_writer",
        "data_storage",
        "cache",
        "clickhouse",
    ],
)
def test_every_group_of_the_contract_exists(group):
    assert getattr(Settings.load(), group) is not None


@pytest.mark.parametrize("variable", ["CLICKHOUSE_TABLE", "CLICKHOUSE_DATABASE"])
@pytest.mark.parametrize("value", ["esk_logs\n", "esk_logs;", "esk-logs", "1logs", ""])
def test_clickhouse_names_must_match_whole(monkeypatch, variable, value):
    from pydantic import ValidationError

    from esk_pipeline.settings import ClickHouseSettings

    monkeypatch.setenv(variable, value)
    with pytest.raises(ValidationError, match="not a plain name"):
        ClickHouseSettings()


def test_a_misspelt_or_seed_named_variable_is_reported_not_silently_ignored(tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text("review_low_confidence_threshold=0.7\nLABELER_BATCH_SIZE=10\n")
    environ = {"LABELER_BACH_SIZE": "5", "APP_MODE": "production", "HOME": "/root"}
    lines = unread_variables(environ, env_file)
    assert lines == [
        f"APP_MODE is not read: {SEED_NAMES_REPLACED['APP_MODE']}",
        "LABELER_BACH_SIZE is not a setting; did you mean LABELER_BATCH_SIZE?",
        "REVIEW_LOW_CONFIDENCE_THRESHOLD is not read: "
        + SEED_NAMES_REPLACED["REVIEW_LOW_CONFIDENCE_THRESHOLD"],
    ]


def test_variables_the_settings_read_are_not_reported(tmp_path, monkeypatch):
    # Prefixes that share a start (DATA_WRITER_ / DATA_STORAGE_, LLM_ / LLM_LABELER_).
    environ = {
        "DATA_WRITER_EVAL_FRACTION": "0.3",
        "DATA_STORAGE_MAX_VERSIONS": "7",
        "LLM_LABELER_MODEL": "qwen",
        "cache_ttl_hours": "2",
    }
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    settings = Settings()
    assert settings.data_writer.eval_fraction == 0.3
    assert settings.data_storage.max_versions == 7
    assert settings.llm.labeler_model == "qwen"
    assert settings.cache.ttl_hours == 2
    assert unread_variables(environ, tmp_path / "absent.env") == []


def test_unread_variables_are_warned_about_once_settings_are_loaded(monkeypatch, caplog):
    monkeypatch.setenv("TRUST_AUDIT_SHAER", "0.3")
    get_settings.cache_clear()
    try:
        with caplog.at_level("WARNING", logger="esk_pipeline.settings"):
            get_settings()
    finally:
        get_settings.cache_clear()
    assert any(
        r.getMessage().startswith("TRUST_AUDIT_SHAER is not a setting") for r in caplog.records
    )
