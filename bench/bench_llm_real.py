"""Benchmark of the labeler's LLM tier against a real OpenAI-compatible server.

    .venv/bin/python bench/bench_llm_real.py [--texts 200] [--batch-size 4]

With LLM_API_BASE set (and LLM_MODEL, LLM_API_KEY if needed) it uses that endpoint; otherwise it
starts ../shared/tools/llm-server.sh (llama.cpp with Qwen2.5-Coder-0.5B on loopback; the first
start builds it) and stops it at the end unless it was already running or --keep-server is given.

It labels sample-data texts (esk_pipeline.sample_data, which carry their `true_domain`) with
local_accept_threshold 1.0, so every text goes to the LLM, and reports against the ground truth:
- the valid-label rate: texts that came out labelled with a taxonomy domain by the LLM;
- accuracy of the LLM tier alone (failed texts count as wrong), of the local model alone, and of
  the cascade at the configured LABELER_LOCAL_ACCEPT_THRESHOLD (local labels at or above it,
  the LLM's for the rest, computed from the same run);
- requests, prompt and completion tokens (as the server reports them) and seconds per label;
- the token-logprob confidence, where the endpoint returned logprobs;
- the requests a rerun over the same input sends (the per-text cache: must be 0).
No asserts: it prints figures for people to read.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pandas as pd

from esk_pipeline.pipeline.labeler import ClassificationResult, LabelerAgent, LabelerConfig
from esk_pipeline.pipeline.taxonomy import Taxonomy
from esk_pipeline.sample_data import generate_logs
from esk_pipeline.settings import get_settings

ROOT = Path(__file__).resolve().parents[1]
TAXONOMY_PATH = ROOT / "data" / "taxonomy.yaml"
SERVER_SCRIPT = ROOT.parent / "shared" / "tools" / "llm-server.sh"
SERVER_MODEL = "qwen2.5-coder-0.5b"


def _server(action: str) -> str:
    done = subprocess.run(
        ["bash", str(SERVER_SCRIPT), action], capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


def _endpoint(keep_server: bool) -> tuple[str, str, bool]:
    """(api_base, model, whether this run started the server and should stop it)."""
    base = os.environ.get("LLM_API_BASE")
    if base:
        return base, os.environ.get("LLM_MODEL", SERVER_MODEL), False
    if not SERVER_SCRIPT.is_file():
        sys.exit(f"set LLM_API_BASE, or provide {SERVER_SCRIPT.name} under ../shared/tools")
    was_up = _server("status").startswith("up")
    print("starting the llama.cpp server (the first start builds it: minutes)...", flush=True)
    return _server("start").splitlines()[-1], SERVER_MODEL, not (was_up or keep_server)


def _sample(taxonomy: Taxonomy, n: int, seed: int) -> pd.DataFrame:
    logs = generate_logs(taxonomy, n_rows=max(4 * n, 400), seed=seed)
    logs = logs.drop_duplicates("text").sample(frac=1.0, random_state=seed)
    return logs.head(n)[["text", "true_domain"]].reset_index(drop=True)


def _label(config: LabelerConfig, taxonomy: Taxonomy, frame: pd.DataFrame) -> dict[str, Any]:
    agent = LabelerAgent(config, taxonomy)

    async def run() -> list[ClassificationResult]:
        try:
            return await agent.classify_dataframe(frame[["text"]])
        finally:
            await agent.aclose()

    started = time.perf_counter()
    results = asyncio.run(run())
    return {
        "results": results,
        "seconds": time.perf_counter() - started,
        "usage": agent.usage.snapshot(),
        "local": agent.local_model.predict(frame["text"].tolist()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--texts", type=int, default=200)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--fewshot-budget", type=int, default=None, help="default: settings")
    parser.add_argument("--static-fewshot", action="store_true", help="no dynamic few-shot")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--keep-server", action="store_true")
    args = parser.parse_args()

    taxonomy = Taxonomy.load(TAXONOMY_PATH)
    frame = _sample(taxonomy, args.texts, args.seed)
    truth = frame["true_domain"].tolist()
    api_base, model, stop_after = _endpoint(args.keep_server)
    cascade_threshold = get_settings().labeler.local_accept_threshold
    try:
        with tempfile.TemporaryDirectory() as cache_dir:
            options: dict[str, Any] = {
                "model": model,
                "api_base": api_base,
                "api_key": os.environ.get("LLM_API_KEY", "not-needed"),
                "batch_size": args.batch_size,
                "local_accept_threshold": 1.0,
                "use_cache": True,
                "cache_dir": Path(cache_dir),
                "concurrency": 1,  # llama.cpp's server answers one request at a time
                "rate_limit": 0,
                "timeout_seconds": 600,
                "use_dynamic_fewshot": not args.static_fewshot,
            }
            if args.fewshot_budget is not None:
                options["fewshot_token_budget"] = args.fewshot_budget
            config = LabelerConfig(**options)
            print(f"{len(frame)} texts, {model} at {api_base}, batch {args.batch_size}", flush=True)
            first = _label(config, taxonomy, frame)
            rerun = _label(config, taxonomy, frame)
    finally:
        if stop_after:
            _server("stop")
    _report(first, rerun, truth, taxonomy, cascade_threshold)


def _report(
    first: dict[str, Any],
    rerun: dict[str, Any],
    truth: list[str],
    taxonomy: Taxonomy,
    cascade_threshold: float,
) -> None:
    results: list[ClassificationResult] = first["results"]
    n = len(results)
    valid = [r.status == "labeled" and r.tier == "llm" and r.domain in taxonomy for r in results]
    llm_right = [ok and r.domain == t for ok, r, t in zip(valid, results, truth, strict=True)]
    local = first["local"]
    local_right = [p[0] == t for p, t in zip(local, truth, strict=True)]
    cascade_right = [
        lr if p[1] >= cascade_threshold else r_ok
        for lr, p, r_ok in zip(local_right, local, llm_right, strict=True)
    ]
    usage = first["usage"]
    token_conf = [r.llm_token_confidence for r in results if r.llm_token_confidence is not None]
    errors = pd.Series([r.error for r in results if r.error]).str.slice(0, 70).value_counts()

    rows = [
        ("texts", n),
        ("valid-label rate (LLM)", f"{sum(valid) / n:.1%}"),
        ("accuracy, LLM tier alone", f"{sum(llm_right) / n:.1%}"),
        ("accuracy, local model alone", f"{sum(local_right) / n:.1%}"),
        (
            f"accuracy, cascade (local >= {cascade_threshold:g}, "
            f"{sum(p[1] >= cascade_threshold for p in local)} local)",
            f"{sum(cascade_right) / n:.1%}",
        ),
        ("requests per label", f"{usage['requests'] / n:.3f}"),
        ("prompt tokens per label", f"{usage['input_tokens'] / n:.1f}"),
        ("completion tokens per label", f"{usage['output_tokens'] / n:.1f}"),
        ("prompt tokens per request", f"{usage['input_tokens'] / max(usage['requests'], 1):.0f}"),
        ("seconds per label", f"{first['seconds'] / n:.2f}"),
        ("labels with a token confidence", f"{len(token_conf)}"),
        ("requests on a rerun", rerun["usage"]["requests"]),
        ("rerun seconds per label", f"{rerun['seconds'] / n:.4f}"),
    ]
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")
    answered = pd.Series([r.domain for r in results if r.tier == "llm" and r.domain])
    if len(answered):
        shares = (answered.value_counts(normalize=True).head(4) * 100).round(0)
        print("LLM answers, top domains (%):", ", ".join(f"{d} {v:g}" for d, v in shares.items()))
    if token_conf:
        self_conf = [r.llm_self_confidence for r in results if r.llm_token_confidence is not None]
        print(
            f"mean confidence, self-reported {sum(self_conf) / len(self_conf):.2f}, "
            f"token logprobs {sum(token_conf) / len(token_conf):.2f}"
        )
    if len(errors):
        print("\nreasons of failed texts:")
        print(errors.to_string())


if __name__ == "__main__":
    main()
