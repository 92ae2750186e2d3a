"""The app's collaborators, built once on first use from the settings the app was created with.

Nothing here opens a database, ClickHouse or a model at import time or in `create_app`: each
collaborator is built the first time a request needs it (under a lock, so concurrent first
requests build it once), which keeps `esk_pipeline.api:app` cheap and safe to import.
Library configs are built from the app's own `Settings` (`esk_pipeline.configs`) rather than
the process-wide ones, so an app built for a temporary folder never touches the default data
directory.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Request
from fastapi.dependencies.models import Dependant
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool

from esk_pipeline import configs
from esk_pipeline.api.metrics import ApiMetrics
from esk_pipeline.pipeline import DataStorage, ETLConfig, LabelerAgent, ReviewDataset, Taxonomy
from esk_pipeline.pipeline.etl.worker import ETLWorkers, WorkerLimits
from esk_pipeline.pipeline.log_source import LogSource
from esk_pipeline.settings import Role, Settings

log = logging.getLogger(__name__)
T = TypeVar("T")

# How long a request waits for the embedded ClickHouse folder while another process uses it.
CLICKHOUSE_LOCK_SECONDS = 60.0
READINESS_LOCK_SECONDS = 5.0


class KeyedLocks:
    """One asyncio lock per key, held only while someone uses or waits for it."""

    def __init__(self) -> None:
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}

    @asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        lock, users = self._locks.get(key, (asyncio.Lock(), 0))
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[key]
            if users == 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)


class Services:
    """Long-lived collaborators of one app (review store, taxonomy, labeler, storage)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.metrics = ApiMetrics()
        # owner -> (token, role)
        self.api_tokens: dict[str, tuple[str, Role]] = {
            owner: (entry.token.get_secret_value(), entry.role)
            for owner, entry in settings.app.api_tokens.items()
        }
        self.max_upload_bytes = settings.app.max_upload_mb * 1024 * 1024
        # Uploads are parsed in limited child processes, never in the server's own.
        self.etl_workers = ETLWorkers(
            WorkerLimits(
                cpu_seconds=settings.app.upload_cpu_seconds,
                memory_bytes=settings.app.upload_memory_mb * 1024 * 1024,
                wall_seconds=settings.app.upload_wall_seconds,
            )
        )
        # Uploads of the same bytes, or under the same idempotency key, run one after another.
        self.ingest_locks = KeyedLocks()
        self._built: dict[str, Any] = {}
        self._lock = threading.RLock()  # a builder may need another (review -> taxonomy)

    def _once(self, name: str, build: Callable[[], T]) -> T:
        if name not in self._built:
            with self._lock:
                if name not in self._built:
                    self._built[name] = build()
        return self._built[name]

    @property
    def taxonomy(self) -> Taxonomy:
        return self._once("taxonomy", lambda: Taxonomy.load(self.settings.app.taxonomy_path))

    @property
    def review(self) -> ReviewDataset:
        return self._once("review", self._build_review)

    @property
    def labeler(self) -> LabelerAgent:
        return self._once("labeler", self._build_labeler)

    @property
    def storage(self) -> DataStorage:
        return self._once("storage", self._build_storage)

    def etl_config(self) -> ETLConfig:
        """The ETL config of uploads: the app's ETL settings and the upload size limit."""
        return configs.etl_config(self.settings, max_file_bytes=self.max_upload_bytes)

    def log_source(self, lock_timeout_seconds: float = CLICKHOUSE_LOCK_SECONDS) -> LogSource:
        return LogSource(self.settings.clickhouse, lock_timeout_seconds=lock_timeout_seconds)

    def _build_review(self) -> ReviewDataset:
        return ReviewDataset(configs.review_config(self.settings), self.taxonomy)

    def _build_labeler(self) -> LabelerAgent:
        return LabelerAgent(
            configs.labeler_config(self.settings),
            self.taxonomy,
            usage=configs.usage_meter(self.settings),
            progress_callback=log.debug,
        )

    def _build_storage(self) -> DataStorage:
        return DataStorage(configs.storage_config(self.settings))

    def close(self) -> None:
        """Stop running uploads and release what was built; safe to call more than once."""
        self.etl_workers.kill_all()
        with self._lock:
            review = self._built.pop("review", None)
        if review is not None:
            review.close()


def get_services(request: Request) -> Services:
    return request.app.state.services


ServicesDep = Annotated[Services, Depends(get_services)]


def get_review(services: ServicesDep) -> ReviewDataset:
    return services.review


def get_taxonomy(services: ServicesDep) -> Taxonomy:
    return services.taxonomy


async def get_labeler(services: ServicesDep) -> LabelerAgent:
    # The first call trains the local model: keep that off the event loop.
    return await run_in_threadpool(lambda: services.labeler)


def get_storage(services: ServicesDep) -> DataStorage:
    return services.storage


ReviewDep = Annotated[ReviewDataset, Depends(get_review)]
LabelerDep = Annotated[LabelerAgent, Depends(get_labeler)]
StorageDep = Annotated[DataStorage, Depends(get_storage)]
TaxonomyDep = Annotated[Taxonomy, Depends(get_taxonomy)]


def reject_unknown_query_parameters(request: Request) -> None:
    """422 for a query parameter the route does not take (a typo like ?formt=csv would
    otherwise be ignored silently and the default used)."""
    route = request.scope.get("route")
    if not isinstance(route, APIRoute) or not route.include_in_schema or not request.query_params:
        return  # the page's own routes may be linked with any tracking parameters
    unknown = sorted(set(request.query_params) - _query_names(route.dependant))
    if unknown:
        raise RequestValidationError(
            [
                {"loc": ("query", name), "msg": "unknown query parameter", "type": "extra"}
                for name in unknown
            ]
        )


def _query_names(dependant: Dependant) -> set[str]:
    names = {param.alias for param in dependant.query_params}
    for sub in dependant.dependencies:
        names |= _query_names(sub)
    return names
