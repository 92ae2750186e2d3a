"""The ETL in a limited child process: results, limits, cancellation and shutdown."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import pandas as pd
import pytest

from esk_pipeline.pipeline.etl import ETLConfig, ETLError
from esk_pipeline.pipeline.etl.worker import ETLCancelled, ETLLimitError, ETLWorkers, WorkerLimits

MIB = 1024 * 1024
pytestmark = pytest.mark.timeout(120)


def _config(**overrides: object) -> ETLConfig:
    return ETLConfig(**{"max_rows": None, "text_column": None, **overrides})


def _wide_csv(folder: Path, columns: int = 40_000) -> Path:
    """A file whose reading takes a few seconds of CPU (tens of thousands of columns)."""
    path = folder / "wide.csv"
    path.write_bytes(
        ("text" + ";a" * (columns - 1) + "\nпривет мир" + ";x" * (columns - 1)).encode()
    )
    return path


def _load(workers: ETLWorkers, path: Path, config: ETLConfig, **kwargs):
    rows_file = path.with_name(f"{path.name}.rows.parquet")
    return asyncio.run(workers.load(path, path.name, config, rows_file, **kwargs))


def test_a_load_in_a_worker_writes_the_rows_to_a_file_and_returns_the_accounting(tmp_path):
    path = tmp_path / "logs.csv"
    path.write_text("Текст;Дата\nнет горячей воды третий день;2026-11-01\nне вывозят мусор;\n")
    stats = _load(ETLWorkers(WorkerLimits()), path, _config())
    rows = pd.read_parquet(tmp_path / "logs.csv.rows.parquet")
    assert rows["text"].tolist() == ["нет горячей воды третий день", "не вывозят мусор"]
    assert stats.rows_in == 2 and stats.format == "csv"


def test_an_etl_error_in_the_worker_comes_back_as_it_is(tmp_path):
    path = tmp_path / "deep.json"
    path.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(ETLError, match=r"deep\.json: JSON nested"):
        _load(ETLWorkers(WorkerLimits()), path, _config())


def test_a_parse_over_the_cpu_limit_is_killed_with_a_clear_error(tmp_path):
    path = _wide_csv(tmp_path)
    workers = ETLWorkers(WorkerLimits(cpu_seconds=1))
    start = time.monotonic()
    with pytest.raises(ETLLimitError, match=r"wide.csv: .* more than 1 s of CPU time"):
        _load(workers, path, _config(max_columns=50_000))
    assert time.monotonic() - start < 20


def test_a_parse_over_the_memory_limit_is_refused_with_a_clear_error(tmp_path):
    path = tmp_path / "big.csv"
    # A load holds one batch of rows at a time, so the batch itself must be too big: long texts.
    row = ("длинная строка текста " * 45)[:900]
    path.write_text("text\n" + "\n".join(f"{i} {row}" for i in range(70_000)))
    workers = ETLWorkers(WorkerLimits(memory_bytes=600 * MIB))
    with pytest.raises(ETLLimitError, match=r"big.csv: .* more than 600 MB of memory"):
        _load(workers, path, _config())


def test_a_cancelled_load_kills_its_worker_at_once(tmp_path):
    path = _wide_csv(tmp_path, 60_000)
    workers = ETLWorkers(WorkerLimits())
    started = time.monotonic()

    async def client_gone() -> bool:
        return time.monotonic() - started > 0.5

    with pytest.raises(ETLCancelled):
        _load(workers, path, _config(max_columns=100_000), cancelled=client_gone)
    assert time.monotonic() - started < 5
    assert workers.running == 0


def test_kill_all_stops_running_loads_and_refuses_new_ones(tmp_path):
    path = _wide_csv(tmp_path, 60_000)
    workers = ETLWorkers(WorkerLimits())
    pids: list[int] = []

    async def scenario() -> None:
        load = asyncio.create_task(
            workers.load(path, "wide.csv", _config(max_columns=100_000), tmp_path / "rows")
        )
        while workers.running == 0:
            await asyncio.sleep(0.01)
        pids.extend(p.pid for p in workers._running)
        workers.kill_all()
        with pytest.raises(ETLCancelled):
            await load

    started = time.monotonic()
    asyncio.run(scenario())
    assert time.monotonic() - started < 5
    with pytest.raises(ProcessLookupError):
        os.kill(pids[0], 0)
    with pytest.raises(ETLCancelled):
        _load(workers, path, _config())
