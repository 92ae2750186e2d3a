"""Liveness, readiness and Prometheus metrics: public, no token, cheap."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.concurrency import run_in_threadpool

from esk_pipeline.api.deps import READINESS_LOCK_SECONDS, Services, ServicesDep
from esk_pipeline.api.schemas import HealthOut, ReadinessCheck, ReadinessOut

router = APIRouter(tags=["health"])
log = logging.getLogger(__name__)
FAILED_DETAIL = "failed; the reason is in the server log"
# A probe is public and may come every second: ClickHouse is asked at most this often.
CLICKHOUSE_PROBE_SECONDS = 30.0
# The queue gauge counts the whole review store: a scrape recounts at most this often.
QUEUE_GAUGE_SECONDS = 10.0


@router.get("/healthz", response_model=HealthOut, summary="Liveness: the process answers")
async def healthz() -> HealthOut:
    return HealthOut()


@router.get(
    "/readyz",
    response_model=ReadinessOut,
    summary="Readiness: review store, taxonomy and ClickHouse, each checked",
    responses={503: {"model": ReadinessOut, "description": "Some dependency is not ready"}},
)
async def readyz(services: ServicesDep) -> JSONResponse:
    report = await run_in_threadpool(_readiness, services)
    return JSONResponse(report.model_dump(), status_code=200 if report.ready else 503)


def _readiness(services: Services) -> ReadinessOut:
    checks = {
        "taxonomy": _check("taxonomy", lambda: services.taxonomy),
        "review_store": _check("review_store", lambda: services.review.ping()),
        "clickhouse": _check("clickhouse", lambda: _ping_clickhouse(services)),
    }
    return ReadinessOut(ready=all(c.ok for c in checks.values()), checks=checks)


class _CachedVerdict:
    """The last ClickHouse ping per source, reused for CLICKHOUSE_PROBE_SECONDS."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._verdicts: dict[str, tuple[float, bool]] = {}

    def answers(self, services: Services) -> bool:
        source = services.log_source(lock_timeout_seconds=READINESS_LOCK_SECONDS)
        with self._lock:  # concurrent probes wait for one ping instead of each sending one
            checked, ok = self._verdicts.get(source.description, (float("-inf"), False))
            if time.monotonic() - checked >= CLICKHOUSE_PROBE_SECONDS:
                ok = source.ping()
                self._verdicts[source.description] = (time.monotonic(), ok)
        return ok


_clickhouse_verdict = _CachedVerdict()


def _ping_clickhouse(services: Services) -> None:
    if not _clickhouse_verdict.answers(services):
        raise RuntimeError("ClickHouse does not answer")


def _check(name: str, probe: Callable[[], object]) -> ReadinessCheck:
    """The probe's verdict. The route is public: the reason (paths, hosts) goes to the log only."""
    try:
        probe()
    except Exception:  # a readiness probe reports every failure instead of raising
        log.warning("readiness check %r failed", name, exc_info=True)
        return ReadinessCheck(ok=False, detail=FAILED_DETAIL)
    return ReadinessCheck(ok=True, detail="ok")


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {"schema": {"type": "string"}}}}},
)
async def metrics(services: ServicesDep) -> Response:
    await run_in_threadpool(_refresh_queue_gauge, services)
    return Response(generate_latest(services.metrics.registry), media_type=CONTENT_TYPE_LATEST)


def _refresh_queue_gauge(services: Services) -> None:
    if services.metrics.queue_age_seconds() < QUEUE_GAUGE_SECONDS:
        return
    try:
        services.metrics.set_queue(services.review.stats().by_status)
    except Exception as exc:  # a scrape still returns the other metrics
        log.warning("could not read review queue statistics for /metrics: %s", exc)
