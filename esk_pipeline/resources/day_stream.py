"""A daily asset's value over a range of days, made one day at a time while it is written.

A single-run range (`BackfillPolicy.single_run()`) hands the IO manager one value for every day
of the range. Returned as a dict, every day's output is in memory at once, so a step's memory
grows with the range. An asset returns a `DayStream` instead: the days in order and a function
that makes one day. The IO manager (`ParquetJsonIOManager.handle_output`) asks for a day, writes
it and lets it go before it asks for the next, so the step holds one day's output at a time.

Dagster stores an output when the asset yields it, before the asset's body goes on: a body can
yield a stream, then use what making the days left behind (totals for its checks).

A day the maker finds already stored as it would make it is a `KeptDay`: the IO manager leaves
its file as it is (not even touched), so what downstream made from that file is reused too.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

__all__ = ["DayFailedError", "DayStream", "KeptDay"]

Value = TypeVar("Value")


class DayFailedError(RuntimeError):
    """Making one day of a stream failed; the message names the asset and the day."""


@dataclass(frozen=True)
class KeptDay:
    """A day whose stored file stands: `rows` rows, checked when they were written."""

    rows: int

    def __len__(self) -> int:
        return self.rows


class DayStream(Generic[Value]):
    """The days of a range in order and how to make each; iterated once, by the IO manager,
    as (day, value) pairs, each day made only when the previous one has been handed over."""

    def __init__(self, asset: str, days: Sequence[str], make: Callable[[str], Value]) -> None:
        self.asset = asset
        self.days = list(days)
        self._make = make
        self._checks: list[Callable[[str, Value], None]] = []
        self._started = False

    def check_each(self, check: Callable[[str, Value], None]) -> None:
        """Run `check(day, value)` on every day as it is made (it raises to stop the stream)."""
        self._checks.append(check)

    def __iter__(self) -> Iterator[tuple[str, Value]]:
        if self._started:
            raise RuntimeError(f"{self.asset}: the days of a DayStream are made once")
        self._started = True
        for day in self.days:
            # No local keeps the value while the stream is suspended: the consumer's copy is
            # the only one, so a day is freed as soon as the consumer lets it go.
            yield day, self._made(day)

    def _made(self, day: str) -> Value:
        try:
            value = self._make(day)
        except Exception as exc:
            raise DayFailedError(f"{self.asset}: day {day} failed: {exc}") from exc
        for check in self._checks:
            check(day, value)
        return value
