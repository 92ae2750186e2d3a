"""Property-based fuzzing of the whole API from its own OpenAPI schema: no server errors.

Schemathesis generates requests for every operation (valid and invalid bodies, paths and
queries) and calls the app in-process with a valid reviewer token. Bounded: a few examples per
operation, no deadline, so the run takes about a minute.

The schema is read from an app built at import (building one opens nothing, so its settings'
paths are never touched); each operation's requests go to a fresh app on the test's tmp folder.
"""

from __future__ import annotations

from pathlib import Path

import hypothesis
import pytest
import schemathesis
from fastapi import FastAPI
from schemathesis.checks import not_a_server_error

from esk_pipeline.api import create_app
from esk_pipeline_tests.api_tests.conftest import auth, make_settings, seed_review

schema = schemathesis.openapi.from_dict(
    create_app(make_settings(Path("/nonexistent/schema-only"))).openapi()
)


@pytest.fixture
def seeded_app(settings) -> FastAPI:
    seed_review(settings, 20)
    return create_app(settings)


@schema.parametrize()
@hypothesis.settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=list(hypothesis.HealthCheck),
    derandomize=True,
    database=None,
)
def test_no_server_errors(case, seeded_app):
    case.call_and_validate(app=seeded_app, headers=auth("alice"), checks=[not_a_server_error])
