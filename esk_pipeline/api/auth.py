"""Bearer-token authentication: the token's owner (from APP_API_TOKENS) is the reviewer.

The reviewer's identity is never taken from the request body or query: whoever holds a token
acts as the reviewer id it is configured for.
"""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.security.utils import get_authorization_scheme_param

_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="ReviewerToken",
    description="A reviewer's token from APP_API_TOKENS; the token's owner is the reviewer.",
)
CHALLENGE = {"WWW-Authenticate": 'Bearer realm="esk_pipeline"'}
MISSING_TOKEN_DETAIL = "missing bearer token: send 'Authorization: Bearer <your token>'"


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(status_code=401, detail=detail, headers=CHALLENGE)


def has_bearer_token(authorization: str | None) -> bool:
    """Whether an Authorization header value presents a bearer token (not whether it is valid).

    The same rule as `HTTPBearer`, so a request passing this check reaches `current_reviewer`.
    """
    scheme, credentials = get_authorization_scheme_param(authorization)
    return scheme.lower() == "bearer" and bool(credentials)


def reviewer_for_token(tokens: dict[str, str], presented: str) -> str | None:
    """The reviewer whose token equals `presented`, compared in constant time; None if none.

    Every configured token is compared (no early exit), and empty tokens never match.
    """
    presented_bytes = presented.encode("utf-8")
    owner = None
    for reviewer_id, token in tokens.items():
        if token and secrets.compare_digest(presented_bytes, token.encode("utf-8")):
            owner = reviewer_id
    return owner


def current_reviewer(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> str:
    """The calling reviewer's id, or 401 with a message saying what is wrong."""
    if credentials is None:
        raise _unauthorized(MISSING_TOKEN_DETAIL)
    tokens = request.app.state.services.api_tokens
    if not tokens:
        raise _unauthorized("no API tokens are configured on the server (APP_API_TOKENS)")
    reviewer_id = reviewer_for_token(tokens, credentials.credentials)
    if reviewer_id is None:
        raise _unauthorized("invalid bearer token")
    return reviewer_id


ReviewerId = Annotated[str, Depends(current_reviewer)]
