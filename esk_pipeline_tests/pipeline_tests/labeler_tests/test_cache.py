"""The caches: per-text results across runs and batch shapes, and the client's batch cache."""

from __future__ import annotations

import asyncio
import json
import re
import sqlite3
from pathlib import Path
from typing import Any

import pandas as pd

from esk_pipeline.pipeline.connections import LLMEndpoint
from esk_pipeline.pipeline.labeler import (
    PROMPT_VERSION,
    ClassificationResult,
    LabelerAgent,
    LabelerConfig,
    label_dataframe_batched,
)
from esk_pipeline.pipeline.llm import LLMClient, ResponseCache, UsageMeter
from esk_pipeline.pipeline.llm.cache import CACHE_FILE_NAME
from esk_pipeline.pipeline.local_model import LocalModel
from esk_pipeline.pipeline.taxonomy import Taxonomy
from esk_pipeline_tests.fakes.openai_server import FakeOpenAIServer, batch_texts, request_text

from .conftest import http_config, label_texts, make_config, server_answers
from .scripted import TEXTS, TRUTH, Scripted

_EXAMPLE_LINE = re.compile(r'^- (".*") -> (\w+)$', re.MULTILINE)


def test_aclose_closes_the_cache_and_the_agent_stays_usable(
    taxonomy: Taxonomy, tmp_path: Path
) -> None:
    scripted = Scripted()
    agent = LabelerAgent(
        make_config(tmp_path, use_cache=True), taxonomy, model_override=scripted.model
    )
    first = label_texts(agent, TEXTS[:4])  # closes the agent after labelling
    assert agent._cache is not None and not agent._cache.is_open
    calls = len(scripted.calls)

    again = label_texts(agent, TEXTS[:4])  # reopens the cache file: every text is a hit
    assert len(scripted.calls) == calls
    assert [r.domain for r in again] == [r.domain for r in first] and all(r.cached for r in again)
    assert not agent._cache.is_open


def test_rerun_over_unchanged_input_makes_no_requests(taxonomy: Taxonomy, tmp_path: Path) -> None:
    first = Scripted()
    agent = LabelerAgent(
        make_config(tmp_path, use_cache=True, batch_size=3), taxonomy, model_override=first.model
    )
    before = label_texts(agent, TEXTS)
    assert first.calls

    again = Scripted()  # batches composed differently: the per-text cache still answers
    agent = LabelerAgent(
        make_config(tmp_path, use_cache=True, batch_size=5), taxonomy, model_override=again.model
    )
    after = label_texts(agent, list(reversed(TEXTS)))
    assert again.calls == []
    assert [r.domain for r in reversed(after)] == [r.domain for r in before]
    assert all(r.cached for r in after)
    assert agent.cascade_report(after).cache_hit_rate == 1.0


def test_deferred_items_are_picked_up_by_the_next_run(taxonomy: Taxonomy, tmp_path: Path) -> None:
    config = make_config(tmp_path, use_cache=True, batch_size=2, concurrency=1)
    first = Scripted()
    agent = LabelerAgent(
        config, taxonomy, model_override=first.model, usage=UsageMeter(max_requests=2)
    )
    results = label_texts(agent, TEXTS)
    assert [r.status for r in results].count("deferred") == len(TEXTS) - 4

    second = Scripted()
    agent = LabelerAgent(config, taxonomy, model_override=second.model)
    results = label_texts(agent, TEXTS)
    assert [r.status for r in results] == ["labeled"] * len(TEXTS)
    asked_again = sorted(t for call in second.calls for t in call.values())
    assert asked_again == sorted(TEXTS[4:])  # what the first run labelled came from the cache


def test_cache_key_changes_with_the_taxonomy(taxonomy: Taxonomy, tmp_path: Path) -> None:
    config = make_config(tmp_path, use_cache=True)
    agent = LabelerAgent(config, taxonomy, model_override=Scripted().model)
    label_texts(agent, TEXTS[:2])
    changed = taxonomy.model_copy(deep=True)
    changed.domains[0].description += " Капремонт."
    scripted = Scripted()
    agent = LabelerAgent(config, changed, model_override=scripted.model)
    label_texts(agent, TEXTS[:2])
    assert len(scripted.calls) == 1
    assert agent.version != LabelerAgent(make_config(tmp_path), taxonomy).version
    assert agent.version.startswith(PROMPT_VERSION)


