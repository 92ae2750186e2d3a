"""Usage and cost accounting for LLM calls, with an optional per-run budget.

One `UsageMeter` is shared by everything a run sends (both agents may share one). It is safe to
use from several threads and from many asyncio tasks at once: every update holds one lock.

The budget is checked *before* a request starts: `begin_request()` raises `BudgetExhausted` once
the run has spent its requests or tokens, so the caller stops cleanly, marks the remaining items
deferred and leaves them for the next run. With several requests in flight the token budget can
be overshot by at most those requests' tokens, since their size is only known when they finish.
"""

from __future__ import annotations

import threading
from typing import Any

from esk_pipeline.pipeline.options import LLMBudget

__all__ = ["BudgetExhausted", "UsageMeter"]


class BudgetExhausted(RuntimeError):
    """The run's request or token budget is spent; no further request was started."""


class UsageMeter:
    """Counters for one run: requests, tokens, cache hits, failures, cost, and the budget.

    Prices are per 1,000 tokens (zero for local servers); a budget of None is unlimited.
    """

    def __init__(
        self,
        *,
        input_price_per_1k: float = 0.0,
        output_price_per_1k: float = 0.0,
        max_tokens: int | None = None,
        max_requests: int | None = None,
    ) -> None:
        self.input_price_per_1k = input_price_per_1k
        self.output_price_per_1k = output_price_per_1k
        self.max_tokens = max_tokens
        self.max_requests = max_requests
        self._lock = threading.Lock()
        self.requests = 0
        self.input_tokens = 0
        self.output_tokens = 0
        self.cached_hits = 0
        self.failures = 0

    @classmethod
    def for_budget(cls, budget: LLMBudget) -> UsageMeter:
        """A fresh meter with the budget's prices and limits."""
        return cls(
            input_price_per_1k=budget.input_price_per_1k,
            output_price_per_1k=budget.output_price_per_1k,
            max_tokens=budget.max_tokens_per_run,
            max_requests=budget.max_requests_per_run,
        )

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    @property
    def cost(self) -> float:
        """Spend so far in the price unit of the settings (e.g. USD)."""
        return (
            self.input_tokens * self.input_price_per_1k
            + self.output_tokens * self.output_price_per_1k
        ) / 1000

    def _exhausted_reason(self) -> str | None:
        if self.max_requests is not None and self.requests >= self.max_requests:
            return f"request budget spent ({self.requests}/{self.max_requests} requests)"
        if self.max_tokens is not None and self.total_tokens >= self.max_tokens:
            return f"token budget spent ({self.total_tokens}/{self.max_tokens} tokens)"
        return None

    def check_budget(self) -> None:
        """Raise `BudgetExhausted` if no further request may start."""
        with self._lock:
            reason = self._exhausted_reason()
        if reason:
            raise BudgetExhausted(reason)

    def begin_request(self) -> None:
        """Check the budget and count one request, atomically, right before it is sent."""
        with self._lock:
            reason = self._exhausted_reason()
            if reason is None:
                self.requests += 1
        if reason:
            raise BudgetExhausted(reason)

    def record_tokens(self, input_tokens: int, output_tokens: int) -> None:
        """Add the tokens the server reported for a finished request."""
        with self._lock:
            self.input_tokens += input_tokens
            self.output_tokens += output_tokens

    def record_cache_hit(self) -> None:
        with self._lock:
            self.cached_hits += 1

    def record_failure(self) -> None:
        """Count one call that failed for good (after its retries and fallback)."""
        with self._lock:
            self.failures += 1

    def snapshot(self) -> dict[str, Any]:
        """The counters as a plain dict, for logs and asset metadata."""
        with self._lock:
            return {
                "requests": self.requests,
                "input_tokens": self.input_tokens,
                "output_tokens": self.output_tokens,
                "total_tokens": self.total_tokens,
                "cached_hits": self.cached_hits,
                "failures": self.failures,
                "cost": round(self.cost, 6),
                "max_tokens": self.max_tokens,
                "max_requests": self.max_requests,
            }
