"""The version store with daily shards: what a commit and a diff cost when one day changes.

Writes a dataset of `--days` daily shards (train and eval, each with its Parquet copy, the
DataWriter's layout), then times, on a folder (and with `--s3` on moto's S3 server over real
HTTP, in this process):

  first      the first commit of all days
  unchanged  a commit of the same folder again (what a re-run that changed nothing costs)
  new day    one more day: the shards are renumbered (`-of-N` grows), one new shard per split
  diff       compare_versions(first, new day)

and what each commit added to the store. The figures of another implementation come from
running this script against it (PYTHONPATH); only the public DataStorage API is used.

    nice -n 10 .venv/bin/python bench/bench_version_store.py [--days 30] [--s3]
                                                             [--rows-per-day 20000]
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from esk_pipeline.pipeline.dataset_layout import PARQUET_DIR
from esk_pipeline.pipeline.versions import DataStorage, DataStorageConfig

DOMAINS = np.array([f"domain_{i:02d}" for i in range(12)])


def _day(day: int, rows: int) -> pd.DataFrame:
    i = np.arange(day * rows, (day + 1) * rows)
    return pd.DataFrame(
        {
            "row_id": [f"r{k:010d}" for k in i],
            "text": [f"обращение номер {k} о чём-то важном" for k in i],
            "domain": DOMAINS[i % len(DOMAINS)],
            "split": np.where(i % 10 == 0, "eval", "train"),
        }
    )


def _write_shard(folder: Path, name: str, frame: pd.DataFrame) -> None:
    frame.to_json(folder / f"{name}.jsonl", orient="records", lines=True, force_ascii=False)
    table = pa.Table.from_pandas(frame, preserve_index=False)
    pq.write_table(table, folder / PARQUET_DIR / f"{name}.parquet", compression="zstd")


def _write_days(folder: Path, days: int, rows: int) -> None:
    (folder / PARQUET_DIR).mkdir(parents=True)
    (folder / "README.md").write_text("# bench dataset\n", encoding="utf-8")
    for day in range(days):
        frame = _day(day, rows)
        for split in ("train", "eval"):
            part = frame[frame["split"] == split].drop(columns="split")
            _write_shard(folder, f"{split}-{day:05d}-of-{days:05d}", part)


def _add_day(folder: Path, days: int, rows: int) -> None:
    """Renumber the shards of `days` days to days + 1 (renames keep the files) and add one."""
    for split in ("train", "eval"):
        for day in range(days):
            old, new = f"{split}-{day:05d}-of-{days:05d}", f"{split}-{day:05d}-of-{days + 1:05d}"
            (folder / f"{old}.jsonl").rename(folder / f"{new}.jsonl")
            (folder / PARQUET_DIR / f"{old}.parquet").rename(
                folder / PARQUET_DIR / f"{new}.parquet"
            )
    frame = _day(days, rows)
    for split in ("train", "eval"):
        part = frame[frame["split"] == split].drop(columns="split")
        _write_shard(folder, f"{split}-{days:05d}-of-{days + 1:05d}", part)


def _timed(function):
    started = time.perf_counter()
    value = function()
    return value, time.perf_counter() - started


def _run(storage_dir: str | Path, work: Path, days: int, rows: int) -> dict[str, float]:
    folder = work / f"dataset-{uuid.uuid4().hex[:8]}"
    _write_days(folder, days, rows)
    storage = DataStorage(DataStorageConfig(storage_dir=storage_dir))
    figures: dict[str, float] = {}

    def size() -> float:
        return storage.get_stats()["total_size_mb"]

    first, figures["first s"] = _timed(lambda: storage.commit_dataset(folder))
    figures["first MB"] = size()
    _, figures["unchanged s"] = _timed(lambda: storage.commit_dataset(folder))
    figures["unchanged +MB"] = size() - figures["first MB"]
    _add_day(folder, days, rows)
    before = size()
    new, figures["new day s"] = _timed(lambda: storage.commit_dataset(folder))
    figures["new day +MB"] = size() - before
    diff, figures["diff s"] = _timed(lambda: storage.compare_versions(first.version, new.version))
    assert diff.added == rows and diff.removed == 0 and diff.relabelled == 0, diff.summary
    return figures


def _moto_store() -> tuple[object, str]:
    import s3fs
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    os.environ.update(
        AWS_ENDPOINT_URL=f"http://{host}:{port}",
        AWS_ACCESS_KEY_ID="bench",
        AWS_SECRET_ACCESS_KEY="bench",
        AWS_DEFAULT_REGION="us-east-1",
    )
    s3fs.S3FileSystem.clear_instance_cache()
    s3fs.S3FileSystem().mkdir("bench")
    return server, "s3://bench/store"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--rows-per-day", type=int, default=20_000)
    parser.add_argument("--s3", action="store_true", help="also on moto's S3 server")
    args = parser.parse_args()
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's server logs each request
    code = Path(sys.modules[DataStorage.__module__].__file__ or "").parent
    print(f"{args.days} days x {args.rows_per_day:,} records; store code in {code}")
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        results["folder"] = _run(work / "store", work, args.days, args.rows_per_day)
        if args.s3:
            server, url = _moto_store()
            try:
                results["moto S3"] = _run(url, work, args.days, args.rows_per_day)
            finally:
                server.stop()
    keys = list(next(iter(results.values())))
    print("| where | " + " | ".join(keys) + " |")
    print("|---" * (len(keys) + 1) + "|")
    for where, figures in results.items():
        print(f"| {where} | " + " | ".join(f"{figures[k]:.2f}" for k in keys) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
