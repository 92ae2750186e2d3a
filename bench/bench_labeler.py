"""Benchmark of the labeler's LLM tier against the fake OpenAI-compatible server (loopback HTTP).

    .venv/bin/python bench/bench_labeler.py [--texts 2000] [--sections 1234]

1. Throughput: a fault-free server with a fixed 200 ms latency per request. Labels per second
   against the theoretical limit min(concurrency * batch_size / latency, rate_limit *
   batch_size), in a concurrency-bound and a rate-bound setting (target >= 90% of the limit);
   then the concurrency-bound setting at 1 s latency, nearer a real LLM's pace, where the
   client's fixed work per request weighs less.
2. Cost: requests and tokens (as the server reports them) per 1,000 labels with batch_size 20
   against batch_size 1, dynamic few-shot on (target >= 5x fewer tokens per label).
3. Re-run: the same input again with the cache on sends no request.
4. Refresh after N new human decisions (verified labels on N of the texts, which change the
   few-shot pool and retrain the local model), cache on: requests the refresh sends with the
   per-text key as it is (the question asked: examples shown are checked, not hashed) against the
   key it replaced (which also hashed the whole pool and the local model's fingerprint), each
   from its own fresh cache; then the same with the taxonomy's first example relabelled as well,
   which re-asks just the texts whose requests showed it. "texts" counts the LLM labels that
   were asked, not cached: a text the retrained local model no longer accepts (at confidence
   1.0) is new to the LLM tier whatever the key.

Every text goes to the LLM (local_accept_threshold 1.0, cache off unless said), so the figures
are the LLM tier's own. The server answers each text with its generated ground truth; it runs in
its own process, as a real server would, so its work does not compete for this one's GIL.
Throughput is given over the whole call (local model and cache look-up, then requests, which
start after the local model's first chunk) and over the request phase alone (first request
sent to last answer received). The concurrency-bound run is done twice: the first call in a
process also pays one-time costs (pydantic-ai loads its price table, the HTTP client its TLS
context: about 0.25 s here) that a long-lived process, such as the API, pays once.
No asserts: it prints figures for people to read.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import multiprocessing
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # for esk_pipeline_tests.fakes

from esk_pipeline.pipeline.labeler import ClassificationResult, LabelerAgent, LabelerConfig
from esk_pipeline.pipeline.labeler._prompts import question_hash
from esk_pipeline.pipeline.taxonomy import Taxonomy
from esk_pipeline.pipeline.text import model_form
from esk_pipeline.sample_data import generate_logs
from esk_pipeline_tests.fakes.openai_server import FakeOpenAIServer, labeler_responder

TAXONOMY_PATH = Path(__file__).resolve().parents[1] / "data" / "taxonomy.yaml"
LATENCY_SECONDS = 0.2
SLOW_LATENCY_SECONDS = 1.0  # a real LLM takes seconds to write 20 labels


def _truthful_responder(truth: dict[str, str]) -> Any:
    return labeler_responder(lambda text: truth.get(text, "other"))


class _RemoteServer:
    """A `FakeOpenAIServer` in a child process, driven over a pipe."""

    def __init__(self, conn: Connection, base_url: str) -> None:
        self._conn = conn
        self.base_url = base_url

    def _ask(self, command: str) -> Any:
        self._conn.send(command)
        return self._conn.recv()

    def reset(self) -> None:
        self._ask("reset")

    def stats(self) -> dict[str, Any]:
        """requests, max_concurrent and request_times (time.monotonic, system-wide)."""
        return self._ask("stats")


def _serve(truth: dict[str, str], latency_ms: float, conn: Connection) -> None:
    with FakeOpenAIServer(_truthful_responder(truth), latency_ms=latency_ms) as server:
        conn.send(server.base_url)
        while (command := conn.recv()) != "stop":
            if command == "reset":
                server.reset()
                conn.send(None)
            else:
                conn.send(
                    {
                        "requests": server.request_count,
                        "max_concurrent": server.max_concurrent,
                        "request_times": list(server.request_times),
                    }
                )


@contextmanager
def _server(truth: dict[str, str], latency_ms: float = 0) -> Iterator[_RemoteServer]:
    ours, theirs = multiprocessing.Pipe()
    process = multiprocessing.get_context("fork").Process(
        target=_serve, args=(truth, latency_ms, theirs), daemon=True
    )
    process.start()
    try:
        yield _RemoteServer(ours, ours.recv())
    finally:
        ours.send("stop")
        process.join(timeout=10)


class _PoolKeyedAgent(LabelerAgent):
    """The reference for 4.: the per-text key also hashes the whole few-shot pool and the local
    model's fingerprint, as it did before it became the question asked."""

    def _text_key_scope(self) -> list[str]:
        pool = question_hash(self.fewshot.examples)
        return [*super()._text_key_scope(), pool, self.local_model.fingerprint]


