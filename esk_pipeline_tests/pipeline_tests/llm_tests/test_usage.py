"""UsageMeter: counters, cost, budget."""

from __future__ import annotations

import threading

import pytest

from esk_pipeline import configs
from esk_pipeline.pipeline.llm import BudgetExhausted, UsageMeter
from esk_pipeline.settings import Settings


def test_cost_from_prices():
    meter = UsageMeter(input_price_per_1k=0.5, output_price_per_1k=1.5)
    meter.record_tokens(2000, 1000)
    assert meter.cost == pytest.approx(1.0 + 1.5)
    assert meter.snapshot()["cost"] == pytest.approx(2.5)


def test_the_settings_mapping_gives_a_meter_its_prices_and_budget(monkeypatch):
    monkeypatch.setenv("LLM_INPUT_PRICE_PER_1K", "0.25")
    monkeypatch.setenv("LLM_MAX_REQUESTS_PER_RUN", "7")
    meter = configs.usage_meter(Settings.load())
    assert meter.input_price_per_1k == 0.25
    assert meter.max_requests == 7
    assert UsageMeter().input_price_per_1k == 0.0  # the library alone never reads the env


def test_request_budget_raises_before_the_request_is_counted():
    meter = UsageMeter(max_requests=2)
    meter.begin_request()
    meter.begin_request()
    with pytest.raises(BudgetExhausted, match="request budget"):
        meter.begin_request()
    assert meter.requests == 2
    with pytest.raises(BudgetExhausted):
        meter.check_budget()


def test_token_budget():
    meter = UsageMeter(max_tokens=100)
    meter.begin_request()
    meter.record_tokens(60, 40)
    with pytest.raises(BudgetExhausted, match="token budget"):
        meter.begin_request()


def test_counters_are_thread_safe():
    meter = UsageMeter()

    def work() -> None:
        for _ in range(1000):
            meter.begin_request()
            meter.record_tokens(1, 2)
            meter.record_cache_hit()

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    snapshot = meter.snapshot()
    assert snapshot["requests"] == 4000
    assert snapshot["input_tokens"] == 4000 and snapshot["output_tokens"] == 8000
    assert snapshot["cached_hits"] == 4000
