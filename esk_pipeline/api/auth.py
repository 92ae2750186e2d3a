"""Bearer-token authentication and roles: the token's owner (from APP_API_TOKENS) is the caller.

Each token has a role (`reviewer`, `maintainer`, `admin`; a plain token string is a reviewer's),
and each role may do everything the ones before it may. Every route declares the role it
needs with one of `ReviewerId`, `MaintainerId` or `AdminId`; a valid token with a lesser role
gets 403. The role shows in OpenAPI as the scope of the route's bearer-token requirement.

The caller's identity is never taken from the request body or query: whoever holds a token
acts as the owner it is configured for.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping
from typing import Annotated

from fastapi import Depends, HTTPException, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.security.utils import get_authorization_scheme_param

from esk_pipeline.settings import ROLES, Role

_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="ApiToken",
    description=(
        "A token from APP_API_TOKENS; its owner is the caller (the reviewer id) and its role "
        "(reviewer < maintainer < admin) must be at least the one the operation lists."
    ),
)
CHALLENGE = {"WWW-Authenticate": 'Bearer realm="esk_pipeline"'}
MISSING_TOKEN_DETAIL = "missing bearer token: send 'Authorization: Bearer <your token>'"


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(status_code=401, detail=detail, headers=CHALLENGE)


def has_bearer_token(authorization: str | None) -> bool:
    """Whether an Authorization header value presents a bearer token (not whether it is valid).

    The same rule as `HTTPBearer`, so a request passing this check reaches the role check.
    """
    scheme, credentials = get_authorization_scheme_param(authorization)
    return scheme.lower() == "bearer" and bool(credentials)


def owner_of_token(tokens: Mapping[str, tuple[str, Role]], presented: str) -> str | None:
    """The owner whose token equals `presented`, compared in constant time; None if none.

    Every configured token is compared (no early exit), and empty tokens never match.
    """
    presented_bytes = presented.encode("utf-8")
    owner = None
    for owner_id, (token, _) in tokens.items():
        if token and secrets.compare_digest(presented_bytes, token.encode("utf-8")):
            owner = owner_id
    return owner


def allows(role: Role, required: Role) -> bool:
    """Whether a token with `role` may call a route that needs `required`."""
    return ROLES.index(role) >= ROLES.index(required)


def check_token(tokens: Mapping[str, tuple[str, Role]], presented: str, required: Role) -> str:
    """The owner of the `presented` token if its role is at least `required`; else the 401
    (no tokens configured, or none matches) or 403 (a lesser role) to answer."""
    if not tokens:
        raise _unauthorized("no API tokens are configured on the server (APP_API_TOKENS)")
    owner = owner_of_token(tokens, presented)
    if owner is None:
        raise _unauthorized("invalid bearer token")
    role = tokens[owner][1]
    if not allows(role, required):
        raise HTTPException(
            status_code=403,
            detail=f"this operation needs the {required} role; {owner}'s token is a {role}'s",
        )
    return owner


def _caller_with(required: Role) -> Callable[..., str]:
    # A default, not Annotated[...]: the annotations are strings that cannot see `required`.
    def caller(
        request: Request,
        credentials: HTTPAuthorizationCredentials | None = Security(_bearer, scopes=[required]),
    ) -> str:
        if credentials is None:
            raise _unauthorized(MISSING_TOKEN_DETAIL)
        return check_token(request.app.state.services.api_tokens, credentials.credentials, required)

    caller.__name__ = f"{required}_caller"
    return caller


ReviewerId = Annotated[str, Depends(_caller_with("reviewer"))]
"""The caller's id; the route is open to every role (review routes)."""
MaintainerId = Annotated[str, Depends(_caller_with("maintainer"))]
"""The caller's id; the route needs a maintainer's or admin's token."""
AdminId = Annotated[str, Depends(_caller_with("admin"))]
"""The caller's id; the route needs an admin's token."""