def _run(
    taxonomy: Taxonomy,
    texts: list[str],
    server: _RemoteServer,
    cache_dir: Path,
    *,
    agent_type: type[LabelerAgent] = LabelerAgent,
    verified: list[tuple[str, str]] | None = None,
    **config: Any,
) -> tuple[list[ClassificationResult], float, LabelerAgent]:
    settings = {
        "model": "fake-model",
        "api_base": server.base_url,
        "api_key": "sk-bench",
        "local_accept_threshold": 1.0,
        "use_cache": False,
        "cache_dir": cache_dir,
        "max_retries": 1,
        **config,
    }
    agent = agent_type(
        LabelerConfig(**settings),
        taxonomy,
        verified=verified or [],
        progress_callback=lambda _: None,
    )

    async def label() -> list[ClassificationResult]:
        try:
            return await agent.classify_dataframe(pd.DataFrame({"text": texts}))
        finally:
            await agent.aclose()

    started = time.monotonic()
    results = asyncio.run(label())
    return results, time.monotonic() - started, agent


def _throughput(taxonomy: Taxonomy, texts: list[str], truth: dict[str, str], tmp: Path) -> None:
    print("1. throughput against a fault-free server with a fixed latency")
    concurrency_bound = {"batch_size": 20, "concurrency": 4, "rate_limit": 0}
    runs = [  # (latency in seconds, note, config, texts), grouped by latency
        (LATENCY_SECONDS, "first call in this process", concurrency_bound, texts),
        (LATENCY_SECONDS, "the same again", concurrency_bound, texts),
        (LATENCY_SECONDS, "", {"batch_size": 20, "concurrency": 8, "rate_limit": 5}, texts),
        # 960 texts: 48 batches, 12 full rounds of 4 (a last, partial round would not be full)
        (SLOW_LATENCY_SECONDS, "nearer a real LLM's pace", concurrency_bound, texts[:960]),
    ]
    for latency, group in itertools.groupby(runs, key=lambda run: run[0]):
        with _server(truth, latency_ms=latency * 1000) as server:
            for _, note, config, run_texts in group:
                server.reset()
                results, seconds, _ = _run(taxonomy, run_texts, server, tmp, **config)
                finished = time.monotonic()
                stats = server.stats()
                request_seconds = finished - stats["request_times"][0]
                llm = sum(r.tier == "llm" and r.status == "labeled" for r in results)
                by_concurrency = config["concurrency"] * config["batch_size"] / latency
                by_rate = config["rate_limit"] * config["batch_size"] or float("inf")
                limit = min(by_concurrency, by_rate)
                print(
                    f"   latency {latency * 1000:.0f} ms, batch {config['batch_size']}, "
                    f"concurrency {config['concurrency']}, rate limit "
                    f"{config['rate_limit'] or 'none'} req/s -> limit {limit:.0f} labels/s"
                    + (f" ({note})" if note else "")
                )
                for phase, elapsed in (("whole call", seconds), ("request phase", request_seconds)):
                    rate = llm / elapsed
                    print(
                        f"     {phase:>13}: {llm} LLM labels in {elapsed:.2f} s = {rate:.1f} "
                        f"labels/s = {100 * rate / limit:.1f}% of the limit"
                    )
                requests, in_flight = stats["requests"], stats["max_concurrent"]
                print(f"     {requests} requests, at most {in_flight} in flight")


