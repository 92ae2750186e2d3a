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
FAILED_DETAIL = "failed; the reason is in the server log"


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
        "review_store": _check("review_store", lambda: services.review.stats()),
        "clickhouse": _check("clickhouse", lambda: _ping_clickhouse(services)),
    }
    return ReadinessOut(ready=all(c.ok for c in checks.values()), checks=checks)


def _ping_clickhouse(services: Services) -> None:
    source = services.log_source(lock_timeout_seconds=READINESS_LOCK_SECONDS)
    if not source.ping():
        raise RuntimeError(f"{source.description} does not answer")


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
    try:
        services.metrics.set_queue(services.review.stats().by_status)
    except Exception as exc:  # a scrape still returns the other metrics
        log.warning("could not read review queue statistics for /metrics: %s", exc)
