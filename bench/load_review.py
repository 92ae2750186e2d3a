"""Load test of the review API: 50 concurrent reviewers work through 2,000 items over HTTP.

Starts the API under uvicorn (a subprocess on a free loopback port, temporary data folder,
2,000 seeded items, 50 reviewer tokens) and runs 50 reviewers (httpx.AsyncClient) that lease one
item at a time, then submit it (sometimes correcting the model) or skip it, until the queue is
empty or the time limit passes. Then it checks, against the clients' records and the store:

- items handed to two reviewers at once: two reviewers' lease intervals for the same item that
  overlap. Each interval is taken conservatively (from the moment the lease response arrived
  to the moment the decision request was sent), so an overlap is a real double hand-out;
- lost submissions: a submit answered 200 that the store does not hold, and items not decided
  exactly once;

and prints them with the total decisions, throughput, and p50/p99 latency of get-next and submit.
Exit status 1 when any check fails.

    .venv/bin/python bench/load_review.py [--items 2000] [--reviewers 50] [--max-seconds 120]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np

from esk_pipeline.pipeline.review import ReviewDataset, ReviewDatasetConfig, ReviewStatus
from esk_pipeline.pipeline.taxonomy import Taxonomy

TAXONOMY_PATH = Path(__file__).resolve().parents[1] / "data" / "taxonomy.yaml"
SKIP_SHARE = 0.1
CORRECT_SHARE = 0.3


@dataclass
class Lease:
    item_id: str
    reviewer: str
    received_at: float  # the lease response had arrived
    decided_at: float | None = None  # the decision request was about to be sent
    action: str | None = None  # "submit" | "skip"
    status: int | None = None
    domain: str | None = None


@dataclass
class Results:
    leases: list[Lease] = field(default_factory=list)
    next_latency: list[float] = field(default_factory=list)
    submit_latency: list[float] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=lambda: defaultdict(int))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _seed(config: ReviewDatasetConfig, taxonomy: Taxonomy, count: int) -> None:
    ids = taxonomy.ids
    rows = []
    for i in range(count):
        first, second = ids[i % len(ids)], ids[(i * 7 + 1) % len(ids)]
        rows.append(
            {
                "text": f"Обращение №{i}: проблема номер {i * 31 % 997}, прошу помочь",
                "domain": first,
                "confidence": 0.1 + (i % 40) / 100,
                "top_candidates": [[first, 0.45], [second, 0.3]],
                "label_source": "local",
                "status": "labeled",
            }
        )
    with ReviewDataset(config, taxonomy) as review:
        report = review.add_items(rows)
    if report.added != count:
        raise SystemExit(f"seeding added {report.added} of {count} items: {report.messages}")


def _start_server(root: Path, port: int, tokens: dict[str, str]) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "APP_DATA_DIR": str(root),
        "APP_TAXONOMY_PATH": str(TAXONOMY_PATH),
        "APP_API_TOKENS": json.dumps(tokens),
        "APP_LOG_LEVEL": "WARNING",
        "CLICKHOUSE_EMBEDDED_PATH": str(root / "clickhouse"),
        "DATA_STORAGE_STORAGE_DIR": str(root / "storage"),
        "CACHE_DIR": str(root / "cache"),
        "REVIEW_LEASE_SECONDS": "600",
    }
    env.pop("REVIEW_DATABASE_URL", None)
    command = [sys.executable, "-m", "uvicorn", "esk_pipeline.api:app", "--host", "127.0.0.1"]
    command += ["--port", str(port), "--log-level", "warning", "--no-access-log"]
    return subprocess.Popen(command, cwd=root, env=env)


async def _wait_until_up(base_url: str, server: subprocess.Popen[bytes]) -> None:
    async with httpx.AsyncClient(base_url=base_url) as client:
        for _ in range(300):
            if server.poll() is not None:
                raise SystemExit(f"the API exited with status {server.returncode}")
            try:
                if (await client.get("/healthz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)
    raise SystemExit("the API did not come up within 30 s")


async def _reviewer(
    client: httpx.AsyncClient,
    name: str,
    token: str,
    domains: list[str],
    results: Results,
    idle: set[str],
    team_size: int,
    deadline: float,
    rng: random.Random,
) -> None:
    """Lease, decide, repeat; stop when every reviewer finds the queue empty, or at the deadline."""
    headers = {"Authorization": f"Bearer {token}"}
    while time.monotonic() < deadline:
        start = time.perf_counter()
        response = await client.get("/api/review/next", params={"count": 1}, headers=headers)
        results.next_latency.append(time.perf_counter() - start)
        if response.status_code != 200:
            results.errors[f"next {response.status_code}"] += 1
            await asyncio.sleep(0.05)
            continue
        items = response.json()
        if not items:
            idle.add(name)
            if len(idle) == team_size:
                return
            await asyncio.sleep(0.2)
            continue
        idle.discard(name)
        item = items[0]
        lease = Lease(item_id=item["id"], reviewer=name, received_at=time.monotonic())
        results.leases.append(lease)
        if rng.random() < SKIP_SHARE:
            lease.action, path, body = "skip", f"/api/review/items/{item['id']}/skip", None
        else:
            domain = item["predicted_domain"]
            if rng.random() < CORRECT_SHARE:
                domain = rng.choice([d for d in domains if d != domain])
            lease.action, lease.domain = "submit", domain
            path, body = f"/api/review/items/{item['id']}/submit", {"domain": domain}
        lease.decided_at = time.monotonic()
        start = time.perf_counter()
        response = await client.post(path, json=body, headers=headers)
        if lease.action == "submit":
            results.submit_latency.append(time.perf_counter() - start)
        lease.status = response.status_code
        if response.status_code != 200:
            results.errors[f"{lease.action} {response.status_code}"] += 1


def _double_handouts(leases: list[Lease]) -> list[str]:
    """Items for which two different reviewers' lease intervals overlap."""
    by_item: dict[str, list[Lease]] = defaultdict(list)
    for lease in leases:
        by_item[lease.item_id].append(lease)
    return [
        item_id
        for item_id, item_leases in by_item.items()
        if any(
            a.reviewer != b.reviewer
            and a.received_at < (b.decided_at or float("inf"))
            and b.received_at < (a.decided_at or float("inf"))
            for i, a in enumerate(item_leases)
            for b in item_leases[i + 1 :]
        )
    ]