def _cost(taxonomy: Taxonomy, texts: list[str], truth: dict[str, str], tmp: Path) -> None:
    print(f"\n2. cost per 1,000 labels, {len(texts)} texts, dynamic few-shot on")
    per_label: dict[int, float] = {}
    with _server(truth) as server:
        for batch_size in (20, 1):
            results, _, agent = _run(
                taxonomy, texts, server, tmp, batch_size=batch_size, concurrency=8, rate_limit=0
            )
            usage = agent.usage.snapshot()
            labels = sum(r.status == "labeled" for r in results)
            scale = 1000 / labels
            per_label[batch_size] = usage["total_tokens"] / labels
            print(
                f"   batch_size {batch_size:>2}: {usage['requests'] * scale:7.0f} requests, "
                f"{usage['input_tokens'] * scale:9.0f} input + "
                f"{usage['output_tokens'] * scale:7.0f} output tokens per 1,000 labels "
                f"({per_label[batch_size]:.0f} tokens/label)"
            )
    print(f"   batch 20 uses {per_label[1] / per_label[20]:.1f}x fewer tokens per label")


def _rerun(taxonomy: Taxonomy, texts: list[str], truth: dict[str, str], tmp: Path) -> None:
    print(f"\n3. re-run with the cache, {len(texts)} texts")
    with _server(truth) as server:
        for attempt, batch_size in (("first run", 20), ("re-run, batch 7", 7)):
            server.reset()
            _, seconds, _ = _run(
                taxonomy,
                texts,
                server,
                tmp / "cache",
                use_cache=True,
                batch_size=batch_size,
                rate_limit=0,
            )
            print(f"   {attempt}: {server.stats()['requests']} requests, {seconds:.2f} s")


def _refresh(taxonomy: Taxonomy, texts: list[str], truth: dict[str, str], tmp: Path) -> None:
    print(f"\n4. refresh after N new decisions, {len(texts)} texts, batch 20, cache on")
    example, domain = taxonomy.examples()[0]
    relabelled = (example, next(d for d in taxonomy.ids if d != domain))
    keys = (("pool-keyed (before)", _PoolKeyedAgent), ("question-keyed", LabelerAgent))
    print(f"   {'decisions':>28} | " + " | ".join(f"{name:>19}" for name, _ in keys))
    with _server(truth) as server:
        for decided in (1, 10, 100, len(texts)):
            decisions = [(t, truth[t]) for t in texts[:decided]]
            for label, verified in (
                (f"{decided}", decisions),
                (f"{decided} + an example relabelled", [*decisions, relabelled]),
            ):
                cells = []
                for n, (_, agent_type) in enumerate(keys):
                    cache = tmp / f"refresh-{decided}-{len(verified)}-{n}"
                    run = {"use_cache": True, "batch_size": 20, "rate_limit": 0}
                    _run(taxonomy, texts, server, cache, agent_type=agent_type, **run)
                    server.reset()
                    results, _, _ = _run(
                        taxonomy,
                        texts,
                        server,
                        cache,
                        agent_type=agent_type,
                        verified=verified,
                        **run,
                    )
                    asked = sum(r.tier == "llm" and not r.cached for r in results)
                    cells.append(f"{server.stats()['requests']:>4} req, {asked:>4} texts")
                print(f"   {label:>28} | " + " | ".join(f"{c:>19}" for c in cells))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--texts", type=int, default=4000, help="texts in the throughput run")
    parser.add_argument("--cost-texts", type=int, default=300)
    parser.add_argument("--refresh-texts", type=int, default=1000)
    parser.add_argument("--sections", default="1234", help="which of 1-4 to run, e.g. 4")
    args = parser.parse_args()

    taxonomy = Taxonomy.load(TAXONOMY_PATH)
    logs = generate_logs(taxonomy, n_rows=int(args.texts * 1.4), seed=42)
    logs = logs.drop_duplicates("text")
    truth = dict(zip(logs["text"], logs["true_domain"], strict=True))
    # One text per normalised form: the labeler asks once per form, so rows = requests' texts.
    texts = list({model_form(t): t for t in reversed(truth)}.values())[::-1][: args.texts]
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        if "1" in args.sections:
            _throughput(taxonomy, texts, truth, tmp)
        if "2" in args.sections:
            _cost(taxonomy, texts[: args.cost_texts], truth, tmp)
        if "3" in args.sections:
            _rerun(taxonomy, texts[: args.cost_texts], truth, tmp)
        if "4" in args.sections:
            _refresh(taxonomy, texts[: args.refresh_texts], truth, tmp)


if __name__ == "__main__":
    main()
