"""Roles: every /api route x every role, the OpenAPI scopes, and the token settings' forms."""

from __future__ import annotations

import json
import re
import secrets

import pytest
from pydantic import ValidationError

from esk_pipeline.api import create_app
from esk_pipeline.settings import ROLES, AppSettings
from esk_pipeline_tests.api_tests.conftest import ROLES as TOKEN_ROLES
from esk_pipeline_tests.api_tests.conftest import auth

# What each route needs: the specification this test holds the code to. A new route without
# an entry here fails `test_every_route_declares_the_role_this_table_gives_it`.
REVIEW, MAINTAIN = "reviewer", "maintainer"
ROUTE_ROLES = {
    ("GET", "/api/me"): REVIEW,
    ("GET", "/api/taxonomy"): REVIEW,
    ("GET", "/api/review/next"): REVIEW,
    ("POST", "/api/review/items/{item_id}/submit"): REVIEW,
    ("POST", "/api/review/items/{item_id}/skip"): REVIEW,
    ("POST", "/api/review/items/{item_id}/release"): REVIEW,
    ("POST", "/api/review/items/{item_id}/undo"): REVIEW,
    ("GET", "/api/review/stats"): REVIEW,
    ("GET", "/api/review/agreement"): REVIEW,
    ("GET", "/api/review/quality"): REVIEW,
    ("GET", "/api/review/export"): REVIEW,
    ("POST", "/api/ingest/upload"): MAINTAIN,
    ("POST", "/api/ingest/clickhouse-day"): MAINTAIN,
    ("GET", "/api/ingest/runs/{run_id}"): MAINTAIN,
    ("POST", "/api/classify"): MAINTAIN,
    ("POST", "/api/classify/batch"): MAINTAIN,
    ("GET", "/api/versions"): MAINTAIN,
    ("GET", "/api/versions/stats"): MAINTAIN,
    ("GET", "/api/versions/{ref}"): MAINTAIN,
    ("GET", "/api/versions/{ref}/diff/{other}"): MAINTAIN,
    ("POST", "/api/versions/{ref}/tags"): MAINTAIN,
    ("POST", "/api/versions/{ref}/checkout"): MAINTAIN,
    ("GET", "/api/versions/{ref}/verify"): MAINTAIN,
    ("GET", "/api/versions/{ref}/export"): MAINTAIN,
}
_PATH_VALUES = {"item_id": "no-such-item", "ref": "v9.9.9", "other": "v9.9.8", "run_id": "run-x"}


def test_every_route_declares_the_role_this_table_gives_it(app):
    paths = app.openapi()["paths"]
    documented = {(m.upper(), p) for p, ops in paths.items() if p.startswith("/api/") for m in ops}
    assert documented == set(ROUTE_ROLES)
    for (method, path), role in ROUTE_ROLES.items():
        operation = paths[path][method.lower()]
        assert operation["security"] == [{"ApiToken": [role]}], (method, path)
        assert "403" in operation["responses"], (method, path)


@pytest.mark.parametrize("owner", sorted(TOKEN_ROLES))
@pytest.mark.parametrize(("method", "path"), sorted(ROUTE_ROLES))
def test_a_token_gets_403_exactly_where_its_role_is_not_enough(client, owner, method, path):
    url = re.sub(r"\{(\w+)\}", lambda m: _PATH_VALUES[m.group(1)], path)
    body = {} if method == "POST" else None
    response = client.request(method, url, headers=auth(owner), json=body)
    needed, held = ROUTE_ROLES[(method, path)], TOKEN_ROLES[owner]
    if ROLES.index(held) >= ROLES.index(needed):
        assert response.status_code not in (401, 403), response.text
    else:
        assert response.status_code == 403, response.text
        assert response.json()["error"] == "forbidden"
        assert f"needs the {needed} role" in response.json()["detail"]


def test_plain_and_role_token_forms(monkeypatch):
    monkeypatch.setenv(
        "APP_API_TOKENS",
        '{"alice": {"token": "tok-a-0123456789abcdefghij", "role": "admin"},'
        ' "bob": "tok-b-0123456789abcdefghij",'
        ' "carol": {"token": "tok-c-0123456789abcdefghij"}}',
    )
    tokens = AppSettings().api_tokens
    assert {owner: t.role for owner, t in tokens.items()} == {
        "alice": "admin",
        "bob": "reviewer",
        "carol": "reviewer",
    }
    assert tokens["bob"].token.get_secret_value() == "tok-b-0123456789abcdefghij"
    assert "tok-a-0123456789abcdefghij" not in repr(tokens)


@pytest.mark.parametrize(
    "tokens",
    [
        {"alice": {"token": "t", "role": "owner"}},  # no such role
        {"alice\n": "t"},  # the owner becomes the reviewer id: full match only
        {"../alice": "t"},
    ],
)
def test_bad_token_settings_are_refused(tokens):
    with pytest.raises(ValidationError):
        AppSettings(api_tokens=tokens)


@pytest.mark.parametrize(
    ("token", "problem"),
    [
        ("<token>", "7 characters long"),
        ("s3cret-but-short", "16 characters long"),
        ("<alice's-token-goes-here-please>", "placeholder"),
        ("${APP_TOKEN_FOR_ALICE_PLEASE}", "placeholder"),
        ("your-token-here-0123456789", "placeholder"),
        ("changeme-changeme-changeme", "placeholder"),
        ("x" * 40, "placeholder"),
    ],
)
def test_short_and_placeholder_tokens_are_refused_at_start_up(monkeypatch, token, problem):
    monkeypatch.setenv("APP_API_TOKENS", json.dumps({"alice": {"token": token, "role": "admin"}}))
    with pytest.raises(ValidationError, match=problem) as refused:
        AppSettings()
    message = str(refused.value)
    assert "alice's token" in message and "secrets.token_urlsafe()" in message
    assert token not in message


def test_one_token_given_to_two_owners_is_refused_at_start_up():
    # A request presenting it would act as whichever owner was listed last: decisions credited
    # to the wrong reviewer, and a reviewer's copy of the token acting with an admin's role.
    token = secrets.token_urlsafe()
    tokens = {"alice": {"token": token, "role": "admin"}, "bob": token, "carol": "c" + token}
    with pytest.raises(ValidationError, match="alice and bob share one token") as refused:
        AppSettings(api_tokens=tokens)
    assert token not in str(refused.value)


def test_a_generated_token_is_accepted():
    token = secrets.token_urlsafe()
    assert AppSettings(api_tokens={"alice": token}).api_tokens["alice"].role == "reviewer"


def test_the_token_role_comes_from_the_settings_not_the_request(settings):
    from fastapi.testclient import TestClient

    with TestClient(create_app(settings)) as client:
        response = client.post(
            "/api/versions/v1.0.0/checkout",
            headers={**auth("bob"), "X-Role": "admin"},
        )
    assert response.status_code == 403


def test_an_unknown_query_parameter_is_refused_not_ignored(client):
    response = client.get("/api/review/export?formt=csv", headers=auth("bob"))
    assert response.status_code == 422
    assert response.json()["fields"] == [
        {"location": "query.formt", "message": "unknown query parameter"}
    ]
    assert client.get("/api/review/export?format=csv", headers=auth("bob")).status_code == 200
