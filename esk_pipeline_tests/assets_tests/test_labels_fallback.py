"""A labels day the fallback model answered for is not kept: its answers stand in while the
model is down, so a later refresh labels the day again instead of keeping them for good."""

from esk_pipeline_tests.assets_tests.test_labels_refit import (  # noqa: F401
    _decide,
    _decisions,
    _refresh,
    classify_calls,
    folder,
)
from esk_pipeline_tests.fakes.openai_server import FakeOpenAIServer
from esk_pipeline_tests.pipeline_tests.labeler_tests.conftest import server_answers


def test_a_day_the_fallback_answered_is_labelled_again(folder, classify_calls, monkeypatch):  # noqa: F811
    with FakeOpenAIServer(server_answers, model_faults={"fake-model": "503"}) as server:
        for name, value in {
            "LLM_MODEL": "fake-model",
            "LLM_API_BASE": server.base_url,
            "LLM_API_KEY": "sk-test",
            "LLM_FALLBACK_MODEL": "backup",
            "LABELER_LOCAL_ACCEPT_THRESHOLD": "1.0",
            "LABELER_MAX_RETRIES": "0",
        }.items():
            monkeypatch.setenv(name, value)
        _decide(folder, _decisions(10))
        first = _refresh(folder)
        assert server.request_count and classify_calls == [4, 4]
        server.model_faults.clear()  # the model is back
        again = _refresh(folder)
    assert classify_calls == [4, 4, 4, 4]
    for day, metadata in again.items():
        assert first[day]["labelled"] == "labelled: a new day"
        assert (
            metadata["labelled"] == "relabelled: it had deferred, failed or fallback-answered rows"
        )
