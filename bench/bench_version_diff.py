"""Record-level diff of two 1,000,000-record dataset versions: how long it takes, and is it right.

Builds version A, then version B with known changes (removed, added, relabelled, moved between
train and eval), commits both into a temporary DataStorage and times `compare_versions`.
Exits non-zero when the counts the diff finds differ from the changes made.

    .venv/bin/python bench/bench_version_diff.py [--records 1000000]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from esk_pipeline.pipeline.dataset_layout import PARQUET_DIR
from esk_pipeline.pipeline.versions import DataStorage, DataStorageConfig

DOMAINS = np.array([f"domain_{i:02d}" for i in range(12)])


def _write_version(folder: Path, frame: pd.DataFrame) -> None:
    """The DataWriter's layout: JSONL at the root, the same records as Parquet beside it."""
    (folder / PARQUET_DIR).mkdir(parents=True)
    for split in ("train", "eval"):
        part = frame[frame["split"] == split].drop(columns="split")
        part.to_json(folder / f"{split}.jsonl", orient="records", lines=True, force_ascii=False)
        table = pa.Table.from_pandas(part, preserve_index=False)
        pq.write_table(table, folder / PARQUET_DIR / f"{split}.parquet", compression="zstd")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    args = parser.parse_args()
    n = args.records
    removed, relabelled, moved, added = n // 100, n * 15 // 1000, n // 200, n // 50

    i = np.arange(n)
    base = pd.DataFrame(
        {
            "row_id": [f"r{k:09d}" for k in i],
            "text": [f"обращение номер {k}" for k in i],
            "domain": DOMAINS[i % len(DOMAINS)],
            "split": np.where(i % 10 == 0, "eval", "train"),
        }
    )
    changed = base.iloc[removed:].copy()
    relabel = slice(0, relabelled)
    changed.iloc[relabel, changed.columns.get_loc("domain")] = DOMAINS[
        (i[removed : removed + relabelled] + 1) % len(DOMAINS)
    ]
    move = slice(relabelled, relabelled + moved)
    flipped = np.where(changed["split"].iloc[move] == "eval", "train", "eval")
    changed.iloc[move, changed.columns.get_loc("split")] = flipped
    j = np.arange(n, n + added)
    extra = pd.DataFrame(
        {
            "row_id": [f"r{k:09d}" for k in j],
            "text": [f"новое обращение {k}" for k in j],
            "domain": DOMAINS[j % len(DOMAINS)],
            "split": np.where(j % 10 == 0, "eval", "train"),
        }
    )
    changed = pd.concat([changed, extra], ignore_index=True)

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        started = time.perf_counter()
        _write_version(root / "a", base)
        _write_version(root / "b", changed)
        built = time.perf_counter() - started

        storage = DataStorage(DataStorageConfig(storage_dir=root / "store"))
        started = time.perf_counter()
        storage.commit_dataset(root / "a")
        storage.commit_dataset(root / "b")
        committed = (time.perf_counter() - started) / 2

        started = time.perf_counter()
        diff = storage.compare_versions("v1.0.0", "v1.1.0")
        diff_seconds = time.perf_counter() - started

        size_mb = sum(p.stat().st_size for p in (root / "a").rglob("*")) / 1e6

    print(f"records per version:     {n:,} (version A on disk: {size_mb:.0f} MB)")
    print(f"build both versions:     {built:.2f} s")
    print(f"commit one version:      {committed:.2f} s (copy + sha256 + registry)")
    print(f"compare_versions:        {diff_seconds:.2f} s ({n / diff_seconds:,.0f} records/s)")
    print(f"summary: {diff.summary}")
    expected = {"added": added, "removed": removed, "relabelled": relabelled, "moved": moved}
    found = {k: getattr(diff, k) for k in expected}
    print(f"changes made:  {expected}")
    print(f"changes found: {found}")
    if found != expected:
        print("MISMATCH: the diff does not find the changes that were made")
        return 1
    print("OK: the diff finds exactly the changes made")
    return 0


if __name__ == "__main__":
    sys.exit(main())
