"""Progress of long work: items done of total, rate and time left, as plain lines.

Library code that loops over many items takes a `ProgressReporter` and calls ``advance(n)``
as items finish; work made of several loops with totals of their own names each one with
``phase(name, total, unit)`` first. It never decides where the numbers go.

`Progress` is the reporter callers build for one stage. It hands its callback an opening line
(``labels: started on 1,000,000 texts``), then lines like
``labels: 420,000/1,000,000 texts (42.0%), 9,331 texts/s, 0:01:02 left`` at most every
`every_seconds` seconds, and a closing line with the totals
(``labels: 1,000,000 texts in 0:01:47, 9,345 texts/s``). A phase's lines carry its name
(``review_queue · ranking: 4,096/20,000 candidates ...``) and end with a closing line of
their own. The Dagster layer's callback logs to the run's log; the CLI prints. With no
callback and stderr a terminal, a tqdm bar is shown instead; otherwise nothing.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any, Protocol

from tqdm import tqdm

__all__ = ["SILENT", "Progress", "ProgressReporter"]


class ProgressReporter(Protocol):
    """What long-running library code reports to."""

    def advance(self, count: int = 1) -> None:
        """`count` more items of the current phase are done."""

    def phase(self, name: str, total: int, unit: str) -> None:
        """A new phase of `total` items begins (the previous one is over)."""


class _Silent:
    def advance(self, count: int = 1) -> None:
        """Reports nowhere."""

    def phase(self, name: str, total: int, unit: str) -> None:
        """Reports nowhere."""


SILENT: ProgressReporter = _Silent()
"""The reporter of callers that do not want progress: the default of every `progress=`."""


class Progress:
    """Thread-safe progress counter of one stage; use as a context manager or call `close()`.

    `total` and `unit` describe the stage's own work (its closing line counts them);
    `advance` counts the current phase, which is the stage itself until `phase` is called.
    """

    def __init__(
        self,
        total: int,
        *,
        description: str = "progress",
        unit: str = "items",
        callback: Callable[[str], Any] | None = None,
        every_seconds: float = 10.0,
    ) -> None:
        self.description = description
        self.callback = callback
        self.every_seconds = every_seconds
        self._stage_total, self._stage_unit = total, unit
        self._stage_started = time.monotonic()
        self._lock = threading.Lock()
        self._bar: tqdm[Any] | None = None
        self._begin(None, total, unit)
        if callback is None and sys.stderr.isatty():
            self._bar = tqdm(total=total, desc=description, unit=f" {unit}")
        elif callback is not None:
            callback(f"{description}: started on {total:,} {unit}")

    def _begin(self, name: str | None, total: int, unit: str) -> None:
        self.phase_name, self.total, self.unit = name, total, unit
        self.done = 0
        self._started = self._last_emit = time.monotonic()

    @property
    def label(self) -> str:
        """The stage's name, with the current phase's if there is one."""
        return f"{self.description} · {self.phase_name}" if self.phase_name else self.description

    @property
    def elapsed(self) -> float:
        """Seconds since the current phase began."""
        return time.monotonic() - self._started

    @property
    def rate(self) -> float:
        """Items per second since the current phase began."""
        elapsed = self.elapsed
        return self.done / elapsed if elapsed > 0 else 0.0

    @property
    def eta_seconds(self) -> float | None:
        """Seconds until the current phase is done at its rate; None before its first item."""
        rate = self.rate
        return max(self.total - self.done, 0) / rate if rate > 0 else None

    def message(self) -> str:
        """The current state as one line: done of total, rate, time left."""
        percent = 100 * self.done / self.total if self.total else 100.0
        eta = self.eta_seconds
        left = f"{_duration(eta)} left" if eta is not None else "time left unknown"
        return (
            f"{self.label}: {self.done:,}/{self.total:,} {self.unit} ({percent:.1f}%), "
            f"{self.rate:,.0f} {self.unit}/s, {left}"
        )

    def phase_summary(self) -> str:
        """The closing line of the current phase: how many, in how long, how fast."""
        return (
            f"{self.label}: {self.done:,} {self.unit} in {_duration(self.elapsed)}, "
            f"{self.rate:,.0f} {self.unit}/s"
        )

    def summary(self) -> str:
        """The stage's closing line: its own total, in how long, how fast."""
        elapsed = time.monotonic() - self._stage_started
        rate = self._stage_total / elapsed if elapsed > 0 else 0.0
        return (
            f"{self.description}: {self._stage_total:,} {self._stage_unit} in "
            f"{_duration(elapsed)}, {rate:,.0f} {self._stage_unit}/s"
        )

    def phase(self, name: str, total: int, unit: str) -> None:
        """End the current phase (its closing line, if it was a named one) and begin another."""
        with self._lock:
            closing = self.phase_summary() if self.phase_name else None
            self._begin(name, total, unit)
        if self.callback is not None and self._bar is None:
            if closing:
                self.callback(closing)
            self.callback(f"{self.label}: started on {total:,} {unit}")

    def advance(self, count: int = 1) -> None:
        """Count `count` more items of the current phase done; emits when the cadence is due."""
        with self._lock:
            self.done += count
            now = time.monotonic()
            due = now - self._last_emit >= self.every_seconds
            if due:
                self._last_emit = now
            line = self.message() if due else None
        if self._bar is not None:
            if self.phase_name is None:
                self._bar.update(count)
        elif line is not None and self.callback is not None:
            self.callback(line)

    def close(self) -> None:
        """Emit the closing lines (a named phase's, then the stage's) or close the bar."""
        if self._bar is not None:
            self._bar.close()
        elif self.callback is not None:
            if self.phase_name:
                self.callback(self.phase_summary())
                self.callback(self.summary())
            else:
                self.callback(self.phase_summary())

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *exc_info: object) -> None:
        if exc_type is None:
            self.close()
        elif self._bar is not None:  # no closing line for work that did not finish
            self._bar.close()


def _duration(seconds: float) -> str:
    return str(timedelta(seconds=round(seconds)))
