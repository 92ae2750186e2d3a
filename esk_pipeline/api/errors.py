"""One error shape for the whole API: `{"error": code, "detail": sentence}`, never a traceback.

Library exceptions carry messages written for people, so they are passed through, less the
server's absolute paths; anything unexpected becomes a generic 500 and its traceback goes to the
server log only.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable
from http import HTTPStatus
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from esk_pipeline.api.schemas import ErrorOut, FieldIssue
from esk_pipeline.pipeline.etl import ETLError
from esk_pipeline.pipeline.etl.worker import ETLCancelled, ETLLimitError
from esk_pipeline.pipeline.log_source import LogSourceError
from esk_pipeline.pipeline.review import (
    NotLeasedError,
    QueueFullError,
    ReviewError,
    UnknownDomainError,
    UnknownItemError,
)
from esk_pipeline.pipeline.taxonomy import TaxonomyError
from esk_pipeline.pipeline.versions import StorageError, VersionNotFoundError

log = logging.getLogger(__name__)

# Starlette uses the handler of the nearest class in the exception's MRO, so subclasses win.
_LIBRARY_ERRORS: list[tuple[type[Exception], int, str]] = [
    (UnknownItemError, 404, "unknown_item"),
    (UnknownDomainError, 422, "unknown_domain"),
    (NotLeasedError, 409, "not_leased"),
    (QueueFullError, 409, "queue_full"),
    (ReviewError, 409, "review_refused"),
    (VersionNotFoundError, 404, "unknown_version"),
    (StorageError, 409, "storage_refused"),
    (ETLLimitError, 413, "content_too_large"),
    (ETLError, 422, "unreadable_input"),
    (ETLCancelled, 503, "cancelled"),
    (LogSourceError, 503, "clickhouse_unavailable"),
    (TaxonomyError, 503, "taxonomy_unavailable"),
]

# An absolute path (not part of a URL or a relative path); group 1 is its last part.
_ABSOLUTE_PATH = re.compile(r"(?<![\w.:/~-])/(?:[^\s/:'\"]+/)*([^\s/:'\"]+)")

# Every protected route can answer these: a missing or bad token, a token whose role is not
# enough, an invalid request.
_COMMON_ERRORS = (401, 403, 422)


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses=` entries (ErrorOut bodies) for these statuses and the common ones."""
    return {
        code: {"model": ErrorOut, "description": HTTPStatus(code).phrase}
        for code in (*_COMMON_ERRORS, *codes)
    }


def error_body(error: str, detail: str, fields: list[FieldIssue] | None = None) -> dict[str, Any]:
    return ErrorOut(error=error, detail=detail, fields=fields).model_dump(exclude_none=True)


def _json(status: int, error: str, detail: str, **kwargs: Any) -> JSONResponse:
    return JSONResponse(error_body(error, detail, kwargs.pop("fields", None)), status, **kwargs)


def error_code(status: int) -> str:
    """The `error` code for an HTTP status: its phrase in snake case (RFC 9110 names)."""
    if status == 413:  # Python's phrase is the pre-RFC 9110 "Request Entity Too Large"
        return "content_too_large"
    return HTTPStatus(status).phrase.lower().replace(" ", "_").replace("-", "_")


async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    code = error_code(exc.status_code)
    detail = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).phrase
    return _json(exc.status_code, code, detail, headers=getattr(exc, "headers", None))


async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    fields = [
        FieldIssue(location=".".join(str(part) for part in err.get("loc", ())), message=err["msg"])
        for err in exc.errors()
    ]
    summary = "; ".join(f"{f.location}: {f.message}" for f in fields[:5])
    return _json(422, "invalid_request", f"the request is not valid: {summary}", fields=fields)


def without_server_paths(message: str, roots: Iterable[Path]) -> str:
    """`message` with no absolute server path: paths under one of `roots` (the storage and data
    folders) become relative to it, and any other absolute path is cut to its last part."""
    prefixes = {f"{path}/" for root in roots for path in (root.absolute(), root.resolve())}
    for prefix in sorted(prefixes, key=len, reverse=True):  # the deepest root first
        message = message.replace(prefix, "")
    return _ABSOLUTE_PATH.sub(lambda match: match.group(1), message)


def _library_handler(status: int, code: str) -> Callable[[Request, Exception], Any]:
    async def handle(request: Request, exc: Exception) -> JSONResponse:
        settings = request.app.state.services.settings
        roots = [settings.app.data_dir]
        if isinstance(settings.data_storage.storage_dir, Path):  # not an object-storage URL
            roots.append(settings.data_storage.storage_dir)
        return _json(status, code, without_server_paths(str(exc), roots) or type(exc).__name__)

    return handle


async def _unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return _json(500, "internal_error", "the server failed on this request; see the server log")


def install_error_handlers(app: FastAPI) -> None:
    """Register the JSON error handlers for HTTP, validation, library and unexpected errors."""
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    for exc_class, status, code in _LIBRARY_ERRORS:
        app.add_exception_handler(exc_class, _library_handler(status, code))
    app.add_exception_handler(Exception, _unexpected_error)
