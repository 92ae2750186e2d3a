"""The FastAPI application: `create_app(settings)` wires routers, auth, errors and metrics.

`esk_pipeline.api:app` is `create_app()` with the process-wide settings. Building the app opens
nothing: the review store, ClickHouse and the labeler are built on first use (see `deps`).
Serve it with `uvicorn esk_pipeline.api:app`; the reviewer page is at `/`, the docs at `/docs`.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from types import FrameType

from fastapi import Depends, FastAPI
from fastapi_offline import FastAPIOffline

from esk_pipeline.api.deps import Services, reject_unknown_query_parameters
from esk_pipeline.api.errors import install_error_handlers
from esk_pipeline.api.limits import RequestLimitsMiddleware, default_body_limit
from esk_pipeline.api.metrics import MetricsMiddleware
from esk_pipeline.api.openapi_doc import install_openapi
from esk_pipeline.api.routers import classify, health, ingest, page, review, versions
from esk_pipeline.pipeline.fsutil import remove_dead_scratch
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
    settings.apply_log_level()
    services = Services(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if not services.api_tokens:
            log.warning("APP_API_TOKENS is empty: every protected endpoint will answer 401")
        # Uploads and exports of a server killed with kill -9 leave scratch folders behind.
        for leftover in remove_dead_scratch():
            log.info("removed %s, left by a process that is gone", leftover)
        restore = _kill_uploads_on_shutdown_signals(services)
        try:
            yield
        finally:
            restore()
            services.close()

    # FastAPI's own /docs loads Swagger UI from a CDN; this one serves the files itself.
    app = FastAPIOffline(
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
        limits={
            ingest.UPLOAD_PATH: ingest.upload_body_limit(services.max_upload_bytes),
            classify.BATCH_PATH: classify.batch_body_limit(),
        },
        tokens=services.api_tokens,
    )
    app.add_middleware(MetricsMiddleware, metrics=services.metrics)
    return app


def _kill_uploads_on_shutdown_signals(services: Services) -> Callable[[], None]:
    """On SIGTERM/SIGINT, kill running upload workers at once, then let the server's own
    handler run: the server waits for open requests before shutting down, and a parse in
    flight must not keep it waiting. Returns what puts the previous handlers back."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}

    def handle(signum: int, frame: FrameType | None) -> None:
        services.etl_workers.kill_all()
        chained = previous[signal.Signals(signum)]
        if callable(chained):
            chained(signum, frame)
        elif chained == signal.SIG_DFL:
            signal.signal(signum, signal.SIG_DFL)
            signal.raise_signal(signum)

    for sig in previous:
        signal.signal(sig, handle)

    def restore() -> None:
        for sig, handler in previous.items():
            if signal.getsignal(sig) is handle:
                signal.signal(sig, handler)

    return restore