def test_a_reply_that_settled_nothing_is_not_cached(taxonomy: Taxonomy, tmp_path: Path) -> None:
    with FakeOpenAIServer(lambda request: {"items": []}) as server:
        config = http_config(tmp_path, server, batch_size=4, max_retries=2, use_cache=True)
        results = label_texts(LabelerAgent(config, taxonomy), TEXTS[:4])
        first_run = server.request_count
        results_again = label_texts(LabelerAgent(config, taxonomy), TEXTS[:4])
        prompts = [request_text(r) for r in server.requests]
    assert {r.status for r in [*results, *results_again]} == {"failed"}
    assert first_run == 3  # the request and max_retries follow-ups, each reaching the server
    assert len(set(prompts[:first_run])) == first_run  # never the identical prompt
    assert len(prompts) == 2 * first_run  # nothing was cached, so the rerun asks again


def test_a_cache_hit_does_not_use_up_a_round(taxonomy: Taxonomy, tmp_path: Path) -> None:
    skipped = TEXTS[3]
    skipping = [True]

    def answers(request: dict[str, Any]) -> dict[str, Any]:
        items = server_answers(request)["items"]
        texts = batch_texts(request_text(request))
        return {"items": [i for i in items if not (skipping[0] and texts[i["id"]] == skipped)]}

    cache = ResponseCache(tmp_path / "batches.sqlite", ttl_hours=24)
    with FakeOpenAIServer(answers) as server, cache:
        endpoint = LLMEndpoint(model="fake-model", api_base=server.base_url, timeout_seconds=2)

        def run() -> pd.DataFrame:
            client = LLMClient(endpoint, rate_limit=0, max_retries=0, cache=cache)
            frame = pd.DataFrame({"text": TEXTS[:4]})
            return asyncio.run(
                label_dataframe_batched(
                    frame,
                    client,
                    taxonomy=taxonomy,
                    use_cache=False,
                    max_retries=0,
                    local_accept_threshold=1.0,
                    batch_size=4,
                )
            )

        first = run()
        skipping[0] = False
        second = run()  # the batch's reply comes from the client's cache ...
        asked = [batch_texts(request_text(r)) for r in server.requests]
    assert list(first["status"]) == ["labeled"] * 3 + ["failed"]
    # ... and the follow-up for the skipped text still goes out, though max_retries is 0.
    assert list(second["status"]) == ["labeled"] * 4
    assert [list(texts.values()) for texts in asked] == [TEXTS[:4], [skipped]]


def test_a_cached_label_follows_the_local_model_it_was_made_with(
    taxonomy: Taxonomy, tmp_path: Path
) -> None:
    """An LLM label carries the local model's part (its hints, its agreement): after a new
    local model (another recipe, MODEL_VERSION, scikit-learn) with the same examples, a warm
    cache gives what a cold one gives, not the old model's numbers."""

    def relabelled(cache_dir: Path) -> list[ClassificationResult]:
        agent = LabelerAgent(
            make_config(tmp_path, use_cache=True, cache_dir=cache_dir),
            taxonomy,
            model_override=Scripted().model,
        )
        agent.local_model = LocalModel(c=0.05)  # another recipe over the same examples
        agent.learn([])
        return label_texts(agent, TEXTS)

    warm = tmp_path / "warm"
    agent = LabelerAgent(
        make_config(tmp_path, use_cache=True, cache_dir=warm),
        taxonomy,
        model_override=Scripted().model,
    )
    label_texts(agent, TEXTS)
    cold = relabelled(tmp_path / "cold")
    assert [r.top_candidates for r in relabelled(warm)] == [r.top_candidates for r in cold]


# -- the per-text cache across human decisions -------------------------------------------


def _asked(server: FakeOpenAIServer, since: int = 0) -> list[str]:
    """The texts the server was asked about, from request `since` on, sorted."""
    return sorted(t for r in server.requests[since:] for t in batch_texts(request_text(r)).values())


def _shown(request: dict[str, Any]) -> set[tuple[str, str]]:
    """The (text, domain) few-shot examples a labeler request showed."""
    return {
        (json.loads(text), domain) for text, domain in _EXAMPLE_LINE.findall(request_text(request))
    }


