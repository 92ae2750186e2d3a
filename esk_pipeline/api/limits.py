"""Request guards decided from the headers alone, before any body byte is read.

FastAPI reads and parses a whole body before the route's dependencies (the token check) run,
so without this middleware anyone could make the server buffer a body of any size. Every
request body has a limit (small by default, the upload limit on the upload route), enforced on
the declared Content-Length and again on the bytes as they arrive; and an /api/ request that
presents no bearer token at all is refused with 401 at once. The token itself is checked later,
by the route's role check in `auth`, except on a route with a limit of its own (the upload):
there a body that large is read only for a valid token with the role the limit names, so a
made-up token or a lesser role gets its 401 or 403 before a byte is read.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from fastapi import HTTPException
from fastapi.responses import JSONResponse
from fastapi.security.utils import get_authorization_scheme_param
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from esk_pipeline.api.auth import CHALLENGE, MISSING_TOKEN_DETAIL, check_token, has_bearer_token
from esk_pipeline.api.errors import error_body, error_code
from esk_pipeline.settings import Role

# JSON bodies of this API are small (a review decision, a tag, one text to classify); the
# classify batch and the upload have limits of their own.
DEFAULT_MAX_BODY_BYTES = 1024 * 1024
# Multipart framing around an uploaded file; the upload's body limit is the file limit plus this.
MULTIPART_OVERHEAD_BYTES = 64 * 1024
PROTECTED_PREFIX = "/api/"


@dataclass(frozen=True)
class BodyLimit:
    """At most `max_bytes` of body; `detail` tells the client what to do when over it; with a
    `role`, read only for a valid token with at least that role."""

    max_bytes: int
    detail: str
    role: Role | None = None


def default_body_limit() -> BodyLimit:
    megabytes = DEFAULT_MAX_BODY_BYTES // (1024 * 1024)
    return BodyLimit(
        DEFAULT_MAX_BODY_BYTES, f"the request body is larger than the limit of {megabytes} MB"
    )


def route_path(scope: Scope) -> str:
    """The path the app routes on: without the `root_path` a proxy (uvicorn --root-path) adds."""
    path: str = scope["path"]
    root_path: str = scope.get("root_path", "")
    if root_path and path.startswith(root_path + "/"):
        return path[len(root_path) :]
    return path


class RequestLimitsMiddleware:
    """Refuses /api/ requests without a bearer token (401) and bodies over their limit (413).

    `limits` maps a route path (without root_path) to its own body limit; every other path has
    `default`; `tokens` are the app's (owner -> token and role), for a limit's role check. A
    declared Content-Length over the limit is refused before reading; otherwise the bytes are
    counted as they are received and the request fails with 413 as soon as the count passes
    the limit, so no more than one chunk past the limit is ever read.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        default: BodyLimit,
        limits: dict[str, BodyLimit],
        tokens: Mapping[str, tuple[str, Role]],
    ) -> None:
        self.app = app
        self.default = default
        self.limits = limits
        self.tokens = tokens

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = route_path(scope)
        headers = Headers(scope=scope)
        if path.startswith(PROTECTED_PREFIX) and not has_bearer_token(headers.get("authorization")):
            body = error_body(error_code(401), MISSING_TOKEN_DETAIL)
            await JSONResponse(body, 401, headers=CHALLENGE)(scope, receive, send)
            return
        limit = self.limits.get(path, self.default)
        if limit.role is not None:
            _, presented = get_authorization_scheme_param(headers.get("authorization"))
            try:
                check_token(self.tokens, presented, limit.role)
            except HTTPException as refused:
                body = error_body(error_code(refused.status_code), str(refused.detail))
                await JSONResponse(body, refused.status_code, headers=refused.headers)(
                    scope, receive, send
                )
                return
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit.max_bytes:
            body = error_body(error_code(413), limit.detail)
            await JSONResponse(body, 413)(scope, receive, send)
            return
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit.max_bytes:
                    # An HTTPException passes through FastAPI's body parsing as it is.
                    raise HTTPException(status_code=413, detail=limit.detail)
            return message

        await self.app(scope, counting_receive, send)
