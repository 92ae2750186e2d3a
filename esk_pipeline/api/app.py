"""The FastAPI application: `create_app(settings)` wires routers, auth, errors and metrics.

`esk_pipeline.api:app` is `create_app()` with the process-wide settings. Building the app opens
nothing: the review store, ClickHouse and the labeler are built on first use (see `deps`).
Serve it with `uvicorn esk_pipeline.api:app`; the reviewer page is at `/`, the docs at `/docs`.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI

from esk_pipeline.api.deps import Services, reject_unknown_query_parameters
from esk_pipeline.api.errors import install_error_handlers
from esk_pipeline.api.limits import RequestLimitsMiddleware, default_body_limit
from esk_pipeline.api.metrics import MetricsMiddleware
from esk_pipeline.api.openapi_doc import install_openapi
from esk_pipeline.api.routers import classify, health, ingest, page, review, versions
from esk_pipeline.settings import Settings, get_settings

log = logging.getLogger(__name__)

DESCRIPTION = """\
Ingest ESK contact-centre logs, classify texts, review uncertain labels and manage dataset
versions. Every endpoint that changes state or returns texts needs a bearer token
(`Authorization: Bearer <token>`, configured in APP_API_TOKENS); the token's owner is the
caller (the reviewer id). Tokens have roles: `reviewer` (review routes), `maintainer` (also
ingest, runs, classification and versions) and `admin` (everything); each operation lists the
role it needs as its security scope, and a lesser token gets 403. Errors are JSON:
`{"error": code, "detail": sentence}`.
"""


def create_app(settings: Settings | None = None) -> FastAPI:
    """A new app bound to `settings` (default: the process-wide settings)."""
    settings = settings or get_settings()
    services = Services(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if not services.api_tokens:
            log.warning("APP_API_TOKENS is empty: every protected endpoint will answer 401")
        yield
        services.close()

    app = FastAPI(
        title="esk_pipeline API",
        version="0.1.0",
        description=DESCRIPTION,
        lifespan=lifespan,
        dependencies=[Depends(reject_unknown_query_parameters)],
    )
    app.state.services = services
    install_error_handlers(app)
    install_openapi(app)
    for module in (health, review, ingest, classify, versions, page):
        app.include_router(module.router)
    app.add_middleware(
        RequestLimitsMiddleware,
        default=default_body_limit(),
        limits={ingest.UPLOAD_PATH: ingest.upload_body_limit(services.max_upload_bytes)},
    )
    app.add_middleware(MetricsMiddleware, metrics=services.metrics)
    return app