def _check_store(
    config: ReviewDatasetConfig, taxonomy: Taxonomy, leases: list[Lease]
) -> tuple[int, int, int]:
    """(lost 200 submits, items not decided exactly once, items left undecided)."""
    submitted = {
        lease.item_id: lease for lease in leases if lease.action == "submit" and lease.status == 200
    }
    lost = 0
    with ReviewDataset(config, taxonomy) as review:
        for item_id, lease in submitted.items():
            item = review.get_item(item_id)
            if item.reviewer_id != lease.reviewer or item.corrected_domain != lease.domain:
                lost += 1
        verified = review.verified_labels()
        decided_counts = verified["row_id"].value_counts()
        not_once = int((decided_counts != 1).sum()) + len(
            set(submitted) - set(decided_counts.index)
        )
        stats = review.stats()
        undecided = sum(
            n
            for status, n in stats.by_status.items()
            if status not in (ReviewStatus.APPROVED.value, ReviewStatus.CORRECTED.value)
        )
        problems = review.integrity_problems()
    if problems:
        print("store integrity problems:", *problems, sep="\n  ")
    return lost, not_once, undecided


def _ms(values: list[float], q: float) -> float:
    return float(np.percentile(values, q) * 1000) if values else float("nan")


async def _run(args: argparse.Namespace) -> int:
    taxonomy = Taxonomy.load(TAXONOMY_PATH)
    tokens = {f"reviewer{i:02d}": secrets.token_urlsafe(24) for i in range(args.reviewers)}
    with tempfile.TemporaryDirectory(prefix="esk-load-review-") as tmp:
        root = Path(tmp)
        config = ReviewDatasetConfig(data_dir=root, database_url=None, lease_seconds=600)
        _seed(config, taxonomy, args.items)
        port = _free_port()
        server = _start_server(root, port, tokens)
        base_url = f"http://127.0.0.1:{port}"
        results = Results()
        try:
            await _wait_until_up(base_url, server)
            limits = httpx.Limits(max_connections=args.reviewers, max_keepalive_connections=50)
            timeout = httpx.Timeout(60.0)
            idle: set[str] = set()
            deadline = time.monotonic() + args.max_seconds
            started = time.perf_counter()
            async with httpx.AsyncClient(
                base_url=base_url, limits=limits, timeout=timeout
            ) as client:
                await asyncio.gather(
                    *(
                        _reviewer(
                            client,
                            name,
                            token,
                            taxonomy.ids,
                            results,
                            idle,
                            len(tokens),
                            deadline,
                            random.Random(i),
                        )
                        for i, (name, token) in enumerate(tokens.items())
                    )
                )
            elapsed = time.perf_counter() - started
        finally:
            server.terminate()
            server.wait(timeout=30)
        lost, not_once, undecided = _check_store(config, taxonomy, results.leases)

    doubled = _double_handouts(results.leases)
    decisions = sum(1 for x in results.leases if x.action == "submit" and x.status == 200)
    skips = sum(1 for x in results.leases if x.action == "skip" and x.status == 200)
    print(f"items {args.items}, reviewers {args.reviewers}, wall time {elapsed:.1f} s")
    print(f"items handed to two reviewers at once: {len(doubled)}")
    print(f"lost submissions: {lost}; items not decided exactly once: {not_once}")
    print(f"items left undecided: {undecided}")
    print(f"decisions: {decisions}, skips: {skips}, leases: {len(results.leases)}")
    print(f"throughput: {decisions / elapsed:.1f} decisions/s")
    print(
        f"get-next latency: p50 {_ms(results.next_latency, 50):.1f} ms, "
        f"p99 {_ms(results.next_latency, 99):.1f} ms ({len(results.next_latency)} requests)"
    )
    print(
        f"submit latency:   p50 {_ms(results.submit_latency, 50):.1f} ms, "
        f"p99 {_ms(results.submit_latency, 99):.1f} ms ({len(results.submit_latency)} requests)"
    )
    if results.errors:
        print("non-200 answers:", dict(results.errors))
    failed = doubled or lost or not_once or undecided or results.errors
    print("RESULT:", "FAIL" if failed else "OK")
    return 1 if failed else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=2000)
    parser.add_argument("--reviewers", type=int, default=50)
    parser.add_argument("--max-seconds", type=float, default=120.0)
    sys.exit(asyncio.run(_run(parser.parse_args())))


if __name__ == "__main__":
    main()
