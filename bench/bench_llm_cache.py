"""Benchmark: `ResponseCache` at 1,000,000 entries: insert, batched lookup, per-key lookup.

    .venv/bin/python bench/bench_llm_cache.py [--entries N] [--lookups L] [--batch B] [--lasting]

Fills a fresh cache (in a temporary folder) with N entries through `put_many` in batches of B
(one transaction each), then looks up L random stored keys twice, in the same run: once through
`get_many` (chunked ``IN`` queries) and once through a `get` per key, the loop a caller would
write without `get_many`. Values are ~120-byte JSON answers, keys sha256 hex like the client's.
Prints throughputs and the batched/per-key ratio. With ``--lasting`` the entries are lasting
ones, whose first look-up of the day records its read: `get_many` then pays that write, and the
per-key pass after it finds the reads recorded.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import tempfile
import time
from pathlib import Path

from esk_pipeline.pipeline.llm import ResponseCache


def _key(index: int) -> str:
    return hashlib.sha256(f"entry-{index}".encode()).hexdigest()


def _value(index: int) -> str:
    answer = {"domain": "meter_readings", "confidence": 0.87, "row": index}
    return json.dumps({"model": "gpt-4o-mini", "output": answer})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--lookups", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=10_000)
    parser.add_argument("--lasting", action="store_true", help="put lasting entries")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "bench.sqlite"
        with ResponseCache(path, ttl_hours=24) as cache:
            started = time.perf_counter()
            for start in range(0, args.entries, args.batch):
                stop = min(start + args.batch, args.entries)
                items = ((_key(i), _value(i)) for i in range(start, stop))
                cache.put_many(items, lasting=args.lasting)
            insert_seconds = time.perf_counter() - started

            keys = [_key(i) for i in random.Random(0).sample(range(args.entries), args.lookups)]

            started = time.perf_counter()
            found = cache.get_many(keys)
            batched_seconds = time.perf_counter() - started

            started = time.perf_counter()
            found_one_by_one = {key: value for key in keys if (value := cache.get(key))}
            per_key_seconds = time.perf_counter() - started

            assert len(found) == len(found_one_by_one) == args.lookups
            size_mb = path.stat().st_size / 1e6

    print(f"entries: {args.entries:,}{' (lasting)' * args.lasting}  file: {size_mb:.0f} MB")
    print(
        f"insert (put_many, {args.batch:,}/transaction): {insert_seconds:.1f} s, "
        f"{args.entries / insert_seconds:,.0f} entries/s"
    )
    print(
        f"lookup get_many ({args.lookups:,} keys): {batched_seconds:.2f} s, "
        f"{args.lookups / batched_seconds:,.0f} keys/s"
    )
    print(
        f"lookup get per key ({args.lookups:,} keys): {per_key_seconds:.2f} s, "
        f"{args.lookups / per_key_seconds:,.0f} keys/s"
    )
    print(f"batched / per-key throughput: {per_key_seconds / batched_seconds:.1f}x")


if __name__ == "__main__":
    main()
