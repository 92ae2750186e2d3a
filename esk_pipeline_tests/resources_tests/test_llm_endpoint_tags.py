"""The run tag the deployment's queue limits on: the LLM endpoint's host, and none offline."""

from esk_pipeline.resources.llm import LLM_ENDPOINT_TAG, llm_endpoint_tags
from esk_pipeline.settings import Settings


def test_offline_runs_carry_no_endpoint_tag(project_env):
    assert llm_endpoint_tags(Settings.load(), "labeler") == {}


def test_runs_name_each_agents_endpoint_host_but_never_its_key(project_env, monkeypatch):
    monkeypatch.setenv("LLM_API_BASE", "http://user:pw@llm.internal:8080/v1")
    monkeypatch.setenv("LLM_API_KEY", "sk-not-a-real-key")
    monkeypatch.setenv("LLM_AUGMENTER_API_BASE", "https://other.example/v1")
    settings = Settings.load()
    assert llm_endpoint_tags(settings, "labeler") == {LLM_ENDPOINT_TAG: "llm.internal-8080"}
    assert llm_endpoint_tags(settings, "augmenter") == {LLM_ENDPOINT_TAG: "other.example"}
