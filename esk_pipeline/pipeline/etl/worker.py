"""One ETL load in a child process with CPU-time and memory limits, cancellable at any time.

A long-lived process (the API) must not parse untrusted bytes itself: a parse that runs away
would hold a core, keep its peak memory (CPython and the allocators rarely return it) and
could not be stopped. `ETLWorkers.load` runs `ETLProcessor.load_batches` in a child forked from
a clean server process (multiprocessing's forkserver, with the ETL modules preloaded, so a
start costs milliseconds and never copies the parent's threads or open databases). The child
sets its own limits with `resource.setrlimit` first: RLIMIT_CPU (SIGXCPU past it) and
RLIMIT_AS (allocations fail past it). The parent also enforces a wall-clock limit, and kills
the child when the caller says the work is no longer wanted (a client that went away) or on
`kill_all()` (shutdown). The cleaned rows go to a Parquet file the caller names, and only the
accounting comes back, so the caller's process never holds the rows.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import resource
import signal
import tempfile
import threading
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from esk_pipeline.pipeline.etl.models import ETLConfig, ETLError, ETLResult, ETLStats
from esk_pipeline.pipeline.etl.processor import ETLProcessor
from esk_pipeline.pipeline.fsutil import scratch_prefix

__all__ = [
    "ROWS_PER_GROUP",
    "ETLCancelled",
    "ETLLimitError",
    "ETLWorkers",
    "WorkerLimits",
    "write_rows",
]

_MIB = 1024 * 1024
ROWS_PER_GROUP = 20_000
_POLL_SECONDS = 0.05
_ROWS_SCHEMA = pa.schema(
    [
        ("row_id", pa.string()),
        ("text", pa.string()),
        ("ts", pa.timestamp("ns", tz="UTC")),
        ("user_id", pa.string()),
        ("source", pa.string()),
        ("metadata", pa.string()),
    ]
)
_CONTEXT = multiprocessing.get_context("forkserver")
_CONTEXT.set_forkserver_preload(["esk_pipeline.pipeline.etl.worker"])


class ETLLimitError(ETLError):
    """The file needs more CPU time, memory or time than a worker may spend on it."""


class ETLCancelled(Exception):
    """The load was cancelled (its caller went away, or the workers are shutting down)."""


@dataclass(frozen=True)
class WorkerLimits:
    cpu_seconds: int = 60
    memory_bytes: int = 4096 * _MIB
    wall_seconds: float = 120.0


class ETLWorkers:
    """Runs loads in limited child processes and knows which are running (to kill them)."""

    def __init__(self, limits: WorkerLimits) -> None:
        self.limits = limits
        self._running: set[Any] = set()
        self._lock = threading.Lock()
        self._closed = False

    async def load(
        self,
        path: Path,
        name: str,
        config: ETLConfig,
        rows_file: Path,
        cancelled: Callable[[], Awaitable[bool]] | None = None,
    ) -> ETLStats:
        """The ETL of the file at `path` (`name` for the format hint and messages).

        The cleaned rows are written to `rows_file` (Parquet, `ROWS_PER_GROUP` rows per row
        group, so they can be read back in batches); the accounting is returned.
        Raises `ETLError` as the ETL would, `ETLLimitError` when the child went over a limit
        and `ETLCancelled` when `cancelled()` turned true or `kill_all` ran meanwhile.
        """
        with tempfile.TemporaryDirectory(prefix=scratch_prefix("etl")) as folder:
            out = Path(folder)
            process = _CONTEXT.Process(
                target=_run_child,
                args=(str(path), name, config, str(out), str(rows_file), self.limits),
                name=f"esk-etl:{name}",
                daemon=True,
            )
            with self._lock:
                if self._closed:
                    raise ETLCancelled("the ETL workers are shutting down")
                process.start()
                self._running.add(process)
            try:
                await self._wait(process, name, cancelled)
            finally:
                with self._lock:
                    self._running.discard(process)
                if process.is_alive():
                    process.kill()
                process.join()
            return _read_outcome(out, name, process.exitcode, self.limits)

    async def _wait(
        self, process: Any, name: str, cancelled: Callable[[], Awaitable[bool]] | None
    ) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.limits.wall_seconds
        while process.is_alive():
            if cancelled is not None and await cancelled():
                raise ETLCancelled(f"{name}: the load was cancelled")
            if loop.time() > deadline:
                raise ETLLimitError(
                    f"{name}: reading the file took more than {self.limits.wall_seconds:g} s"
                )
            await asyncio.sleep(_POLL_SECONDS)

    def kill_all(self) -> None:
        """Kill every running load (they raise `ETLCancelled`) and refuse new ones."""
        with self._lock:
            self._closed = True
            running = list(self._running)
        for process in running:
            if process.is_alive():
                process.kill()

    @property
    def running(self) -> int:
        with self._lock:
            return len(self._running)


def _run_child(
    path: str, name: str, config: ETLConfig, out: str, rows_file: str, limits: WorkerLimits
) -> None:
    resource.setrlimit(resource.RLIMIT_CPU, (limits.cpu_seconds, limits.cpu_seconds + 1))
    resource.setrlimit(resource.RLIMIT_AS, (limits.memory_bytes, limits.memory_bytes))
    folder = Path(out)
    try:
        stats = write_rows(ETLProcessor(config).load_batches(path, name), Path(rows_file))
        (folder / "stats.json").write_text(stats.model_dump_json())
    except ETLError as exc:
        outcome = {"error": "etl", "message": str(exc)}
        (folder / "error.json").write_text(json.dumps(outcome, ensure_ascii=False))
    except MemoryError:
        (folder / "error.json").write_text(json.dumps({"error": "memory"}))
    except Exception as exc:  # reported to the parent, which raises it as a failure of its own
        outcome = {"error": "crash", "message": f"{type(exc).__name__}: {exc}"}
        (folder / "error.json").write_text(json.dumps(outcome, ensure_ascii=False))


def write_rows(results: Iterable[ETLResult], rows_file: Path) -> ETLStats:
    """Write the cleaned rows of a load's batches to `rows_file` in row groups of exactly
    `ROWS_PER_GROUP` rows (the last one fewer), and return the load's stats."""
    parts, held = [], []
    with pq.ParquetWriter(rows_file, _ROWS_SCHEMA) as writer:
        for result in results:
            parts.append(result.stats)
            held.append(pa.Table.from_pandas(result.cleaned, _ROWS_SCHEMA, preserve_index=False))
            if sum(t.num_rows for t in held) >= ROWS_PER_GROUP:
                rows = pa.concat_tables(held).combine_chunks()
                full = rows.num_rows - rows.num_rows % ROWS_PER_GROUP
                writer.write_table(rows.slice(0, full), row_group_size=ROWS_PER_GROUP)
                held = [rows.slice(full)]
        if held:
            writer.write_table(pa.concat_tables(held), row_group_size=ROWS_PER_GROUP)
    return ETLStats.total(parts)


