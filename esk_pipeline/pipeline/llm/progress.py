"""Progress reporting for long LLM runs: items done of total, rate and ETA.

With a callback (the Dagster layer passes ``context.log.info``) a line like
``labeling: 1200/5000 (24.0%), 3.1 items/s, ETA 0:20:26`` is emitted at most every
`every_seconds` seconds and once at the end, so logs stay readable on runs of any length.
With no callback and stderr a terminal, a tqdm bar is shown instead; otherwise nothing.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from tqdm import tqdm


class Progress:
    """Thread-safe progress counter; use as a context manager or call `close()` at the end."""

    def __init__(
        self,
        total: int,
        *,
        description: str = "progress",
        callback: Callable[[str], Any] | None = None,
        every_seconds: float = 10.0,
    ) -> None:
        self.total = total
        self.description = description
        self.callback = callback
        self.every_seconds = every_seconds
        self.done = 0
        self._started = time.monotonic()
        self._last_emit = self._started
        self._lock = threading.Lock()
        self._bar: tqdm[Any] | None = None
        if callback is None and sys.stderr.isatty():
            self._bar = tqdm(total=total, desc=description)

    @property
    def rate(self) -> float:
        """Items per second since the start."""
        elapsed = time.monotonic() - self._started
        return self.done / elapsed if elapsed > 0 else 0.0

    @property
    def eta_seconds(self) -> float | None:
        """Seconds until done at the current rate; None before the first item."""
        rate = self.rate
        return (self.total - self.done) / rate if rate > 0 else None

    def message(self) -> str:
        """The current state as one line."""
        percent = 100 * self.done / self.total if self.total else 100.0
        eta = self.eta_seconds
        eta_text = str(timedelta(seconds=round(eta))) if eta is not None else "unknown"
        return (
            f"{self.description}: {self.done}/{self.total} ({percent:.1f}%), "
            f"{self.rate:.1f} items/s, ETA {eta_text}"
        )

    def advance(self, count: int = 1) -> None:
        """Count `count` more items done; emits when the cadence is due."""
        with self._lock:
            self.done += count
            now = time.monotonic()
            due = now - self._last_emit >= self.every_seconds
            if due:
                self._last_emit = now
        if self._bar is not None:
            self._bar.update(count)
        elif due and self.callback is not None:
            self.callback(self.message())

    def close(self) -> None:
        """Emit the final state (callback) or close the bar."""
        if self._bar is not None:
            self._bar.close()
        elif self.callback is not None:
            self.callback(self.message())

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
