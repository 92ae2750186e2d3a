"""Liveness, readiness and Prometheus metrics: public, no token, cheap."""

from __future__ import annotations

import logging
from collections.abc import Callable

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.concurrency import run_in_threadpool

from esk_pipeline.api.deps import READINESS_LOCK_SECONDS, Services, ServicesDep
from esk_pipeline.api.schemas import HealthOut, ReadinessCheck, ReadinessOut

router = APIRouter(tags=["health"])
log = logging.getLogger(__name__)


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
        "taxonomy": _check(lambda: f"{len(services.taxonomy.domains)} domains loaded"),
        "review_store": _check(
            lambda: f"{services.review.stats().queue_length} open items in the queue"
        ),
        "clickhouse": _check(lambda: _ping_clickhouse(services)),
    }
    return ReadinessOut(ready=all(c.ok for c in checks.values()), checks=checks)


def _ping_clickhouse(services: Services) -> str:
    source = services.log_source(lock_timeout_seconds=READINESS_LOCK_SECONDS)
    if not source.ping():
        raise RuntimeError(f"{source.description} does not answer")
    return f"{source.description} answers"


def _check(probe: Callable[[], str]) -> ReadinessCheck:
    try:
        return ReadinessCheck(ok=True, detail=probe())
    except Exception as exc:  # a readiness probe reports every failure instead of raising
        log.warning("readiness check failed: %s", exc)
        return ReadinessCheck(ok=False, detail=str(exc) or type(exc).__name__)


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
    try:
        services.metrics.set_queue(services.review.stats().by_status)
    except Exception as exc:  # a scrape still returns the other metrics
        log.warning("could not read review queue statistics for /metrics: %s", exc)