def _edit_cache(config: LabelerConfig, *statements: str) -> None:
    """Run SQL `statements` on the labeler's cache file, as time or an older version would."""
    conn = sqlite3.connect(config.cache_dir / CACHE_FILE_NAME)
    with conn:
        for statement in statements:
            conn.execute(statement)
    conn.close()


def test_a_new_decision_sends_no_request_for_texts_already_answered(
    taxonomy: Taxonomy, tmp_path: Path
) -> None:
    """A verified label added since (so shown to no earlier request) undoes no answer, though
    it changes the few-shot pool and retrains the local model."""
    with FakeOpenAIServer(server_answers) as server:
        config = http_config(tmp_path, server, use_cache=True, batch_size=2)
        label_texts(LabelerAgent(config, taxonomy), TEXTS)
        first_run = server.request_count
        decided = [("вывезли не весь мусор с площадки", "waste")]
        again = label_texts(LabelerAgent(config, taxonomy, verified=decided), TEXTS)
    assert first_run == len(TEXTS) // 2
    assert server.request_count == first_run
    assert all(r.cached for r in again)
    assert [r.domain for r in again] == [TRUTH[t] for t in TEXTS]


def test_relabelling_an_example_a_text_was_shown_asks_that_text_again(
    taxonomy: Taxonomy, tmp_path: Path
) -> None:
    """Only a changed domain changes the premise: the same example verified in another spelling
    (the same normalised text, which replaces it in the pool) with its domain asks nothing."""
    with FakeOpenAIServer(server_answers) as server:
        config = http_config(tmp_path, server, use_cache=True, batch_size=2)
        label_texts(LabelerAgent(config, taxonomy), TEXTS)
        first = list(server.requests)
        # The example shown to the fewest requests, so some texts were not shown it.
        shown = [_shown(r) for r in first]
        example = min(set.union(*shown), key=lambda ex: sum(ex in s for s in shown))
        premise_changed = sorted(
            t
            for r, s in zip(first, shown, strict=True)
            if example in s
            for t in batch_texts(request_text(r)).values()
        )
        respelt = (f"  {example[0].upper()} ", example[1])
        label_texts(LabelerAgent(config, taxonomy, verified=[respelt]), TEXTS)
        assert server.request_count == len(first)
        relabelled = (example[0], next(d for d in taxonomy.ids if d != example[1]))
        again = label_texts(LabelerAgent(config, taxonomy, verified=[relabelled]), TEXTS)
    assert 0 < len(premise_changed) < len(TEXTS)
    assert _asked(server, len(first)) == premise_changed
    assert sorted(r.text for r in again if not r.cached) == premise_changed


def test_a_cache_hit_meets_todays_local_model_as_a_fresh_answer_does(
    taxonomy: Taxonomy, tmp_path: Path
) -> None:
    """New decisions retrain the local model: a hit's hints and agreement are rebuilt from
    today's prediction, exactly as a fresh answer's (the same reply) are, with no request."""
    texts = TEXTS[4:]
    decided = [(f"{text} {suffix}", TRUTH[text]) for text in texts for suffix in ("снова", "ещё")]
    with FakeOpenAIServer(server_answers) as server:
        warm = http_config(tmp_path, server, use_cache=True, cache_dir=tmp_path / "warm")
        before = label_texts(LabelerAgent(warm, taxonomy), texts)
        first_run = server.request_count
        hits = label_texts(LabelerAgent(warm, taxonomy, verified=decided), texts)
        assert server.request_count == first_run
        cold = http_config(tmp_path, server, use_cache=True, cache_dir=tmp_path / "cold")
        fresh = label_texts(LabelerAgent(cold, taxonomy, verified=decided), texts)
    assert all(r.cached for r in hits) and not any(r.cached for r in fresh)
    assert [r.model_dump(exclude={"cached"}) for r in hits] == [
        r.model_dump(exclude={"cached"}) for r in fresh
    ]
    # The decisions did move the local model's part: agreement and hints changed.
    assert [r.agrees_with_local for r in hits] != [r.agrees_with_local for r in before]
    assert [r.top_candidates for r in hits] != [r.top_candidates for r in before]