def _read_outcome(out: Path, name: str, exitcode: int | None, limits: WorkerLimits) -> ETLStats:
    error_file = out / "error.json"
    if error_file.exists():
        error = json.loads(error_file.read_text())
        if error["error"] == "etl":
            raise ETLError(error["message"])
        if error["error"] == "crash":
            raise RuntimeError(f"{name}: the ETL worker failed: {error['message']}")
        raise _over_memory(name, limits)
    if exitcode == -signal.SIGXCPU:
        raise ETLLimitError(
            f"{name}: reading the file needed more than {limits.cpu_seconds} s of CPU time"
        )
    if exitcode == -signal.SIGKILL:
        raise ETLCancelled(f"{name}: the load was cancelled")
    if exitcode in (-signal.SIGABRT, -signal.SIGSEGV, -signal.SIGBUS):
        # Out of address space in native code ends in an abort rather than a MemoryError.
        raise _over_memory(name, limits)
    if exitcode != 0 or not (out / "stats.json").exists():
        raise RuntimeError(f"{name}: the ETL worker exited with status {exitcode}")
    return ETLStats.model_validate_json((out / "stats.json").read_text())


def _over_memory(name: str, limits: WorkerLimits) -> ETLLimitError:
    return ETLLimitError(
        f"{name}: reading the file needed more than {limits.memory_bytes // _MIB} MB of memory"
    )
