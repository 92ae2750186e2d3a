"""Run a snippet of hostile-input test code in a child Python with time and memory limits.

A regression in a bound (a quadratic parser, a bomb that is unpacked) then fails the test
with a clear message instead of hanging the suite or exhausting the machine's memory. The
snippet prints one JSON line with its outcome; `run_bounded` returns it parsed.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from typing import Any

MIB = 1024 * 1024


@dataclass(frozen=True)
class BoundedRun:
    outcome: dict[str, Any] | None  # the snippet's JSON line; None if it printed none
    returncode: int
    stderr: str


def run_bounded(
    code: str, *, seconds: float = 60, memory_mb: int = 1500, env: dict[str, str] | None = None
) -> BoundedRun:
    """Run `code` (which must print one JSON line) under an address-space limit and a time
    limit; a timeout or a limit hit fails the calling test with what happened."""

    def limit_memory() -> None:  # runs in the child before exec
        resource.setrlimit(resource.RLIMIT_AS, (memory_mb * MIB, memory_mb * MIB))

    try:
        done = subprocess.run(
            [sys.executable, "-c", textwrap.dedent(code)],
            capture_output=True,
            text=True,
            timeout=seconds,
            preexec_fn=limit_memory,
            env=env,
        )
    except subprocess.TimeoutExpired as exc:
        raise AssertionError(f"the hostile case ran over {seconds} s (a lost bound?)") from exc
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    outcome = json.loads(lines[-1]) if lines else None
    return BoundedRun(outcome, done.returncode, done.stderr[-3000:])


ETL_OUTCOME = """
import json, sys
from esk_pipeline.pipeline.etl import ETLConfig, ETLError, ETLProcessor

def report(data, name, **config):
    try:
        result = ETLProcessor(ETLConfig(**config)).load_bytes(data, name)
    except ETLError as exc:
        print(json.dumps({"error": "ETLError", "message": str(exc)}))
    except BaseException as exc:
        print(json.dumps({"error": type(exc).__name__, "message": str(exc)[:500]}))
    else:
        cleaned = result.cleaned
        print(json.dumps({"rows": result.stats.rows_in, "texts": cleaned["text"].tolist()[:5],
                          "encoding": result.stats.encoding,
                          "metadata": cleaned["metadata"].tolist()[:1]}))
"""
"""Prefix for ETL snippets: `report(data, name, **etl_config)` prints the outcome."""