def test_a_per_text_answer_older_than_the_ttl_is_still_a_hit(
    taxonomy: Taxonomy, tmp_path: Path
) -> None:
    with FakeOpenAIServer(server_answers) as server:
        config = http_config(tmp_path, server, use_cache=True, cache_ttl_hours=24)
        label_texts(LabelerAgent(config, taxonomy), TEXTS)
        first_run = server.request_count
        _edit_cache(config, "UPDATE responses SET created_at = created_at - 2 * 86400")
        again = label_texts(LabelerAgent(config, taxonomy), TEXTS)
    assert server.request_count == first_run
    assert all(r.cached for r in again)


def test_a_per_text_entry_without_recorded_examples_is_a_miss(
    taxonomy: Taxonomy, tmp_path: Path
) -> None:
    """An entry of the older format (a whole outcome) says nothing of what it was shown."""
    with FakeOpenAIServer(server_answers) as server:
        config = http_config(tmp_path, server, use_cache=True)
        label_texts(LabelerAgent(config, taxonomy), TEXTS[:2])
        old_format = (
            '{"domain": "roads", "confidence": 0.9, "top_candidates": [], "label_source":'
            ' "fake-model", "model": "fake-model", "tier": "llm", "status": "labeled"}'
        )
        _edit_cache(
            config,
            f"UPDATE responses SET value = '{old_format}' WHERE key LIKE 'labeler:text:%'",
            "DELETE FROM responses WHERE key NOT LIKE 'labeler:text:%'",  # the batch prompts'
        )
        again = label_texts(LabelerAgent(config, taxonomy), TEXTS[:2])
    assert _asked(server) == sorted(TEXTS[:2] * 2)
    assert [r.domain for r in again] == [TRUTH[t] for t in TEXTS[:2]]


def test_with_static_fewshot_the_system_prompts_examples_are_what_a_text_was_shown(
    taxonomy: Taxonomy, tmp_path: Path
) -> None:
    with FakeOpenAIServer(server_answers) as server:
        config = http_config(tmp_path, server, use_cache=True, use_dynamic_fewshot=False)
        label_texts(LabelerAgent(config, taxonomy), TEXTS)
        first_run = server.request_count
        decided = [("вывезли не весь мусор с площадки", "waste")]
        label_texts(LabelerAgent(config, taxonomy, verified=decided), TEXTS)
        assert server.request_count == first_run
        text, domain = LabelerAgent(config, taxonomy).fewshot.static(taxonomy.ids)[0]
        relabelled = [*decided, (text, next(d for d in taxonomy.ids if d != domain))]
        label_texts(LabelerAgent(config, taxonomy, verified=relabelled), TEXTS)
    assert _asked(server, first_run) == sorted(TEXTS)  # every request showed it


def test_another_server_for_the_same_model_name_is_asked_again(
    taxonomy: Taxonomy, tmp_path: Path
) -> None:
    """Per-text answers last: one from another endpoint (another api_base, or the same one
    asked in another output mode or without token logprobs) must not stand for its own."""
    with FakeOpenAIServer(server_answers) as first, FakeOpenAIServer(server_answers) as second:
        label_texts(LabelerAgent(http_config(tmp_path, first, use_cache=True), taxonomy), TEXTS)
        assert first.request_count
        again = label_texts(
            LabelerAgent(http_config(tmp_path, second, use_cache=True), taxonomy), TEXTS
        )
        assert second.request_count and not any(r.cached for r in again)
        asked = second.request_count
        config = http_config(tmp_path, second, use_cache=True, token_logprobs=False)
        label_texts(LabelerAgent(config, taxonomy), TEXTS)
        assert second.request_count > asked


def test_a_fallback_models_answer_expires_and_the_model_is_asked_again(
    taxonomy: Taxonomy, tmp_path: Path
) -> None:
    """The fallback answers while the model is down: its per-text answers are a stopgap with
    the TTL, not lasting, or the outage's answers would stand for the model's forever."""
    with FakeOpenAIServer(server_answers, model_faults={"fake-model": "503"}) as server:
        config = http_config(
            tmp_path, server, use_cache=True, cache_ttl_hours=24, fallback_model="backup"
        )
        during = label_texts(LabelerAgent(config, taxonomy), TEXTS)
        assert {r.label_source for r in during} == {"backup"}
        server.model_faults.clear()  # the model is back
        _edit_cache(config, "UPDATE responses SET created_at = created_at - 2 * 86400")
        after = label_texts(LabelerAgent(config, taxonomy), TEXTS)
    assert {r.label_source for r in after} == {"fake-model"}
    assert not any(r.cached for r in after)
