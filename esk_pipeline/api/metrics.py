"""Prometheus metrics of one app: requests by route template, review decisions, the queue.

Each app owns a registry (not prometheus-client's global one), so several apps in one process,
as in the tests, never clash and each /metrics shows its own numbers.
"""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

UNMATCHED_ROUTE = "<unmatched>"
# The methods counted by name; any other token a client sends is counted as OTHER_METHOD.
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
OTHER_METHOD = "other"


class ApiMetrics:
    """The app's metric families."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "esk_api_requests_total",
            "HTTP requests by method, route template and status code.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "esk_api_request_duration_seconds",
            "HTTP request latency by method and route template.",
            ["method", "route"],
            registry=self.registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
        )
        self.review_decisions = Counter(
            "esk_review_decisions_total",
            "Reviewer actions through the API: approved, corrected, skipped, released, undone.",
            ["decision"],
            registry=self.registry,
        )
        self.queue_items = Gauge(
            "esk_review_queue_items",
            "Review items by status, as of the last statistics read or scrape.",
            ["status"],
            registry=self.registry,
        )
        self._queue_set_at = float("-inf")

    def set_queue(self, by_status: dict[str, int]) -> None:
        for status, count in by_status.items():
            self.queue_items.labels(status=status).set(count)
        self._queue_set_at = time.monotonic()

    def queue_age_seconds(self) -> float:
        """Seconds since the queue gauge was last set (infinite before the first time)."""
        return time.monotonic() - self._queue_set_at


class MetricsMiddleware:
    """Counts and times every HTTP request under its route template, e.g. /api/review/items/{id}.

    The template (not the raw path), and the method only when it is a known one, keep the
    label set small whatever ids and method tokens clients send.
    """

    def __init__(self, app: ASGIApp, metrics: ApiMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500  # what the client sees if the app fails before answering
        start = time.perf_counter()

        async def send_with_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_with_status)
        finally:
            route = getattr(scope.get("route"), "path", None) or UNMATCHED_ROUTE
            method = scope["method"] if scope["method"] in KNOWN_METHODS else OTHER_METHOD
            self.metrics.requests.labels(method=method, route=route, status=str(status)).inc()
            self.metrics.latency.labels(method=method, route=route).observe(
                time.perf_counter() - start
            )
